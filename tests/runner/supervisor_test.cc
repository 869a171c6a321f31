// Supervisor + PosixLauncher with real processes: how runs end (exit, signal, timeout, stop,
// spawn failure), how the recipe reaches them, what happens to the run directory, and that
// output floods and stray grandchildren are contained. Plans come from planRun, as in the worker.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_printers.h"
#include "outcome_printers.h"
#include "outpost/common/clock.h"
#include "outpost/runner/plan.h"
#include "outpost/runner/supervisor.h"

namespace outpost::runner {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;
using Ending = RunOutcome::Ending;
using ::testing::HasSubstr;
using ::testing::Not;

// Only a safety net so that a broken supervisor fails the test instead of hanging it; never a
// statement about how fast anything is.
constexpr auto kSafetyNet = seconds(30);
constexpr std::size_t kTailBytes = 4096;
const system_clock::time_point kNow{milliseconds(1'795'255'200'000)};

class FixedClock final : public Clock {
 public:
  system_clock::time_point now() const override { return kNow; }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::now();
  }
};

// One launched run: its callbacks fulfil these.
struct RunWatch {
  std::promise<std::pair<pid_t, system_clock::time_point>> started;
  std::promise<RunOutcome> finished;
  std::shared_future<std::pair<pid_t, system_clock::time_point>> started_f =
      started.get_future().share();
  std::future<RunOutcome> finished_f = finished.get_future();
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// True once `pid` is no longer a live process. A zombie counts as gone: it has been killed, and
// whether its new parent (this container's init) ever reaps it is not the supervisor's business.
bool processGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

bool waitUntilGone(pid_t pid) {
  auto limit = std::chrono::steady_clock::now() + kSafetyNet;
  while (!processGone(pid)) {
    if (std::chrono::steady_clock::now() > limit) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

bool waitForFile(const std::string& path) {
  auto limit = std::chrono::steady_clock::now() + kSafetyNet;
  while (!fs::exists(path)) {
    if (std::chrono::steady_clock::now() > limit) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// True once `pid` has exec'd with exactly `env` as its environment, the way the sweep of leftovers
// reads it (/proc/<pid>/environ); until the exec is done, /proc shows this test's environment, or
// none. False after the safety net, or as soon as the process is gone when `or_gone`.
bool waitForExec(pid_t pid, const std::vector<std::string>& env, bool or_gone = false) {
  std::string want;
  for (const auto& e : env) want += e + '\0';
  const std::string path = "/proc/" + std::to_string(pid) + "/environ";
  auto limit = std::chrono::steady_clock::now() + kSafetyNet;
  while (readFile(path) != want) {
    if (or_gone && processGone(pid)) return true;
    if (std::chrono::steady_clock::now() > limit) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// Starts processes with PosixLauncher, but holds the launch of one chosen run until released: a
// launch that takes long (a slow exec, a busy machine) without depending on timing.
class GatedLauncher final : public ProcessLauncher {
 public:
  void hold(std::string run_id) {
    std::lock_guard lock(mutex_);
    held_ = std::move(run_id);
  }
  // True once the held run's launch is waiting at the gate.
  bool awaitHolding() {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kSafetyNet, [this] { return holding_; });
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    cv_.notify_all();
  }
  // The held run's pid once it was started, else -1.
  pid_t heldPid() {
    std::lock_guard lock(mutex_);
    return held_pid_;
  }

  std::expected<pid_t, std::string> launch(const LaunchPlan& plan, const LaunchIo& io) override {
    bool held;
    {
      std::unique_lock lock(mutex_);
      held = plan.run_id == held_;
      if (held) {
        holding_ = true;
        cv_.notify_all();
        cv_.wait(lock, [this] { return released_; });
      }
    }
    auto pid = real_.launch(plan, io);
    if (held && pid) {
      std::lock_guard lock(mutex_);
      held_pid_ = *pid;
    }
    return pid;
  }

 private:
  PosixLauncher real_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string held_;
  bool holding_ = false;
  bool released_ = false;
  pid_t held_pid_ = -1;
};

class SupervisorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The SIGSEGV test must not leave core files around.
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
  }

  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "outpost-supervisor-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    work_dir_ = fs::canonical(pattern).string();
    supervisor_ = std::make_unique<Supervisor>(
        clock_, launcher_, SupervisorOptions{.output = {.tail_bytes = kTailBytes}});
  }

  void TearDown() override {
    supervisor_.reset();
    fs::remove_all(work_dir_);
  }

  TemplateConfig tmpl(std::vector<std::string> argv) {
    TemplateConfig t;
    t.name = "test";
    t.argv = std::move(argv);
    t.env_passthrough = {"PATH"};
    t.recipe = RecipeDelivery::kNone;
    t.default_timeout = seconds(20);
    t.max_timeout = seconds(60);
    t.kill_grace = milliseconds(200);
    return t;
  }
  TemplateConfig sh(const std::string& script) { return tmpl({"sh", "-c", script}); }

  LaunchPlan plan(const TemplateConfig& t, RunRequest r = {}) {
    if (r.run_id.empty()) r.run_id = ids_.next();
    if (r.job_id.empty()) r.job_id = "job-1";
    auto p = planRun(t, r, worker_env_, work_dir_);
    EXPECT_TRUE(p.has_value()) << p.error();
    return p.value_or(LaunchPlan{});
  }

  std::shared_ptr<RunWatch> launch(LaunchPlan p, Supervisor* on = nullptr) {
    auto w = std::make_shared<RunWatch>();
    RunCallbacks cb;
    cb.on_started = [w](pid_t pid, system_clock::time_point at) {
      w->started.set_value({pid, at});
    };
    cb.on_finished = [w](RunOutcome o) { w->finished.set_value(std::move(o)); };
    (on ? *on : *supervisor_).launch(std::move(p), std::move(cb));
    return w;
  }

  static pid_t awaitStarted(RunWatch& w) {
    if (w.started_f.wait_for(kSafetyNet) != std::future_status::ready) {
      ADD_FAILURE() << "the run did not start";
      return -1;
    }
    return w.started_f.get().first;
  }

  static RunOutcome await(RunWatch& w) {
    if (w.finished_f.wait_for(kSafetyNet) != std::future_status::ready) {
      ADD_FAILURE() << "the run did not finish";
      return RunOutcome{};
    }
    return w.finished_f.get();
  }

  RunOutcome run(const TemplateConfig& t, RunRequest r = {}) { return await(*launch(plan(t, r))); }

  FixedClock clock_;
  UuidGenerator ids_{clock_};
  PosixLauncher launcher_;
  std::unique_ptr<Supervisor> supervisor_;
  std::string work_dir_;
  Environment worker_env_ = {
      {"PATH", "/usr/bin:/bin"}, {"HOME", "/root"}, {"SECRET_TOKEN", "do-not-leak"}};
};

// ---------------------------------------------------------------------------------------------
// How runs end

TEST_F(SupervisorTest, SuccessfulRunExitsZeroWithItsOutput) {
  auto w = launch(plan(sh("echo hi")));
  RunOutcome o = await(*w);
  EXPECT_EQ(o.ending, Ending::kExited);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.signal, 0);
  EXPECT_EQ(o.message, "");
  EXPECT_EQ(o.tail, "hi\n");
  EXPECT_EQ(o.output_bytes, 3u);
  EXPECT_EQ(o.dropped_bytes, 0u);
  EXPECT_EQ(o.started_at, kNow);
  EXPECT_EQ(supervisor_->active(), 0u);
}

TEST_F(SupervisorTest, StartedIsReportedBeforeFinishedWithThePidAndStartTime) {
  auto w = launch(plan(sh("exit 0")));
  await(*w);
  ASSERT_EQ(w->started_f.wait_for(seconds(0)), std::future_status::ready);
  auto [pid, at] = w->started_f.get();
  EXPECT_GT(pid, 0);
  EXPECT_EQ(at, kNow);
}

TEST_F(SupervisorTest, NonZeroExitCodeIsReported) {
  RunOutcome o = run(sh("echo failing >&2; exit 3"));
  EXPECT_EQ(o.ending, Ending::kExited);
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_EQ(o.tail, "failing\n");
}

TEST_F(SupervisorTest, DeathBySignalIsReported) {
  RunOutcome o = run(sh("kill -SEGV $$"));
  EXPECT_EQ(o.ending, Ending::kSignaled);
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.exit_code, -1);
}

// The run's CPU time counts its process and the children it waited for, as the process itself
// sees them (`times`: its own, then its children's, at the shell's 10 ms resolution); without a
// cgroup that is the only count there is.
TEST_F(SupervisorTest, CpuTimeCountsTheProcessAndTheChildrenItWaitedFor) {
  for (const char* cgroup : {"off", "auto"}) {
    SCOPED_TRACE(cgroup);
    Supervisor own(clock_, launcher_,
                   SupervisorOptions{.output = {.tail_bytes = kTailBytes}, .cgroup = cgroup});
    auto w = launch(plan(sh("(i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done); times")), &own);
    RunOutcome o = await(*w);
    ASSERT_EQ(o.exit_code, 0) << o.tail;
    // "0m0.00s 0m0.00s\n0m0.41s 0m0.01s\n": the second line is the children's user and system.
    std::istringstream in(o.tail);
    std::string self_line, children_line;
    std::getline(in, self_line);
    std::getline(in, children_line);
    int um = 0, sm = 0;
    double us = 0, ss = 0;
    ASSERT_EQ(std::sscanf(children_line.c_str(), "%dm%lfs %dm%lfs", &um, &us, &sm, &ss), 4)
        << o.tail;
    const auto children_ms = static_cast<std::int64_t>((um * 60 + us + sm * 60 + ss) * 1000);
    ASSERT_GT(children_ms, 0) << "the loop burned measurable CPU: " << o.tail;
    EXPECT_GE(o.cpu_time_ms, children_ms - 20) << o.tail;
  }
}

// A SIGKILL Outpost did not send is not blamed on the OOM killer unless the kernel says so: with
// a memory controller in the run's cgroup its memory.events counts oom_kill; elsewhere nobody can
// tell, and the message does not guess.
TEST_F(SupervisorTest, AKillFromOutsideIsNotBlamedOnMemoryUnlessTheKernelSaysSo) {
  for (const char* cgroup : {"off", "auto"}) {
    SCOPED_TRACE(cgroup);
    Supervisor own(clock_, launcher_,
                   SupervisorOptions{.output = {.tail_bytes = kTailBytes}, .cgroup = cgroup});
    RunOutcome o = await(*launch(plan(sh("kill -KILL $$")), &own));
    ASSERT_EQ(o.ending, Ending::kSignaled);
    EXPECT_EQ(o.signal, SIGKILL);
    EXPECT_EQ(o.oom_kills.value_or(0), 0u);
    const auto message = describeFailure(o);
    EXPECT_THAT(message, HasSubstr("killed by SIGKILL from outside Outpost")) << message;
    EXPECT_THAT(message, Not(HasSubstr("memory"))) << message;
  }
}

TEST(DescribeFailure, SaysWhatTheKernelCountedAndGuessesNothing) {
  RunOutcome o;
  o.ending = Ending::kSignaled;
  o.signal = SIGKILL;
  EXPECT_EQ(describeFailure(o), "killed by SIGKILL from outside Outpost");
  o.oom_kills = 0;
  EXPECT_EQ(describeFailure(o),
            "killed by SIGKILL from outside Outpost (not the OOM killer: its cgroup counted no "
            "oom_kill)");
  o.oom_kills = 2;
  EXPECT_EQ(describeFailure(o),
            "killed by SIGKILL: out of memory: its cgroup's memory.events counted 2 OOM kill(s)");
  o.ending = Ending::kExited;
  o.exit_code = 137;
  o.oom_kills = std::nullopt;
  EXPECT_EQ(describeFailure(o), "exited with status 137");
  o.oom_kills = 1;
  EXPECT_EQ(describeFailure(o),
            "exited with status 137 (out of memory: its cgroup's memory.events counted 1 OOM "
            "kill(s))");
  o.exit_code = 0;
  EXPECT_EQ(describeFailure(o), "");
  o.ending = Ending::kSignaled;
  o.signal = SIGXCPU;
  EXPECT_EQ(describeFailure(o),
            "killed by SIGXCPU: it used up its CPU time limit (limits.cpu_time)");
}

TEST_F(SupervisorTest, StdoutAndStderrAreBothCaptured) {
  RunOutcome o = run(sh("echo out; echo err >&2; echo out2"));
  EXPECT_EQ(o.tail, "out\nerr\nout2\n");
  EXPECT_EQ(o.output_bytes, 13u);
}

TEST_F(SupervisorTest, InvalidUtf8OutputIsSanitized) {
  RunOutcome o = run(sh("printf '\\377ok\\n'"));
  EXPECT_EQ(o.tail, "\xEF\xBF\xBDok\n");
  EXPECT_EQ(o.output_bytes, 4u);
}

TEST_F(SupervisorTest, RunPastItsTimeoutIsTimedOut) {
  TemplateConfig t = tmpl({"sleep", "30"});
  // A long grace: on a loaded machine SIGKILL could otherwise land before the TERMed process
  // ran again, and it would be reported as killed by SIGKILL.
  t.kill_grace = seconds(20);
  RunRequest r;
  r.timeout = milliseconds(200);
  RunOutcome o = run(t, r);
  EXPECT_EQ(o.ending, Ending::kTimedOut);
  EXPECT_THAT(o.message, HasSubstr("timed out"));
  EXPECT_EQ(o.signal, SIGTERM);
}

// The timeout runs from the start of the process, so the test cannot hold the TERM back until sh
// has set its trap. The run says "trapped" once its trap is set; one that ended without saying so
// had its TERM before the trap (sh died of it), proves nothing about the grace, and runs again
// with a longer timeout.
TEST_F(SupervisorTest, TimedOutRunThatIgnoresTermIsKilledAfterTheGrace) {
  TemplateConfig t = sh("trap '' TERM; echo trapped; sleep 30");
  for (auto timeout : {milliseconds(1000), milliseconds(4000), milliseconds(16000)}) {
    SCOPED_TRACE(timeout.count());
    RunRequest r;
    r.timeout = timeout;
    RunOutcome o = run(t, r);
    EXPECT_EQ(o.ending, Ending::kTimedOut);
    if (o.tail.find("trapped") == std::string::npos) {
      EXPECT_EQ(o.signal, SIGTERM) << "without its trap, sh dies of the TERM: " << o.tail;
      continue;
    }
    EXPECT_EQ(o.signal, SIGKILL);
    return;
  }
  FAIL() << "sh never set its trap before its timeout, even given 16 s";
}

// ---------------------------------------------------------------------------------------------
// Stopping

TEST_F(SupervisorTest, StopCancelsTheRunWithTheReason) {
  TemplateConfig t = tmpl({"sleep", "30"});
  t.kill_grace = seconds(20);  // so that it is the TERM, not a racing KILL, that ends it
  LaunchPlan p = plan(t);
  std::string run_id = p.run_id;
  auto w = launch(std::move(p));
  ASSERT_GT(awaitStarted(*w), 0);
  EXPECT_EQ(supervisor_->active(), 1u);
  supervisor_->stop(run_id, "cancelled by alice");
  RunOutcome o = await(*w);
  EXPECT_EQ(o.ending, Ending::kCancelled);
  EXPECT_EQ(o.message, "cancelled by alice");
  EXPECT_EQ(o.signal, SIGTERM);
  EXPECT_EQ(supervisor_->active(), 0u);
}

TEST_F(SupervisorTest, StoppedRunThatIgnoresTermIsKilledAfterTheGrace) {
  LaunchPlan p = plan(sh("trap '' TERM; touch \"$OUTPOST_RUN_DIR/trapped\"; sleep 30"));
  std::string run_id = p.run_id;
  std::string trapped = p.run_dir + "/trapped";
  auto w = launch(std::move(p));
  ASSERT_GT(awaitStarted(*w), 0);
  // Stop only once the trap is set; a TERM before that would simply kill sh.
  ASSERT_TRUE(waitForFile(trapped));
  supervisor_->stop(run_id, "cancelled");
  RunOutcome o = await(*w);
  EXPECT_EQ(o.ending, Ending::kCancelled);
  EXPECT_EQ(o.signal, SIGKILL);
}

TEST_F(SupervisorTest, StopOfAnUnknownRunIsIgnoredAndTheFirstReasonWins) {
  LaunchPlan p = plan(tmpl({"sleep", "30"}));
  std::string run_id = p.run_id;
  auto w = launch(std::move(p));
  ASSERT_GT(awaitStarted(*w), 0);
  supervisor_->stop("00000000-0000-7000-8000-000000000000", "wrong run");
  supervisor_->stop(run_id, "first");
  supervisor_->stop(run_id, "second");
  RunOutcome o = await(*w);
  EXPECT_EQ(o.ending, Ending::kCancelled);
  EXPECT_EQ(o.message, "first");
}

TEST_F(SupervisorTest, StopAllCancelsEveryRun) {
  auto a = launch(plan(tmpl({"sleep", "30"})));
  auto b = launch(plan(tmpl({"sleep", "30"})));
  ASSERT_GT(awaitStarted(*a), 0);
  ASSERT_GT(awaitStarted(*b), 0);
  EXPECT_EQ(supervisor_->active(), 2u);
  supervisor_->stopAll("worker shutting down");
  for (auto* w : {a.get(), b.get()}) {
    RunOutcome o = await(*w);
    EXPECT_EQ(o.ending, Ending::kCancelled);
    EXPECT_EQ(o.message, "worker shutting down");
  }
}

TEST_F(SupervisorTest, DestroyingTheSupervisorKillsRunningRuns) {
  auto own = std::make_unique<Supervisor>(clock_, launcher_,
                                          SupervisorOptions{.output = {.tail_bytes = kTailBytes}});
  LaunchPlan p = plan(tmpl({"sleep", "30"}));
  std::string run_dir = p.run_dir;
  auto w = launch(std::move(p), own.get());
  pid_t pid = awaitStarted(*w);
  ASSERT_GT(pid, 0);
  own.reset();
  // The supervisor reaped its own child, so the pid is gone outright.
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(fs::exists(run_dir));
}

// The supervisor thread hands launches to launch threads: a run whose process is slow to start
// holds up neither the runs after it nor the output, ends and stops of the others.
TEST_F(SupervisorTest, ARunSlowToStartDoesNotHoldUpTheOthers) {
  GatedLauncher gated;
  Supervisor own(clock_, gated,
                 SupervisorOptions{.output = {.tail_bytes = kTailBytes}, .launch_threads = 2});
  LaunchPlan slow = plan(sh("echo slow"));
  gated.hold(slow.run_id);
  auto w_slow = launch(std::move(slow), &own);
  ASSERT_TRUE(gated.awaitHolding());
  RunOutcome o = await(*launch(plan(sh("echo quick")), &own));
  EXPECT_EQ(o.ending, Ending::kExited);
  EXPECT_EQ(o.tail, "quick\n");
  EXPECT_EQ(w_slow->started_f.wait_for(seconds(0)), std::future_status::timeout);
  gated.release();
  RunOutcome s = await(*w_slow);
  EXPECT_EQ(s.ending, Ending::kExited);
  EXPECT_EQ(s.tail, "slow\n");
}

TEST_F(SupervisorTest, AStopWhileTheProcessIsStartingCancelsItOnceItRuns) {
  GatedLauncher gated;
  Supervisor own(clock_, gated, SupervisorOptions{.output = {.tail_bytes = kTailBytes}});
  LaunchPlan p = plan(tmpl({"sleep", "30"}));
  std::string run_id = p.run_id;
  gated.hold(run_id);
  auto w = launch(std::move(p), &own);
  ASSERT_TRUE(gated.awaitHolding());
  own.stop(run_id, "cancelled while starting");
  gated.release();
  RunOutcome o = await(*w);
  EXPECT_EQ(o.ending, Ending::kCancelled);
  EXPECT_EQ(o.message, "cancelled while starting");
  EXPECT_GT(gated.heldPid(), 0);  // it did start, and was stopped
}

TEST_F(SupervisorTest, DestroyingTheSupervisorDuringALaunchLeavesNothingRunning) {
  GatedLauncher gated;
  auto own = std::make_unique<Supervisor>(clock_, gated,
                                          SupervisorOptions{.output = {.tail_bytes = kTailBytes}});
  LaunchPlan p = plan(tmpl({"sleep", "30"}));
  std::string run_dir = p.run_dir;
  gated.hold(p.run_id);
  auto w = launch(std::move(p), own.get());
  ASSERT_TRUE(gated.awaitHolding());
  // The destructor waits for the launch under way. Released just after destruction began (or,
  // on a slow machine, before it): either way nothing of the run may be left.
  std::thread destroy([&] { own.reset(); });
  std::this_thread::sleep_for(milliseconds(50));
  gated.release();
  destroy.join();
  pid_t pid = gated.heldPid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(waitUntilGone(pid));
  EXPECT_FALSE(fs::exists(run_dir));
}

// ---------------------------------------------------------------------------------------------
// Runs that cannot start

TEST_F(SupervisorTest, RelativeProgramPathIsFoundInTheWorkingDir) {
  std::string dir = work_dir_ + "/bin-dir";
  fs::create_directory(dir);
  std::ofstream(dir + "/tool.sh") << "#!/bin/sh\necho tool ran\n";
  fs::permissions(dir + "/tool.sh", fs::perms::owner_all);
  TemplateConfig t = tmpl({"./tool.sh"});
  t.working_dir = dir;
  RunOutcome o = run(t);
  EXPECT_EQ(o.ending, Ending::kExited) << o.message;
  EXPECT_EQ(o.tail, "tool ran\n");
}

TEST_F(SupervisorTest, MissingProgramFailsToSpawnNamingIt) {
  LaunchPlan p = plan(tmpl({"no-such-program-for-outpost", "--flag"}));
  std::string run_dir = p.run_dir;
  auto w = launch(std::move(p));
  RunOutcome o = await(*w);
  EXPECT_EQ(o.ending, Ending::kSpawnFailed);
  EXPECT_THAT(o.message, HasSubstr("no-such-program-for-outpost"));
  EXPECT_EQ(w->started_f.wait_for(seconds(0)), std::future_status::timeout);
  EXPECT_FALSE(fs::exists(run_dir));
  EXPECT_EQ(supervisor_->active(), 0u);
}

TEST_F(SupervisorTest, MissingProgramByPathFailsToSpawnNamingIt) {
  RunOutcome o = run(tmpl({"/nonexistent/bin/tool"}));
  EXPECT_EQ(o.ending, Ending::kSpawnFailed);
  EXPECT_THAT(o.message, HasSubstr("/nonexistent/bin/tool"));
}

TEST_F(SupervisorTest, MissingWorkingDirFailsToSpawnNamingIt) {
  TemplateConfig t = sh("echo never");
  t.working_dir = work_dir_ + "/no-such-dir";
  RunOutcome o = run(t);
  EXPECT_EQ(o.ending, Ending::kSpawnFailed);
  EXPECT_THAT(o.message, HasSubstr(t.working_dir));
  EXPECT_EQ(o.tail, "");
}

TEST_F(SupervisorTest, WorkingDirThatIsAFileFailsToSpawn) {
  std::string file = work_dir_ + "/a-file";
  std::ofstream(file) << "x";
  TemplateConfig t = sh("echo never");
  t.working_dir = file;
  RunOutcome o = run(t);
  EXPECT_EQ(o.ending, Ending::kSpawnFailed);
  EXPECT_THAT(o.message, HasSubstr(file));
}

TEST_F(SupervisorTest, TemplateWorkingDirIsWhereTheProcessStarts) {
  std::string dir = work_dir_ + "/srv";
  fs::create_directory(dir);
  TemplateConfig t = sh("pwd");
  t.working_dir = dir;
  EXPECT_EQ(run(t).tail, dir + "\n");
}

// ---------------------------------------------------------------------------------------------
// The recipe

constexpr const char* kRecipe = "source:\n  type: mysql\n  password: ${secret:mysql}\n";

TEST_F(SupervisorTest, RecipeFileIsPrivateAndReadableByTheRun) {
  TemplateConfig t = sh("stat -c %a {recipe_file}; cat \"$OUTPOST_RECIPE_FILE\"");
  t.recipe = RecipeDelivery::kFile;
  RunRequest r;
  r.recipe = kRecipe;
  RunOutcome o = run(t, r);
  EXPECT_EQ(o.ending, Ending::kExited);
  EXPECT_EQ(o.tail, std::string("600\n") + kRecipe);
}

TEST_F(SupervisorTest, RecipeFileKeptOnFailureHasMode0600AndTheContent) {
  TemplateConfig t = sh("exit 1");
  t.recipe = RecipeDelivery::kFile;
  t.keep_run_dir_on_failure = true;
  RunRequest r;
  r.recipe = kRecipe;
  LaunchPlan p = plan(t, r);
  std::string recipe_file = p.run_dir + "/recipe";
  RunOutcome o = await(*launch(std::move(p)));
  EXPECT_EQ(o.exit_code, 1);
  struct stat st {};
  ASSERT_EQ(::stat(recipe_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(readFile(recipe_file), kRecipe);
}

TEST_F(SupervisorTest, RecipeOnStdinReachesTheRunAndLeavesNoFile) {
  TemplateConfig t = sh("cat; ls -A \"$OUTPOST_RUN_DIR\"");
  t.recipe = RecipeDelivery::kStdin;
  RunRequest r;
  r.recipe = kRecipe;
  RunOutcome o = run(t, r);
  EXPECT_EQ(o.ending, Ending::kExited);
  // `ls -A` lists nothing: no recipe file was written (and output.log waits for more output).
  EXPECT_EQ(o.tail, std::string(kRecipe));
}

TEST_F(SupervisorTest, RecipeInTheEnvironmentReachesTheRun) {
  TemplateConfig t = sh("printf %s \"$OUTPOST_RECIPE\"");
  t.recipe = RecipeDelivery::kEnv;
  RunRequest r;
  r.recipe = kRecipe;
  EXPECT_EQ(run(t, r).tail, kRecipe);
}

TEST_F(SupervisorTest, WithoutRecipeDeliveryStdinIsEmptyAndNoFileIsWritten) {
  TemplateConfig t = sh("cat; ls -A \"$OUTPOST_RUN_DIR\"");
  RunRequest r;
  r.recipe = kRecipe;
  RunOutcome o = run(t, r);
  EXPECT_EQ(o.ending, Ending::kExited);
  EXPECT_EQ(o.tail, "");  // nothing on stdin, and no recipe file
}

// ---------------------------------------------------------------------------------------------
// The run directory

TEST_F(SupervisorTest, RunStartsInItsRunDirWhichIsRemovedAfterSuccess) {
  LaunchPlan p = plan(sh("pwd; touch made-by-run"));
  std::string run_dir = p.run_dir;
  RunOutcome o = await(*launch(std::move(p)));
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.tail, run_dir + "\n");
  EXPECT_FALSE(fs::exists(run_dir));
}

TEST_F(SupervisorTest, RunDirIsRemovedAfterFailureByDefault) {
  LaunchPlan p = plan(sh("touch made-by-run; exit 1"));
  std::string run_dir = p.run_dir;
  RunOutcome o = await(*launch(std::move(p)));
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_FALSE(fs::exists(run_dir));
}

TEST_F(SupervisorTest, RunDirIsKeptAfterFailureWhenAskedAndIsPrivate) {
  TemplateConfig t = sh("touch made-by-run; exit 1");
  t.keep_run_dir_on_failure = true;
  LaunchPlan p = plan(t);
  std::string run_dir = p.run_dir;
  RunOutcome o = await(*launch(std::move(p)));
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_TRUE(fs::exists(run_dir + "/made-by-run"));
  struct stat st {};
  ASSERT_EQ(::stat(run_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(SupervisorTest, KeptRunDirHoldsTheWholeOutputLog) {
  // Little output: output.log is written only when the directory is kept.
  TemplateConfig t = sh("echo one; echo two >&2; exit 3");
  t.keep_run_dir_on_failure = true;
  LaunchPlan p = plan(t);
  std::string run_dir = p.run_dir;
  EXPECT_EQ(await(*launch(std::move(p))).exit_code, 3);
  EXPECT_EQ(readFile(run_dir + "/output.log"), "one\ntwo\n");
  struct stat st {};
  ASSERT_EQ(::stat((run_dir + "/output.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(SupervisorTest, OutputLogAppearsWhileTheRunWritesMuchAndStopsAtItsCap) {
  // 300000 bytes: output.log exists before the run ends (the run lists it) and holds the first
  // log_file_bytes of the output, byte for byte.
  TemplateConfig t =
      sh("i=0; while [ $i -lt 3000 ]; do printf '%099d\\n' $i; i=$((i+1)); done; "
         "ls \"$OUTPOST_RUN_DIR\" >&2; exit 1");
  t.keep_run_dir_on_failure = true;
  t.output.log_file_bytes = 250000;
  LaunchPlan p = plan(t);
  std::string run_dir = p.run_dir;
  RunOutcome o = await(*launch(std::move(p)));
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.output_bytes, 300000u + std::string("output.log\n").size());
  std::string log = readFile(run_dir + "/output.log");
  ASSERT_EQ(log.size(), 250000u);
  EXPECT_EQ(log.substr(0, 100), std::string(99, '0') + "\n");
  EXPECT_EQ(log.substr(249900, 100), std::string(95, '0') + "2499\n");
}

TEST_F(SupervisorTest, ReusedRunDirsAreEmptyPrivateAndNamedByTheRun) {
  // Removed run directories are recycled: every later run must still get an empty 0700
  // directory of its own name, whatever the runs before it left there.
  EXPECT_EQ(run(sh("touch a; mkdir -p sub/deeper; touch sub/deeper/b")).exit_code, 0);
  for (int i = 0; i < 5; ++i) {
    LaunchPlan p = plan(sh("pwd; stat -c %a .; ls -A; touch x"));
    std::string run_dir = p.run_dir;
    RunOutcome o = await(*launch(std::move(p)));
    EXPECT_EQ(o.exit_code, 0);
    EXPECT_EQ(o.tail, run_dir + "\n700\n") << "run " << i;
    EXPECT_FALSE(fs::exists(run_dir));
  }
  supervisor_.reset();  // its pool of empty directories goes with it
  EXPECT_TRUE(fs::is_empty(work_dir_));
}

TEST_F(SupervisorTest, TheLineageChannelIsDescriptorThreeAndItsFilePath) {
  LaunchPlan p =
      plan(sh("echo one >&3; echo two >> \"$OUTPOST_LINEAGE_FILE\"; "
              "echo \"$OUTPOST_LINEAGE_FD $OUTPOST_LINEAGE_FILE\""));
  addLineageChannel(p);
  auto w = std::make_shared<RunWatch>();
  std::mutex mu;
  std::string got;
  RunCallbacks cb;
  cb.on_lineage = [&](std::string bytes, bool truncated) {
    std::lock_guard lock(mu);
    got += bytes;
    EXPECT_FALSE(truncated);
  };
  cb.on_finished = [w](RunOutcome o) { w->finished.set_value(std::move(o)); };
  supervisor_->launch(std::move(p), std::move(cb));
  RunOutcome o = await(*w);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.tail, "3 /dev/fd/3\n");
  std::lock_guard lock(mu);
  EXPECT_EQ(got, "one\ntwo\n") << "everything written arrives before the run ends";
}

TEST_F(SupervisorTest, WithoutALineageChannelDescriptorThreeIsClosed) {
  RunOutcome o = run(sh("echo one >&3 2>/dev/null || echo closed; echo \"[$OUTPOST_LINEAGE_FD]\""));
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_THAT(o.tail, ::testing::EndsWith("closed\n[]\n"));
}

TEST_F(SupervisorTest, RunDirIsRemovedAfterSuccessEvenWhenKeepingOnFailure) {
  TemplateConfig t = sh("touch made-by-run");
  t.keep_run_dir_on_failure = true;
  LaunchPlan p = plan(t);
  std::string run_dir = p.run_dir;
  EXPECT_EQ(await(*launch(std::move(p))).exit_code, 0);
  EXPECT_FALSE(fs::exists(run_dir));
}

// ---------------------------------------------------------------------------------------------
// What the process sees

// The plan's environment, plus the marker naming the worker process that started the run.
TEST_F(SupervisorTest, ProcessEnvironmentIsExactlyThePlans) {
  LaunchPlan p = plan(tmpl({"env"}));
  std::set<std::string> want(p.env.begin(), p.env.end());
  auto stat = readFile("/proc/self/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) fields >> field;  // field 22: start time
  want.insert("OUTPOST_WORKER_PROCESS=" + std::to_string(::getpid()) + "-" + field);
  RunOutcome o = await(*launch(std::move(p)));
  std::set<std::string> got;
  std::istringstream lines(o.tail);
  for (std::string line; std::getline(lines, line);) got.insert(line);
  EXPECT_EQ(got, want);
  EXPECT_THAT(o.tail, ::testing::Not(HasSubstr("do-not-leak")));
}

TEST_F(SupervisorTest, NoDescriptorOfTheWorkerIsInherited) {
  // A descriptor deliberately left inheritable (no O_CLOEXEC).
  int fd = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 3);
  RunOutcome o = run(sh("ls /proc/$$/fd"));
  ::close(fd);
  EXPECT_EQ(o.tail, "0\n1\n2\n");
}

// ---------------------------------------------------------------------------------------------
// Containment

TEST_F(SupervisorTest, OutputFloodIsCountedExactlyAndTheTailStaysBounded) {
  constexpr std::uint64_t kFlood = 10 * 1024 * 1024;
  RunOutcome o = run(sh("yes | head -c " + std::to_string(kFlood)));
  EXPECT_EQ(o.ending, Ending::kExited);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.output_bytes, kFlood);
  EXPECT_EQ(o.dropped_bytes, kFlood - kTailBytes);
  const std::string marker =
      "[outpost: " + std::to_string(kFlood - kTailBytes) + " earlier bytes of output not shown]\n";
  std::string want = marker;
  for (std::size_t i = 0; i < kTailBytes / 2; ++i) want += "y\n";
  EXPECT_EQ(o.tail.size(), want.size());
  EXPECT_TRUE(o.tail == want) << "tail starts: " << o.tail.substr(0, 120);
}

// The run's process starts inside its own cgroup (clone3 with CLONE_INTO_CGROUP), so even what it
// does before exec cannot happen outside it; with a cgroup of its own, not the worker's.
TEST_F(SupervisorTest, WithCgroupsARunStartsInACgroupOfItsOwn) {
  if (!supervisor_->usesCgroups()) GTEST_SKIP() << supervisor_->cgroupNote();
  std::ifstream mine("/proc/self/cgroup");
  std::string worker_cgroup((std::istreambuf_iterator<char>(mine)), {});
  RunOutcome first = run(sh("cat /proc/self/cgroup"));
  RunOutcome second = run(sh("cat /proc/self/cgroup"));
  for (const auto& o : {first, second}) {
    EXPECT_EQ(o.exit_code, 0) << o.tail;
    // Under w-<pid>-<start>, the cgroups of this worker process.
    EXPECT_THAT(o.tail, HasSubstr("/w-" + std::to_string(::getpid()) + "-")) << o.tail;
    EXPECT_THAT(o.tail, HasSubstr("/run-")) << o.tail;
    EXPECT_NE(o.tail, worker_cgroup);
  }
  // One run after the other may reuse a cgroup; two at once never share one.
  auto a = launch(plan(sh("cat /proc/self/cgroup; sleep 1")));
  auto b = launch(plan(sh("cat /proc/self/cgroup; sleep 1")));
  EXPECT_NE(await(*a).tail, await(*b).tail);
}

// A run started right after another was killed (cancelled or timed out, its leftovers taken by
// SIGKILL) is never killed itself: no signal reaches it that the supervisor did not send for it.
// Linux 6.18 SIGKILLs every process that clone3 starts with CLONE_INTO_CGROUP in a cgroup once
// written to cgroup.kill (the cgroup's kill_seq has moved on, the parent's has not), so a killed
// run's cgroup must never be handed to a later run. Rounds alternate a stop and a timeout, each
// of a job that ignores SIGTERM and leaves a child, so that the KILL after the grace always
// finds something to kill; cgroups on (where the machine allows them) and off.
TEST_F(SupervisorTest, ARunStartedRightAfterAKilledRunIsNeverKilled) {
  constexpr int kRounds = 12;
  for (const char* cgroup : {"auto", "off"}) {
    SCOPED_TRACE(cgroup);
    Supervisor own(clock_, launcher_,
                   SupervisorOptions{.output = {.tail_bytes = kTailBytes}, .cgroup = cgroup});
    if (std::string_view(cgroup) == "auto" && !own.usesCgroups()) {
      std::cout << "[ SKIPPED  ] the cgroup half: " << own.cgroupNote() << "\n";
      continue;
    }
    for (int round = 0; round < kRounds; ++round) {
      SCOPED_TRACE(round);
      const auto marker = work_dir_ + "/trapped-" + cgroup + std::to_string(round);
      auto stubborn =
          sh("trap '' TERM; sleep 30 & touch " + marker + "; while :; do sleep 1; done");
      stubborn.kill_grace = milliseconds(50);
      RunRequest r;
      const bool by_timeout = round % 2 == 1;
      if (by_timeout) r.timeout = milliseconds(300);
      auto p = plan(stubborn, r);
      const auto run_id = p.run_id;
      auto killed = launch(std::move(p), &own);
      // A stop waits for the trap. A timeout cannot (it runs from the start): it may come before
      // the trap, and then sh dies of the TERM and never writes the marker.
      if (!by_timeout) {
        ASSERT_TRUE(waitForFile(marker)) << "the run never set its trap";
        own.stop(run_id, "stress");
      }
      RunOutcome k = await(*killed);
      EXPECT_EQ(k.ending, by_timeout ? Ending::kTimedOut : Ending::kCancelled);
      // With its trap set (the marker comes after it), only the KILL after the grace ends it.
      if (fs::exists(marker)) {
        EXPECT_EQ(k.signal, SIGKILL);
      }
      // At once, in the same supervisor: the next run must run to its end.
      RunOutcome next = await(*launch(plan(sh("echo next")), &own));
      EXPECT_EQ(next.ending, Ending::kExited) << "signal " << next.signal << ": " << next.tail;
      EXPECT_EQ(next.exit_code, 0);
      EXPECT_EQ(next.tail, "next\n");
    }
  }
}

// Where clone3 is refused (an old kernel, a seccomp policy), the child joins the cgroup itself by
// writing cgroup.procs before exec: the launcher's fallback, given only that descriptor.
TEST_F(SupervisorTest, WithOnlyCgroupProcsTheChildJoinsTheCgroupBeforeExec) {
  if (!supervisor_->usesCgroups()) GTEST_SKIP() << supervisor_->cgroupNote();
  const std::string prefix = "per-run cgroups under ";
  ASSERT_TRUE(supervisor_->cgroupNote().starts_with(prefix)) << supervisor_->cgroupNote();
  const std::string dir =
      supervisor_->cgroupNote().substr(prefix.size()) + "/test-" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir << ": " << std::strerror(errno);
  int procs = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(procs, 0);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto p = plan(sh("cat /proc/self/cgroup"));
  fs::create_directories(p.run_dir);
  auto pid = launcher_.launch(p, LaunchIo{devnull, fds[1], -1, procs, -1});
  ::close(fds[1]);
  ASSERT_TRUE(pid.has_value()) << pid.error();
  std::string out;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  int status = 0;
  ::waitpid(*pid, &status, 0);
  for (int fd : {fds[0], procs, devnull}) ::close(fd);
  EXPECT_THAT(out, HasSubstr("/test-" + std::to_string(::getpid()) + "\n"));
  EXPECT_EQ(::rmdir(dir.c_str()), 0) << std::strerror(errno);
}

// A worker killed outright (SIGKILL, the OOM killer) leaves its runs running; their commands are
// about to run again. A supervisor starting later kills what is left of a worker process that is
// gone before it starts anything: its cgroups (w-<pid>-<start>/...) and its marked processes. It
// leaves alone what belongs to a live worker process, and what carries no worker marker.
// `sleep 300` processes with a given environment, as a worker's runs would be left, killed and
// reaped however the test ends (they would otherwise hold ctest's output pipe for 300 s).
struct Sleepers {
  std::vector<pid_t> pids;
  ~Sleepers() {
    for (pid_t p : pids) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
  }
  // In a session of its own, optionally in a cgroup (its cgroup.procs) or in a new PID namespace
  // (then the returned pid is that of its parent, which stays as long as the sleep does, and
  // exits 97 when the namespace cannot be made).
  pid_t spawn(std::vector<std::string> env, const std::string& cgroup_procs = "",
              bool new_pid_namespace = false) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setsid();
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 1);
      ::dup2(null, 2);
      if (!cgroup_procs.empty()) {
        int fd = ::open(cgroup_procs.c_str(), O_WRONLY);
        if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(99);
      }
      if (new_pid_namespace) {
        if (::unshare(CLONE_NEWPID) != 0) _exit(97);
        pid_t inner = ::fork();
        if (inner > 0) {
          int status = 0;
          ::waitpid(inner, &status, 0);
          _exit(WIFSIGNALED(status) ? 100 + WTERMSIG(status) : 0);
        }
        if (inner < 0) _exit(96);
      }
      std::vector<char*> envp;
      for (auto& e : env) envp.push_back(e.data());
      envp.push_back(nullptr);
      char* argv[] = {const_cast<char*>("/bin/sleep"), const_cast<char*>("300"), nullptr};
      ::execve("/bin/sleep", argv, envp.data());
      _exit(98);
    }
    pids.push_back(pid);
    return pid;
  }
};

TEST_F(SupervisorTest, AtStartWhatAWorkerThatIsGoneLeftRunningIsKilled) {
  const std::string gone = "OUTPOST_WORKER_PROCESS=4194304-1";  // past pid_max: never alive
  Sleepers spawned;
  auto spawn = [&](std::vector<std::string> env, const std::string& cgroup_procs = "") {
    return spawned.spawn(std::move(env), cgroup_procs);
  };
  auto alive = [](pid_t pid) {
    ::waitpid(pid, nullptr, WNOHANG);  // ours: reap it once it is dead
    return !processGone(pid);
  };
  auto own_start = [] {
    auto stat = readFile("/proc/self/stat");
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string f;
    for (int i = 3; i <= 22; ++i) fields >> f;
    return f;
  };
  // The test processes beside this one make supervisors too, and any of them may sweep the two
  // leftovers of the dead worker first: that is what they are for. Only the survivors are
  // checked before.
  const std::vector<std::string> orphan_env = {"OUTPOST_RUN_ID=r1", gone};
  const std::vector<std::string> unmarked_env = {"OUTPOST_RUN_ID=r2"};  // not ours to judge
  const std::vector<std::string> live_owner_env = {
      "OUTPOST_RUN_ID=r3",
      "OUTPOST_WORKER_PROCESS=" + std::to_string(::getpid()) + "-" + own_start()};
  const std::vector<std::string> cgroup_env = {"PATH=/bin"};  // no marker at all
  pid_t orphan = spawn(orphan_env);
  pid_t unmarked = spawn(unmarked_env);
  pid_t live_owner = spawn(live_owner_env);
  pid_t in_cgroup = -1;
  std::string dead_cgroup;
  if (supervisor_->usesCgroups()) {
    const std::string prefix = "per-run cgroups under ";
    dead_cgroup = supervisor_->cgroupNote().substr(prefix.size()) + "/w-4194304-1";
    ::mkdir(dead_cgroup.c_str(), 0755);
    ::mkdir((dead_cgroup + "/run-1").c_str(), 0755);
    in_cgroup = spawn(cgroup_env, dead_cgroup + "/run-1/cgroup.procs");
  } else {
    std::cout << "[ SKIPPED  ] the cgroup half: " << supervisor_->cgroupNote() << "\n";
  }
  // Each has exec'd sleep with its environment (the sweep could not tell a leftover before),
  // unless another test process has swept the dead worker's two already.
  ASSERT_TRUE(waitForExec(orphan, orphan_env, /*or_gone=*/true)) << "the orphan never exec'd";
  if (in_cgroup > 0) {
    ASSERT_TRUE(waitForExec(in_cgroup, cgroup_env, /*or_gone=*/true))
        << "the process in the cgroup never exec'd";
  }
  ASSERT_TRUE(waitForExec(unmarked, unmarked_env)) << "the unmarked process never exec'd";
  ASSERT_TRUE(waitForExec(live_owner, live_owner_env)) << "the live worker's run never exec'd";
  for (pid_t p : {unmarked, live_owner}) ASSERT_TRUE(alive(p));

  Supervisor next(clock_, launcher_, SupervisorOptions{.output = {.tail_bytes = kTailBytes}});

  EXPECT_FALSE(alive(orphan)) << "a marked process of a worker that is gone";
  if (in_cgroup > 0) {
    EXPECT_FALSE(alive(in_cgroup)) << "a process in the cgroup of a worker that is gone";
    EXPECT_FALSE(fs::exists(dead_cgroup)) << "its cgroup is removed";
  }
  EXPECT_TRUE(alive(unmarked));
  EXPECT_TRUE(alive(live_owner));
}

// A worker in a container on the same host: its runs' marker names its process by a pid of the
// container's PID namespace, which here is another process or none. A worker outside sees those
// runs in /proc but must not judge them (found when the container test ran beside the others:
// host workers starting up killed the container's running job).
TEST_F(SupervisorTest, AtStartRunsOfAWorkerInAnotherPidNamespaceAreLeftAlone) {
  const std::string gone = "OUTPOST_WORKER_PROCESS=4194304-1";  // past pid_max: never alive
  Sleepers spawned;
  const std::vector<std::string> contained_env = {"OUTPOST_RUN_ID=r-contained", gone};
  const std::vector<std::string> here_env = {"OUTPOST_RUN_ID=r-here", gone};
  pid_t contained = spawned.spawn(contained_env, "", true);
  pid_t here = spawned.spawn(here_env);
  // The sleep in the namespace is the child of `contained`; wait until it has exec'd.
  pid_t inner = 0;
  for (auto limit = std::chrono::steady_clock::now() + kSafetyNet; inner <= 0;) {
    int status = 0;
    if (::waitpid(contained, &status, WNOHANG) == contained) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 97) {
        GTEST_SKIP() << "cannot make a PID namespace here: unshare(CLONE_NEWPID) failed";
      }
      FAIL() << "the namespaced sleep's parent ended first, status " << status;
    }
    auto children = readFile("/proc/" + std::to_string(contained) + "/task/" +
                             std::to_string(contained) + "/children");
    if (!children.empty()) inner = static_cast<pid_t>(std::stol(children));
    if (inner <= 0) {
      ASSERT_TRUE(std::chrono::steady_clock::now() < limit) << "the namespaced sleep never forked";
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  ASSERT_TRUE(waitForExec(inner, contained_env)) << "the namespaced sleep never exec'd";
  // `here` is the proof that the sweep ran and would have seen `contained`: it must have exec'd
  // too (unless another test process has swept it already, which proves the same).
  ASSERT_TRUE(waitForExec(here, here_env, /*or_gone=*/true)) << "`here` never exec'd";

  Supervisor next(clock_, launcher_, SupervisorOptions{.output = {.tail_bytes = kTailBytes}});

  EXPECT_TRUE(processGone(here) || ::waitpid(here, nullptr, WNOHANG) == here)
      << "the sweep ran: a marked process of a gone worker in this namespace was killed";
  int status = 0;
  EXPECT_EQ(::waitpid(contained, &status, WNOHANG), 0)
      << "the run in the other PID namespace was killed (its parent ended with status " << status
      << ")";
}

TEST_F(SupervisorTest, GrandchildLeftInTheGroupDoesNotKeepTheRunAliveAndIsKilled) {
  RunOutcome o = run(sh("sleep 300 & echo $!"));
  EXPECT_EQ(o.ending, Ending::kExited);
  EXPECT_EQ(o.exit_code, 0);
  pid_t grandchild = 0;
  try {
    grandchild = static_cast<pid_t>(std::stol(o.tail));
  } catch (const std::exception&) {
    FAIL() << "no pid in the output: '" << o.tail << "'";
  }
  ASSERT_GT(grandchild, 1);
  EXPECT_TRUE(waitUntilGone(grandchild)) << "sleep 300 (pid " << grandchild << ") survived";
}

TEST_F(SupervisorTest, SecondLaunchOfARunningRunIdLeavesTheFirstRunsDirectoryAlone) {
  LaunchPlan first = plan(sh("echo data > mine; touch ready; sleep 30"));
  std::string run_id = first.run_id;
  std::string run_dir = first.run_dir;
  auto w1 = launch(std::move(first));
  ASSERT_TRUE(waitForFile(run_dir + "/ready"));

  RunRequest again;
  again.run_id = run_id;
  await(*launch(plan(sh("exit 0"), again)));
  EXPECT_TRUE(fs::exists(run_dir + "/mine"));

  supervisor_->stop(run_id, "test over");
  EXPECT_EQ(await(*w1).ending, Ending::kCancelled);
}

TEST_F(SupervisorTest, ConcurrentRunsAreKeptApart) {
  std::vector<std::shared_ptr<RunWatch>> watches;
  for (int i = 0; i < 6; ++i) {
    watches.push_back(
        launch(plan(sh("echo run-" + std::to_string(i) + "; exit " + std::to_string(i)))));
  }
  for (int i = 0; i < 6; ++i) {
    RunOutcome o = await(*watches[static_cast<std::size_t>(i)]);
    EXPECT_EQ(o.exit_code, i);
    EXPECT_EQ(o.tail, "run-" + std::to_string(i) + "\n");
  }
  EXPECT_EQ(supervisor_->active(), 0u);
}

}  // namespace
}  // namespace outpost::runner

namespace outpost::runner {
namespace {

TEST(SupervisorOutputLimits, ATemplatesOwnTailSizeOverridesTheWorkers) {
  SystemClock clock;
  PosixLauncher launcher;
  char pattern[] = "/tmp/outpost-limits-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  Supervisor supervisor(clock, launcher, SupervisorOptions{.output = {.tail_bytes = 4096}});
  TemplateConfig t;
  t.name = "t";
  t.argv = {"head", "-c", "1000", "/dev/zero"};
  t.env_passthrough = {"PATH"};
  t.recipe = RecipeDelivery::kNone;
  t.output.tail_bytes = 300;
  UuidGenerator ids(clock);
  RunRequest r;
  r.run_id = ids.next();
  auto plan = planRun(t, r, {{"PATH", "/usr/bin:/bin"}}, pattern);
  ASSERT_TRUE(plan.has_value());
  std::promise<RunOutcome> done;
  RunCallbacks cb;
  cb.on_finished = [&](RunOutcome o) { done.set_value(std::move(o)); };
  supervisor.launch(std::move(*plan), std::move(cb));
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  auto o = f.get();
  EXPECT_EQ(o.output_bytes, 1000u);
  EXPECT_EQ(o.dropped_bytes, 700u);
  std::filesystem::remove_all(pattern);
}

// A reload changes the worker's output limits: runs launched after setOutput get the new ones,
// a run launched before keeps those it started with.
TEST(SupervisorOutputLimits, SetOutputAppliesToRunsLaunchedAfterItOnly) {
  SystemClock clock;
  PosixLauncher launcher;
  char pattern[] = "/tmp/outpost-limits-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  Supervisor supervisor(clock, launcher, SupervisorOptions{.output = {.tail_bytes = 4096}});
  TemplateConfig t;
  t.name = "t";
  // Writes its output only once the second run has been launched (the file appears).
  const std::string go = std::string(pattern) + "/go";
  t.argv = {"sh", "-c", "while [ ! -e " + go + " ]; do sleep 0.01; done; head -c 1000 /dev/zero"};
  t.env_passthrough = {"PATH"};
  t.recipe = RecipeDelivery::kNone;
  UuidGenerator ids(clock);
  auto launch = [&](std::promise<RunOutcome>& done) {
    RunRequest r;
    r.run_id = ids.next();
    auto plan = planRun(t, r, {{"PATH", "/usr/bin:/bin"}}, pattern);
    ASSERT_TRUE(plan.has_value());
    RunCallbacks cb;
    cb.on_finished = [&done](RunOutcome o) { done.set_value(std::move(o)); };
    supervisor.launch(std::move(*plan), std::move(cb));
  };
  std::promise<RunOutcome> before, after;
  launch(before);
  supervisor.setOutput(OutputConfig{.tail_bytes = 300});
  launch(after);
  std::ofstream(go).put('\n');
  auto b = before.get_future(), a = after.get_future();
  ASSERT_EQ(b.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  ASSERT_EQ(a.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(b.get().dropped_bytes, 0u) << "launched before: the 4096-byte tail it started with";
  EXPECT_EQ(a.get().dropped_bytes, 700u) << "launched after: the new 300-byte tail";
  std::filesystem::remove_all(pattern);
}

}  // namespace
}  // namespace outpost::runner
