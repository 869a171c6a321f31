// Cancellation through the control topic, end to end: real `outpost run` workers, real jobs, the
// real broker, cancels produced by `outpost cancel` or straight onto the control topic.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "outpost/v1/control.pb.h"
#include "scrape.h"

namespace outpost::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// Test templates beside the standard ones. Each tells the test, through a file, that it has got
// where the test needs it (its pid written, its TERM trap set), so no test guesses at timing; the
// gate template runs until the test creates its release file.
std::string cancelTemplates() {
  return standardTemplates() + R"(  pidsleep:
    argv: [sh, -c, "echo $$ > {pidfile}; echo pid $$; sleep {secs}; echo woke"]
    allow_shell: true
    params: {secs: {pattern: "[0-9.]+"}, pidfile: {pattern: "[A-Za-z0-9_./-]+"}}
    recipe: none
  stubborn-marked:
    argv: [sh, -c, "trap '' TERM; touch {marker}; echo ready; while true; do sleep 1; done"]
    allow_shell: true
    kill_grace: 1s
    params: {marker: {pattern: "[A-Za-z0-9_./-]+"}}
    recipe: none
  stubborn-child:
    argv: [sh, -c, "trap '' TERM; sleep 300 & touch {marker}; while true; do sleep 1; done"]
    allow_shell: true
    kill_grace: 100ms
    params: {marker: {pattern: "[A-Za-z0-9_./-]+"}}
    recipe: none
  gate:
    argv: [sh, -c, "echo waiting; while [ ! -e {release} ]; do sleep 0.1; done; echo released"]
    allow_shell: true
    concurrency: 1
    params: {release: {pattern: "[A-Za-z0-9_./-]+"}}
    recipe: none
)";
}

WorkerProcess::Options cancelOptions() {
  WorkerProcess::Options o;
  o.templates = cancelTemplates();
  return o;
}

// A directory for the files jobs and tests exchange; removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() : path_(fs::temp_directory_path() / uniqueName("outpost-cancel-it")) {
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

bool waitForFile(const std::string& path, std::chrono::seconds timeout = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!fs::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

void touch(const std::string& path) {
  std::ofstream(path) << "go\n";
}

void sendCancel(const Topics& topics, const std::string& run_id, const std::string& reason,
                const std::string& requested_by) {
  v1::ControlCommand c;
  c.set_command_id(makeCommand("x").run_id());  // any UUID
  c.set_issued_at_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
  c.mutable_cancel()->set_run_id(run_id);
  c.mutable_cancel()->set_reason(reason);
  c.mutable_cancel()->set_requested_by(requested_by);
  produce(topics.control, run_id, c.SerializeAsString());
}

std::vector<v1::RunEvent> eventsOf(const std::vector<Record>& records, const std::string& run) {
  std::vector<v1::RunEvent> out;
  for (auto& e : decodeEvents(records)) {
    if (e.run_id() == run) out.push_back(std::move(e));
  }
  return out;
}

std::vector<Record> readUntilTerminal(TopicReader& events, const std::set<std::string>& runs) {
  bool done = events.readUntil(
      [&](const std::vector<Record>& records) {
        auto t = terminalByRun(records);
        return std::ranges::all_of(runs, [&](const std::string& r) { return t.contains(r); });
      },
      std::chrono::seconds(90));
  EXPECT_TRUE(done) << "not every run reached a terminal event (" << events.records().size()
                    << " record(s) read from " << events.topic()
                    << (events.lastError().empty() ? "" : "; last error: " + events.lastError())
                    << ")";
  return events.records();
}

v1::RunEvent onlyTerminal(const std::vector<Record>& records, const std::string& run) {
  auto terminal = terminalByRun(records);
  auto it = terminal.find(run);
  if (it == terminal.end() || it->second.size() != 1) {
    ADD_FAILURE() << "run " << run << " has " << (it == terminal.end() ? 0 : it->second.size())
                  << " terminal events, expected exactly 1";
    return {};
  }
  return it->second.front();
}

// Whether any process of the group `pgid` is still alive. Zombies count as gone: in a container
// whose init does not reap, orphans stay zombies forever, and a zombie runs nothing.
bool groupAlive(pid_t pgid) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 1));
    char state = 0;
    pid_t ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

bool waitForGroupGone(pid_t pgid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (groupAlive(pgid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

// Waits until the worker holds its partitions (group assignment done), so it answers for the pool.
void waitUntilAssigned(const WorkerProcess& worker) {
  ASSERT_TRUE(worker.waitUntilReady()) << "the worker never got its partitions";
}

TEST(Cancel, RunningJobCancelledWithOutpostCancelEndsCancelledAndItsProcessGroupIsGone) {
  auto topics = createTopics("cancel-running", 1);
  ScratchDir scratch;
  WorkerProcess worker(topics, cancelOptions());
  auto c = makeCommand("pidsleep", {{"secs", "300"}, {"pidfile", scratch.file("pid")}});
  submit(topics, c);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, c.run_id(), v1::STARTED));
  ASSERT_TRUE(waitForFile(scratch.file("pid")));

  auto [status, out] = runCli(
      topics, "cancel --run " + c.run_id() + " --reason 'wrong recipe' --requested-by alice");
  ASSERT_EQ(status, 0) << out;
  EXPECT_TRUE(std::regex_match(out, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-"
                                               "[0-9a-f]{12}\n")))
      << "prints the command_id, a UUIDv7: " << out;

  auto records = readUntilTerminal(events, {c.run_id()});
  auto e = onlyTerminal(records, c.run_id());
  EXPECT_EQ(e.state(), v1::CANCELLED);
  EXPECT_EQ(e.cancelled_by(), "alice");
  EXPECT_THAT(e.message(), HasSubstr("alice"));
  EXPECT_THAT(e.message(), HasSubstr("wrong recipe"));
  EXPECT_EQ(e.signal(), SIGTERM) << "sleep dies of the TERM, before any KILL";
  EXPECT_GT(e.started_at_ms(), 0);
  EXPECT_EQ(e.worker_id(), worker.id());

  // The job's shell (its process group's leader) and everything in its group are gone.
  pid_t pid = 0;
  std::ifstream(scratch.file("pid")) >> pid;
  ASSERT_GT(pid, 1);
  EXPECT_THAT(e.log_tail(), HasSubstr("pid " + std::to_string(pid)));
  errno = 0;
  EXPECT_EQ(::kill(pid, 0), -1) << "the job's shell still exists";
  EXPECT_EQ(errno, ESRCH);
  EXPECT_TRUE(waitForGroupGone(pid)) << "a process of the job's group is still alive";

  // Lineage: START, then ABORT, valid against the spec.
  TopicReader lineage(topics.lineage);
  ASSERT_TRUE(lineage.readUntil([](const auto& r) { return r.size() >= 2; }));
  std::vector<std::string> types;
  for (const auto& r : lineage.records())
    types.push_back(nlohmann::json::parse(r.value)["eventType"]);
  EXPECT_EQ(types, (std::vector<std::string>{"START", "ABORT"}));
  auto v = validateLineage(lineage.records());
  EXPECT_TRUE(v.ok) << v.output;

  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 1), 1);

  // The worker goes on.
  EXPECT_TRUE(worker.running());
  auto next = makeCommand("ok");
  submit(topics, next);
  auto after = readUntilTerminal(events, {next.run_id()});
  EXPECT_EQ(onlyTerminal(after, next.run_id()).state(), v1::SUCCEEDED);
  EXPECT_EQ(onlyTerminal(after, c.run_id()).state(), v1::CANCELLED) << "still one terminal event";
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 2), 2);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Cancel, AJobIgnoringSigtermIsKilledAfterItsGrace) {
  auto topics = createTopics("cancel-stubborn", 1);
  ScratchDir scratch;
  WorkerProcess worker(topics, cancelOptions());
  auto c = makeCommand("stubborn-marked", {{"marker", scratch.file("trapped")}});
  submit(topics, c);
  ASSERT_TRUE(waitForFile(scratch.file("trapped"))) << "the job never set its TERM trap";
  sendCancel(topics, c.run_id(), "stuck", "bob");

  TopicReader events(topics.events);
  auto records = readUntilTerminal(events, {c.run_id()});
  auto e = onlyTerminal(records, c.run_id());
  EXPECT_EQ(e.state(), v1::CANCELLED);
  EXPECT_EQ(e.signal(), SIGKILL) << "TERM was ignored, so only the KILL after 1 s ended it";
  EXPECT_EQ(e.cancelled_by(), "bob");
  EXPECT_THAT(e.message(), HasSubstr("stuck"));
  EXPECT_EQ(countState(records, c.run_id(), v1::STARTED), 1u);
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 1), 1);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Cancel, ACancelArrivingBeforeItsCommandEndsTheCommandCancelledWithoutStarting) {
  auto topics = createTopics("cancel-early", 1);
  WorkerProcess worker(topics, cancelOptions());
  waitUntilAssigned(worker);
  auto c = makeCommand("sleep", {{"secs", "300"}});
  sendCancel(topics, c.run_id(), "changed my mind", "carol");
  // The worker has read the cancel once it answers it (it holds partition 0).
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, c.run_id(), v1::NOTICE));
  submit(topics, c);

  auto records = readUntilTerminal(events, {c.run_id()});
  auto e = onlyTerminal(records, c.run_id());
  EXPECT_EQ(e.state(), v1::CANCELLED);
  EXPECT_EQ(e.cancelled_by(), "carol");
  EXPECT_THAT(e.message(), HasSubstr("before it started"));
  EXPECT_THAT(e.message(), HasSubstr("changed my mind"));
  EXPECT_EQ(e.started_at_ms(), 0);
  EXPECT_EQ(e.source().topic(), topics.jobs);
  EXPECT_EQ(countState(records, c.run_id(), v1::STARTED), 0u) << "it never ran";
  // Its events of this worker, numbered in order: the NOTICE, then CANCELLED.
  auto evs = eventsOf(records, c.run_id());
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].sequence(), 1u);
  EXPECT_EQ(evs[1].sequence(), 2u);
  EXPECT_THAT(worker.log(), Not(HasSubstr(c.run_id() + " (sleep) starting")));
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 1), 1);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Cancel, ACancelSentShortlyBeforeTheWorkerStartedStillCancelsItsCommand) {
  auto topics = createTopics("cancel-before-start", 1);
  auto c = makeCommand("sleep", {{"secs", "300"}});
  sendCancel(topics, c.run_id(), "sent while no worker ran", "kim");
  WorkerProcess worker(topics, cancelOptions());
  ASSERT_TRUE(worker.waitForLog("of run " + c.run_id())) << "the worker did not look back";
  submit(topics, c);

  TopicReader events(topics.events);
  auto records = readUntilTerminal(events, {c.run_id()});
  auto e = onlyTerminal(records, c.run_id());
  EXPECT_EQ(e.state(), v1::CANCELLED);
  EXPECT_EQ(e.cancelled_by(), "kim");
  EXPECT_THAT(e.message(), HasSubstr("before it started"));
  EXPECT_EQ(countState(records, c.run_id(), v1::STARTED), 0u);
  // Read again at start, it was not answered again: it was answered (or not) when it was new.
  EXPECT_EQ(countState(records, c.run_id(), v1::NOTICE), 0u);
  EXPECT_EQ(e.sequence(), 1u);
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 1), 1);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Cancel, ACancelForARunThatEndedHereGetsANoticeAndNoSecondTerminalEvent) {
  auto topics = createTopics("cancel-late", 1);
  WorkerProcess worker(topics, cancelOptions());
  auto c = makeCommand("ok");
  submit(topics, c);
  TopicReader events(topics.events);
  readUntilTerminal(events, {c.run_id()});
  sendCancel(topics, c.run_id(), "too late", "dave");

  ASSERT_TRUE(waitForState(events, c.run_id(), v1::NOTICE));
  events.readFor(std::chrono::milliseconds(1500));  // anything the cancel might wrongly cause
  auto records = events.records();
  for (const auto& e : eventsOf(records, c.run_id())) {
    if (e.state() != v1::NOTICE) continue;
    EXPECT_THAT(e.message(), HasSubstr("cancel ignored: run already ended SUCCEEDED"));
    EXPECT_EQ(e.worker_id(), worker.id());
    EXPECT_EQ(e.job_type(), "ok");
  }
  EXPECT_EQ(countState(records, c.run_id(), v1::NOTICE), 1u);
  EXPECT_EQ(onlyTerminal(records, c.run_id()).state(), v1::SUCCEEDED);
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 1), 1);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Cancel, ACancelForAnUnknownRunGetsExactlyOneNotice) {
  auto topics = createTopics("cancel-unknown", 1);
  WorkerProcess worker(topics, cancelOptions());
  waitUntilAssigned(worker);
  auto unknown = makeCommand("ok").run_id();
  sendCancel(topics, unknown, "whatever", "erin");

  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, unknown, v1::NOTICE));
  events.readFor(std::chrono::milliseconds(1500));
  auto evs = eventsOf(events.records(), unknown);
  ASSERT_EQ(evs.size(), 1u) << "one NOTICE and nothing else";
  EXPECT_EQ(evs[0].state(), v1::NOTICE);
  EXPECT_EQ(evs[0].worker_id(), worker.id());
  EXPECT_THAT(evs[0].message(), HasSubstr("does not hold it"));
  EXPECT_THAT(evs[0].message(), HasSubstr(worker.id()));
  EXPECT_THAT(evs[0].message(), HasSubstr("within 10m"));
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Cancel, OfTwoWorkersInOnePoolOnlyTheHolderOfPartitionZeroAnswersAnUnknownRun) {
  auto topics = createTopics("cancel-unknown2", 2);
  auto o = cancelOptions();
  o.pool = uniqueName("pair");
  WorkerProcess a(topics, o);
  waitUntilAssigned(a);
  WorkerProcess b(topics, o);
  waitUntilAssigned(b);
  // a held both partitions, then gave one up to b: wait until it holds its share again (its
  // second assignment; waitForSampleAtLeast fails the test if the group never rebalanced).
  const int a_port = a.httpPort();
  ASSERT_GT(a_port, 0);
  const std::string assigned = "outpost_rebalances_total{kind=\"assigned\"}";
  ASSERT_GE(sample(waitForSampleAtLeast(a_port, assigned, 2), assigned).value_or(0), 2)
      << "the group never rebalanced";

  auto unknown = makeCommand("ok").run_id();
  sendCancel(topics, unknown, "whatever", "frank");
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, unknown, v1::NOTICE));
  ASSERT_TRUE(a.waitForLog("of run " + unknown));
  ASSERT_TRUE(b.waitForLog("of run " + unknown));  // both read it
  events.readFor(std::chrono::milliseconds(1500));
  EXPECT_EQ(eventsOf(events.records(), unknown).size(), 1u) << "one NOTICE for the pool";
  EXPECT_EQ(a.terminate(), 0);
  EXPECT_EQ(b.terminate(), 0);
}

TEST(Cancel, AQueuedRunEndsCancelledWithoutStartingWhileTheRunningOneSucceeds) {
  auto topics = createTopics("cancel-queued", 1);
  ScratchDir scratch;
  auto o = cancelOptions();
  o.slots = 2;  // room to take the second command; the gate template runs one at a time
  WorkerProcess worker(topics, o);
  auto first = makeCommand("gate", {{"release", scratch.file("release")}});
  auto second = makeCommand("gate", {{"release", scratch.file("release")}});
  submit(topics, first);
  submit(topics, second);
  // The first runs (the gate lets one at a time through), the second is queued in the worker.
  const int port = worker.httpPort();
  ASSERT_GT(port, 0);
  const std::string queued = "outpost_jobs{state=\"queued\"}";
  ASSERT_EQ(sample(waitForSample(port, queued, 1), queued), 1) << "the second run never queued";
  sendCancel(topics, second.run_id(), "not needed", "grace");

  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, second.run_id(), v1::CANCELLED));
  touch(scratch.file("release"));
  auto records = readUntilTerminal(events, {first.run_id(), second.run_id()});
  EXPECT_EQ(onlyTerminal(records, first.run_id()).state(), v1::SUCCEEDED);
  auto e = onlyTerminal(records, second.run_id());
  EXPECT_EQ(e.state(), v1::CANCELLED);
  EXPECT_EQ(e.cancelled_by(), "grace");
  EXPECT_THAT(e.message(), HasSubstr("while queued"));
  EXPECT_EQ(countState(records, second.run_id(), v1::STARTED), 0u);
  EXPECT_EQ(countState(records, second.run_id(), v1::NOTICE), 0u) << "held here: no NOTICE";
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 2), 2);
  EXPECT_EQ(worker.terminate(), 0);
}

// With one slot busy the worker pauses its partitions, so the second command waits in Kafka, not
// in the worker: the cancel finds no run here and is remembered until the command arrives.
TEST(Cancel, WithOneBusySlotACancelledWaitingCommandEndsCancelledWithoutStarting) {
  auto topics = createTopics("cancel-waiting", 1);
  ScratchDir scratch;
  auto o = cancelOptions();
  o.slots = 1;
  WorkerProcess worker(topics, o);
  auto first = makeCommand("gate", {{"release", scratch.file("release")}});
  auto second = makeCommand("ok");
  submit(topics, first);
  submit(topics, second);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, first.run_id(), v1::STARTED));
  sendCancel(topics, second.run_id(), "not needed", "heidi");
  ASSERT_TRUE(worker.waitForLog("of run " + second.run_id()));
  touch(scratch.file("release"));

  auto records = readUntilTerminal(events, {first.run_id(), second.run_id()});
  EXPECT_EQ(onlyTerminal(records, first.run_id()).state(), v1::SUCCEEDED);
  auto e = onlyTerminal(records, second.run_id());
  EXPECT_EQ(e.state(), v1::CANCELLED);
  EXPECT_EQ(e.cancelled_by(), "heidi");
  EXPECT_EQ(countState(records, second.run_id(), v1::STARTED), 0u);
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 2), 2);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Cancel, AControlTopicCreatedAfterTheWorkerStartedIsPickedUp) {
  Topics topics = topicNames("cancel-latetopic");
  for (const auto* t :
       {&topics.jobs, &topics.events, &topics.lineage, &topics.dlq, &topics.workers}) {
    createTopic(*t, 1);
  }
  createTopic(topics.runs, 1, {{"cleanup.policy", "compact"}});
  WorkerProcess worker(topics, cancelOptions());
  ASSERT_TRUE(worker.waitForLog("control: topic " + topics.control + " does not exist yet"));
  // Fails if the worker had created it (it must not: the platform decides its partitions).
  createTopic(topics.control, 2);
  ASSERT_TRUE(worker.waitForLog("control: reading " + topics.control + "[1]"));

  auto c = makeCommand("sleep", {{"secs", "300"}});
  submit(topics, c);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, c.run_id(), v1::STARTED));
  sendCancel(topics, c.run_id(), "late topic", "ivan");
  auto records = readUntilTerminal(events, {c.run_id()});
  EXPECT_EQ(onlyTerminal(records, c.run_id()).state(), v1::CANCELLED);
  EXPECT_EQ(onlyTerminal(records, c.run_id()).cancelled_by(), "ivan");
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Cancel, UndecodableControlMessagesAreSkippedAndTheWorkerGoesOn) {
  auto topics = createTopics("cancel-garbage", 1);
  WorkerProcess worker(topics, cancelOptions());
  produce(topics.control, "garbage", std::string("\xff\xfe not a protobuf \x00\x01", 20));
  v1::ControlCommand bad;
  bad.mutable_cancel()->set_run_id("not-a-uuid");
  produce(topics.control, "not-a-uuid", bad.SerializeAsString());
  ASSERT_TRUE(worker.waitForLog("not a UUID"));
  auto c = makeCommand("sleep", {{"secs", "300"}});
  submit(topics, c);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, c.run_id(), v1::STARTED));
  sendCancel(topics, c.run_id(), "after garbage", "judy");
  auto records = readUntilTerminal(events, {c.run_id()});
  EXPECT_EQ(onlyTerminal(records, c.run_id()).state(), v1::CANCELLED);
  EXPECT_TRUE(worker.running());
  TopicReader dlq(topics.dlq);
  dlq.readFor(std::chrono::milliseconds(500));
  EXPECT_TRUE(dlq.records().empty()) << "control messages are not jobs: no dead letters";
  EXPECT_EQ(worker.terminate(), 0);
}

// Many rounds of: a run is cancelled or times out (it ignores SIGTERM and leaves a child, so the
// KILL after its grace always has something to kill), and the next command, waiting for the one
// slot, starts at once in the same worker. No run may end killed by a signal Outpost did not send
// for it. With per-run cgroups (where the machine allows them) and with the /proc scan. On Linux
// 6.18 this caught a killed run's cgroup being handed to the next run, whose process the kernel
// then killed at its first instruction (see Cgroup::killed).
TEST(Cancel, ARunStartedRightAfterACancelOrATimeoutIsNeverKilledForIt) {
  constexpr int kRounds = 6;  // per mode; each round costs the 100 ms grace and two runs
  for (const char* cgroup : {"auto", "off"}) {
    SCOPED_TRACE(cgroup);
    auto topics = createTopics(std::string("cancel-stress-") + cgroup, 1);
    ScratchDir scratch;
    auto options = cancelOptions();
    options.slots = 1;
    options.cgroup = cgroup;
    WorkerProcess worker(topics, options);
    TopicReader events(topics.events);
    std::set<std::string> all;
    std::vector<std::string> next_runs;
    for (int round = 0; round < kRounds; ++round) {
      SCOPED_TRACE(round);
      const bool by_timeout = round % 2 == 1;
      const auto marker = scratch.file("trapped-" + std::to_string(round));
      auto killed = makeCommand("stubborn-child", {{"marker", marker}});
      if (by_timeout) killed.set_timeout_ms(1500);
      submit(topics, killed);
      auto next = makeCommand("ok", {{"n", std::to_string(round)}});
      submit(topics, next);  // waits for the slot, then starts right after the kill
      if (!by_timeout) {
        ASSERT_TRUE(waitForFile(marker)) << "the job never set its TERM trap";
        sendCancel(topics, killed.run_id(), "stress", "carol");
      }
      auto records = readUntilTerminal(events, {killed.run_id(), next.run_id()});
      auto k = onlyTerminal(records, killed.run_id());
      EXPECT_EQ(k.state(), by_timeout ? v1::TIMED_OUT : v1::CANCELLED) << k.message();
      auto n = onlyTerminal(records, next.run_id());
      EXPECT_EQ(n.state(), v1::SUCCEEDED) << n.message();
      EXPECT_EQ(n.signal(), 0) << n.message();
      all.insert({killed.run_id(), next.run_id()});
      // Stop at the first round that went wrong: the worker's log (printed as it goes) says why,
      // within the test's time.
      if (::testing::Test::HasFailure()) return;
    }
    for (const auto& e : decodeEvents(events.records())) {
      EXPECT_THAT(e.message(), Not(HasSubstr("did not send"))) << e.run_id();
      EXPECT_THAT(e.message(), Not(HasSubstr("from outside Outpost"))) << e.run_id();
    }
    EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 2 * kRounds), 2 * kRounds);
    EXPECT_EQ(worker.terminate(), 0);
  }
}

}  // namespace
}  // namespace outpost::test
