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
#include <optional>
#include <string>
#include <vector>

#include "outpost/common/clock.h"
#include "outpost/common/redaction.h"
#include "outpost/runner/output.h"
#include "outpost/runner/plan.h"

namespace outpost::runner {

// The descriptors a new process starts with.
struct LaunchIo {
  int stdin_fd = -1;
  int output_fd = -1;        // stdout and stderr
  int cgroup_dir_fd = -1;    // the run's cgroup (directory), which the process starts in
  int cgroup_procs_fd = -1;  // its cgroup.procs, for joining it before exec where clone3 is refused
  int lineage_fd = -1;       // becomes descriptor kLineageFd in the process; -1 for none
};

// Starts one process. The seam between supervision and the operating system.
class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Starts plan.argv in a new session with the plan's environment, working directory and
  // resource limits, and no descriptor of the worker's inherited beyond `io`. Called from
  // several threads at once.
  virtual std::expected<pid_t, std::string> launch(const LaunchPlan& plan, const LaunchIo& io) = 0;
};

// clone(CLONE_VM | CLONE_VFORK) + execve, like posix_spawn, but able to set resource limits and
// start the child in the run's cgroup. argv[0] is looked up on the plan's own PATH.
class PosixLauncher final : public ProcessLauncher {
 public:
  std::expected<pid_t, std::string> launch(const LaunchPlan& plan, const LaunchIo& io) override;
};

// Who asked for a run to be stopped (RunOutcome::stop_cause): so that the one who asked knows its
// request is what ended the run, without reading the message.
enum class StopCause {
  kNone,      // not stopped on request (it ended by itself, timed out, or never started)
  kCancel,    // a cancel from the control plane
  kShutdown,  // the worker or the replay stopping (drain timeout, interruption)
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
  StopCause stop_cause = StopCause::kNone;  // with kCancelled: who asked
  int exit_code = -1;
  int signal = 0;
  std::string message;
  std::chrono::system_clock::time_point started_at{};
  std::chrono::milliseconds duration{0};
  // The end of the output, valid UTF-8, redacted; starts with a marker line saying how many
  // bytes came before it when any did.
  std::string tail;
  std::uint64_t dropped_bytes = 0;  // output bytes not in the tail
  std::uint64_t output_bytes = 0;
  std::int64_t cpu_time_ms = 0;
  std::uint64_t log_dropped_lines = 0;  // lines the LOG rate limit left out
  // How many of its processes the kernel's OOM killer killed, as its cgroup's memory.events
  // counted; nullopt when nobody can tell (no cgroup, or no memory controller in it).
  std::optional<std::uint64_t> oom_kills;
};

// Why a run that ended by itself failed, for its terminal event: "exited with status 3", "killed
// by SIGSEGV", with what the kernel is known to have done (the OOM killer, a CPU or file size
// limit) and no guess where nothing is known. Empty for a success and for endings that carry
// their own message (timed out, cancelled, never started).
std::string describeFailure(const RunOutcome& outcome);

// A batch of output lines for a LOG event.
struct LogBatch {
  LogLines lines;
  std::uint64_t dropped_lines = 0;  // so far in this run
};

// A live run's vital signs, every heartbeat interval.
struct Heartbeat {
  std::uint64_t output_bytes = 0;
  std::int64_t cpu_time_ms = 0;
  std::uint64_t rss_bytes = 0;
  std::size_t processes = 0;
  std::uint64_t log_dropped_lines = 0;
};

// All are called on the supervisor's thread: on_started once, then any number of on_log and
// on_heartbeat, then on_finished once (or on_finished alone when the run never started).
// Keep them short.
struct RunCallbacks {
  std::function<void(pid_t pid, std::chrono::system_clock::time_point started_at)> on_started;
  std::function<void(LogBatch batch)> on_log;
  std::function<void(Heartbeat heartbeat)> on_heartbeat;
  // Bytes the job wrote to its lineage channel, in order, as they come (not split into lines).
  // `truncated` is set once, on the first call after the run passed lineage_max_bytes: later
  // bytes are read and dropped.
  std::function<void(std::string bytes, bool truncated)> on_lineage;
  std::function<void(RunOutcome outcome)> on_finished;
};

struct SupervisorOptions {
  // Output limits of runs whose template does not set its own (setOutput changes them).
  OutputConfig output;
  std::chrono::milliseconds heartbeat_interval{10'000};
  std::string cgroup = "auto";  // see RunnerConfig::cgroup
  // Most bytes of a run's lineage channel handed on; the rest is read and dropped.
  std::size_t lineage_max_bytes = 64 * 1024 * 1024;
  // Threads that start processes. Each waits while its child gets to exec (CLONE_VFORK), which
  // takes ~0.1 ms on an idle machine and several times that on a busy one; the supervisor thread
  // itself never waits for a launch.
  unsigned launch_threads = 2;
};

class Supervisor {
 public:
  Supervisor(const Clock& clock, ProcessLauncher& launcher, SupervisorOptions options = {});
  // shutdown().
  ~Supervisor();
  // Kills whatever is still running (every process of every run) and waits for the thread; no
  // callback runs once it returns, and launch() does nothing afterwards. Idempotent; not from a
  // callback.
  void shutdown();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Thread-safe. Creates the run directory, starts the process, and reports through callbacks.
  // Every output byte passes through `redactor` first (pass-through when null).
  void launch(LaunchPlan plan, RunCallbacks callbacks,
              std::unique_ptr<StreamRedactor> redactor = nullptr);
  // Thread-safe. The output limits of runs launched after this call; runs launched before keep
  // theirs.
  void setOutput(OutputConfig output);
  // Thread-safe. Stops the runs with this run_id: SIGTERM to all its processes, the plan's
  // grace, then SIGKILL to all of them (descendants that left the group included). They end
  // kCancelled with `reason` as message and `cause` as stop_cause. Unknown run_ids are ignored.
  void stop(const std::string& run_id, std::string reason, StopCause cause = StopCause::kCancel);
  // Thread-safe. Stop for every run.
  void stopAll(std::string reason, StopCause cause = StopCause::kShutdown);
  // Runs launched and not yet finished.
  std::size_t active() const { return active_.load(); }
  // Whether runs get a cgroup of their own (decided at construction), and if not, why.
  bool usesCgroups() const;
  const std::string& cgroupNote() const;

 private:
  struct Impl;
  std::atomic<std::size_t> active_{0};
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::runner
