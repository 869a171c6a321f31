// Reads topics outside any consumer group, for the commands that look at what is on the topics
// (`outpost tail`, `outpost ledger`): partitions are assigned explicitly and read from their
// beginning, read_committed, committing nothing. librdkafka stays behind it. One thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/common/topic_partition.h"

namespace outpost::consumer {

struct ReadRecord {
  TopicPartition tp;
  std::int64_t offset = -1;
  std::int64_t timestamp_ms = -1;  // the record's timestamp; -1 when it has none
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
};

// What one poll gave: nothing within the timeout, a record, the end of a partition (as far as
// it was written when reached), or an error (the reader goes on).
struct ReadResult {
  enum class Kind { kNothing, kRecord, kEnd, kError };
  Kind kind = Kind::kNothing;
  ReadRecord record;  // kRecord; for kEnd only record.tp
  std::string error;  // kError
};

class TopicReader {
 public:
  // kafka.properties and kafka.consumer_properties apply, with `bootstrap` (when not empty) over
  // kafka.bootstrap_servers. Throws ConfigError when librdkafka refuses the configuration.
  TopicReader(const KafkaConfig& kafka, const std::string& bootstrap, const std::string& name);
  ~TopicReader();
  TopicReader(const TopicReader&) = delete;
  TopicReader& operator=(const TopicReader&) = delete;

  // The partitions of each existing topic. Reads every topic's metadata: asking for one by name
  // could create it where the broker allows that.
  std::expected<std::map<std::string, std::vector<std::int32_t>>, std::string> partitions(
      std::chrono::milliseconds timeout);
  // The first offset and the end (the next offset to be written) of a partition.
  std::expected<std::pair<std::int64_t, std::int64_t>, std::string> watermarks(
      const TopicPartition& tp, std::chrono::milliseconds timeout);
  // The offset of the first record written at or after `unix_ms` (its timestamp), or the end
  // when there is none.
  std::expected<std::int64_t, std::string> offsetForTime(const TopicPartition& tp,
                                                         std::int64_t unix_ms,
                                                         std::chrono::milliseconds timeout);
  // Adds partitions to what is read, each from its beginning.
  std::expected<void, std::string> readFromBeginning(const std::vector<TopicPartition>& tps);
  // Adds partitions to what is read, each from the offset given.
  std::expected<void, std::string> readFrom(
      const std::vector<std::pair<TopicPartition, std::int64_t>>& from);
  ReadResult poll(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The offsets consumer group `group` committed on `tps` (-1 where it committed none), asked
// without joining the group.
std::expected<std::map<TopicPartition, std::int64_t>, std::string> committedOffsets(
    const KafkaConfig& kafka, const std::string& bootstrap, const std::string& group,
    const std::vector<TopicPartition>& tps, std::chrono::milliseconds timeout);

}  // namespace outpost::consumer
