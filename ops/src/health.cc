#include "outpost/ops/health.h"

#include <fmt/format.h>

namespace outpost::ops {

void Health::beat(Steady::time_point now) {
  last_beat_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  beaten_.store(true, std::memory_order_release);
}

void Health::beginWait(std::string what, Steady::time_point now,
                       std::chrono::milliseconds bound) {
  beat(now);
  {
    std::lock_guard lock(mutex_);
    waiting_ = std::move(what);
  }
  wait_until_.store((now + bound).time_since_epoch().count(), std::memory_order_relaxed);
}

void Health::endWait(Steady::time_point now) {
  wait_until_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    waiting_.clear();
  }
  beat(now);
}

void Health::setNotReady(std::optional<std::string> why) {
  std::lock_guard lock(mutex_);
  not_ready_ = std::move(why);
}

std::optional<std::string> Health::whyNotLive(Steady::time_point now,
                                              std::chrono::milliseconds live_timeout) const {
  if (!beaten_.load(std::memory_order_acquire)) return "the poll loop has not started yet";
  const Steady::time_point last{Steady::duration{last_beat_.load(std::memory_order_relaxed)}};
  const auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - last);
  if (silent <= live_timeout) return std::nullopt;
  if (auto until = wait_until_.load(std::memory_order_relaxed)) {
    const Steady::time_point bound{Steady::duration{until}};
    if (now <= bound + live_timeout) return std::nullopt;  // a wait within its bound
    std::lock_guard lock(mutex_);
    return fmt::format("the poll loop has been {} for {} ms, past its bound and the limit of {} ms",
                       waiting_, silent.count(), live_timeout.count());
  }
  return fmt::format("the poll loop has not gone round for {} ms (limit {} ms)", silent.count(),
                     live_timeout.count());
}

std::optional<std::string> Health::whyNotReady() const {
  std::lock_guard lock(mutex_);
  if (!waiting_.empty()) return waiting_;
  return not_ready_;
}

}  // namespace outpost::ops
