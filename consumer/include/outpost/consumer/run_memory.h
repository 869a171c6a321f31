// A map whose entries expire: what a worker remembers about run_ids for a while (runs that ended
// here, cancels for runs it has not seen yet), so that cancels that come early or late are
// answered, in bounded memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>

namespace outpost::consumer {

// Values by run_id, each until its expiry; at most `capacity` entries are kept, the ones closest
// to expiry giving way first. Not thread-safe: one thread uses it (the worker's poll thread).
template <typename Value>
class RunMemory {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  explicit RunMemory(std::size_t capacity) : capacity_(capacity) {}

  // Remembers `value` for `run_id` until `expires`, replacing what was remembered for it.
  void put(const std::string& run_id, Value value, TimePoint expires) {
    erase(run_id);
    if (capacity_ == 0) return;
    while (entries_.size() >= capacity_) eraseAt(by_expiry_.begin());
    auto pos = by_expiry_.emplace(expires, run_id);
    entries_.emplace(run_id, Entry{std::move(value), pos});
  }

  // The entry for `run_id` if it has not expired by `now`, else nullptr. Valid until the next
  // put, erase or expire.
  Value* find(const std::string& run_id, TimePoint now) {
    auto it = entries_.find(run_id);
    if (it == entries_.end() || it->second.pos->first <= now) return nullptr;
    return &it->second.value;
  }

  void erase(const std::string& run_id) {
    auto it = entries_.find(run_id);
    if (it != entries_.end()) eraseAt(it->second.pos);
  }

  // Forgets every entry expired by `now`.
  void expire(TimePoint now) {
    while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) eraseAt(by_expiry_.begin());
  }

  std::size_t size() const { return entries_.size(); }

 private:
  using ByExpiry = std::multimap<TimePoint, std::string>;
  struct Entry {
    Value value;
    ByExpiry::iterator pos;
  };

  void eraseAt(ByExpiry::iterator pos) {
    entries_.erase(pos->second);
    by_expiry_.erase(pos);
  }

  std::size_t capacity_;
  ByExpiry by_expiry_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace outpost::consumer
