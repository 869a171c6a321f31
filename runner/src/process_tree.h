// Finding, measuring and killing every process of a run, including descendants that left its
// process group (setsid, double fork): through a per-run cgroup v2 where the machine allows one,
// otherwise through a marker in the environment (OUTPOST_RUN_ID=<run id>) and a /proc scan.
// Used by the supervisor's thread only.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outpost/common/fd.h"

namespace outpost::runner {

struct TreeStats {
  std::int64_t cpu_time_ms = 0;
  std::uint64_t rss_bytes = 0;
  std::size_t processes = 0;
};

// "<pid>-<start time in ticks since boot>" of this process: names it for as long as it lives (a
// pid alone is reused). Runs carry it as OUTPOST_WORKER_PROCESS, and its cgroups live under
// w-<token>, so that a worker starting later can tell the leftovers of a dead one.
const std::string& ownProcessToken();

// What a worker found and killed at start of the runs of workers that are gone (killed with
// SIGKILL, so nothing of theirs ended them): their cgroups under `cgroup_base` ("" for none),
// and processes marked as theirs (OUTPOST_WORKER_PROCESS). Waits until those are gone.
struct LeftoverSweep {
  std::size_t cgroups = 0;
  std::size_t processes = 0;
};
LeftoverSweep sweepLeftovers(const std::string& cgroup_base);

// Where per-run cgroups are made: a writable cgroup v2 directory.
class CgroupRoot {
 public:
  // setting: "auto", "off" or a directory. Returns nullopt (and a reason) when unusable.
  static std::optional<CgroupRoot> open(const std::string& setting, std::string& why_not);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One per-run cgroup with the files the supervisor uses kept open: reads and writes then cost a
// pread/write instead of a path lookup each.
struct Cgroup {
  std::string dir;
  UniqueFd dir_fd;  // the directory itself, for clone3's CLONE_INTO_CGROUP
  UniqueFd procs;   // cgroup.procs, written by the child before exec when clone3 cannot be used
  UniqueFd kill;    // cgroup.kill
  UniqueFd events;  // cgroup.events ("populated 0|1")
  UniqueFd cpu;     // cpu.stat
  UniqueFd memory_events;  // memory.events, where the memory controller is enabled here
  // Written to cgroup.kill at least once. Linux (seen on 6.18) SIGKILLs every process that
  // clone3 later starts in such a cgroup with CLONE_INTO_CGROUP: cgroup_css_set_fork() takes the
  // parent's kill_seq, cgroup_post_fork() compares it with the target cgroup's, which cgroup.kill
  // moved on. So a killed cgroup is never handed to another run; it is removed once empty.
  bool killed = false;

  bool populated() const;
  std::int64_t usageUsec() const;
  // memory.events' oom_kill count; nullopt without the memory controller.
  std::optional<std::uint64_t> oomKills() const;
  void killAll();
};

// Per-run cgroups, reused: making and removing one for every run cost the worker about 0.3 ms of
// CPU a job (bench/run). A released cgroup is reused once the kernel has emptied it.
// Supervisor thread only.
class CgroupPool {
 public:
  // Its cgroups go under base/w-<ownProcessToken()>.
  explicit CgroupPool(const std::string& base);
  ~CgroupPool();  // removes the cgroups it made (waiting briefly for ones still emptying)
  CgroupPool(const CgroupPool&) = delete;
  CgroupPool& operator=(const CgroupPool&) = delete;

  // An empty cgroup, or nullptr when none can be made.
  std::unique_ptr<Cgroup> acquire();
  // Kills whatever is still in it; it becomes free once empty (or is removed, if it was killed).
  void release(std::unique_ptr<Cgroup> cgroup);
  // Moves cgroups that have emptied to the free list. Never blocks.
  void reclaim();
  bool draining() const { return !draining_.empty(); }

 private:
  void keepOrRemove(std::unique_ptr<Cgroup> cgroup);

  std::string root_;
  std::vector<std::unique_ptr<Cgroup>> free_, draining_;
  std::uint64_t made_ = 0;
};

// One run's processes.
class ProcessTree {
 public:
  // With a pool, takes a cgroup from it (given back when the tree goes); without, or when the
  // pool has none, uses the environment marker.
  ProcessTree(CgroupPool* pool, const std::string& run_id);
  ~ProcessTree();
  ProcessTree(const ProcessTree&) = delete;
  ProcessTree& operator=(const ProcessTree&) = delete;

  // The cgroup's directory, to start the child in it, and its cgroup.procs, for a child that
  // joins it itself; -1 without a cgroup.
  int cgroupDirFd() const { return cgroup_ ? cgroup_->dir_fd.get() : -1; }
  int cgroupProcsFd() const { return cgroup_ ? cgroup_->procs.get() : -1; }
  bool usesCgroup() const { return cgroup_ != nullptr; }

  // Every live process of the run (the leader's group and everything carrying the marker or in
  // the cgroup).
  std::vector<pid_t> members(pid_t leader) const;
  // Signals every member. SIGKILL through a cgroup uses cgroup.kill (when it holds anything),
  // which nothing escapes.
  void signalAll(pid_t leader, int sig);
  TreeStats stats(pid_t leader) const;
  // CPU time of the whole run once its leader has been reaped: the cgroup's count, or the leader's
  // own time plus that of the children it waited for (`leader_usage`, as waitid reports it),
  // without scanning /proc.
  std::int64_t finalCpuMs(const struct rusage& leader_usage) const;
  // How many of the run's processes the kernel's OOM killer killed, from its cgroup's
  // memory.events; nullopt when that is unknown (no cgroup, or no memory controller in it).
  std::optional<std::uint64_t> oomKills() const;

 private:
  CgroupPool* pool_;
  std::string marker_;                  // "OUTPOST_RUN_ID=<id>"
  std::int64_t cpu_baseline_usec_ = 0;  // a reused cgroup's usage before this run
  std::uint64_t oom_baseline_ = 0;      // and its oom_kill count
  std::unique_ptr<Cgroup> cgroup_;      // or null: the marker and a /proc scan
};

}  // namespace outpost::runner
