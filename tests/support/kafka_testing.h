// Bare librdkafka clients for the tests and the benchmark, which both play the control plane
// against a real broker: clients, topic creation, the partitions of a topic once it can be read,
// and a reader of a whole topic (Outpost's own consumer::TopicReader underneath). One place, so
// that what one learned (a topic just created may not be readable yet) holds for the other.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace outpost::consumer {
class TopicReader;
}

namespace outpost::kafka_testing {

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
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, Deleter>;

using Properties = std::map<std::string, std::string>;

// A producer or consumer for `bootstrap` (librdkafka logs errors only); throws naming the
// property librdkafka refused.
HandlePtr makeClient(rd_kafka_type_t type, const std::string& bootstrap, Properties props);

struct NewTopicSpec {
  std::string name;
  int partitions = 1;
  Properties configs;  // topic-level settings, e.g. cleanup.policy
  // 1 for the single test broker; a cluster's tests (tests/robustness/cluster_test.cc) ask for 3.
  int replication_factor = 1;
};

// Creates the topics and returns once they exist with their leaders (not only once the controller
// accepted them); throws on failure, including when one exists already.
void createTopics(const std::string& bootstrap, const std::vector<NewTopicSpec>& topics);

// The partition ids of `topic` once every partition has a leader; throws after `timeout` saying
// why. A reader assigned the partitions of a topic's first metadata reply may get none.
std::vector<std::int32_t> readablePartitions(
    rd_kafka_t* rk, const std::string& topic,
    std::chrono::seconds timeout = std::chrono::seconds(30));

// One record as read; a header named twice keeps its last value.
struct Record {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

// Reads every partition of one topic from the beginning with isolation.level=read_committed,
// assigned directly rather than through a group, as the platform reads events: a
// consumer::TopicReader (what `outpost tail` and `outpost ledger` read with), assigned once every
// partition has a leader. One thread only.
class TopicReader {
 public:
  // Throws when the topic is not readable within 30 s (readablePartitions).
  TopicReader(const std::string& bootstrap, const std::string& topic);
  ~TopicReader();
  TopicReader(const TopicReader&) = delete;
  TopicReader& operator=(const TopicReader&) = delete;

  // The next record within `timeout`, not kept in records(); nullopt when none came. Errors are
  // skipped; the last one is kept for failure messages.
  std::optional<Record> next(std::chrono::milliseconds timeout);
  // Reads (keeping what it reads) until `done(all records so far)` is true or `timeout` passes;
  // returns done.
  bool readUntil(const std::function<bool(const std::vector<Record>&)>& done,
                 std::chrono::seconds timeout = std::chrono::seconds(60));
  // Reads (keeping what it reads) whatever arrives within `window`.
  void readFor(std::chrono::milliseconds window);

  const std::vector<Record>& records() const { return records_; }
  const std::string& topic() const { return topic_; }
  // The last error the consumer reported, if any (for failure messages).
  const std::string& lastError() const { return last_error_; }

 private:
  std::unique_ptr<consumer::TopicReader> reader_;
  std::string topic_;
  std::vector<Record> records_;
  std::string last_error_;
};

}  // namespace outpost::kafka_testing
