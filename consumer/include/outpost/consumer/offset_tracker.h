// Which offsets of each partition are done, so that only a low watermark is ever committed:
// a command's offset counts as done once its terminal event is acknowledged, and commands finish
// out of order. Single-threaded: owned by the consumer's poll thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>

#include "outpost/common/topic_partition.h"

namespace outpost::consumer {

class OffsetTracker {
 public:
  // A message at `offset` was taken; offsets of one partition are taken in increasing order.
  void begin(const TopicPartition& tp, std::int64_t offset);
  // It is done. Unknown offsets (e.g. of a partition forgotten since) are ignored.
  void complete(const TopicPartition& tp, std::int64_t offset);
  // The offset to commit for each partition whose watermark moved since the last call: the
  // lowest offset not yet done (or one past the highest taken, when all are done).
  std::map<TopicPartition, std::int64_t> takeCommittable();
  // Every partition's watermark, moved or not: committed again now and then, since an async
  // commit that failed is not retried by the consumer.
  std::map<TopicPartition, std::int64_t> watermarks() const;
  // Same, but only for one partition, even if it did not move (for revocation).
  std::int64_t watermark(const TopicPartition& tp) const;
  // Drops a partition's state (it was revoked or lost).
  void forget(const TopicPartition& tp);
  std::size_t inFlight(const TopicPartition& tp) const;
  std::size_t inFlight() const;

 private:
  struct Partition {
    std::set<std::int64_t> in_flight;
    std::int64_t next = -1;       // one past the highest offset taken
    std::int64_t committed = -1;  // last value returned by takeCommittable
  };
  static std::int64_t watermarkOf(const Partition& p) {
    return p.in_flight.empty() ? p.next : *p.in_flight.begin();
  }
  std::map<TopicPartition, Partition> partitions_;
};

}  // namespace outpost::consumer
