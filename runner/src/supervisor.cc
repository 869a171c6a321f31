// The Supervisor (supervisor.h). About 850 lines: one epoll loop that owns every run's pidfd,
// pipes, timers and kill escalation, and the launch threads that feed it; what it relies on
// lives beside it (launcher.cc spawns, process_tree.cc finds and kills descendants, output.cc
// shapes output, outcome.cc describes endings).
#include "outpost/runner/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>

#include <spdlog/spdlog.h>

#include "outpost/common/fd.h"
#include "outpost/common/log.h"
#include "outpost/common/thread_name.h"
#include "outpost/runner/output.h"
#include "process_tree.h"

namespace outpost::runner {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

// After the process exits, how long its output pipe may stay open (held by a descendant) before
// the run's remaining processes are killed and the run finished without the rest of the output.
constexpr std::chrono::milliseconds kOutputLinger{1000};
// Most bytes read from one pipe per wake-up, so a flooding run cannot starve the others.
constexpr std::size_t kReadBudget = 1 << 20;
// output.log is created only once a run's output passes this, or when its run directory is kept:
// most runs succeed with little output and their directory is removed, so they never need it.
constexpr std::size_t kLogFileDeferBytes = 64 * 1024;

struct LaunchCmd {
  LaunchPlan plan;
  RunCallbacks callbacks;
  std::unique_ptr<StreamRedactor> redactor;
};
struct StopCmd {
  std::optional<std::string> run_id;  // nullopt: every run
  std::string reason;
  StopCause cause;
};
struct Child;
// A run whose process a launch thread is starting, and then the outcome, posted back.
struct Launch {
  std::uint64_t id;
  std::unique_ptr<Child> child;
  LaunchIo io;
  UniqueFd stdin_fd, output_write, lineage_write;  // the child's ends, closed once it started
  std::expected<pid_t, std::string> pid = std::unexpected(std::string());
};
struct LaunchedCmd {
  std::unique_ptr<Launch> launch;
};
struct OutputCmd {
  OutputConfig output;
};
using Command = std::variant<LaunchCmd, StopCmd, LaunchedCmd, OutputCmd>;

struct Child {
  LaunchPlan plan;
  RunCallbacks callbacks;
  std::unique_ptr<StreamRedactor> redactor;
  std::unique_ptr<ProcessTree> tree;
  pid_t pid = -1;
  UniqueFd pidfd;
  UniqueFd output;
  UniqueFd lineage;  // read end of the run's lineage channel, if it has one
  std::uint64_t lineage_bytes = 0;
  bool lineage_truncated = false;
  UniqueFd log_file;        // output.log in the run directory, up to log_file_limit
  std::string log_pending;  // what output.log gets when it is created
  bool log_file_failed = false;
  std::uint64_t log_file_limit;
  std::uint64_t log_file_written = 0;  // accepted for output.log, pending included
  TailBuffer tail;
  LineSplitter lines;
  LogBatcher batcher;
  bool exited = false;
  int wait_code = 0;    // siginfo si_code
  int wait_status = 0;  // siginfo si_status
  std::int64_t final_cpu_ms = 0;
  std::chrono::system_clock::time_point started_at;
  Steady::time_point started_steady;
  Steady::time_point deadline;  // run timeout
  Steady::time_point next_heartbeat;
  std::optional<Steady::time_point> kill_at;  // SIGKILL after TERM's grace
  std::optional<Steady::time_point> linger_until;
  std::optional<RunOutcome::Ending> stop_ending;
  StopCause stop_cause = StopCause::kNone;
  std::string stop_reason;

  // The template's output limits where it sets them, else the supervisor's.
  Child(const OutputConfig& o, const OutputLimits& t)
      : log_file_limit(t.log_file_bytes ? t.log_file_bytes : o.log_file_bytes),
        tail(t.tail_bytes ? t.tail_bytes : o.tail_bytes),
        lines(o.line_max_bytes),
        batcher(o.log_batch_bytes, o.log_batch_interval,
                t.log_rate_bytes ? t.log_rate_bytes : o.log_rate_bytes) {}
};

// Run directories, made and removed without allocating an inode each time: a removed run's
// directory, once empty, is renamed into a pool (<work_dir>/.free-<pid>/) and renamed back for a
// later run. With 16 runs alive, mkdir+rmdir on ext4 cost about 125 us of CPU a run (the inode
// allocator skips recently freed inodes), the two renames about 25 us. Supervisor thread only.
class RunDirs {
 public:
  RunDirs() = default;
  RunDirs(const RunDirs&) = delete;
  RunDirs& operator=(const RunDirs&) = delete;
  ~RunDirs() {
    for (auto& [parent, pool] : pools_) {
      std::error_code ec;
      if (pool.usable) fs::remove_all(pool.dir, ec);
    }
  }

  // A fresh, empty, private (0700) directory at `dir`. A directory left there by an earlier
  // attempt is removed first, and a missing work_dir is created.
  std::expected<void, std::string> make(const std::string& dir) {
    Pool& pool = poolFor(dir);
    std::error_code ec;
    while (!pool.free.empty()) {
      auto from = std::move(pool.free.back());
      pool.free.pop_back();
      if (::rename(from.c_str(), dir.c_str()) == 0) return {};
      if (errno == EEXIST || errno == ENOTEMPTY) {  // a leftover at dir: clear it, try again
        fs::remove_all(dir, ec);
        if (::rename(from.c_str(), dir.c_str()) == 0) return {};
      }
      ::rmdir(from.c_str());
    }
    if (::mkdir(dir.c_str(), 0700) == 0) return {};
    if (errno == EEXIST) {
      fs::remove_all(dir, ec);
    } else if (errno == ENOENT) {
      auto parent = fs::path(dir).parent_path();
      fs::create_directories(parent, ec);
      if (ec) {
        return std::unexpected("cannot create the work directory " + parent.string() + ": " +
                               ec.message());
      }
    }
    if (::mkdir(dir.c_str(), 0700) != 0) {
      return std::unexpected("cannot create the run directory " + dir + ": " +
                             std::strerror(errno));
    }
    return {};
  }

  // Removes a run's directory (every process of the run is gone). Empty ones go to the pool.
  std::expected<void, std::string> remove(const std::string& dir) {
    Pool& pool = poolFor(dir);
    if (pool.usable && pool.free.size() < kMaxFree && isEmptyDir(dir)) {
      auto to = pool.dir + "/" + std::to_string(++pool.made);
      if (::rename(dir.c_str(), to.c_str()) == 0) {
        pool.free.push_back(std::move(to));
        return {};
      }
    }
    if (::rmdir(dir.c_str()) == 0) return {};
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) return std::unexpected(ec.message());
    return {};
  }

 private:
  static constexpr std::size_t kMaxFree = 64;
  struct Pool {
    std::string dir;
    bool usable = false;
    bool tried = false;  // made (or failed) once work_dir existed: never retried per run
    std::vector<std::string> free;
    std::uint64_t made = 0;
  };

  Pool& poolFor(const std::string& run_dir) {
    auto parent = fs::path(run_dir).parent_path().string();
    Pool& pool = pools_[parent];
    if (!pool.tried) {
      // Made on first use (work_dir may not exist before the first run creates it); pools of
      // workers that died are removed then. Without one, runs use mkdir/rmdir.
      if (!fs::is_directory(parent)) return pool;
      pool.tried = true;
      removeDeadPools(parent);
      pool.dir = parent + "/.free-" + std::to_string(::getpid());
      pool.usable = ::mkdir(pool.dir.c_str(), 0700) == 0 || errno == EEXIST;
    }
    return pool;
  }

  static void removeDeadPools(const std::string& parent) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(parent, ec)) {
      auto name = e.path().filename().string();
      if (!name.starts_with(".free-")) continue;
      auto pid = std::strtol(name.c_str() + 6, nullptr, 10);
      if (pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0 &&
          errno == ESRCH) {
        fs::remove_all(e.path(), ec);
      }
    }
  }

  static bool isEmptyDir(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return false;
    alignas(8) char buf[1024];
    auto n = ::syscall(SYS_getdents64, fd.get(), buf, sizeof buf);
    if (n <= 0) return false;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<const struct linux_dirent64_view*>(buf + off);
      std::string_view name(d->d_name);
      if (name != "." && name != "..") return false;
      off += d->d_reclen;
    }
    return true;
  }
  struct linux_dirent64_view {
    std::uint64_t d_ino;
    std::int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[1];
  };

  std::map<std::string, Pool> pools_;
};

}  // namespace

struct Supervisor::Impl {
  const Clock& clock;
  ProcessLauncher& launcher;
  SupervisorOptions options;
  std::atomic<std::size_t>& active;
  std::unique_ptr<CgroupPool> cgroups;  // null: no cgroups here, see cgroup_note
  std::string cgroup_note;
  UniqueFd dev_null;  // stdin of runs that get no recipe on it
  const std::string worker_marker = "OUTPOST_WORKER_PROCESS=" + ownProcessToken();
  RunDirs run_dirs;

  UniqueFd epoll;
  UniqueFd wake;
  std::mutex mutex;  // guards commands and shutting_down
  std::deque<Command> commands;
  bool shutting_down = false;

  // Owned by the supervisor thread only.
  std::map<std::uint64_t, std::unique_ptr<Child>> children;
  std::map<std::uint64_t, Child*> launching;  // handed to a launch thread, not back yet
  std::uint64_t next_id = 1;
  std::thread thread;

  std::mutex launch_mutex;  // guards to_launch and launch_stop
  std::condition_variable launch_cv;
  std::deque<std::unique_ptr<Launch>> to_launch;
  bool launch_stop = false;
  std::vector<std::thread> launch_threads;

  Impl(const Clock& c, ProcessLauncher& l, SupervisorOptions o, std::atomic<std::size_t>& a)
      : clock(c), launcher(l), options(std::move(o)), active(a) {
    auto root = CgroupRoot::open(options.cgroup, cgroup_note);
    // Before any run of ours starts: a worker that was killed (SIGKILL, OOM) left its runs
    // running, and their commands are about to run again here or elsewhere.
    auto sweep = sweepLeftovers(root ? root->path() : "");
    if (sweep.cgroups > 0 || sweep.processes > 0) {
      spdlog::warn(
          "killed {} process(es) left running by worker processes that are gone ({} cgroup(s) "
          "removed)",
          sweep.processes, sweep.cgroups);
    }
    if (root) {
      cgroups = std::make_unique<CgroupPool>(root->path());
      cgroup_note = "per-run cgroups under " + root->path();
    }
    dev_null.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    epoll.reset(epoll_create1(EPOLL_CLOEXEC));
    wake.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!epoll || !wake) throw std::runtime_error("supervisor: cannot create epoll/eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev);
    for (unsigned i = 0; i < std::max(1u, options.launch_threads); ++i) {
      launch_threads.emplace_back([this] {
        nameThisThread("op-launch");
        launchLoop();
      });
    }
    thread = std::thread([this] {
      nameThisThread("op-supervisor");
      loop();
    });
  }

  void post(Command c) {
    {
      std::lock_guard lock(mutex);
      commands.push_back(std::move(c));
    }
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof one);
  }

  // epoll tags: 0 is the wake eventfd; otherwise id*4 + what the descriptor is.
  enum Source : std::uint64_t { kOutput = 0, kPidfd = 1, kLineage = 2 };
  static std::uint64_t tag(std::uint64_t id, Source s) { return id * 4 + s; }

  void loop() {
    std::vector<epoll_event> events(64);
    for (;;) {
      int timeout_ms = nextTimeoutMs();
      int n = epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
      if (n < 0 && errno != EINTR) {
        spdlog::critical("supervisor: epoll_wait failed: {}", std::strerror(errno));
        std::abort();  // an invariant of this process is gone; never leave runs unwatched
      }
      for (int i = 0; i < n; ++i) {
        std::uint64_t t = events[i].data.u64;
        if (t == 0) {
          std::uint64_t v;
          [[maybe_unused]] auto r = ::read(wake.get(), &v, sizeof v);
          continue;
        }
        auto it = children.find(t / 4);
        if (it == children.end()) continue;
        switch (t % 4) {
          case kPidfd:
            reap(*it->second);
            break;
          case kLineage:
            drainLineage(*it->second, kReadBudget);
            break;
          default:
            drain(*it->second);
        }
      }
      if (!takeCommands()) break;
      checkTimers();
      finishReady();
      if (cgroups && cgroups->draining()) cgroups->reclaim();
    }
    // Shutting down: nothing may outlive the worker. Launches under way finish first.
    {
      std::lock_guard lock(launch_mutex);
      launch_stop = true;
    }
    launch_cv.notify_all();
    for (auto& t : launch_threads) t.join();
    // Runs never started, and processes started after the loop ended: nothing of them stays.
    // Destroyed here, before the cgroup pool their process trees point to.
    for (auto& l : to_launch) run_dirs.remove(l->child->plan.run_dir);
    to_launch.clear();
    std::deque<Command> left;
    {
      std::lock_guard lock(mutex);
      left.swap(commands);
    }
    for (auto& c : left) {
      auto* l = std::get_if<LaunchedCmd>(&c);
      if (!l) continue;
      auto& child = *l->launch->child;
      if (l->launch->pid) {
        child.tree->signalAll(*l->launch->pid, SIGKILL);
        ::waitpid(*l->launch->pid, nullptr, 0);
      }
      run_dirs.remove(child.plan.run_dir);
    }
    left.clear();
    for (auto& [id, c] : children) {
      if (!c->exited) {
        c->tree->signalAll(c->pid, SIGKILL);
        siginfo_t info{};
        waitid(P_PIDFD, static_cast<id_t>(c->pidfd.get()), &info, WEXITED);
      } else {
        c->tree->signalAll(0, SIGKILL);
      }
      removeRunDir(*c, false);
    }
    children.clear();
    cgroups.reset();  // removes the pool's cgroups
  }

  // Returns false when the supervisor is shutting down.
  bool takeCommands() {
    std::deque<Command> batch;
    bool stop;
    {
      std::lock_guard lock(mutex);
      batch.swap(commands);
      stop = shutting_down;
    }
    for (auto& c : batch) {
      if (auto* l = std::get_if<LaunchCmd>(&c)) {
        start(std::move(*l));
      } else if (auto* done = std::get_if<LaunchedCmd>(&c)) {
        launched(std::move(done->launch));
      } else if (auto* o = std::get_if<OutputCmd>(&c)) {
        options.output = std::move(o->output);
      } else {
        auto& s = std::get<StopCmd>(c);
        auto stop_one = [&](Child& child) {
          if (!s.run_id || child.plan.run_id == *s.run_id) {
            requestStop(child, RunOutcome::Ending::kCancelled, s.reason, s.cause);
          }
        };
        for (auto& [id, child] : children) stop_one(*child);
        for (auto& [id, child] : launching) stop_one(*child);
      }
    }
    return !stop;
  }

  int nextTimeoutMs() {
    if (cgroups && cgroups->draining()) return 10;  // look again soon; the kernel is nearly done
    if (children.empty()) return -1;
    auto now = Steady::now();
    auto next = Steady::time_point::max();
    for (auto& [id, c] : children) {
      if (!c->exited) {
        next = std::min({next, c->kill_at.value_or(c->deadline), c->next_heartbeat});
      }
      if (c->linger_until) next = std::min(next, *c->linger_until);
      next = std::min(next, c->batcher.dueAt());
    }
    if (next == Steady::time_point::max()) return -1;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
    return static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
  }

  // A run still being started is signalled once it has a pid (see launched).
  void requestStop(Child& c, RunOutcome::Ending ending, std::string reason,
                   StopCause cause = StopCause::kNone) {
    if (c.exited || c.stop_ending) return;  // first reason wins
    c.stop_ending = ending;
    c.stop_reason = std::move(reason);
    c.stop_cause = cause;
    if (c.pid > 0) signalStop(c);
  }

  void signalStop(Child& c) {
    c.tree->signalAll(c.pid, SIGTERM);
    c.kill_at = Steady::now() + c.plan.kill_grace;
  }

  void checkTimers() {
    auto now = Steady::now();
    for (auto& [id, c] : children) {
      if (c->batcher.due(now)) sendLog(*c);
      if (c->exited) continue;
      if (c->kill_at && now >= *c->kill_at) {
        c->tree->signalAll(c->pid, SIGKILL);
        c->kill_at = Steady::time_point::max();  // sent; wait for the exit
      } else if (!c->stop_ending && now >= c->deadline) {
        requestStop(
            *c, RunOutcome::Ending::kTimedOut,
            fmt::format("timed out after {} ms (the run's timeout)", c->plan.timeout.count()));
      }
      if (now >= c->next_heartbeat) {
        c->next_heartbeat = now + options.heartbeat_interval;
        if (c->callbacks.on_heartbeat) {
          auto stats = c->tree->stats(c->pid);
          c->callbacks.on_heartbeat(Heartbeat{c->tail.totalBytes(), stats.cpu_time_ms,
                                              stats.rss_bytes, stats.processes,
                                              c->batcher.droppedLines()});
        }
      }
    }
  }

  void sendLog(Child& c) {
    auto lines = c.batcher.take();
    if (!lines.empty() && c.callbacks.on_log) {
      c.callbacks.on_log(LogBatch{std::move(lines), c.batcher.droppedLines()});
    }
  }

  void failToStart(const std::string& run_dir, RunCallbacks& callbacks, const std::string& message,
                   bool remove_dir = true) {
    RunOutcome o;
    o.ending = RunOutcome::Ending::kSpawnFailed;
    o.message = message;
    o.started_at = clock.now();
    if (remove_dir) run_dirs.remove(run_dir);
    --active;
    if (callbacks.on_finished) callbacks.on_finished(std::move(o));
  }

  static std::expected<void, std::string> writePrivateFile(const std::string& path,
                                                           const std::string& content) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return std::unexpected("cannot create " + path + ": " + std::strerror(errno));
    std::size_t done = 0;
    while (done < content.size()) {
      auto w = ::write(fd.get(), content.data() + done, content.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return std::unexpected("cannot write " + path + ": " + std::strerror(errno));
      done += static_cast<std::size_t>(w);
    }
    return {};
  }

  void start(LaunchCmd cmd) {
    ++active;
    // Whose run it is: a worker starting after this one died finds and kills what is left of it.
    cmd.plan.env.push_back(worker_marker);
    const LaunchPlan& plan = cmd.plan;
    // The run directory is named by run_id: a second live run with that id would share it.
    auto same_id = [&](const auto& kv) { return kv.second->plan.run_id == plan.run_id; };
    if (std::ranges::any_of(children, same_id) || std::ranges::any_of(launching, same_id)) {
      return failToStart(plan.run_dir, cmd.callbacks,
                         "run " + plan.run_id + " is already running here", false);
    }
    if (auto made = run_dirs.make(plan.run_dir); !made) {
      return failToStart(plan.run_dir, cmd.callbacks, made.error());
    }
    auto l = std::make_unique<Launch>();
    if (plan.recipe_delivery == RecipeDelivery::kFile ||
        plan.recipe_delivery == RecipeDelivery::kStdin) {
      auto recipe_path = plan.run_dir + "/recipe";
      if (auto w = writePrivateFile(recipe_path, plan.recipe); !w) {
        return failToStart(plan.run_dir, cmd.callbacks, w.error());
      }
      if (plan.recipe_delivery == RecipeDelivery::kStdin) {
        l->stdin_fd.reset(::open(recipe_path.c_str(), O_RDONLY | O_CLOEXEC));
        ::unlink(recipe_path.c_str());
      }
    }
    struct stat st {};
    if (::stat(plan.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return failToStart(plan.run_dir, cmd.callbacks,
                         "the working directory " + plan.working_dir + " does not exist");
    }
    auto child = std::make_unique<Child>(options.output, plan.output);
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
      return failToStart(plan.run_dir, cmd.callbacks,
                         std::string("cannot create a pipe: ") + std::strerror(errno));
    }
    child->output.reset(pipefd[0]);
    l->output_write.reset(pipefd[1]);
    if (plan.lineage_channel) {
      if (::pipe2(pipefd, O_CLOEXEC) != 0) {
        return failToStart(plan.run_dir, cmd.callbacks,
                           std::string("cannot create a pipe: ") + std::strerror(errno));
      }
      child->lineage.reset(pipefd[0]);
      l->lineage_write.reset(pipefd[1]);
    }
    child->tree = std::make_unique<ProcessTree>(cgroups.get(), plan.run_id);
    l->io =
        LaunchIo{l->stdin_fd ? l->stdin_fd.get() : dev_null.get(), l->output_write.get(),
                 child->tree->cgroupDirFd(), child->tree->cgroupProcsFd(), l->lineage_write.get()};
    child->plan = std::move(cmd.plan);
    child->callbacks = std::move(cmd.callbacks);
    child->redactor =
        cmd.redactor ? std::move(cmd.redactor) : std::make_unique<PassThroughRedactor>();
    l->id = next_id++;
    launching.emplace(l->id, child.get());
    l->child = std::move(child);
    {
      std::lock_guard lock(launch_mutex);
      to_launch.push_back(std::move(l));
    }
    launch_cv.notify_one();
  }

  // A launch thread: starts processes, each blocking it until the child has exec'd (CLONE_VFORK)
  // while the supervisor thread goes on reading, reaping and starting others.
  void launchLoop() {
    for (;;) {
      std::unique_ptr<Launch> l;
      {
        std::unique_lock lock(launch_mutex);
        launch_cv.wait(lock, [this] { return launch_stop || !to_launch.empty(); });
        if (launch_stop) return;
        l = std::move(to_launch.front());
        to_launch.pop_front();
      }
      Child& c = *l->child;
      c.started_at = clock.now();
      c.started_steady = Steady::now();
      l->pid = launcher.launch(c.plan, l->io);
      post(LaunchedCmd{std::move(l)});
    }
  }

  // Back on the supervisor thread: watch the started process, or report why it did not start.
  void launched(std::unique_ptr<Launch> l) {
    launching.erase(l->id);
    auto child = std::move(l->child);
    if (!l->pid) return failToStart(child->plan.run_dir, child->callbacks, l->pid.error());
    // The child holds its copies; EOF comes when every holder is gone.
    l->output_write.reset();
    l->lineage_write.reset();
    child->pid = *l->pid;
    child->pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, child->pid, 0)));
    if (!child->pidfd) {
      // Cannot watch it: do not leave it running.
      auto why = std::string("pidfd_open failed: ") + std::strerror(errno);
      child->tree->signalAll(child->pid, SIGKILL);
      ::waitpid(child->pid, nullptr, 0);
      return failToStart(child->plan.run_dir, child->callbacks, why);
    }
    ::fcntl(child->output.get(), F_SETFL, ::fcntl(child->output.get(), F_GETFL) | O_NONBLOCK);
    if (child->lineage) {
      ::fcntl(child->lineage.get(), F_SETFL, ::fcntl(child->lineage.get(), F_GETFL) | O_NONBLOCK);
    }
    child->deadline = child->started_steady + child->plan.timeout;
    child->next_heartbeat = child->started_steady + options.heartbeat_interval;

    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag(l->id, kPidfd);
    epoll_ctl(epoll.get(), EPOLL_CTL_ADD, child->pidfd.get(), &ev);
    ev.data.u64 = tag(l->id, kOutput);
    epoll_ctl(epoll.get(), EPOLL_CTL_ADD, child->output.get(), &ev);
    if (child->lineage) {
      ev.data.u64 = tag(l->id, kLineage);
      epoll_ctl(epoll.get(), EPOLL_CTL_ADD, child->lineage.get(), &ev);
    }
    auto& ref = *child;
    children.emplace(l->id, std::move(child));
    if (ref.callbacks.on_started) ref.callbacks.on_started(ref.pid, ref.started_at);
    if (ref.stop_ending) signalStop(ref);  // stopped while it was being started
  }

  // Output bytes pass the redactor, then go on.
  void consume(Child& c, std::string_view raw) { deliver(c, c.redactor->feed(raw)); }

  // Redacted bytes go to the tail, output.log and the line splitter.
  void deliver(Child& c, std::string_view safe) {
    if (safe.empty()) return;
    c.tail.append(safe);
    if (c.log_file_written < c.log_file_limit) {
      auto room = std::min<std::uint64_t>(safe.size(), c.log_file_limit - c.log_file_written);
      c.log_file_written += room;
      if (!c.log_file && c.log_pending.size() + room <= kLogFileDeferBytes) {
        c.log_pending.append(safe.substr(0, room));
      } else {
        writeLogFile(c, safe.substr(0, room));
      }
    }
    auto now = Steady::now();
    c.lines.feed(safe, [&](std::string_view line) {
      c.batcher.add(line, now);
      if (c.batcher.due(now)) sendLog(c);
    });
  }

  // Creates output.log on first use (with what was deferred) and appends to it.
  static void writeLogFile(Child& c, std::string_view bytes) {
    if (!c.log_file && !c.log_file_failed) {
      c.log_file.reset(::open((c.plan.run_dir + "/output.log").c_str(),
                              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
      c.log_file_failed = !c.log_file;
      if (c.log_file_failed) {
        logRun(spdlog::level::warn, {c.plan.run_id, {}, {}}, "run {}: cannot create output.log: {}",
               c.plan.run_id, std::strerror(errno));
      }
      if (c.log_file) writeAll(c.log_file.get(), c.log_pending);
      std::string().swap(c.log_pending);
    }
    if (c.log_file) writeAll(c.log_file.get(), bytes);
  }

  static void writeAll(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      auto w = ::write(fd, bytes.data(), bytes.size());
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(w));
    }
  }

  // Reads what the pipe holds now, up to the budget; closes it at EOF.
  void drain(Child& c) {
    if (!c.output) return;
    char buf[64 * 1024];
    std::size_t budget = kReadBudget;
    while (budget > 0) {
      auto n = ::read(c.output.get(), buf, sizeof buf);
      if (n > 0) {
        consume(c, std::string_view(buf, static_cast<std::size_t>(n)));
        budget -= std::min(budget, static_cast<std::size_t>(n));
        // A pipe read short of the buffer took all there was: the next read would only say
        // EAGAIN (a system call per wake-up), and epoll (level-triggered) reports what comes next.
        if (static_cast<std::size_t>(n) < sizeof buf) return;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      // EOF or a read error: the stream is over either way.
      epoll_ctl(epoll.get(), EPOLL_CTL_DEL, c.output.get(), nullptr);
      c.output.reset();
      return;
    }
  }

  // Hands on what the lineage channel holds now, up to the budget; closes it at EOF. Past
  // lineage_max_bytes the bytes are read and dropped.
  void drainLineage(Child& c, std::size_t budget) {
    char buf[64 * 1024];
    while (c.lineage && budget > 0) {
      auto n = ::read(c.lineage.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        epoll_ctl(epoll.get(), EPOLL_CTL_DEL, c.lineage.get(), nullptr);
        c.lineage.reset();
        return;
      }
      auto got = static_cast<std::size_t>(n);
      budget -= std::min(budget, got);
      const auto before = c.lineage_bytes;
      const auto max = options.lineage_max_bytes;
      c.lineage_bytes += got;
      std::size_t room = before >= max ? 0 : std::min<std::size_t>(got, max - before);
      bool truncated_now = !c.lineage_truncated && before + got > max;
      c.lineage_truncated = c.lineage_truncated || truncated_now;
      if ((room > 0 || truncated_now) && c.callbacks.on_lineage) {
        c.callbacks.on_lineage(std::string(buf, room), truncated_now);
      }
    }
  }

  void reap(Child& c) {
    if (c.exited) return;
    // The process is a zombie now, so its pid (= its group id) cannot be reused yet: anything left
    // in its group belongs to this run and is killed now.
    ::kill(-c.pid, SIGKILL);
    siginfo_t info{};
    // The system call, unlike glibc's waitid(), also reports the reaped process's CPU time (with
    // that of the children it waited for), as wait4 does: no read of /proc/<pid>/stat.
    struct rusage usage {};
    if (::syscall(SYS_waitid, P_PIDFD, c.pidfd.get(), &info, WEXITED, &usage) != 0) return;
    c.final_cpu_ms = c.tree->finalCpuMs(usage);
    c.exited = true;
    c.wait_code = info.si_code;
    c.wait_status = info.si_status;
    epoll_ctl(epoll.get(), EPOLL_CTL_DEL, c.pidfd.get(), nullptr);
    c.pidfd.reset();
    if (c.output) {
      drain(c);
      c.linger_until = Steady::now() + kOutputLinger;
    }
  }

  void finishReady() {
    auto now = Steady::now();
    for (auto it = children.begin(); it != children.end();) {
      Child& c = *it->second;
      bool done = c.exited && (!c.output || (c.linger_until && now >= *c.linger_until));
      if (!done) {
        ++it;
        continue;
      }
      // Descendants that left the group (setsid) and still hold the output, or a run that was
      // stopped: the run is over, so they go too. With a cgroup this is one write; without, a
      // /proc scan, done only when something may have escaped.
      if (c.tree->usesCgroup() || c.output || c.stop_ending) c.tree->signalAll(0, SIGKILL);
      if (c.output) {
        drain(c);
        epoll_ctl(epoll.get(), EPOLL_CTL_DEL, c.output.get(), nullptr);
        c.output.reset();
      }
      deliver(c, c.redactor->flush());
      if (c.lineage) {
        // Everything of the run is gone: what the channel holds is all there is.
        drainLineage(c, SIZE_MAX);
        if (c.lineage) {
          epoll_ctl(epoll.get(), EPOLL_CTL_DEL, c.lineage.get(), nullptr);
          c.lineage.reset();
        }
      }
      c.lines.finish([&](std::string_view line) { c.batcher.add(line, now); });
      sendLog(c);

      RunOutcome o;
      o.started_at = c.started_at;
      o.duration = std::chrono::duration_cast<std::chrono::milliseconds>(now - c.started_steady);
      o.dropped_bytes = c.tail.droppedBytes();
      o.output_bytes = c.tail.totalBytes();
      o.tail = c.tail.text();
      if (o.dropped_bytes > 0) {
        o.tail = "[outpost: " + std::to_string(o.dropped_bytes) +
                 " earlier bytes of output not shown]\n" + o.tail;
      }
      o.cpu_time_ms = c.final_cpu_ms;
      o.oom_kills = c.tree->oomKills();
      o.log_dropped_lines = c.batcher.droppedLines();
      if (c.wait_code == CLD_EXITED) {
        o.exit_code = c.wait_status;
        o.ending = RunOutcome::Ending::kExited;
      } else {
        o.signal = c.wait_status;
        o.ending = RunOutcome::Ending::kSignaled;
      }
      if (c.stop_ending) {
        o.ending = *c.stop_ending;
        o.message = c.stop_reason;
        o.stop_cause = c.stop_cause;
      }
      bool succeeded = o.ending == RunOutcome::Ending::kExited && o.exit_code == 0;
      removeRunDir(c, succeeded);
      auto callbacks = std::move(c.callbacks);
      it = children.erase(it);
      --active;
      if (callbacks.on_finished) callbacks.on_finished(std::move(o));
    }
  }

  void removeRunDir(Child& c, bool succeeded) {
    if (c.plan.keep_run_dir_on_failure && !succeeded) {
      if (!c.log_pending.empty()) writeLogFile(c, {});
      return;
    }
    c.log_file.reset();
    if (auto removed = run_dirs.remove(c.plan.run_dir); !removed) {
      logRun(spdlog::level::warn, {c.plan.run_id, {}, {}}, "run {}: cannot remove {}: {}",
             c.plan.run_id, c.plan.run_dir, removed.error());
    }
  }
};

Supervisor::Supervisor(const Clock& clock, ProcessLauncher& launcher, SupervisorOptions options)
    : impl_(std::make_unique<Impl>(clock, launcher, std::move(options), active_)) {}

Supervisor::~Supervisor() {
  shutdown();
}

void Supervisor::shutdown() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->shutting_down = true;
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(impl_->wake.get(), &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Supervisor::launch(LaunchPlan plan, RunCallbacks callbacks,
                        std::unique_ptr<StreamRedactor> redactor) {
  impl_->post(LaunchCmd{std::move(plan), std::move(callbacks), std::move(redactor)});
}

void Supervisor::setOutput(OutputConfig output) {
  impl_->post(OutputCmd{std::move(output)});
}

void Supervisor::stop(const std::string& run_id, std::string reason, StopCause cause) {
  impl_->post(StopCmd{run_id, std::move(reason), cause});
}

void Supervisor::stopAll(std::string reason, StopCause cause) {
  impl_->post(StopCmd{std::nullopt, std::move(reason), cause});
}

bool Supervisor::usesCgroups() const {
  return impl_->cgroups != nullptr;
}
const std::string& Supervisor::cgroupNote() const {
  return impl_->cgroup_note;
}

}  // namespace outpost::runner
