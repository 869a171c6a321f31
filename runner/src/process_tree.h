// Finding, measuring and killing every process of a run, including descendants that left its
// process group (setsid, double fork): through a per-run cgroup v2 where the machine allows one,
// otherwise through a marker in the environment (OUTPOST_RUN_ID=<run id>) and a /proc scan.
// Used by the supervisor's thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outpost/common/fd.h"

namespace outpost {

struct TreeStats {
  std::int64_t cpu_time_ms = 0;
  std::uint64_t rss_bytes = 0;
  std::size_t processes = 0;
};

// Where per-run cgroups are made: a writable cgroup v2 directory.
class CgroupRoot {
 public:
  // setting: "auto", "off" or a directory. Returns nullopt (and a reason) when unusable.
  static std::optional<CgroupRoot> open(const std::string& setting, std::string& why_not);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Removes the cgroups in `graveyard` that have emptied; keeps the rest. Never blocks.
void removeEmptied(std::vector<std::string>& graveyard);

// One run's processes.
class ProcessTree {
 public:
  // With a cgroup root, creates <root>/<run_id>-<n>; without, uses the environment marker. A
  // cgroup that is still emptying when the tree goes is appended to `graveyard` for the owner to
  // remove later (removeEmptied), so that nobody waits for it.
  ProcessTree(const std::optional<CgroupRoot>& root, const std::string& run_id,
              std::vector<std::string>* graveyard);
  ~ProcessTree();
  ProcessTree(const ProcessTree&) = delete;
  ProcessTree& operator=(const ProcessTree&) = delete;

  // The cgroup.procs descriptor the child writes itself into before exec; -1 without a cgroup.
  int cgroupProcsFd() const { return procs_fd_.get(); }
  bool usesCgroup() const { return procs_fd_.get() >= 0; }

  // Every live process of the run (the leader's group and everything carrying the marker or in
  // the cgroup).
  std::vector<pid_t> members(pid_t leader) const;
  // Signals every member. SIGKILL through a cgroup uses cgroup.kill, which nothing escapes.
  void signalAll(pid_t leader, int sig) const;
  TreeStats stats(pid_t leader) const;
  // CPU time of the whole run once its leader has exited (a zombie still): the cgroup's count, or
  // the leader's own time plus that of the children it waited for, without scanning /proc.
  std::int64_t finalCpuMs(pid_t leader) const;

 private:
  std::vector<std::string>* graveyard_;
  std::string marker_;  // "OUTPOST_RUN_ID=<id>"
  std::string dir_;     // cgroup directory, or empty
  UniqueFd procs_fd_;
};

}  // namespace outpost
