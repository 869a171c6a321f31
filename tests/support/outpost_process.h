// An `outpost` child process with a configuration file and a log file, for the tests and the
// benchmark, which both start real workers: starting it, reading and waiting on its log, stopping
// it with SIGTERM (a drain) or SIGKILL (a crash). Each caller writes its own configuration.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace outpost::test_support {

class OutpostProcess {
 public:
  struct Options {
    std::string binary;                // the outpost executable
    std::vector<std::string> args;     // e.g. {"run", "-c", "<dir>/outpost.yaml"}
    std::string log_path;              // stdout and stderr go there (truncated first)
    std::vector<std::string> wrapper;  // a command the binary runs under (e.g. perf record ...)
  };
  // Starts the process with this process's environment and stdin from /dev/null. It gets SIGKILL
  // when the thread that started it exits (PR_SET_PDEATHSIG), so that a test or benchmark that is
  // killed leaves no worker behind; start it from a thread that outlives it (the main thread).
  // Throws when it cannot be started.
  explicit OutpostProcess(Options options);
  // SIGKILL if it is still running, and reaps it.
  ~OutpostProcess();
  OutpostProcess(const OutpostProcess&) = delete;
  OutpostProcess& operator=(const OutpostProcess&) = delete;

  pid_t pid() const { return pid_; }
  // True until it has exited (an exited process is not reaped here, so its status is kept).
  bool running() const;
  std::string log() const;
  // Waits until the log contains `text`; false after `timeout`, or as soon as the process has
  // exited without writing it.
  bool waitForLog(const std::string& text, std::chrono::seconds timeout) const;

  // What terminate() returns when the process outlived its timeout (it is then killed).
  static constexpr int kDidNotExit = -999;
  // SIGTERM, then waits: the exit status, -signal when a signal ended it, kDidNotExit after
  // `timeout` (then SIGKILL). The recorded status again when it has already been waited for.
  int terminate(std::chrono::seconds timeout);
  // Sends `sig` without waiting (to stop several processes at the same moment); waitExit() then.
  void signal(int sig);
  // Waits for the exit: the exit status, -signal, or kDidNotExit after `timeout` (then SIGKILL).
  int waitExit(std::chrono::seconds timeout);
  // SIGKILL (a crash: no drain, nothing flushed) and reaps it: -SIGKILL, or -1 when it had
  // already exited.
  int crash();

  // SIGKILL to every OutpostProcess still running; async-signal-safe (for a SIGINT handler).
  static void killAll();

 private:
  int reap(bool block);

  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> status_;  // once reaped: exit status, or -signal
};

}  // namespace outpost::test_support
