// The owner's loop, one for every entry point that runs the lifecycle (the worker, the local
// replay): the inbox that other threads post to, the turn that serves it between the caller's own
// steps, the stop and the drain, and quiesce(), which stops every source of callbacks, in the
// order they were added, before anything they could call into is destroyed.
//
// Threads: one owner constructs the loop, runs it and quiesces it; post() is for any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "outpost/common/clock.h"
#include "outpost/dispatch/dispatcher.h"
#include "outpost/dispatch/ports.h"

namespace outpost::dispatch {

// Closures from other threads, run by the owner in the order posted (Envoy's Dispatcher::post).
class Inbox final : public Poster {
 public:
  // Any thread. Dropped, never run, once close()d.
  void post(std::function<void()> fn) override;
  // Called on the posting thread for the first closure of a burst (e.g. waking a consumer's poll
  // so that the owner sees it at once). Set before any other thread posts.
  void setWake(std::function<void()> wake) { wake_ = std::move(wake); }
  // Owner: runs everything posted, including what that posts, until none is left.
  void serve();
  // Owner: waits up to `timeout` for something posted; true when there is.
  bool wait(std::chrono::milliseconds timeout);
  // Drops what waits and everything posted from now on.
  void close();
  // Closures dropped by close() (for tests and the log).
  std::uint64_t dropped() const { return dropped_.load(); }
  // Whether the calling thread is the owner (the one that constructed the inbox).
  bool isOwnerThread() const { return std::this_thread::get_id() == owner_; }

 private:
  const std::thread::id owner_ = std::this_thread::get_id();
  std::function<void()> wake_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool closed_ = false;
  std::atomic<std::uint64_t> dropped_{0};
};

// How a stop ends the runs: they may end by themselves for `drain_timeout` (zero: stopped at
// once), then are stopped with `stop_reason` and given `stop_bound` to end (their kill grace and
// the writing of their ends) before the loop gives up on them.
struct DrainPolicy {
  std::chrono::milliseconds drain_timeout{0};
  std::chrono::milliseconds stop_bound{10'000};
  std::string stop_reason;
};

class OwnerLoop {
 public:
  // What the entry point does in each turn of the loop, around the inbox and the dispatcher's
  // tick. Called on the owner only.
  class Steps {
   public:
    virtual ~Steps() = default;
    // Takes what input there is (a polled command, handed commands), waiting up to `wait` for
    // it or for something posted (Inbox::wait).
    virtual void take(std::chrono::milliseconds wait) = 0;
    // After the inbox was served and the dispatcher ticked (control, metrics, status, ...).
    virtual void chores() {}
    // No more input will come: the loop ends once the dispatcher is idle.
    virtual bool finished() const { return false; }
    // The stop came: the dispatcher drains from now on.
    virtual void draining() {}
  };

  // `clock` times the drain.
  explicit OwnerLoop(const Clock& clock) : clock_(clock) {}
  // Quiesces if quiesce() was not called.
  ~OwnerLoop();
  OwnerLoop(const OwnerLoop&) = delete;
  OwnerLoop& operator=(const OwnerLoop&) = delete;

  Inbox& inbox() { return inbox_; }

  // Turns until `stop` (then drains by `policy`) or until steps.finished() and the dispatcher is
  // idle. Returns whether every run ended (the dispatcher is idle).
  bool run(Dispatcher& dispatcher, Steps& steps, const std::atomic<bool>& stop,
           const DrainPolicy& policy);
  // One turn: take, serve the inbox, tick, chores.
  void turn(Dispatcher& dispatcher, Steps& steps, std::chrono::milliseconds wait);

  // A source of callbacks into the inbox (a thread of another module), and how to stop it so that
  // it calls nothing afterwards (joining its threads). Added as it is built.
  void addSource(std::string name, std::function<void()> stop);
  // Stops every source in the order added, then closes the inbox: what they posted and did not get
  // run is dropped. After it nothing calls into the owner's objects, which may then go in any
  // order. Once; the destructor calls it when the owner did not.
  void quiesce();
  bool quiesced() const { return quiesced_; }

 private:
  const Clock& clock_;
  Inbox inbox_;
  std::vector<std::pair<std::string, std::function<void()>>> sources_;
  bool quiesced_ = false;
};

}  // namespace outpost::dispatch
