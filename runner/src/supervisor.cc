#include "outpost/runner/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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
#include "outpost/runner/output.h"
#include "process_tree.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

// After the process exits, how long its output pipe may stay open (held by a descendant) before
// the run's remaining processes are killed and the run finished without the rest of the output.
constexpr std::chrono::milliseconds kOutputLinger{1000};
// Most bytes read from one pipe per wake-up, so a flooding run cannot starve the others.
constexpr std::size_t kReadBudget = 1 << 20;

struct LaunchCmd {
  LaunchPlan plan;
  RunCallbacks callbacks;
  std::unique_ptr<StreamRedactor> redactor;
};
struct StopCmd {
  std::optional<std::string> run_id;  // nullopt: every run
  std::string reason;
};
using Command = std::variant<LaunchCmd, StopCmd>;

struct Child {
  LaunchPlan plan;
  RunCallbacks callbacks;
  std::unique_ptr<StreamRedactor> redactor;
  std::unique_ptr<ProcessTree> tree;
  pid_t pid = -1;
  UniqueFd pidfd;
  UniqueFd output;
  UniqueFd log_file;  // output.log in the run directory, up to log_file_limit
  std::uint64_t log_file_limit;
  std::uint64_t log_file_written = 0;
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
  std::string stop_reason;

  // The template's output limits where it sets them, else the supervisor's.
  Child(const SupervisorOptions& o, const OutputLimits& t)
      : log_file_limit(t.log_file_bytes ? t.log_file_bytes : o.log_file_bytes),
        tail(t.tail_bytes ? t.tail_bytes : o.tail_bytes),
        lines(o.line_max_bytes),
        batcher(o.log_batch_bytes, o.log_batch_interval,
                t.log_rate_bytes ? t.log_rate_bytes : o.log_rate_bytes) {}
};

}  // namespace

struct Supervisor::Impl {
  const Clock& clock;
  ProcessLauncher& launcher;
  SupervisorOptions options;
  std::atomic<std::size_t>& active;
  std::unique_ptr<CgroupPool> cgroups;  // null: no cgroups here, see cgroup_note
  std::string cgroup_note;

  UniqueFd epoll;
  UniqueFd wake;
  std::mutex mutex;  // guards commands and shutting_down
  std::deque<Command> commands;
  bool shutting_down = false;

  // Owned by the supervisor thread only.
  std::map<std::uint64_t, std::unique_ptr<Child>> children;
  std::uint64_t next_id = 1;
  std::thread thread;

  Impl(const Clock& c, ProcessLauncher& l, SupervisorOptions o, std::atomic<std::size_t>& a)
      : clock(c), launcher(l), options(std::move(o)), active(a) {
    if (auto root = CgroupRoot::open(options.cgroup, cgroup_note)) {
      cgroups = std::make_unique<CgroupPool>(root->path());
      cgroup_note = "per-run cgroups under " + root->path();
    }
    epoll.reset(epoll_create1(EPOLL_CLOEXEC));
    wake.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!epoll || !wake) throw std::runtime_error("supervisor: cannot create epoll/eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev);
    thread = std::thread([this] { loop(); });
  }

  void post(Command c) {
    {
      std::lock_guard lock(mutex);
      commands.push_back(std::move(c));
    }
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof one);
  }

  // epoll tags: 0 is the wake eventfd; otherwise id*2 (+1 for the pid fd).
  static std::uint64_t tag(std::uint64_t id, bool is_pidfd) { return id * 2 + (is_pidfd ? 1 : 0); }

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
        auto it = children.find(t / 2);
        if (it == children.end()) continue;
        if (t % 2 == 1) {
          reap(*it->second);
        } else {
          drain(*it->second);
        }
      }
      if (!takeCommands()) break;
      checkTimers();
      finishReady();
      if (cgroups && cgroups->draining()) cgroups->reclaim();
    }
    // Shutting down: nothing may outlive the worker.
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
      } else {
        auto& s = std::get<StopCmd>(c);
        for (auto& [id, child] : children) {
          if (!s.run_id || child->plan.run_id == *s.run_id) {
            requestStop(*child, RunOutcome::Ending::kCancelled, s.reason);
          }
        }
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

  void requestStop(Child& c, RunOutcome::Ending ending, std::string reason) {
    if (c.exited || c.stop_ending) return;  // first reason wins
    c.stop_ending = ending;
    c.stop_reason = std::move(reason);
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

  void failToStart(LaunchCmd& cmd, const std::string& message, bool remove_dir = true) {
    RunOutcome o;
    o.ending = RunOutcome::Ending::kSpawnFailed;
    o.message = message;
    o.started_at = clock.now();
    if (remove_dir) {
      std::error_code ec;
      fs::remove_all(cmd.plan.run_dir, ec);
    }
    --active;
    if (cmd.callbacks.on_finished) cmd.callbacks.on_finished(std::move(o));
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
    const LaunchPlan& plan = cmd.plan;
    // The run directory is named by run_id: a second live run with that id would share it.
    for (const auto& [id, c] : children) {
      if (c->plan.run_id == plan.run_id) {
        return failToStart(cmd, "run " + plan.run_id + " is already running here", false);
      }
    }
    std::error_code ec;
    auto parent = fs::path(plan.run_dir).parent_path();
    fs::create_directories(parent, ec);
    if (ec)
      return failToStart(
          cmd, "cannot create the work directory " + parent.string() + ": " + ec.message());
    fs::remove_all(plan.run_dir, ec);  // left over from an earlier attempt
    if (::mkdir(plan.run_dir.c_str(), 0700) != 0) {
      return failToStart(
          cmd, "cannot create the run directory " + plan.run_dir + ": " + std::strerror(errno));
    }
    UniqueFd stdin_fd;
    if (plan.recipe_delivery == RecipeDelivery::kFile ||
        plan.recipe_delivery == RecipeDelivery::kStdin) {
      auto recipe_path = plan.run_dir + "/recipe";
      if (auto w = writePrivateFile(recipe_path, plan.recipe); !w) {
        return failToStart(cmd, w.error());
      }
      if (plan.recipe_delivery == RecipeDelivery::kStdin) {
        stdin_fd.reset(::open(recipe_path.c_str(), O_RDONLY | O_CLOEXEC));
        ::unlink(recipe_path.c_str());
      }
    }
    if (!stdin_fd) stdin_fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (::stat(plan.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return failToStart(cmd, "the working directory " + plan.working_dir + " does not exist");
    }
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
      return failToStart(cmd, std::string("cannot create a pipe: ") + std::strerror(errno));
    }
    UniqueFd read_end(pipefd[0]), write_end(pipefd[1]);

    auto child = std::make_unique<Child>(options, plan.output);
    child->tree = std::make_unique<ProcessTree>(cgroups.get(), plan.run_id);
    if (child->log_file_limit > 0) {
      child->log_file.reset(::open((plan.run_dir + "/output.log").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    }
    child->started_at = clock.now();
    child->started_steady = Steady::now();
    auto pid = launcher.launch(
        plan, LaunchIo{stdin_fd.get(), write_end.get(), child->tree->cgroupProcsFd()});
    if (!pid) return failToStart(cmd, pid.error());
    write_end.reset();  // the child holds its copy; EOF comes when every holder is gone

    child->pid = *pid;
    child->pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0)));
    if (!child->pidfd) {
      // Cannot watch it: do not leave it running.
      child->tree->signalAll(*pid, SIGKILL);
      ::waitpid(*pid, nullptr, 0);
      return failToStart(cmd, std::string("pidfd_open failed: ") + std::strerror(errno));
    }
    ::fcntl(read_end.get(), F_SETFL, ::fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);
    child->output = std::move(read_end);
    child->deadline = child->started_steady + plan.timeout;
    child->next_heartbeat = child->started_steady + options.heartbeat_interval;
    child->plan = std::move(cmd.plan);
    child->callbacks = std::move(cmd.callbacks);
    child->redactor =
        cmd.redactor ? std::move(cmd.redactor) : std::make_unique<PassThroughRedactor>();

    std::uint64_t id = next_id++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag(id, true);
    epoll_ctl(epoll.get(), EPOLL_CTL_ADD, child->pidfd.get(), &ev);
    ev.data.u64 = tag(id, false);
    epoll_ctl(epoll.get(), EPOLL_CTL_ADD, child->output.get(), &ev);
    auto& ref = *child;
    children.emplace(id, std::move(child));
    if (ref.callbacks.on_started) ref.callbacks.on_started(ref.pid, ref.started_at);
  }

  // Output bytes pass the redactor, then go on.
  void consume(Child& c, std::string_view raw) { deliver(c, c.redactor->feed(raw)); }

  // Redacted bytes go to the tail, output.log and the line splitter.
  void deliver(Child& c, std::string_view safe) {
    if (safe.empty()) return;
    c.tail.append(safe);
    if (c.log_file && c.log_file_written < c.log_file_limit) {
      auto room = std::min<std::uint64_t>(safe.size(), c.log_file_limit - c.log_file_written);
      auto w = ::write(c.log_file.get(), safe.data(), room);
      if (w > 0) c.log_file_written += static_cast<std::uint64_t>(w);
    }
    std::vector<std::string> lines;
    c.lines.feed(safe, lines);
    auto now = Steady::now();
    for (auto& l : lines) {
      c.batcher.add(std::move(l), now);
      if (c.batcher.due(now)) sendLog(c);
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

  void reap(Child& c) {
    if (c.exited) return;
    // The process is a zombie now, so its pid (= its group id) cannot be reused yet: its CPU time
    // is still readable, and anything left in its group belongs to this run and is killed now.
    c.final_cpu_ms = c.tree->finalCpuMs(c.pid);
    ::kill(-c.pid, SIGKILL);
    siginfo_t info{};
    if (waitid(P_PIDFD, static_cast<id_t>(c.pidfd.get()), &info, WEXITED) != 0) return;
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
      std::vector<std::string> last;
      c.lines.finish(last);
      for (auto& l : last) c.batcher.add(std::move(l), now);
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
      }
      bool succeeded = o.ending == RunOutcome::Ending::kExited && o.exit_code == 0;
      removeRunDir(c, succeeded);
      auto callbacks = std::move(c.callbacks);
      it = children.erase(it);
      --active;
      if (callbacks.on_finished) callbacks.on_finished(std::move(o));
    }
  }

  static void removeRunDir(const Child& c, bool succeeded) {
    if (c.plan.keep_run_dir_on_failure && !succeeded) return;
    std::error_code ec;
    fs::remove_all(c.plan.run_dir, ec);
    if (ec)
      spdlog::warn("run {}: cannot remove {}: {}", c.plan.run_id, c.plan.run_dir, ec.message());
  }
};

Supervisor::Supervisor(const Clock& clock, ProcessLauncher& launcher, SupervisorOptions options)
    : impl_(std::make_unique<Impl>(clock, launcher, std::move(options), active_)) {}

Supervisor::~Supervisor() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->shutting_down = true;
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(impl_->wake.get(), &one, sizeof one);
  impl_->thread.join();
}

void Supervisor::launch(LaunchPlan plan, RunCallbacks callbacks,
                        std::unique_ptr<StreamRedactor> redactor) {
  impl_->post(LaunchCmd{std::move(plan), std::move(callbacks), std::move(redactor)});
}

void Supervisor::stop(const std::string& run_id, std::string reason) {
  impl_->post(StopCmd{run_id, std::move(reason)});
}

void Supervisor::stopAll(std::string reason) {
  impl_->post(StopCmd{std::nullopt, std::move(reason)});
}

bool Supervisor::usesCgroups() const {
  return impl_->cgroups != nullptr;
}
const std::string& Supervisor::cgroupNote() const {
  return impl_->cgroup_note;
}

}  // namespace outpost
