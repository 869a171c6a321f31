// A real `outpost run` worker for the benchmarks: a generated config (one no-op template), its
// own topics prefix, work directory and log file, and its CPU time read from /proc.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "outpost_process.h"

namespace outpost::bench {

// CPU time of one process, from /proc/<pid>/stat, in milliseconds.
struct CpuTimes {
  double self_ms = 0;      // utime + stime
  double children_ms = 0;  // cutime + cstime: children it has waited for (the jobs)
};
CpuTimes processCpu(pid_t pid);

// CPU time of each thread of a process (name from /proc/<pid>/task/<tid>/comm), milliseconds.
struct ThreadCpu {
  pid_t tid = 0;
  std::string name;
  double ms = 0;
};
std::vector<ThreadCpu> threadCpu(pid_t pid);

// Memory and threads of one process, from /proc/<pid>/status.
struct ProcessStatus {
  double rss_mb = 0;       // VmRSS
  double peak_rss_mb = 0;  // VmHWM: the most it ever held
  int threads = 0;
};
ProcessStatus processStatus(pid_t pid);

// Busy and total jiffies of the whole machine, from /proc/stat.
struct MachineCpu {
  unsigned long long busy = 0, total = 0;
};
MachineCpu machineCpu();

// What runs the jobs: Outpost with its defaults, Outpost with everything optional off, or the
// Python reference executor (reference/executor.py).
struct ExecutorKind {
  std::string name;                       // in figure names: outpost, outpost_minimal, reference
  bool reference = false;                 // the Python reference executor
  std::string delivery = "exactly-once";  // Outpost's worker.delivery
  bool lineage = true;                    // Outpost's lineage.enabled
};

// The process itself is tests/support/outpost_process.h, shared with the tests.
class WorkerProcess {
 public:
  struct Options {
    std::string binary;     // the outpost executable
    std::string noop;       // absolute path of outpost-bench-noop
    std::string bootstrap;  // the broker
    std::string prefix;     // topics.prefix
    std::string pool;       // worker.pool (consumer group outpost.<pool>)
    unsigned slots = 4;
    ExecutorKind kind;
    // Outpost: more templates (lines under `templates:`) and top-level sections (e.g. output:).
    std::string templates_yaml, extra_yaml;
    // Outpost: worker.id (default: the pool, one worker per pool), and more lines under worker:
    // and under kafka: (e.g. "  status_interval: 1s\n").
    std::string id, worker_yaml, kafka_yaml;
    // The reference executor: more arguments (e.g. --template, --secrets-file, --log-events).
    std::vector<std::string> reference_args;
  };
  // Writes the config into a new temporary directory and starts the worker (or the reference
  // executor, with the same topics, group, slots and no-op template). With
  // OUTPOST_BENCH_WORKER_PREFIX set (e.g. "perf record -g -o /tmp/w.data --"), the worker runs
  // under that command, for profiling; CPU figures then describe the prefix command.
  explicit WorkerProcess(Options options);
  // Kills the worker (SIGKILL) if it is still running, and removes its directory unless
  // OUTPOST_BENCH_KEEP is set.
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  pid_t pid() const { return process_->pid(); }
  std::string log() const { return process_->log(); }
  // Waits until the log contains `text`; false after `timeout` or if the worker exited.
  bool waitForLog(const std::string& text, std::chrono::seconds timeout) {
    return process_->waitForLog(text, timeout);
  }
  // SIGTERM (drain), then waits; returns the exit status, or a negative number if a signal ended
  // it or it had to be killed.
  int stop(std::chrono::seconds timeout) { return process_->terminate(timeout); }

 private:
  std::string dir_;
  std::unique_ptr<test_support::OutpostProcess> process_;
};

}  // namespace outpost::bench
