#include "process_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

namespace outpost::runner {
namespace {

std::string readSmallFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  std::string out;
  char buf[8192];
  for (;;) {
    auto n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > (1 << 20)) break;
  }
  return out;
}

std::vector<pid_t> allPids() {
  std::vector<pid_t> pids;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc"), &::closedir);
  if (!dir) return pids;
  while (auto* e = ::readdir(dir.get())) {
    char* end;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end == '\0' && pid > 0) pids.push_back(static_cast<pid_t>(pid));
  }
  return pids;
}

struct ProcStat {
  pid_t pgrp = 0;
  std::int64_t cpu_ticks = 0;  // utime + stime (+ children waited for)
  std::uint64_t rss_pages = 0;
  std::uint64_t start_ticks = 0;  // since boot: with the pid, names the process for good
  bool zombie = false;
};

std::optional<ProcStat> readStat(pid_t pid) {
  auto text = readSmallFile("/proc/" + std::to_string(pid) + "/stat");
  // The command name is in parentheses and may hold spaces: parse after the last ')'.
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(text.substr(close + 2));
  std::string state;
  long long ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt, majflt, cmajflt, utime, stime,
      cutime, cstime, priority, nice, threads, itreal, starttime, vsize, rss;
  in >> state >> ppid >> pgrp >> session >> tty >> tpgid >> flags >> minflt >> cminflt >> majflt >>
      cmajflt >> utime >> stime >> cutime >> cstime >> priority >> nice >> threads >> itreal >>
      starttime >> vsize >> rss;
  if (!in) return std::nullopt;
  ProcStat s;
  s.pgrp = static_cast<pid_t>(pgrp);
  s.cpu_ticks = utime + stime + cutime + cstime;
  s.rss_pages = static_cast<std::uint64_t>(std::max(rss, 0LL));
  s.zombie = state == "Z";
  s.start_ticks = static_cast<std::uint64_t>(starttime);
  return s;
}

// The value of NAME= in a process's environment, if it has one.
std::optional<std::string> envValue(const std::string& env, std::string_view name_eq) {
  std::size_t pos = 0;
  while (pos < env.size()) {
    auto end = env.find('\0', pos);
    if (end == std::string::npos) end = env.size();
    if (env.compare(pos, name_eq.size(), name_eq) == 0) {
      return env.substr(pos + name_eq.size(), end - pos - name_eq.size());
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::string environOf(pid_t pid) {
  return readSmallFile("/proc/" + std::to_string(pid) + "/environ");
}

bool hasMarker(pid_t pid, const std::string& marker) {
  auto eq = marker.find('=');
  auto value = envValue(environOf(pid), std::string_view(marker).substr(0, eq + 1));
  return value && *value == marker.substr(eq + 1);
}

// The PID namespace a process is in ("pid:[inode]"), or "" when it cannot be told.
std::string pidNamespaceOf(const std::string& proc_dir) {
  char buf[64];
  auto n = ::readlink((proc_dir + "/ns/pid").c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// "<pid>-<start ticks>" of a live process, or "" once it is gone.
std::string processToken(pid_t pid) {
  auto st = readStat(pid);
  if (!st || st->zombie) return "";
  return std::to_string(pid) + "-" + std::to_string(st->start_ticks);
}

bool tokenAlive(std::string_view token) {
  auto pid = std::strtol(std::string(token).c_str(), nullptr, 10);
  return pid > 0 && processToken(static_cast<pid_t>(pid)) == token;
}

// Waits (briefly) until none of `pids` is a live process any more; SIGKILL takes effect at once,
// but the kernel tears a process down asynchronously.
void awaitGone(const std::vector<pid_t>& pids) {
  for (int i = 0; i < 500; ++i) {
    bool any = std::ranges::any_of(pids, [](pid_t p) {
      auto st = readStat(p);
      return st && !st->zombie;
    });
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Kills what is in a cgroup of a dead worker and removes it (and the cgroups under it) once it is
// empty. Returns the processes it killed.
std::size_t removeLeftoverCgroup(const std::string& dir) {
  std::size_t killed = 0;
  if (std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir); d) {
    while (auto* e = ::readdir(d.get())) {
      std::string_view name = e->d_name;
      if (e->d_type == DT_DIR && name != "." && name != "..") {
        killed += removeLeftoverCgroup(dir + "/" + e->d_name);
      }
    }
  }
  std::istringstream procs(readSmallFile(dir + "/cgroup.procs"));
  for (pid_t p; procs >> p;) ++killed;
  if (killed > 0) {
    UniqueFd kill(::open((dir + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC));
    [[maybe_unused]] auto n = kill ? ::write(kill.get(), "1", 1) : 0;
  }
  for (int i = 0;
       i < 500 && readSmallFile(dir + "/cgroup.events").find("populated 1") != std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("cannot remove the cgroup {} of a worker that is gone: {}", dir,
                 std::strerror(errno));
  }
  return killed;
}

}  // namespace

std::optional<CgroupRoot> CgroupRoot::open(const std::string& setting, std::string& why_not) {
  if (setting == "off") {
    why_not = "runner.cgroup is off";
    return std::nullopt;
  }
  std::string base = setting;
  if (setting == "auto") {
    // The cgroup v2 mount (pure v2 at /sys/fs/cgroup, or hybrid .../unified), plus our own path.
    std::string mount;
    std::istringstream mounts(readSmallFile("/proc/self/mounts"));
    for (std::string line; std::getline(mounts, line);) {
      std::istringstream f(line);
      std::string dev, dir, type;
      f >> dev >> dir >> type;
      if (type == "cgroup2") {
        mount = dir;
        break;
      }
    }
    if (mount.empty()) {
      why_not = "no cgroup v2 filesystem is mounted";
      return std::nullopt;
    }
    std::string self;
    std::istringstream cg(readSmallFile("/proc/self/cgroup"));
    for (std::string line; std::getline(cg, line);) {
      if (line.starts_with("0::")) self = line.substr(3);
    }
    base = mount + (self == "/" ? "" : self) + "/outpost-runs";
  }
  if (::mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) {
    why_not = "cannot create " + base + ": " + std::strerror(errno);
    return std::nullopt;
  }
  // Probe: a child cgroup we can create and whose cgroup.procs and cgroup.kill we can write.
  std::string probe = base + "/probe-" + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) {
    why_not = "cannot create cgroups under " + base + ": " + std::strerror(errno);
    return std::nullopt;
  }
  bool ok = ::access((probe + "/cgroup.procs").c_str(), W_OK) == 0 &&
            ::access((probe + "/cgroup.kill").c_str(), W_OK) == 0;
  ::rmdir(probe.c_str());
  if (!ok) {
    why_not = base + " has no writable cgroup.procs/cgroup.kill (needs cgroup v2, Linux 5.14+)";
    return std::nullopt;
  }
  CgroupRoot r;
  r.path_ = base;
  return r;
}

const std::string& ownProcessToken() {
  static const std::string token = processToken(::getpid());
  return token;
}

LeftoverSweep sweepLeftovers(const std::string& cgroup_base) {
  LeftoverSweep sweep;
  // Cgroups: w-<pid>-<start> of workers that are gone (run-<pid>-<n> and probe-<pid> from
  // versions that named them by pid alone).
  if (!cgroup_base.empty()) {
    if (std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(cgroup_base.c_str()), &::closedir); dir) {
      std::vector<std::string> gone;
      while (auto* e = ::readdir(dir.get())) {
        std::string_view name = e->d_name;
        if (e->d_type != DT_DIR) continue;
        bool dead = false;
        if (name.starts_with("w-")) {
          dead = !tokenAlive(name.substr(2));
        } else if (name.starts_with("run-") || name.starts_with("probe-")) {
          auto pid = std::strtol(e->d_name + (name.starts_with("run-") ? 4 : 6), nullptr, 10);
          dead = pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
        }
        if (dead) gone.emplace_back(cgroup_base + "/" + e->d_name);
      }
      for (const auto& d : gone) {
        sweep.processes += removeLeftoverCgroup(d);
        ++sweep.cgroups;
      }
    }
  }
  // Processes: what carries the worker-process marker of a worker that is gone (runs without a
  // cgroup, or descendants of runs of a worker that had none).
  constexpr std::string_view kRunMarker = "OUTPOST_RUN_ID=";
  constexpr std::string_view kWorkerMarker = "OUTPOST_WORKER_PROCESS=";
  std::vector<pid_t> killed;
  std::map<std::string, bool> alive;  // by token, looked up once
  // A marker's pid means a process of the namespace the worker ran in: runs of workers in other
  // PID namespaces (containers on this host, seen from outside) are not ours to judge.
  const std::string own_namespace = pidNamespaceOf("/proc/self");
  for (pid_t p : allPids()) {
    if (p == ::getpid()) continue;
    auto env = environOf(p);
    if (!envValue(env, kRunMarker)) continue;
    auto owner = envValue(env, kWorkerMarker);
    if (!owner) continue;  // not started by a worker that marks its runs: not ours to judge
    if (pidNamespaceOf("/proc/" + std::to_string(p)) != own_namespace) continue;
    auto [it, fresh] = alive.try_emplace(*owner, false);
    if (fresh) it->second = tokenAlive(*owner);
    if (it->second) continue;
    if (::kill(p, SIGKILL) == 0) killed.push_back(p);
  }
  awaitGone(killed);
  sweep.processes += killed.size();
  return sweep;
}

namespace {

// The whole of a small kernel file, read from its start through a kept descriptor.
std::string preadSmall(const UniqueFd& fd) {
  char buf[4096];
  auto n = ::pread(fd.get(), buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

UniqueFd openIn(const std::string& dir, const char* name, int flags) {
  return UniqueFd(::open((dir + "/" + name).c_str(), flags | O_CLOEXEC));
}

constexpr std::size_t kMaxFreeCgroups = 64;

}  // namespace

bool Cgroup::populated() const {
  return preadSmall(events).find("populated 1") != std::string::npos;
}

std::int64_t Cgroup::usageUsec() const {
  auto text = preadSmall(cpu);
  constexpr std::string_view kKey = "usage_usec ";
  auto at = text.find(kKey);
  if (at == std::string::npos) return 0;
  return std::strtoll(text.c_str() + at + kKey.size(), nullptr, 10);
}

std::optional<std::uint64_t> Cgroup::oomKills() const {
  if (!memory_events) return std::nullopt;
  auto text = preadSmall(memory_events);
  constexpr std::string_view kKey = "oom_kill ";
  auto at = text.find(kKey);
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(text.c_str() + at + kKey.size(), nullptr, 10);
}

void Cgroup::killAll() {
  killed = true;
  [[maybe_unused]] auto n = ::write(kill.get(), "1", 1);
}

CgroupPool::CgroupPool(const std::string& base) : root_(base + "/w-" + ownProcessToken()) {
  if (::mkdir(root_.c_str(), 0755) != 0 && errno != EEXIST) {
    spdlog::warn("cannot create cgroup {}: {}", root_, std::strerror(errno));
  }
}

CgroupPool::~CgroupPool() {
  for (int i = 0; i < 100 && !draining_.empty(); ++i) {
    reclaim();
    if (!draining_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const auto& c : free_) ::rmdir(c->dir.c_str());
  for (const auto& c : draining_) spdlog::warn("cannot remove cgroup {}: still busy", c->dir);
  ::rmdir(root_.c_str());  // fails while another pool of this process still uses it
}

std::unique_ptr<Cgroup> CgroupPool::acquire() {
  while (!free_.empty()) {
    auto c = std::move(free_.back());
    free_.pop_back();
    // Still there? (An administrator may have removed it.) A removed cgroup's files read nothing.
    if (!preadSmall(c->events).empty()) return c;
  }
  auto c = std::make_unique<Cgroup>();
  c->dir = root_ + "/run-" + std::to_string(++made_);
  // root_ is shared by the pools of one process: the last one to go removes it, and a pool made
  // before that moment finds it gone.
  int made = ::mkdir(c->dir.c_str(), 0755);
  if (made != 0 && errno == ENOENT && ::mkdir(root_.c_str(), 0755) == 0) {
    made = ::mkdir(c->dir.c_str(), 0755);
  }
  if (made != 0 && errno != EEXIST) {
    spdlog::warn("cannot create cgroup {}: {}; using the /proc scan", c->dir, std::strerror(errno));
    return nullptr;
  }
  c->dir_fd.reset(::open(c->dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  c->procs = openIn(c->dir, "cgroup.procs", O_WRONLY);
  c->kill = openIn(c->dir, "cgroup.kill", O_WRONLY);
  c->events = openIn(c->dir, "cgroup.events", O_RDONLY);
  c->cpu = openIn(c->dir, "cpu.stat", O_RDONLY);
  c->memory_events = openIn(c->dir, "memory.events", O_RDONLY);  // absent without the controller
  if (!c->dir_fd || !c->procs || !c->kill || !c->events || !c->cpu) {
    spdlog::warn("cannot open the files of cgroup {}: {}; using the /proc scan", c->dir,
                 std::strerror(errno));
    ::rmdir(c->dir.c_str());
    return nullptr;
  }
  return c;
}

void CgroupPool::release(std::unique_ptr<Cgroup> cgroup) {
  if (cgroup->populated()) {
    cgroup->killAll();                       // nothing of the run outlives it
    draining_.push_back(std::move(cgroup));  // the kernel is still tearing down its processes
  } else {
    keepOrRemove(std::move(cgroup));
  }
}

void CgroupPool::keepOrRemove(std::unique_ptr<Cgroup> cgroup) {
  if (!cgroup->killed && free_.size() < kMaxFreeCgroups) {
    free_.push_back(std::move(cgroup));
  } else {
    ::rmdir(cgroup->dir.c_str());
  }
}

void CgroupPool::reclaim() {
  std::vector<std::unique_ptr<Cgroup>> still;
  for (auto& c : draining_) {
    if (c->populated()) {
      still.push_back(std::move(c));
    } else {
      keepOrRemove(std::move(c));
    }
  }
  draining_ = std::move(still);
}

ProcessTree::ProcessTree(CgroupPool* pool, const std::string& run_id)
    : pool_(pool), marker_("OUTPOST_RUN_ID=" + run_id) {
  if (!pool_) return;
  cgroup_ = pool_->acquire();
  if (cgroup_) {
    cpu_baseline_usec_ = cgroup_->usageUsec();
    oom_baseline_ = cgroup_->oomKills().value_or(0);
  }
}

ProcessTree::~ProcessTree() {
  if (cgroup_) pool_->release(std::move(cgroup_));
}

std::vector<pid_t> ProcessTree::members(pid_t leader) const {
  std::set<pid_t> out;
  if (cgroup_) {
    std::istringstream in(readSmallFile(cgroup_->dir + "/cgroup.procs"));
    for (pid_t p; in >> p;) out.insert(p);
  } else {
    for (pid_t p : allPids()) {
      if (p == ::getpid()) continue;
      auto st = readStat(p);
      if (!st || st->zombie) continue;
      if ((leader > 0 && st->pgrp == leader) || hasMarker(p, marker_)) out.insert(p);
    }
  }
  return {out.begin(), out.end()};
}

void ProcessTree::signalAll(pid_t leader, int sig) {
  if (leader > 0) ::kill(-leader, sig);
  if (sig == SIGKILL && cgroup_) {
    if (cgroup_->populated()) cgroup_->killAll();
    return;
  }
  for (pid_t p : members(leader)) ::kill(p, sig);
}

std::int64_t ProcessTree::finalCpuMs(const struct rusage& leader_usage) const {
  auto usec = [](const timeval& t) { return std::int64_t{t.tv_sec} * 1'000'000 + t.tv_usec; };
  std::int64_t ms = (usec(leader_usage.ru_utime) + usec(leader_usage.ru_stime)) / 1000;
  if (cgroup_) ms = std::max(ms, (cgroup_->usageUsec() - cpu_baseline_usec_) / 1000);
  return ms;
}

std::optional<std::uint64_t> ProcessTree::oomKills() const {
  if (!cgroup_) return std::nullopt;
  auto count = cgroup_->oomKills();
  if (!count) return std::nullopt;
  return *count - std::min(*count, oom_baseline_);
}

TreeStats ProcessTree::stats(pid_t leader) const {
  TreeStats s;
  static const long kTick = ::sysconf(_SC_CLK_TCK);
  static const long kPage = ::sysconf(_SC_PAGESIZE);
  std::int64_t ticks = 0;
  for (pid_t p : members(leader)) {
    auto st = readStat(p);
    if (!st) continue;
    ++s.processes;
    ticks += st->cpu_ticks;
    s.rss_bytes += st->rss_pages * static_cast<std::uint64_t>(kPage);
  }
  s.cpu_time_ms = ticks * 1000 / kTick;
  if (cgroup_) {
    // The cgroup's count includes processes that already exited, but is flushed lazily: take
    // whichever of the two counts is further along.
    s.cpu_time_ms = std::max(s.cpu_time_ms, (cgroup_->usageUsec() - cpu_baseline_usec_) / 1000);
  }
  return s;
}

}  // namespace outpost::runner
