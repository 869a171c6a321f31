#include <signal.h>
#include <string.h>

#include <string>

#include "outpost/runner/supervisor.h"

namespace outpost::runner {
namespace {

std::string signalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// What the run's cgroup says of the OOM killer, when it can say anything.
std::string oomNote(const RunOutcome& o) {
  if (!o.oom_kills || *o.oom_kills == 0) return "";
  return "out of memory: its cgroup's memory.events counted " + std::to_string(*o.oom_kills) +
         " OOM kill(s)";
}

}  // namespace

std::string describeFailure(const RunOutcome& o) {
  switch (o.ending) {
    case RunOutcome::Ending::kExited: {
      if (o.exit_code == 0) return "";
      std::string m = "exited with status " + std::to_string(o.exit_code);
      if (auto oom = oomNote(o); !oom.empty()) m += " (" + oom + ")";
      return m;
    }
    case RunOutcome::Ending::kSignaled: {
      std::string m = "killed by " + signalName(o.signal);
      if (o.signal == SIGKILL) {
        // Outpost's own KILLs (timeout, cancel, shutdown) end kTimedOut or kCancelled.
        if (auto oom = oomNote(o); !oom.empty()) return m + ": " + oom;
        m += " from outside Outpost";
        if (o.oom_kills) m += " (not the OOM killer: its cgroup counted no oom_kill)";
      }
      if (o.signal == SIGXCPU) m += ": it used up its CPU time limit (limits.cpu_time)";
      if (o.signal == SIGXFSZ) m += ": it wrote past its file size limit (limits.file_size)";
      return m;
    }
    default:
      return "";
  }
}

}  // namespace outpost::runner
