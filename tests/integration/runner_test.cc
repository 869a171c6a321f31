// Process supervision end to end: real worker, real broker, real process trees.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;

std::vector<v1::RunEvent> eventsOf(TopicReader& events, const std::string& run_id) {
  EXPECT_TRUE(events.readUntil([&](const auto& records) {
    return terminalByRun(records).contains(run_id);
  })) << "run "
      << run_id << " never ended";
  std::vector<v1::RunEvent> out;
  for (auto& e : decodeEvents(events.records())) {
    if (e.run_id() == run_id) out.push_back(std::move(e));
  }
  return out;
}

std::string allLogLines(const std::vector<v1::RunEvent>& evs) {
  std::string out;
  for (const auto& e : evs) {
    for (const auto& l : e.log_lines()) out += l + "\n";
  }
  return out;
}

// True once the process is gone (or a zombie nobody has reaped yet, which runs nothing).
bool gone(pid_t pid) {
  for (int i = 0; i < 100; ++i) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    std::getline(stat, s);
    auto close = s.rfind(')');
    if (close != std::string::npos && s.size() > close + 2 && s[close + 2] == 'Z') return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::uint64_t peakRssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmHWM:")) return std::stoull(line.substr(6));
  }
  return 0;
}

// One worker with `options`, one command of `job_type`, read until the run ends.
struct SingleRun {
  Topics topics;
  std::unique_ptr<WorkerProcess> worker;
  std::unique_ptr<TopicReader> events;
  v1::JobCommand command;
  std::vector<v1::RunEvent> evs;  // the run's events, terminal last
};

SingleRun runOnce(const std::string& stem, WorkerProcess::Options options,
                  const std::string& job_type) {
  SingleRun r;
  r.topics = createTopics(stem, 1);
  r.worker = std::make_unique<WorkerProcess>(r.topics, std::move(options));
  r.command = makeCommand(job_type);
  submit(r.topics, r.command);
  r.events = std::make_unique<TopicReader>(r.topics.events);
  r.evs = eventsOf(*r.events, r.command.run_id());
  return r;
}

const char* kTreeTemplates = R"(templates:
  tree:
    # Ignores SIGTERM, starts two sleeps in its group and one in a session of its own (setsid),
    # prints their pids, and waits.
    argv: [sh, -c, "trap '' TERM; sleep 300 & echo child=$!; sleep 300 & echo child=$!; setsid sleep 300 & echo child=$!; echo ready; wait"]
    allow_shell: true
    recipe: none
    timeout: 2s
    kill_grace: 1s
)";

class ProcessTreeKill : public ::testing::TestWithParam<std::string> {};

// Whatever the machine allows (a cgroup per run, or the /proc scan for the run's marker), a run
// that times out takes every process it started with it, the setsid one included.
TEST_P(ProcessTreeKill, TimeoutKillsTheWholeTreeIncludingDescendantsThatCalledSetsid) {
  WorkerProcess::Options o;
  o.templates = kTreeTemplates;
  o.cgroup = GetParam();
  auto run = runOnce("tree", o, "tree");
  auto& worker = *run.worker;
  const auto& evs = run.evs;
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.back().state(), v1::TIMED_OUT) << evs.back().message();
  EXPECT_EQ(evs.back().signal(), SIGKILL) << "the shell ignored SIGTERM, so SIGKILL ended it";
  std::vector<pid_t> pids;
  std::string out = allLogLines(evs);
  std::regex child(R"(child=(\d+))");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), child); it != std::sregex_iterator();
       ++it) {
    pids.push_back(static_cast<pid_t>(std::stoi((*it)[1].str())));
  }
  ASSERT_EQ(pids.size(), 3u) << out;
  for (pid_t p : pids) EXPECT_TRUE(gone(p)) << "process " << p << " outlived its run";
  if (GetParam() == "off") {
    EXPECT_THAT(worker.log(), HasSubstr("/proc scan"));
  }
  // A timed-out run ends its lineage with ABORT, and both records hold to the spec.
  TopicReader lineage(run.topics.lineage);
  ASSERT_TRUE(lineage.readUntil([](const auto& r) { return r.size() >= 2; }));
  std::vector<std::string> types;
  for (const auto& r : lineage.records()) {
    types.push_back(nlohmann::json::parse(r.value)["eventType"]);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"START", "ABORT"}));
  auto v = validateLineage(lineage.records());
  EXPECT_TRUE(v.ok) << v.output;
  EXPECT_EQ(worker.terminate(), 0);
}

INSTANTIATE_TEST_SUITE_P(Tracking, ProcessTreeKill, ::testing::Values("auto", "off"),
                         [](const auto& param_info) {
                           return param_info.param == "off" ? "ProcScan" : "Auto";
                         });

TEST(Runner, AGigabyteOfOutputLeavesTheWorkerMemoryBoundedAndIsCountedExactly) {
  WorkerProcess::Options o;
  o.templates = R"(templates:
  flood:
    # 1 GiB in 1000-byte lines.
    argv: [sh, -c, "yes \"$(head -c 999 /dev/zero | tr '\\000' x)\" | head -c 1073741824; echo; echo DONE"]
    allow_shell: true
    recipe: none
)";
  auto run = runOnce("gigaflood", o, "flood");
  auto& worker = *run.worker;
  const auto& evs = run.evs;
  ASSERT_FALSE(evs.empty());
  const auto& end = evs.back();
  EXPECT_EQ(end.state(), v1::SUCCEEDED) << end.message();
  EXPECT_EQ(end.output_bytes(), 1073741824u + 1 + 5);
  // 1073741 whole lines, then 824 bytes of one more, ended by `echo`, then DONE.
  EXPECT_THAT(end.log_tail(), ::testing::EndsWith("xxxx\nDONE\n"));
  EXPECT_GT(end.log_dropped_lines(), 0u) << "the LOG rate limit should have left lines out";
  std::uint64_t sent = 0;
  for (const auto& e : evs) sent += static_cast<std::uint64_t>(e.log_lines_size());
  EXPECT_EQ(sent + end.log_dropped_lines(), 1073741u + 1 + 1)
      << "every line is either sent or counted as dropped";
  // A worker that buffered the output would hold a gigabyte.
  EXPECT_LT(peakRssKiB(worker.pid()), 200u * 1024) << "peak RSS of the worker in KiB";
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Runner, BinaryAndInvalidUtf8OutputArrivesAsValidUtf8) {
  WorkerProcess::Options o;
  o.templates = R"(templates:
  binary:
    # printf's own octal escapes: raw bytes FF FE, a broken sequence C3 28, NUL, controls.
    argv: [printf, 'ok \377\376 bad \303\050 nul[\000] end\n\001\002\003']
    recipe: none
)";
  auto run = runOnce("binary", o, "binary");
  auto& worker = *run.worker;
  const auto& evs = run.evs;
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.back().state(), v1::SUCCEEDED);
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  EXPECT_EQ(allLogLines(evs), "ok " + r + r + " bad " + r + "( nul[" + r + "] end\n\x01\x02\x03\n");
  EXPECT_EQ(evs.back().output_bytes(), 27u);
  EXPECT_EQ(evs.back().log_tail(),
            "ok " + r + r + " bad " + r + "( nul[" + r + "] end\n\x01\x02\x03");
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Runner, ResourceLimitsApplyAndACpuLimitEndsTheRunWithAClearMessage) {
  WorkerProcess::Options o;
  o.templates = R"(templates:
  spin:
    argv: [sh, -c, "ulimit -n; while :; do :; done"]
    allow_shell: true
    recipe: none
    limits: {cpu_time: 1s, open_files: 64}
)";
  auto run = runOnce("limits", o, "spin");
  auto& worker = *run.worker;
  const auto& evs = run.evs;
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(allLogLines(evs), "64\n") << "the open-files limit reached the process";
  EXPECT_EQ(evs.back().state(), v1::FAILED);
  EXPECT_EQ(evs.back().signal(), SIGXCPU);
  EXPECT_THAT(evs.back().message(), HasSubstr("CPU time limit"));
  EXPECT_GT(evs.back().cpu_time_ms(), 0) << "the CPU it burned is reported";
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Runner, AMissingProgramEndsFailedWithoutStartedAndTheWorkerGoesOn) {
  auto topics = createTopics("missing", 1);
  WorkerProcess::Options o;
  o.templates = R"(templates:
  missing:
    argv: [/nonexistent/outpost-no-such-program]
    recipe: none
  ok:
    argv: [echo, fine]
    recipe: none
)";
  WorkerProcess worker(topics, o);
  auto bad = makeCommand("missing");
  auto good = makeCommand("ok");
  submit(topics, bad);
  submit(topics, good);
  TopicReader events(topics.events);
  auto evs = eventsOf(events, bad.run_id());
  ASSERT_EQ(evs.size(), 1u) << "no STARTED for a run that never started";
  EXPECT_EQ(evs[0].state(), v1::FAILED);
  EXPECT_THAT(evs[0].message(), HasSubstr("/nonexistent/outpost-no-such-program"));
  EXPECT_EQ(eventsOf(events, good.run_id()).back().state(), v1::SUCCEEDED);
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 2), 2);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Runner, HeartbeatsCarryIncreasingSequenceAndLiveCounters) {
  WorkerProcess::Options o;
  o.worker_yaml = "  heartbeat_interval: 300ms\n";
  o.templates = R"(templates:
  busy:
    # Burns CPU for about 2 s, printing as it goes.
    argv: [sh, -c, "end=$(($(date +%s) + 2)); n=0; while [ $(date +%s) -lt $end ]; do n=$((n+1)); [ $((n % 500)) -eq 0 ] && echo tick $n; done; echo done"]
    allow_shell: true
    recipe: none
)";
  auto run = runOnce("heartbeat", o, "busy");
  auto& worker = *run.worker;
  const auto& evs = run.evs;
  std::vector<v1::RunEvent> beats;
  for (const auto& e : evs) {
    if (e.state() == v1::HEARTBEAT) beats.push_back(e);
  }
  ASSERT_GE(beats.size(), 3u);
  for (std::size_t i = 1; i < beats.size(); ++i) {
    EXPECT_GT(beats[i].sequence(), beats[i - 1].sequence());
    EXPECT_GE(beats[i].cpu_time_ms(), beats[i - 1].cpu_time_ms());
    EXPECT_GE(beats[i].output_bytes(), beats[i - 1].output_bytes());
  }
  EXPECT_GT(beats.back().rss_bytes(), 0u);
  EXPECT_GT(beats.back().cpu_time_ms(), beats.front().cpu_time_ms()) << "the job was burning CPU";
  EXPECT_EQ(evs.back().state(), v1::SUCCEEDED);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Runner, FiftyConcurrentShortRunsEachEndExactlyOnce) {
  auto topics = createTopics("fifty", 1);
  WorkerProcess::Options o;
  o.slots = 50;
  WorkerProcess worker(topics, o);
  std::set<std::string> runs;
  for (int i = 0; i < 50; ++i) {
    auto c = makeCommand("sleep", {{"secs", "3"}});
    runs.insert(c.run_id());
    submit(topics, c);
  }
  TopicReader events(topics.events);
  ASSERT_TRUE(events.readUntil([&](const auto& r) { return terminalByRun(r).size() == 50; },
                               std::chrono::seconds(120)));
  auto terminal = terminalByRun(events.records());
  // Started/ended intervals: the most that overlap shows the runs ran side by side.
  std::vector<std::pair<std::int64_t, int>> edges;
  for (const auto& run : runs) {
    ASSERT_EQ(terminal[run].size(), 1u) << run;
    const auto& e = terminal[run].front();
    EXPECT_EQ(e.state(), v1::SUCCEEDED) << e.message();
    edges.push_back({e.started_at_ms(), +1});
    edges.push_back({e.started_at_ms() + e.duration_ms(), -1});
  }
  std::sort(edges.begin(), edges.end(), [](auto a, auto b) {
    return a.first != b.first ? a.first < b.first : a.second < b.second;
  });
  int now = 0, most = 0;
  for (auto [t, d] : edges) most = std::max(most, now += d);
  EXPECT_EQ(most, 50) << "all 50 runs should have been running at once";
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 50), 50);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Runner, TheLogRateLimitCountsWhatItLeavesOut) {
  WorkerProcess::Options o;
  o.output_yaml = "  log_rate_bytes: 2KiB\n  log_batch_interval: 100ms\n";
  o.templates = R"(templates:
  chatty:
    argv: [sh, -c, "i=0; while [ $i -lt 1000 ]; do echo line-$i-padding-padding-padding-padding-padding-padding-padding-padding; i=$((i+1)); done"]
    allow_shell: true
    recipe: none
)";
  auto run = runOnce("ratelimit", o, "chatty");
  auto& worker = *run.worker;
  const auto& evs = run.evs;
  std::uint64_t sent = 0;
  for (const auto& e : evs) sent += static_cast<std::uint64_t>(e.log_lines_size());
  EXPECT_GT(evs.back().log_dropped_lines(), 0u);
  EXPECT_LT(sent, 1000u);
  EXPECT_EQ(sent + evs.back().log_dropped_lines(), 1000u);
  EXPECT_THAT(allLogLines(evs), ::testing::StartsWith("line-0-padding"));
  EXPECT_EQ(worker.terminate(), 0);
}

}  // namespace
}  // namespace outpost::test

namespace outpost::test {
namespace {

std::string readExample(const std::string& name) {
  std::ifstream in(std::string(OUTPOST_SOURCE_DIR) + "/examples/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The sql-probe example against the PostgreSQL this machine runs on 127.0.0.1:5432.
TEST(Examples, SqlProbeQueriesTheLocalPostgres) {
  auto topics = createTopics("sqlprobe", 1);
  WorkerProcess::Options o;
  o.templates = readExample("templates.yaml");
  WorkerProcess worker(topics, o);
  auto c = makeCommand("sql-probe", {{"database", "test"}});
  auto evil = makeCommand("sql-probe", {{"database", "test -c 'drop table x'"}});
  submit(topics, c);
  submit(topics, evil);
  TopicReader events(topics.events);
  auto evs = eventsOf(events, c.run_id());
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.back().state(), v1::SUCCEEDED) << evs.back().message() << evs.back().log_tail();
  EXPECT_THAT(allLogLines(evs), ::testing::MatchesRegex("test\\|[0-9]+\n"));
  auto refused = eventsOf(events, evil.run_id());
  EXPECT_EQ(refused.back().state(), v1::REJECTED);
  EXPECT_THAT(refused.back().message(), HasSubstr("argument 'database' does not match"));
  EXPECT_EQ(worker.terminate(), 0);
}

}  // namespace
}  // namespace outpost::test
