#include "worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace outpost::bench {
namespace {

namespace fs = std::filesystem;

// Pids of running workers, for killAllWorkers() from a signal handler: fixed slots, no locks.
std::array<std::atomic<pid_t>, 8> g_workers{};

void remember(pid_t pid) {
  for (auto& slot : g_workers) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}

void forget(pid_t pid) {
  for (auto& slot : g_workers) {
    pid_t p = pid;
    slot.compare_exchange_strong(p, 0);
  }
}

double ticksToMs(unsigned long long ticks) {
  return static_cast<double>(ticks) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

namespace {

CpuTimes cpuFromStat(const std::string& path) {
  std::ifstream in(path);
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start at field 3.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string s; fields >> s;) f.push_back(s);
  if (f.size() < 15) return {};
  // utime, stime, cutime, cstime are fields 14-17, i.e. f[11..14].
  CpuTimes t;
  t.self_ms = ticksToMs(std::stoull(f[11]) + std::stoull(f[12]));
  t.children_ms = ticksToMs(std::stoull(f[13]) + std::stoull(f[14]));
  return t;
}

}  // namespace

CpuTimes processCpu(pid_t pid) {
  return cpuFromStat("/proc/" + std::to_string(pid) + "/stat");
}

std::vector<ThreadCpu> threadCpu(pid_t pid) {
  std::vector<ThreadCpu> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    ThreadCpu t;
    t.tid = static_cast<pid_t>(std::stoi(entry.path().filename().string()));
    std::ifstream comm(entry.path() / "comm");
    std::getline(comm, t.name);
    t.ms = cpuFromStat((entry.path() / "stat").string()).self_ms;
    out.push_back(std::move(t));
  }
  return out;
}

MachineCpu machineCpu() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;  // "cpu": the sum over all cores
  unsigned long long v[8] = {};
  for (auto& x : v) in >> x;
  MachineCpu m;
  for (auto x : v) m.total += x;
  m.busy = m.total - v[3] - v[4];  // minus idle and iowait
  return m;
}

WorkerProcess::WorkerProcess(Options o) {
  char tmpl[] = "/tmp/outpost-bench-worker.XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  {
    // The worker's defaults except what the benchmark needs: its topics, its pool, the slots, the
    // delivery mode, and one template that runs the no-op program directly (no shell), without a
    // recipe file.
    std::ofstream cfg(dir_ + "/outpost.yaml");
    cfg << "worker:\n"
        << "  id: " << o.pool << "\n"
        << "  pool: " << o.pool << "\n"
        << "  slots: " << o.slots << "\n"
        << "  delivery: " << o.delivery << "\n"
        << "  work_dir: " << dir_ << "/runs\n"
        << "  drain_timeout: 30s\n"
        << "kafka:\n"
        << "  bootstrap_servers: " << o.bootstrap << "\n"
        << "topics:\n"
        << "  prefix: " << o.prefix << "\n"
        << "lineage:\n"
        << "  enabled: true\n"
        << "templates:\n"
        << "  noop:\n"
        << "    argv: [" << o.noop << "]\n"
        << "    recipe: none\n"
        << "    timeout: 1m\n";
  }
  int log_fd =
      ::open((dir_ + "/worker.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot create " + dir_ + "/worker.log");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, log_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
  std::vector<std::string> words;
  if (const char* prefix = std::getenv("OUTPOST_BENCH_WORKER_PREFIX")) {
    std::istringstream ss(prefix);
    for (std::string w; ss >> w;) words.push_back(w);
  }
  for (std::string w : {o.binary, std::string("run"), std::string("-c"), dir_ + "/outpost.yaml"})
    words.push_back(w);
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  // The benchmark's environment goes through, so OUTPOST_* overrides reach the worker.
  int rc = posix_spawnp(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(log_fd);
  if (rc != 0) throw std::runtime_error("cannot start " + o.binary);
  remember(pid_);
}

WorkerProcess::~WorkerProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    forget(pid_);
  }
  if (!std::getenv("OUTPOST_BENCH_KEEP")) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string WorkerProcess::log() const {
  std::ifstream in(dir_ + "/worker.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WorkerProcess::running() {
  if (pid_ <= 0) return false;
  if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
    forget(pid_);
    pid_ = -1;
    return false;
  }
  return true;
}

bool WorkerProcess::waitForLog(const std::string& text, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (log().find(text) == std::string::npos) {
    if (!running() || std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

int WorkerProcess::stop(std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      forget(pid_);
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      forget(pid_);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void killAllWorkers() {
  for (auto& slot : g_workers) {
    pid_t pid = slot.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
}

}  // namespace outpost::bench
