// The benchmark's control plane: topic creation and a reader that is assigned one topic's
// partitions directly (no consumer group), as the platform would read events. Clients, topic
// readiness and the reader come from tests/support/kafka_testing.h, shared with the tests.
#pragma once

#include "kafka_testing.h"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace outpost::bench {

using kafka_testing::Deleter;
using kafka_testing::HandlePtr;
using kafka_testing::makeClient;
using kafka_testing::MessagePtr;
using kafka_testing::Properties;
using kafka_testing::TopicReader;

// Creates the topics (one partition each unless given in `partitions`, with the topic-level
// settings given in `configs`, e.g. cleanup.policy); throws on failure.
void createTopics(const std::string& bootstrap, const std::vector<std::string>& names,
                  const std::map<std::string, int>& partitions = {},
                  const std::map<std::string, Properties>& configs = {});

// Queues one message (copied); throws if librdkafka refuses it. Does not wait for delivery.
void produce(rd_kafka_t* producer, const std::string& topic, const std::string& key,
             const std::string& value);

}  // namespace outpost::bench
