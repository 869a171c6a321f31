#include "outpost/dispatch/owner_loop.h"

#include <spdlog/spdlog.h>

namespace outpost::dispatch {

void Inbox::post(std::function<void()> fn) {
  bool first;
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      dropped_.fetch_add(1);
      return;
    }
    first = queue_.empty();
    queue_.push_back(std::move(fn));
  }
  // Only the first of a burst wakes the owner: it takes the whole inbox at once. A run posts
  // about eight times (start, log, end, and one acknowledgement per record).
  if (first) {
    cv_.notify_one();
    if (wake_) wake_();
  }
}

void Inbox::serve() {
  for (;;) {
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard lock(mutex_);
      batch.swap(queue_);
    }
    if (batch.empty()) return;
    for (auto& fn : batch) fn();
  }
}

bool Inbox::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [this] { return !queue_.empty() || closed_; }) && !closed_;
}

void Inbox::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  dropped_.fetch_add(queue_.size());
  queue_.clear();
}

OwnerLoop::~OwnerLoop() {
  quiesce();
}

void OwnerLoop::turn(Dispatcher& dispatcher, Steps& steps, std::chrono::milliseconds wait) {
  steps.take(wait);
  inbox_.serve();
  dispatcher.tick();
  steps.chores();
}

bool OwnerLoop::run(Dispatcher& dispatcher, Steps& steps, const std::atomic<bool>& stop,
                    const DrainPolicy& policy) {
  constexpr std::chrono::milliseconds kWait{100};
  while (!stop.load()) {
    turn(dispatcher, steps, kWait);
    if (steps.finished() && dispatcher.idle()) return true;
  }
  // The drain: nothing new is taken; running runs get drain_timeout, then are stopped and get
  // stop_bound to end.
  dispatcher.beginDrain();
  steps.draining();
  const auto deadline = clock_.steadyNow() + policy.drain_timeout;
  const auto give_up = deadline + policy.stop_bound;
  bool stopped = false;
  while (!dispatcher.idle() && clock_.steadyNow() < give_up) {
    if (!stopped && clock_.steadyNow() >= deadline) {
      if (dispatcher.running() > 0) {
        spdlog::warn("stopping {} running run(s): {}", dispatcher.running(), policy.stop_reason);
        dispatcher.stopAll(policy.stop_reason);
      }
      stopped = true;
    }
    turn(dispatcher, steps, kWait);
  }
  if (!dispatcher.idle()) {
    spdlog::error("{} run(s) still unacknowledged after the drain", dispatcher.unsettled());
  }
  return dispatcher.idle();
}

void OwnerLoop::addSource(std::string name, std::function<void()> stop) {
  sources_.emplace_back(std::move(name), std::move(stop));
}

void OwnerLoop::quiesce() {
  if (std::exchange(quiesced_, true)) return;
  for (auto& [name, stop] : sources_) {
    spdlog::debug("quiesce: stopping {}", name);
    stop();
  }
  inbox_.close();
  if (auto n = inbox_.dropped()) spdlog::debug("quiesce: {} posted closure(s) dropped", n);
}

}  // namespace outpost::dispatch
