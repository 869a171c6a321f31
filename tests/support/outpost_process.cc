#include "outpost_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace outpost::test_support {
namespace {

// Pids of running processes, for killAll() from a signal handler: fixed slots, no locks.
std::array<std::atomic<pid_t>, 32> g_running{};

void remember(pid_t pid) {
  for (auto& slot : g_running) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}

void forget(pid_t pid) {
  for (auto& slot : g_running) {
    pid_t p = pid;
    slot.compare_exchange_strong(p, 0);
  }
}

int decode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

}  // namespace

OutpostProcess::OutpostProcess(Options o) : log_path_(o.log_path) {
  std::vector<std::string> words = o.wrapper;
  words.push_back(o.binary);
  words.insert(words.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);

  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot create " + log_path_);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  // fork rather than posix_spawn, for PR_SET_PDEATHSIG; the child calls only async-signal-safe
  // functions before exec.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent is already gone
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execvp(argv[0], argv.data());
    const char* why = std::strerror(errno);
    (void)!::write(2, "cannot exec: ", 13);
    (void)!::write(2, why, std::strlen(why));
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  if (pid < 0) throw std::runtime_error("cannot start " + o.binary + ": fork failed");
  pid_ = pid;
  remember(pid_);
}

OutpostProcess::~OutpostProcess() {
  if (!status_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

int OutpostProcess::reap(bool block) {
  if (status_) return *status_;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return kDidNotExit;
  forget(pid_);
  status_ = decode(status);
  return *status_;
}

bool OutpostProcess::running() const {
  if (status_) return false;
  siginfo_t info{};
  // WNOWAIT: look without reaping, so that terminate() still gets the status.
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return false;
  return info.si_pid != pid_;
}

std::string OutpostProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool OutpostProcess::waitForLog(const std::string& text, std::chrono::seconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Whether it is still running is asked before the log is read: an exit after the read still
    // gets one more read.
    const bool alive = running();
    if (log().find(text) != std::string::npos) return true;
    if (!alive || std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int OutpostProcess::terminate(std::chrono::seconds timeout) {
  if (status_) return *status_;
  ::kill(pid_, SIGTERM);
  return waitExit(timeout);
}

void OutpostProcess::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

int OutpostProcess::waitExit(std::chrono::seconds timeout) {
  if (status_) return *status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (int status = reap(false); status != kDidNotExit) return status;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      reap(true);
      return kDidNotExit;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int OutpostProcess::crash() {
  if (!running()) {
    reap(true);
    return -1;
  }
  ::kill(pid_, SIGKILL);
  return reap(true);
}

void OutpostProcess::killAll() {
  for (auto& slot : g_running) {
    pid_t pid = slot.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
}

}  // namespace outpost::test_support
