// Is the worker alive, and may it be sent work? Written by the poll thread, read by the HTTP
// endpoint's thread: /livez and /readyz answer from here.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>

namespace outpost::ops {

class Health {
 public:
  using Steady = std::chrono::steady_clock;

  // The poll loop went round (it answers within `live_timeout` while it is alive).
  void beat(Steady::time_point now);
  // The poll thread enters a wait of its own that lasts at most `bound` (restoring the run state
  // after a rebalance, waiting for the runs of revoked partitions): /livez counts it alive until
  // the bound and live_timeout have passed, and /readyz says `what` until endWait().
  void beginWait(std::string what, Steady::time_point now, std::chrono::milliseconds bound);
  void endWait(Steady::time_point now);
  // Why the worker is not ready, or nullopt when it is. Set whenever that changes.
  void setNotReady(std::optional<std::string> why);

  // Nullopt when alive; otherwise why not, for the probe's body.
  std::optional<std::string> whyNotLive(Steady::time_point now,
                                        std::chrono::milliseconds live_timeout) const;
  std::optional<std::string> whyNotReady() const;

 private:
  std::atomic<Steady::rep> last_beat_{0};
  std::atomic<bool> beaten_{false};
  std::atomic<Steady::rep> wait_until_{0};  // 0: not in a wait
  mutable std::mutex mutex_;
  std::optional<std::string> not_ready_ = "starting";
  std::string waiting_;  // what the poll thread waits for; empty when it does not
};

}  // namespace outpost::ops
