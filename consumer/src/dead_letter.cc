#include "outpost/consumer/dead_letter.h"

#include "outpost/common/utf8.h"

namespace outpost::consumer {

events::OutRecord deadLetterRecord(const std::string& dlq_topic, const ConsumedMessage& message,
                                   const std::string& reason, const std::string& worker_id) {
  events::OutRecord r{dlq_topic, -1, message.key, message.value, message.headers};
  // Read as text by consumers in any language: valid UTF-8 whatever the reason quotes.
  r.headers.push_back({kDlqReasonHeader, sanitizeUtf8(reason)});
  r.headers.push_back({kDlqTopicHeader, message.tp.topic});
  r.headers.push_back({kDlqPartitionHeader, std::to_string(message.tp.partition)});
  r.headers.push_back({kDlqOffsetHeader, std::to_string(message.offset)});
  r.headers.push_back({kDlqWorkerHeader, worker_id});
  return r;
}

}  // namespace outpost::consumer
