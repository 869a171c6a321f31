// What the robustness tests share on top of the integration harness: scale knobs from the
// environment, a fleet of workers that can be crashed, stopped and restarted, a background load of
// commands, a watch over the events topic, and the figures of `outpost ledger`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace outpost::test {

// OUTPOST_CHAOS_<name> as a number, or `fallback` when unset; printed once, so every test says
// what scale it ran at.
long knob(const std::string& name, long fallback);
std::string knobText(const std::string& name, const std::string& fallback);

// Worker options for chaos: a session timeout short enough that a crashed member leaves the group
// within seconds (6 s, the broker's minimum), and the log level of OUTPOST_CHAOS_LOG_LEVEL (warn
// by default: a failing test prints every worker's log).
WorkerProcess::Options chaosOptions(const std::string& pool);

// `size` workers of one pool; a worker that is replaced gets a new id (`<pool>-w<i>-g<generation>`)
// so that the events tell the incarnations apart. Only the test's thread may call it.
class Fleet {
 public:
  Fleet(const Topics& topics, int size, WorkerProcess::Options options);
  int size() const { return static_cast<int>(workers_.size()); }
  std::string group() const { return "outpost." + options_.pool; }
  // Waits (safety timeout) until the group is Stable with every worker a member.
  bool waitUntilStable(std::chrono::seconds timeout = std::chrono::seconds(60)) const;
  // SIGKILL worker i, then start its replacement at once.
  void crashAndRestart(int i);
  // SIGTERM worker i, wait for its drain and exit, then start its replacement; returns the status.
  int terminateAndRestart(int i);
  // Starts a replacement for every worker that exited on its own; returns how many.
  int restartExited();
  // SIGTERM every worker and wait for each to drain and exit; returns how many exited non-zero.
  int terminateAll();
  // The last lines of every current worker's log.
  std::string logTails(std::size_t lines = 40) const;
  const WorkerProcess& worker(int i) const { return *workers_[i]; }

 private:
  void start(int i);

  Topics topics_;
  WorkerProcess::Options options_;
  std::vector<std::unique_ptr<WorkerProcess>> workers_;
};

// Commands submitted from a thread of its own, `per_second` at most (0: as fast as the broker
// acknowledges), until `limit` are out or stop() is called.
class Load {
 public:
  Load(const Topics& topics, std::function<v1::JobCommand()> make, std::size_t limit,
       double per_second = 0);
  ~Load();
  void stop();
  bool finished() const { return finished_.load(); }
  // The run_ids submitted so far. Any thread.
  std::vector<std::string> runIds() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> run_ids_;  // guarded by mutex_
  std::atomic<bool> stop_{false}, finished_{false};
  std::thread thread_;
};

// Which runs have a terminal event so far (read_committed, from the beginning).
class RunWatch {
 public:
  explicit RunWatch(const std::string& events_topic) : reader_(events_topic) {}
  // Reads what arrives within `window`.
  void poll(std::chrono::milliseconds window = std::chrono::milliseconds(200));
  bool ended(const std::string& run_id) const { return ended_.contains(run_id); }
  std::size_t endedOf(const std::vector<std::string>& runs) const;
  // The longest time between two polls that read terminal events (to the poll's window): how long
  // the runs' ends stopped under a fault.
  std::chrono::milliseconds longestGap() const { return longest_gap_; }

 private:
  TopicReader reader_;
  std::size_t seen_ = 0;
  std::set<std::string> ended_;
  std::optional<std::chrono::steady_clock::time_point> last_end_read_;
  std::chrono::milliseconds longest_gap_{0};
};

// Polls the watch until every run the load submitted has ended, or `until`; calls `tick` between
// polls. Returns whether everything ended.
bool waitForAllEnded(
    RunWatch& watch, const Load& load, std::chrono::steady_clock::time_point until,
    const std::function<void()>& tick = [] {});

// Commands of the sleep template, OUTPOST_CHAOS_JOB_SECS (0.2) long.
std::function<v1::JobCommand()> sleeper();

// One figure of the ledger's JSON, -1 when it is missing.
inline std::int64_t figure(const nlohmann::json& ledger, const char* name) {
  return ledger.value(name, std::int64_t{-1});
}

// `outpost ledger` for a test's topics and group: printed as text, returned as its JSON.
nlohmann::json ledger(const Topics& topics, const std::string& group,
                      const std::vector<std::string>& runs = {});

}  // namespace outpost::test
