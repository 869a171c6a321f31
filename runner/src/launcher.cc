#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "outpost/common/fd.h"
#include "outpost/runner/supervisor.h"

namespace outpost::runner {
namespace {

std::string pathOf(const LaunchPlan& plan) {
  for (const auto& kv : plan.env) {
    if (kv.starts_with("PATH=")) return kv.substr(5);
  }
  return "/usr/local/bin:/usr/bin:/bin";
}

// Finds the program the way execvp would, but on the run's PATH rather than the worker's.
std::expected<std::string, std::string> resolveProgram(const LaunchPlan& plan) {
  const std::string& name = plan.argv.front();
  if (name.empty()) return std::unexpected("the template's argv[0] is empty");
  if (name.find('/') != std::string::npos) {
    // A relative path is run after the chdir into the working directory, so check it there.
    std::string where = name.front() == '/' ? name : plan.working_dir + "/" + name;
    if (access(where.c_str(), X_OK) != 0) {
      return std::unexpected("cannot run '" + name + "': " + std::strerror(errno));
    }
    return name;
  }
  std::string path = pathOf(plan);
  std::size_t begin = 0;
  while (begin <= path.size()) {
    auto end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(begin, end - begin);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    begin = end + 1;
  }
  return std::unexpected("program '" + name + "' was not found on PATH (" + path + ")");
}

// Everything the child needs, prepared before the clone: the child may only make system calls.
struct ChildArgs {
  const char* program;
  char* const* argv;
  char* const* envp;
  const char* working_dir;
  int stdin_fd;
  int output_fd;
  int cgroup_procs_fd;
  int lineage_fd;  // -1: none
  int error_fd;    // write end of a CLOEXEC pipe: silent on success, {step, errno} on failure
  pid_t parent;    // the worker
  struct Limit {
    int resource;
    rlim_t soft;
    rlim_t hard;
  } limits[6];
  int limit_count;
};

enum Step : int { kCgroup = 1, kSetsid, kRlimit, kStdio, kChdir, kExec, kParentDeath };

[[noreturn]] void childFail(int error_fd, int step) {
  int report[2] = {step, errno};
  [[maybe_unused]] auto n = ::write(error_fd, report, sizeof report);
  _exit(127);
}

// Runs in the child, on its own stack, sharing the parent's memory until execve (CLONE_VM |
// CLONE_VFORK, as glibc's posix_spawn does): only async-signal-safe system calls here.
int childMain(void* arg) {
  const auto& a = *static_cast<const ChildArgs*>(arg);
  // The parent's memory is shared until execve: what changes lives in locals.
  int error_fd = a.error_fd;
  // Join the run's cgroup first (unless it started there), so that nothing the run starts can
  // escape it.
  if (a.cgroup_procs_fd >= 0 && ::write(a.cgroup_procs_fd, "0", 1) != 1)
    childFail(error_fd, kCgroup);
  if (::setsid() < 0) childFail(error_fd, kSetsid);
  // A second line of defence for a worker killed outright (the first: the next worker's sweep of
  // its leftovers, see process_tree.h): the run's process goes with the thread that started it.
  // Its descendants do not inherit this; the cgroup or the sweep takes them.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) childFail(error_fd, kParentDeath);
  if (::getppid() != a.parent) _exit(127);  // the worker died before the line above
  for (int i = 0; i < a.limit_count; ++i) {
    rlimit r{a.limits[i].soft, a.limits[i].hard};
    if (::setrlimit(a.limits[i].resource, &r) != 0) childFail(error_fd, kRlimit);
  }
  // Default dispositions (the worker ignores SIGPIPE; a job must not inherit that), then unblock.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::dup2(a.stdin_fd, 0) < 0 || ::dup2(a.output_fd, 1) < 0 || ::dup2(a.output_fd, 2) < 0) {
    childFail(error_fd, kStdio);
  }
  unsigned first_closed = 3;
  if (a.lineage_fd >= 0) {
    if (a.lineage_fd == kLineageFd) {
      if (::fcntl(kLineageFd, F_SETFD, 0) != 0) childFail(error_fd, kStdio);
    } else {
      // The error pipe may sit where the channel goes: move it out of the way first.
      if (error_fd == kLineageFd && (error_fd = ::fcntl(error_fd, F_DUPFD_CLOEXEC, 10)) < 0) {
        childFail(kLineageFd, kStdio);
      }
      if (::dup2(a.lineage_fd, kLineageFd) < 0) childFail(error_fd, kStdio);
    }
    first_closed = kLineageFd + 1;
  }
  if (::chdir(a.working_dir) != 0) childFail(error_fd, kChdir);
  // Nothing of the worker's (Kafka sockets, other runs' pipes) may reach the job; the error pipe
  // stays open until execve closes it.
  ::syscall(SYS_close_range, first_closed, ~0U, CLOSE_RANGE_CLOEXEC);
  ::execve(a.program, a.argv, a.envp);
  childFail(error_fd, kExec);
}

// clone3 with CLONE_VM needs the child to start on its own stack, which no C function can do:
// glibc 2.36 (Debian 12) does not export its clone3 wrapper, and posix_spawnattr_setcgroup_np
// only came with glibc 2.41. So a few lines of assembly, x86-64 only; elsewhere (and where a
// seccomp policy refuses clone3) the child joins its cgroup by writing cgroup.procs instead.
//
// Starting the child inside the run's cgroup (CLONE_INTO_CGROUP) matters for speed: a write to
// cgroup.procs migrates a process, which waits for an RCU grace period (about 0.7 ms here), and
// the launching thread waits for it on every launch (CLONE_VFORK). Forking into the cgroup takes
// no such wait.
#if defined(__x86_64__)
extern "C" long outpost_clone3(struct clone_args* args, std::size_t size, int (*fn)(void*),
                               void* arg);
// Parent: returns the child's pid or -errno. Child: runs fn(arg) on the stack named in args,
// then exits with its result (childMain never returns: it execs or _exits).
asm(R"(
  .text
  .globl outpost_clone3
  .type outpost_clone3, @function
outpost_clone3:
  endbr64
  mov %rdx, %r8
  mov %rcx, %r9
  mov $435, %eax
  syscall
  test %rax, %rax
  jz 1f
  ret
1:
  xor %ebp, %ebp
  mov %r9, %rdi
  call *%r8
  mov %eax, %edi
  mov $60, %eax
  syscall
  hlt
  .size outpost_clone3, .-outpost_clone3
)");
constexpr bool kHaveClone3 = true;
#else
constexpr bool kHaveClone3 = false;
long outpost_clone3(struct clone_args*, std::size_t, int (*)(void*), void*) {
  return -ENOSYS;
}
#endif

// Cleared once the kernel (or a seccomp policy) refuses clone3 or CLONE_INTO_CGROUP.
std::atomic<bool> g_clone3_usable{kHaveClone3};

// Starts childMain(&a) on `stack` in the cgroup `cgroup_dir_fd` (-1: none). Returns the pid, or
// -1 with errno set.
pid_t cloneChild(ChildArgs& a, char* stack, std::size_t stack_size, int cgroup_dir_fd) {
  if (cgroup_dir_fd >= 0 && g_clone3_usable.load(std::memory_order_relaxed)) {
    struct clone_args ca {};
    ca.flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP;
    ca.exit_signal = SIGCHLD;
    ca.stack = reinterpret_cast<std::uint64_t>(stack);
    ca.stack_size = stack_size;
    ca.cgroup = static_cast<std::uint64_t>(cgroup_dir_fd);
    const int procs_fd = a.cgroup_procs_fd;
    a.cgroup_procs_fd = -1;  // already in it
    long rc = outpost_clone3(&ca, sizeof ca, childMain, &a);
    if (rc > 0) return static_cast<pid_t>(rc);
    a.cgroup_procs_fd = procs_fd;
    int err = static_cast<int>(-rc);
    if (err == EAGAIN || err == ENOMEM) {
      errno = err;
      return -1;
    }
    // ENOSYS (an old kernel, or seccomp's answer), EPERM, EINVAL, E2BIG: the old way from now on.
    g_clone3_usable.store(false, std::memory_order_relaxed);
  }
  return ::clone(childMain, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
}

std::string describeFailure(int step, int err, const LaunchPlan& plan) {
  std::string what;
  switch (step) {
    case kCgroup:
      what = "cannot join the run's cgroup";
      break;
    case kSetsid:
      what = "cannot start a new session";
      break;
    case kRlimit:
      what = "cannot apply the template's resource limits";
      break;
    case kStdio:
      what = "cannot set up standard input/output";
      break;
    case kChdir:
      what = "cannot change to the working directory " + plan.working_dir;
      break;
    case kParentDeath:
      what = "cannot set the parent-death signal";
      break;
    default:
      what = "cannot start '" + plan.argv.front() + "'";
      break;
  }
  return what + ": " + std::strerror(err);
}

}  // namespace

std::expected<pid_t, std::string> PosixLauncher::launch(const LaunchPlan& plan,
                                                        const LaunchIo& io) {
  auto program = resolveProgram(plan);
  if (!program) return std::unexpected(program.error());

  std::vector<char*> argv, envp;
  for (const auto& s : plan.argv) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  for (const auto& s : plan.env) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    return std::unexpected(std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  UniqueFd error_read(pipefd[0]), error_write(pipefd[1]);

  ChildArgs a{};
  a.program = program->c_str();
  a.argv = argv.data();
  a.envp = envp.data();
  a.working_dir = plan.working_dir.c_str();
  a.stdin_fd = io.stdin_fd;
  a.output_fd = io.output_fd;
  a.cgroup_procs_fd = io.cgroup_procs_fd;
  a.lineage_fd = io.lineage_fd;
  a.error_fd = error_write.get();
  a.parent = ::getpid();
  const auto& l = plan.limits;
  auto add = [&](int resource, std::uint64_t value, std::uint64_t headroom = 0) {
    a.limits[a.limit_count++] = {resource, static_cast<rlim_t>(value),
                                 static_cast<rlim_t>(value + headroom)};
  };
  if (l.address_space_bytes) add(RLIMIT_AS, l.address_space_bytes);
  if (l.open_files) add(RLIMIT_NOFILE, l.open_files);
  if (l.processes) add(RLIMIT_NPROC, l.processes);
  // The soft CPU limit sends SIGXCPU (a clear "CPU limit" ending); the hard one, a little later,
  // SIGKILL for a process that ignores it. Equal limits would skip straight to SIGKILL.
  if (l.cpu_time_seconds) add(RLIMIT_CPU, l.cpu_time_seconds, 2);
  if (l.file_size_bytes) add(RLIMIT_FSIZE, l.file_size_bytes);
  if (!l.core_dumps) add(RLIMIT_CORE, 0);

  // Signals stay blocked in this thread while the child borrows its memory, so that no handler
  // of the worker's can run in the child before its dispositions are reset.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // The child's stack, one per launching thread, kept: the child is done with it (exec'd or
  // dead) when cloneChild returns. Allocating and zeroing 64 KiB per launch showed in profiles.
  constexpr std::size_t kStack = 64 * 1024;
  thread_local const std::unique_ptr<char[]> stack = std::make_unique_for_overwrite<char[]>(kStack);
  pid_t pid = cloneChild(a, stack.get(), kStack, io.cgroup_dir_fd);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0)
    return std::unexpected(std::string("cannot start a process: ") + std::strerror(clone_errno));

  // CLONE_VFORK: the child has exec'd or died by now. A report on the pipe means it failed.
  error_write.reset();
  int report[2] = {0, 0};
  auto n = ::read(error_read.get(), report, sizeof report);
  if (n == static_cast<ssize_t>(sizeof report)) {
    ::waitpid(pid, nullptr, 0);
    return std::unexpected(describeFailure(report[0], report[1], plan));
  }
  return pid;
}

}  // namespace outpost::runner
