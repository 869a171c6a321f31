#include "outpost/consumer/dead_letter.h"

namespace outpost {

void sendToDeadLetter(KafkaProducer& producer, const std::string& dlq_topic,
                      const ConsumedMessage& message, const std::string& reason,
                      const std::string& worker_id, DeliveryCallback on_delivery) {
  std::vector<Header> headers = message.headers;
  headers.push_back({kDlqReasonHeader, reason});
  headers.push_back({kDlqTopicHeader, message.tp.topic});
  headers.push_back({kDlqPartitionHeader, std::to_string(message.tp.partition)});
  headers.push_back({kDlqOffsetHeader, std::to_string(message.offset)});
  headers.push_back({kDlqWorkerHeader, worker_id});
  producer.produce(dlq_topic, message.key, message.value, headers, std::move(on_delivery));
}

}  // namespace outpost
