// The dead-letter topic: where a command that cannot or may not run goes, unchanged, with headers
// saying why and where it came from. Nothing is dropped silently.
#pragma once

#include <string>

#include "outpost/consumer/job_consumer.h"
#include "outpost/events/out_record.h"

namespace outpost::consumer {

// Header names on dead-lettered messages.
inline constexpr const char* kDlqReasonHeader = "outpost.dlq.reason";
inline constexpr const char* kDlqTopicHeader = "outpost.dlq.source.topic";
inline constexpr const char* kDlqPartitionHeader = "outpost.dlq.source.partition";
inline constexpr const char* kDlqOffsetHeader = "outpost.dlq.source.offset";
inline constexpr const char* kDlqWorkerHeader = "outpost.dlq.worker";

// The original key, value and headers for `dlq_topic`, plus the outpost.dlq.* headers.
events::OutRecord deadLetterRecord(const std::string& dlq_topic, const ConsumedMessage& message,
                                   const std::string& reason, const std::string& worker_id);

}  // namespace outpost::consumer
