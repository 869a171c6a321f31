#include "process_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

namespace outpost {
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
  return s;
}

bool hasMarker(pid_t pid, const std::string& marker) {
  auto env = readSmallFile("/proc/" + std::to_string(pid) + "/environ");
  std::size_t pos = 0;
  while (pos < env.size()) {
    auto end = env.find('\0', pos);
    if (end == std::string::npos) end = env.size();
    if (env.compare(pos, end - pos, marker) == 0) return true;
    pos = end + 1;
  }
  return false;
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
  // Empty cgroups left by a worker that was killed go now. Populated ones may belong to another
  // worker on this host, so they stay (rmdir refuses them anyway).
  if (std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(base.c_str()), &::closedir); dir) {
    while (auto* e = ::readdir(dir.get())) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') ::rmdir((base + "/" + e->d_name).c_str());
    }
  }
  CgroupRoot r;
  r.path_ = base;
  return r;
}

namespace {

bool writeSmallFile(const std::string& path, std::string_view text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  return fd && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

bool populated(const std::string& dir) {
  return readSmallFile(dir + "/cgroup.events").find("populated 1") != std::string::npos;
}

std::int64_t usageUsec(const std::string& dir) {
  std::istringstream in(readSmallFile(dir + "/cpu.stat"));
  for (std::string key; in >> key;) {
    long long v;
    in >> v;
    if (key == "usage_usec") return v;
  }
  return 0;
}

constexpr std::size_t kMaxFreeCgroups = 64;

}  // namespace

CgroupPool::~CgroupPool() {
  for (int i = 0; i < 100 && !draining_.empty(); ++i) {
    reclaim();
    if (!draining_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const auto& dir : free_) ::rmdir(dir.c_str());
  for (const auto& dir : draining_) spdlog::warn("cannot remove cgroup {}: still busy", dir);
}

std::string CgroupPool::acquire() {
  if (!free_.empty()) {
    auto dir = std::move(free_.back());
    free_.pop_back();
    return dir;
  }
  auto dir = root_ + "/run-" + std::to_string(::getpid()) + "-" + std::to_string(++made_);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    spdlog::warn("cannot create cgroup {}: {}; using the /proc scan", dir, std::strerror(errno));
    return {};
  }
  return dir;
}

void CgroupPool::release(std::string dir) {
  if (populated(dir)) {
    draining_.push_back(std::move(dir));  // the kernel is still tearing down its processes
  } else if (free_.size() < kMaxFreeCgroups) {
    free_.push_back(std::move(dir));
  } else {
    ::rmdir(dir.c_str());
  }
}

void CgroupPool::reclaim() {
  std::vector<std::string> still;
  for (auto& dir : draining_) {
    if (populated(dir)) {
      still.push_back(std::move(dir));
    } else if (free_.size() < kMaxFreeCgroups) {
      free_.push_back(std::move(dir));
    } else {
      ::rmdir(dir.c_str());
    }
  }
  draining_ = std::move(still);
}

ProcessTree::ProcessTree(CgroupPool* pool, const std::string& run_id)
    : pool_(pool), marker_("OUTPOST_RUN_ID=" + run_id) {
  if (!pool_) return;
  dir_ = pool_->acquire();
  if (dir_.empty()) return;
  procs_fd_.reset(::open((dir_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
  if (!procs_fd_) {
    pool_->release(std::move(dir_));
    dir_.clear();
    return;
  }
  cpu_baseline_usec_ = usageUsec(dir_);
}

ProcessTree::~ProcessTree() {
  if (dir_.empty()) return;
  procs_fd_.reset();
  writeSmallFile(dir_ + "/cgroup.kill", "1");  // nothing of the run outlives it
  pool_->release(std::move(dir_));
}

std::vector<pid_t> ProcessTree::members(pid_t leader) const {
  std::set<pid_t> out;
  if (!dir_.empty()) {
    std::istringstream in(readSmallFile(dir_ + "/cgroup.procs"));
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

void ProcessTree::signalAll(pid_t leader, int sig) const {
  if (leader > 0) ::kill(-leader, sig);
  if (sig == SIGKILL && !dir_.empty()) {
    writeSmallFile(dir_ + "/cgroup.kill", "1");
    return;
  }
  for (pid_t p : members(leader)) ::kill(p, sig);
}

std::int64_t ProcessTree::finalCpuMs(pid_t leader) const {
  static const long kTick = ::sysconf(_SC_CLK_TCK);
  auto st = readStat(leader);
  std::int64_t ms = st ? st->cpu_ticks * 1000 / kTick : 0;
  if (!dir_.empty()) ms = std::max(ms, (usageUsec(dir_) - cpu_baseline_usec_) / 1000);
  return ms;
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
  if (!dir_.empty()) {
    // The cgroup's count includes processes that already exited, but is flushed lazily: take
    // whichever of the two counts is further along.
    s.cpu_time_ms = std::max(s.cpu_time_ms, (usageUsec(dir_) - cpu_baseline_usec_) / 1000);
  }
  return s;
}

}  // namespace outpost
