#include "outpost/consumer/offset_tracker.h"

namespace outpost::consumer {

void OffsetTracker::begin(const TopicPartition& tp, std::int64_t offset) {
  auto& p = partitions_[tp];
  p.in_flight.insert(offset);
  if (offset + 1 > p.next) p.next = offset + 1;
}

void OffsetTracker::complete(const TopicPartition& tp, std::int64_t offset) {
  auto it = partitions_.find(tp);
  if (it != partitions_.end()) it->second.in_flight.erase(offset);
}

std::map<TopicPartition, std::int64_t> OffsetTracker::takeCommittable() {
  std::map<TopicPartition, std::int64_t> out;
  for (auto& [tp, p] : partitions_) {
    auto w = watermarkOf(p);
    if (w >= 0 && w != p.committed) {
      out[tp] = w;
      p.committed = w;
    }
  }
  return out;
}

std::map<TopicPartition, std::int64_t> OffsetTracker::watermarks() const {
  std::map<TopicPartition, std::int64_t> out;
  for (const auto& [tp, p] : partitions_) {
    if (auto w = watermarkOf(p); w >= 0) out[tp] = w;
  }
  return out;
}

std::int64_t OffsetTracker::watermark(const TopicPartition& tp) const {
  auto it = partitions_.find(tp);
  return it == partitions_.end() ? -1 : watermarkOf(it->second);
}

void OffsetTracker::forget(const TopicPartition& tp) {
  partitions_.erase(tp);
}

std::size_t OffsetTracker::inFlight(const TopicPartition& tp) const {
  auto it = partitions_.find(tp);
  return it == partitions_.end() ? 0 : it->second.in_flight.size();
}

std::size_t OffsetTracker::inFlight() const {
  std::size_t n = 0;
  for (const auto& [tp, p] : partitions_) n += p.in_flight.size();
  return n;
}

}  // namespace outpost::consumer
