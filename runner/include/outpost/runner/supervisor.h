// Job execution, step two: starting planned runs as real processes, each in its own session and
// process group with a private directory, watching them without ever blocking on one, enforcing
// timeouts and stops (SIGTERM to the group, grace, SIGKILL), and capturing a bounded output tail.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "outpost/common/clock.h"
#include "outpost/runner/plan.h"

namespace outpost {

// Starts one process. The seam between supervision and the operating system.
class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Starts plan.argv in a new session with the plan's environment and working directory, stdin
  // from `stdin_fd`, stdout and stderr to `output_fd`, and no other descriptor inherited.
  virtual std::expected<pid_t, std::string> launch(const LaunchPlan& plan, int stdin_fd,
                                                   int output_fd) = 0;
};

// posix_spawn with POSIX_SPAWN_SETSID; argv[0] is looked up on the plan's own PATH.
class PosixLauncher final : public ProcessLauncher {
 public:
  std::expected<pid_t, std::string> launch(const LaunchPlan& plan, int stdin_fd,
                                           int output_fd) override;
};

struct RunOutcome {
  enum class Ending {
    kExited,       // exited by itself; see exit_code
    kSignaled,     // killed by a signal nobody in Outpost sent; see signal
    kTimedOut,     // stopped because it ran past its timeout
    kCancelled,    // stopped on request; see message
    kSpawnFailed,  // never started; see message
  };
  Ending ending = Ending::kSpawnFailed;
  int exit_code = -1;
  int signal = 0;
  std::string message;
  std::chrono::system_clock::time_point started_at{};
  std::chrono::milliseconds duration{0};
  std::string tail;  // valid UTF-8, at most the configured tail bytes (before sanitizing)
  std::uint64_t dropped_bytes = 0;
  std::uint64_t output_bytes = 0;
};

// Both are called on the supervisor's thread, in this order, at most once each; keep them short.
struct RunCallbacks {
  std::function<void(pid_t pid, std::chrono::system_clock::time_point started_at)> on_started;
  std::function<void(RunOutcome outcome)> on_finished;
};

class Supervisor {
 public:
  Supervisor(const Clock& clock, ProcessLauncher& launcher, std::size_t tail_bytes);
  // Kills (SIGKILL to the group) whatever is still running and waits for the thread.
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Thread-safe. Creates the run directory, starts the process, and reports through callbacks.
  void launch(LaunchPlan plan, RunCallbacks callbacks);
  // Thread-safe. Stops the runs with this run_id (SIGTERM, the plan's grace, SIGKILL to the whole
  // group); they end kCancelled with `reason` as message. Unknown run_ids are ignored.
  void stop(const std::string& run_id, std::string reason);
  // Thread-safe. Stop for every run.
  void stopAll(std::string reason);
  // Runs launched and not yet finished.
  std::size_t active() const { return active_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<std::size_t> active_{0};
};

}  // namespace outpost
