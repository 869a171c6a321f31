// Waiting for a run's end, for `outpost submit --wait` and `outpost cancel --wait`: the events
// topic is read (read_committed, outside any group) from where it ended before the command was
// written, so every event of the run is seen and nothing older is read.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "outpost/common/config.h"
#include "outpost/v1/event.pb.h"

namespace outpost::app {

// The exit statuses of `submit --wait` (docs/clients.md, "The command line").
enum ExitStatus : int {
  kExitSucceeded = 0,
  kExitFailed = 1,
  kExitUsage = 2,  // bad options or configuration (any subcommand)
  kExitTimedOut = 3,
  kExitCancelled = 4,
  kExitRejected = 5,
  kExitExpired = 6,
  kExitWaitTimedOut = 7,  // no terminal event within --wait-timeout (the run may still end)
  kExitKafka = 8,         // the command was not delivered, or the events could not be read
  kExitAlreadyEnded = 9,  // cancel --wait: the run had ended otherwise before the cancel
};

// SUCCEEDED 0, FAILED 1, TIMED_OUT 3, CANCELLED 4, REJECTED 5, EXPIRED 6.
int exitStatusOf(v1::RunState terminal);

struct WaitResult {
  enum class Kind { kEnded, kTimedOut, kError };
  Kind kind = Kind::kTimedOut;
  // kEnded: how the run ended, and the event that says so: its terminal event, or the NOTICE of
  // a cancel that came after it had ended ("cancel ignored: run already ended STATE").
  v1::RunState state = v1::RUN_STATE_UNSPECIFIED;
  v1::RunEvent event;
  bool ended_before = false;  // the NOTICE, not the terminal event itself
  std::string error;          // kError
};

class RunWaiter {
 public:
  // Notes where each partition of the events topic (`events_topic`, default the config's) ends
  // now. Throws ConfigError when the topic cannot be read (no such topic, no broker within 30 s).
  explicit RunWaiter(const Config& config, const std::string& events_topic = "");
  ~RunWaiter();
  RunWaiter(const RunWaiter&) = delete;
  RunWaiter& operator=(const RunWaiter&) = delete;

  // Reads from there until the run's terminal event, or `timeout`. Every event of the run goes
  // to `on_event` as it is read.
  WaitResult wait(const std::string& run_id, std::chrono::milliseconds timeout,
                  const std::function<void(const v1::RunEvent&)>& on_event = {});
  // The same for several runs at once: reads until each has ended or `timeout` passes (call one
  // of the two once per RunWaiter: it reads from where the topic ended at construction). The
  // result has an entry for every run: kEnded, or kTimedOut (or kError for all).
  std::map<std::string, WaitResult> waitAll(
      const std::set<std::string>& run_ids, std::chrono::milliseconds timeout,
      const std::function<void(const v1::RunEvent&)>& on_event = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// --wait-timeout: a duration, or empty for no limit. Throws ConfigError.
std::chrono::milliseconds parseWaitTimeout(const std::string& text);

// Waits and tells how the run ended: its output lines on standard output as they come when
// `follow_logs`, a line saying how it ended on standard error (with the output's tail when it
// did not succeed and the lines were not followed). `verb` is "submit" or "cancel": submit exits
// with exitStatusOf(state), cancel with 0 when the run ended CANCELLED and kExitAlreadyEnded when
// it ended otherwise; both with kExitWaitTimedOut or kExitKafka.
int waitAndReport(RunWaiter& waiter, const std::string& run_id, std::chrono::milliseconds timeout,
                  bool follow_logs, const std::string& verb);

// One line for a person: "run ID SUCCEEDED in 1.234 s on worker W: exit 0" (and the message).
std::string describeEnd(const WaitResult& result);

}  // namespace outpost::app
