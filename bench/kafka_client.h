// Bare librdkafka clients for the benchmarks: RAII handles, topic creation and a reader that is
// assigned one topic's partitions directly (no consumer group), as the platform would read events.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace outpost::bench {

struct Deleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
  void operator()(rd_kafka_message_t* p) const { rd_kafka_message_destroy(p); }
  void operator()(rd_kafka_topic_partition_list_t* p) const {
    rd_kafka_topic_partition_list_destroy(p);
  }
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
};
using HandlePtr = std::unique_ptr<rd_kafka_t, Deleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, Deleter>;

using Properties = std::map<std::string, std::string>;

// A producer or consumer for `bootstrap`; throws with the property's name if librdkafka refuses it.
HandlePtr makeClient(rd_kafka_type_t type, const std::string& bootstrap, Properties props);

// Creates the topics (one partition each unless given in `partitions`, with the topic-level
// settings given in `configs`, e.g. cleanup.policy); throws on failure.
void createTopics(const std::string& bootstrap, const std::vector<std::string>& names,
                  const std::map<std::string, int>& partitions = {},
                  const std::map<std::string, Properties>& configs = {});

// Queues one message (copied); throws if librdkafka refuses it. Does not wait for delivery.
void produce(rd_kafka_t* producer, const std::string& topic, const std::string& key,
             const std::string& value);

// Reads every partition of one topic from the beginning, with isolation.level=read_committed,
// assigned directly rather than through a group. One thread only.
class TopicReader {
 public:
  TopicReader(const std::string& bootstrap, const std::string& topic);
  ~TopicReader();
  TopicReader(const TopicReader&) = delete;
  TopicReader& operator=(const TopicReader&) = delete;

  // The next message within `timeout`, or nullptr. Error events are skipped.
  MessagePtr poll(std::chrono::milliseconds timeout);

 private:
  HandlePtr rk_;
};

}  // namespace outpost::bench
