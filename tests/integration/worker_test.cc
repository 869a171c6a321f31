// The worker end to end against the real broker: real `outpost run` processes, real jobs.
#include <signal.h>

#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "outpost/v1/run_record.pb.h"
#include "outpost/v1/worker.pb.h"

namespace outpost::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Reads the events topic until every run in `runs` has a terminal event.
std::vector<Record> readUntilTerminal(TopicReader& events, const std::set<std::string>& runs,
                                      std::chrono::seconds timeout = std::chrono::seconds(90)) {
  bool done = events.readUntil(
      [&](const std::vector<Record>& records) {
        auto t = terminalByRun(records);
        return std::ranges::all_of(runs, [&](const std::string& r) { return t.contains(r); });
      },
      timeout);
  EXPECT_TRUE(done) << "not every run reached a terminal event";
  return events.records();
}

const v1::RunEvent& only(const std::map<std::string, std::vector<v1::RunEvent>>& t,
                         const std::string& run) {
  static const v1::RunEvent kNone;
  auto it = t.find(run);
  if (it == t.end() || it->second.size() != 1) {
    ADD_FAILURE() << "run " << run << " has " << (it == t.end() ? 0 : it->second.size())
                  << " terminal events, expected exactly 1";
    return kNone;
  }
  return it->second.front();
}

TEST(Worker, ReportsSuccessExitCodeSignalAndBoundedTailThenCommits) {
  auto topics = createTopics("outcomes", 1);
  WorkerProcess worker(topics, {});
  auto ok = makeCommand("ok", {{"n", "7"}});
  auto exit3 = makeCommand("exit", {{"code", "3"}});
  auto sig = makeCommand("signal");
  auto flood = makeCommand("flood", {{"bytes", "10485760"}});
  for (const auto* c : {&ok, &exit3, &sig, &flood}) submit(topics, *c);

  TopicReader events(topics.events);
  auto records =
      readUntilTerminal(events, {ok.run_id(), exit3.run_id(), sig.run_id(), flood.run_id()});
  auto terminal = terminalByRun(records);

  const auto& s = only(terminal, ok.run_id());
  EXPECT_EQ(s.state(), v1::SUCCEEDED);
  EXPECT_EQ(s.exit_code(), 0);
  EXPECT_EQ(s.log_tail(), "ok 7\n");
  EXPECT_EQ(s.worker_id(), worker.id());
  EXPECT_EQ(s.source().topic(), topics.jobs);

  const auto& f = only(terminal, exit3.run_id());
  EXPECT_EQ(f.state(), v1::FAILED);
  EXPECT_EQ(f.exit_code(), 3);
  EXPECT_THAT(f.message(), HasSubstr("status 3"));
  EXPECT_EQ(f.log_tail(), "about to fail\n");

  const auto& k = only(terminal, sig.run_id());
  EXPECT_EQ(k.state(), v1::FAILED);
  EXPECT_EQ(k.signal(), SIGSEGV);
  EXPECT_EQ(k.exit_code(), -1);
  EXPECT_THAT(k.message(), HasSubstr("SIGSEGV"));

  const auto& big = only(terminal, flood.run_id());
  EXPECT_EQ(big.state(), v1::SUCCEEDED);
  const std::uint64_t total = 10485760 + 1 + std::string("END-OF-FLOOD\n").size();
  EXPECT_EQ(big.output_bytes(), total);
  const std::string marker =
      "[outpost: " + std::to_string(total - 4096) + " earlier bytes of output not shown]\n";
  EXPECT_TRUE(big.log_tail().starts_with(marker)) << big.log_tail().substr(0, 100);
  EXPECT_EQ(big.log_tail().size(), marker.size() + 4096);
  EXPECT_EQ(big.log_dropped_bytes(), total - 4096);
  EXPECT_THAT(big.log_tail(), ::testing::EndsWith("xxx\nEND-OF-FLOOD\n"));

  // Each run: STARTED first, LOG events, then its one terminal event; sequence 1, 2, 3, ...
  std::map<std::string, std::vector<v1::RunEvent>> by_run;
  for (auto& e : decodeEvents(records)) by_run[e.run_id()].push_back(e);
  for (const auto& [run, evs] : by_run) {
    ASSERT_GE(evs.size(), 2u) << run;
    EXPECT_EQ(evs.front().state(), v1::STARTED);
    EXPECT_GT(evs.front().started_at_ms(), 0);
    EXPECT_TRUE(v1::isTerminal(evs.back().state()));
    for (std::size_t i = 0; i < evs.size(); ++i) {
      EXPECT_EQ(evs[i].sequence(), i + 1) << run;
      if (i > 0 && i + 1 < evs.size()) {
        EXPECT_EQ(evs[i].state(), v1::LOG) << run;
      }
    }
  }
  std::vector<std::string> ok_lines;
  for (const auto& e : by_run[ok.run_id()]) {
    if (e.state() == v1::LOG)
      ok_lines.insert(ok_lines.end(), e.log_lines().begin(), e.log_lines().end());
  }
  EXPECT_EQ(ok_lines, std::vector<std::string>{"ok 7"});

  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 4), 4);
  EXPECT_EQ(worker.terminate(), 0);
}

// A run is held by one incarnation of its worker: each start of the worker is a new one, named by
// its statuses and by the records of the runs it starts, so that a restart is known to have ended
// whatever the previous incarnation ran.
TEST(Worker, EachStartIsANewIncarnationNamedByItsStatusesAndItsRunsRecords) {
  auto topics = createTopics("incarnation", 1);
  WorkerProcess::Options options;
  options.id = uniqueName("w-inc");
  std::vector<std::string> incarnations;
  std::vector<std::string> run_ids;
  for (int start = 0; start < 2; ++start) {
    WorkerProcess worker(topics, options);
    auto c = makeCommand("ok", {{"n", std::to_string(start)}});
    submit(topics, c);
    run_ids.push_back(c.run_id());
    TopicReader events(topics.events);
    readUntilTerminal(events, {c.run_id()});
    EXPECT_EQ(worker.terminate(), 0);
  }
  // Statuses are written at start, periodically and at the stop: each start's are one incarnation.
  TopicReader workers(topics.workers);
  auto statuses = [&] {
    std::vector<v1::WorkerStatus> out;
    for (const auto& r : workers.records()) {
      v1::WorkerStatus s;
      if (s.ParseFromString(r.value) && s.worker_id() == options.id) out.push_back(s);
    }
    return out;
  };
  ASSERT_TRUE(workers.readUntil([&](const std::vector<Record>&) {
    auto all = statuses();
    return std::ranges::count(all, v1::STOPPED, &v1::WorkerStatus::state) == 2;
  })) << "the two starts' STOPPED statuses";
  for (const auto& s : statuses()) {
    ASSERT_FALSE(s.incarnation().empty());
    if (incarnations.empty() || incarnations.back() != s.incarnation()) {
      incarnations.push_back(s.incarnation());
    }
  }
  ASSERT_EQ(incarnations.size(), 2u) << "one incarnation per start, in order";
  EXPECT_NE(incarnations[0], incarnations[1]);

  // Each run's start and end records name the incarnation that ran it.
  TopicReader runs(topics.runs);
  std::map<std::string, std::vector<v1::RunRecord>> records;
  ASSERT_TRUE(runs.readUntil([&](const std::vector<Record>& all) {
    records.clear();
    for (const auto& r : all) {
      v1::RunRecord rec;
      if (rec.ParseFromString(r.value)) records[rec.run_id()].push_back(rec);
    }
    return records[run_ids[0]].size() == 2 && records[run_ids[1]].size() == 2;
  })) << "a start and an end record per run";
  for (int start = 0; start < 2; ++start) {
    for (const auto& rec : records[run_ids[start]]) {
      EXPECT_EQ(rec.incarnation(), incarnations[start]) << v1::RunState_Name(rec.state());
      EXPECT_EQ(rec.worker_id(), options.id);
    }
  }
}

TEST(Worker, TwoWorkersInOneGroupShareTwentyJobsWithExactlyOneTerminalEach) {
  auto topics = createTopics("share", 4);
  WorkerProcess::Options o;
  o.pool = uniqueName("shared");
  WorkerProcess a(topics, o), b(topics, o);
  // Both members must hold partitions before the jobs arrive, or one takes everything.
  ASSERT_TRUE(a.waitUntilReady());
  ASSERT_TRUE(b.waitUntilReady());
  std::set<std::string> runs;
  for (int i = 0; i < 20; ++i) {
    auto c = makeCommand("sleep", {{"secs", "0.2"}});
    runs.insert(c.run_id());
    submit(topics, c);
  }
  TopicReader events(topics.events);
  auto terminal = terminalByRun(readUntilTerminal(events, runs));
  EXPECT_EQ(terminal.size(), 20u);
  std::set<std::string> workers;
  for (const auto& run : runs) {
    const auto& e = only(terminal, run);
    EXPECT_EQ(e.state(), v1::SUCCEEDED) << e.message();
    workers.insert(e.worker_id());
  }
  EXPECT_EQ(workers, (std::set<std::string>{a.id(), b.id()}))
      << "both workers should have run jobs";
  EXPECT_EQ(waitForCommitted(a.group(), topics.jobs, 4, 20), 20);
  EXPECT_EQ(a.terminate(), 0);
  EXPECT_EQ(b.terminate(), 0);
  // Nothing ran twice, even through the rebalance when a left.
  events.readFor(std::chrono::milliseconds(500));
  for (const auto& [run, evs] : terminalByRun(events.records())) EXPECT_EQ(evs.size(), 1u) << run;
}

// Two pools reading one jobs topic each see every command; each runs its own and skips the
// other's without a word: no REJECTED event, no dead letter, and its offset counts as done.
TEST(Worker, TwoPoolsSharingAJobsTopicEachRunTheirOwnCommandsAndRejectNone) {
  auto topics = createTopics("pools", 2);
  WorkerProcess::Options oa, ob;
  oa.pool = uniqueName("pool-a");
  ob.pool = uniqueName("pool-b");
  WorkerProcess a(topics, oa), b(topics, ob);
  ASSERT_TRUE(a.waitUntilReady());
  ASSERT_TRUE(b.waitUntilReady());
  std::map<std::string, std::string> worker_of;  // run_id -> the worker of its pool
  for (int i = 0; i < 10; ++i) {
    auto c = makeCommand("ok", {{"n", std::to_string(i)}});
    const bool for_a = i % 2 == 0;
    c.set_pool(for_a ? oa.pool : ob.pool);
    worker_of[c.run_id()] = for_a ? a.id() : b.id();
    submit(topics, c);
  }
  std::set<std::string> runs;
  for (const auto& [run, worker] : worker_of) runs.insert(run);
  TopicReader events(topics.events);
  auto records = readUntilTerminal(events, runs);
  // Both groups have committed all ten: each counted the other pool's commands as done.
  EXPECT_EQ(waitForCommitted(a.group(), topics.jobs, 2, 10), 10);
  EXPECT_EQ(waitForCommitted(b.group(), topics.jobs, 2, 10), 10);
  events.readFor(std::chrono::milliseconds(500));
  auto terminal = terminalByRun(events.records());
  EXPECT_EQ(terminal.size(), 10u);
  for (const auto& [run, worker] : worker_of) {
    const auto& e = only(terminal, run);
    EXPECT_EQ(e.state(), v1::SUCCEEDED) << e.message();
    EXPECT_EQ(e.worker_id(), worker) << "ran in its own pool";
  }
  for (const auto& e : decodeEvents(events.records())) {
    EXPECT_NE(e.state(), v1::REJECTED) << e.run_id() << ": " << e.message();
    EXPECT_EQ(e.worker_id(), worker_of[e.run_id()]) << "an event from the other pool";
  }
  TopicReader dlq(topics.dlq);
  dlq.readFor(std::chrono::milliseconds(500));
  EXPECT_EQ(dlq.records().size(), 0u) << "another pool's command is not a dead letter";
  EXPECT_EQ(a.terminate(), 0);
  EXPECT_EQ(b.terminate(), 0);
  EXPECT_THAT(a.log(), HasSubstr("5 command(s) for other pools skipped"));
}

TEST(Worker, JobLongerThanMaxPollIntervalCompletesWithoutRebalance) {
  auto topics = createTopics("longjob", 1);
  WorkerProcess::Options o;
  // The broker's minimum session timeout is 6 s; max.poll.interval.ms may not be below it.
  o.consumer_properties = {{"session.timeout.ms", "6000"},
                           {"heartbeat.interval.ms", "1000"},
                           {"max.poll.interval.ms", "6500"}};
  o.revoke_timeout = "5s";  // shorter than max.poll.interval.ms, as the configuration demands
  o.slots = 1;  // the one slot is busy, so the partition stays paused for the whole job
  WorkerProcess worker(topics, o);
  auto c = makeCommand("sleep", {{"secs", "13"}});
  submit(topics, c);
  TopicReader events(topics.events);
  auto records = readUntilTerminal(events, {c.run_id()});
  auto terminal = terminalByRun(records);
  EXPECT_EQ(only(terminal, c.run_id()).state(), v1::SUCCEEDED);
  std::size_t started = 0;
  for (const auto& e : decodeEvents(records)) started += e.state() == v1::STARTED;
  EXPECT_EQ(started, 1u) << "the job must not be started twice";
  EXPECT_THAT(worker.log(), Not(HasSubstr("partitions revoked")));
  EXPECT_THAT(worker.log(), Not(HasSubstr("partitions lost")));
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 1), 1);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Worker, GarbageAndRefusedCommandsGoToTheDeadLetterTopicAndTheWorkerGoesOn) {
  auto topics = createTopics("dlq", 1);
  WorkerProcess worker(topics, {});
  produce(topics.jobs, "garbage-key", std::string("\xff\xfe not a protobuf \x00\x01", 20));
  auto unknown = makeCommand("no-such-template");
  submit(topics, unknown);
  auto bad_arg = makeCommand("exit", {{"code", "3; rm -rf /"}});
  submit(topics, bad_arg);
  auto valid = makeCommand("ok");
  submit(topics, valid);

  TopicReader dlq(topics.dlq);
  ASSERT_TRUE(dlq.readUntil([](const auto& r) { return r.size() >= 3; }));
  const auto& d = dlq.records();
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].key, "garbage-key");
  EXPECT_EQ(d[0].value, std::string("\xff\xfe not a protobuf \x00\x01", 20))
      << "original bytes kept";
  EXPECT_THAT(d[0].headers.at("outpost.dlq.reason"), HasSubstr("JobCommand"));
  EXPECT_EQ(d[0].headers.at("outpost.dlq.source.topic"), topics.jobs);
  EXPECT_EQ(d[0].headers.at("outpost.dlq.source.partition"), "0");
  EXPECT_EQ(d[0].headers.at("outpost.dlq.source.offset"), "0");
  EXPECT_THAT(d[1].headers.at("outpost.dlq.reason"),
              HasSubstr("unknown job_type 'no-such-template'"));
  EXPECT_EQ(d[1].headers.at("outpost.dlq.source.offset"), "1");
  EXPECT_THAT(d[2].headers.at("outpost.dlq.reason"), HasSubstr("argument 'code' does not match"));
  EXPECT_EQ(d[2].value, bad_arg.SerializeAsString());

  TopicReader events(topics.events);
  auto terminal = terminalByRun(
      readUntilTerminal(events, {unknown.run_id(), bad_arg.run_id(), valid.run_id()}));
  EXPECT_EQ(only(terminal, unknown.run_id()).state(), v1::REJECTED);
  EXPECT_THAT(only(terminal, unknown.run_id()).message(), HasSubstr("no-such-template"));
  EXPECT_EQ(only(terminal, bad_arg.run_id()).state(), v1::REJECTED);
  EXPECT_EQ(only(terminal, valid.run_id()).state(), v1::SUCCEEDED);
  EXPECT_TRUE(worker.running());
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 4), 4);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Worker, ASecondCommandWithTheRunIdOfALiveRunIsDeadLetteredWithoutATerminalEvent) {
  auto topics = createTopics("duplicate", 1);
  WorkerProcess worker(topics, {});
  auto first = makeCommand("sleep", {{"secs", "2"}});
  submit(topics, first);
  submit(topics, first);  // e.g. a scheduler retrying its produce
  TopicReader dlq(topics.dlq);
  ASSERT_TRUE(dlq.readUntil([](const auto& r) { return !r.empty(); }));
  EXPECT_THAT(dlq.records()[0].headers.at("outpost.dlq.reason"),
              HasSubstr("already queued or running"));
  TopicReader events(topics.events);
  auto records = readUntilTerminal(events, {first.run_id()});
  events.readFor(std::chrono::milliseconds(500));
  auto terminal = terminalByRun(events.records());
  EXPECT_EQ(only(terminal, first.run_id()).state(), v1::SUCCEEDED);
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 2), 2);
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Worker, SigtermLetsARunningJobFinishWithinTheDrainTimeout) {
  auto topics = createTopics("drain", 1);
  WorkerProcess worker(topics, {});
  auto c = makeCommand("sleep", {{"secs", "2"}});
  submit(topics, c);
  TopicReader events(topics.events);
  ASSERT_TRUE(events.readUntil([](const auto& r) { return !r.empty(); }));  // STARTED
  EXPECT_EQ(worker.terminate(), 0);
  auto terminal = terminalByRun(readUntilTerminal(events, {c.run_id()}));
  EXPECT_EQ(only(terminal, c.run_id()).state(), v1::SUCCEEDED);
  EXPECT_EQ(only(terminal, c.run_id()).log_tail(), "sleeping 2\nwoke\n");
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 1), 1);
  // Its worker.id is configured, so it is a static member: it keeps its place (and partitions)
  // for session.timeout.ms, for a restart under the same id to take them back without a
  // rebalance, instead of leaving the group.
  EXPECT_EQ(groupState(worker.group()).second, 1) << "the static member left the group";
}

// Workers of one pool stopped a moment apart, as a rollout or a scale-in does: each one's leaving
// makes the others rebalance while they drain and close. A rebalance that reaches a consumer
// inside its close must not block it (it did: rd_kafka_assign() in the close-time callback waited
// for minutes); each worker exits within its drain timeout and a few seconds, every round.
TEST(Worker, WorkersOfOnePoolStoppedTogetherEachExitWithinTheirDrainTimeout) {
  constexpr int kRounds = 8;
  constexpr int kWorkers = 3;
  const auto bound = std::chrono::seconds(2 + 10);  // drain_timeout + a few seconds
  auto topics = createTopics("stoptogether", 6);
  for (int round = 0; round < kRounds; ++round) {
    WorkerProcess::Options o;
    o.pool = uniqueName("stop");
    o.static_member = false;
    o.drain_timeout = "2s";
    o.slots = 2;
    o.worker_yaml = "  delivery: at-least-once\n";
    // Both assignors: the close-time callbacks differ (assign/unassign, incremental or not).
    if (round % 2 == 1) o.consumer_properties["partition.assignment.strategy"] = "cooperative-sticky";
    std::vector<std::unique_ptr<WorkerProcess>> workers;
    for (int i = 0; i < kWorkers; ++i) workers.push_back(std::make_unique<WorkerProcess>(topics, o));
    for (auto& w : workers) ASSERT_TRUE(w->waitForLog("partitions assigned"));
    for (int i = 0; i < 2 * kWorkers; ++i) submit(topics, makeCommand("sleep", {{"secs", "0.5"}}));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    // A moment apart, each gap different, so that a leave meets the next worker's close.
    for (int i = 0; i < kWorkers; ++i) {
      workers[i]->signalTerm();
      std::this_thread::sleep_for(std::chrono::milliseconds(60 * round + 40 * i));
    }
    for (int i = 0; i < kWorkers; ++i) {
      EXPECT_EQ(workers[i]->waitExit(bound), 0)
          << "round " << round << ": worker " << i << " did not exit within " << bound.count()
          << " s of SIGTERM";
    }
  }
}

TEST(Worker, SigtermStopsJobsStillRunningAfterTheDrainTimeoutWithTermThenKill) {
  auto topics = createTopics("drainkill", 1);
  WorkerProcess::Options o;
  o.drain_timeout = "1s";
  WorkerProcess worker(topics, o);
  auto polite = makeCommand("sleep", {{"secs", "300"}});
  auto stubborn = makeCommand("stubborn");
  submit(topics, polite);
  submit(topics, stubborn);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, polite.run_id(), v1::STARTED));
  // It says "ready" once its TERM trap is set; a TERM before that would simply kill it.
  ASSERT_TRUE(waitForOutput(events, stubborn.run_id(), "ready")) << "it never set its trap";
  EXPECT_EQ(worker.terminate(), 0);
  auto terminal = terminalByRun(readUntilTerminal(events, {polite.run_id(), stubborn.run_id()}));
  // Released: their attempt ends FAILED (retrying), and another worker of the pool would run them
  // again at once.
  for (const auto* c : {&polite, &stubborn}) {
    const auto& e = only(terminal, c->run_id());
    EXPECT_EQ(e.state(), v1::FAILED);
    EXPECT_TRUE(e.retrying());
    EXPECT_THAT(e.message(), AllOf(HasSubstr("released"), HasSubstr("drain timeout")));
  }
  // The stubborn one ignored SIGTERM, so only SIGKILL after its 1 s grace ended it.
  EXPECT_EQ(only(terminal, stubborn.run_id()).signal(), SIGKILL);
  EXPECT_EQ(only(terminal, polite.run_id()).signal(), SIGTERM);
  EXPECT_EQ(waitForCommitted(worker.group(), topics.jobs, 1, 2), 2);
}

TEST(Worker, LineageRecordsValidateAgainstTheOpenLineageSpec) {
  auto topics = createTopics("lineage", 1);
  WorkerProcess worker(topics, {});
  auto ok = makeCommand("ok");
  ok.mutable_lineage()->set_job_namespace("scheduler-a");
  ok.mutable_lineage()->set_job_name("nightly.orders");
  auto* in = ok.mutable_lineage()->add_inputs();
  in->set_namespace_("postgres://127.0.0.1:5432");
  in->set_name("test.public.orders");
  ok.mutable_lineage()->set_parent_run_id("0190d2a8-0000-7000-8000-000000000001");
  ok.mutable_lineage()->set_parent_job_namespace("airflow");
  ok.mutable_lineage()->set_parent_job_name("dag.task");
  auto fail = makeCommand("exit", {{"code", "2"}});
  for (const auto* c : {&ok, &fail}) submit(topics, *c);

  TopicReader lineage(topics.lineage);
  ASSERT_TRUE(lineage.readUntil([](const auto& r) { return r.size() >= 4; }));
  std::map<std::string, std::vector<std::string>> types;
  for (const auto& r : lineage.records()) {
    auto j = nlohmann::json::parse(r.value);
    types[j["run"]["runId"]].push_back(j["eventType"]);
    if (j["run"]["runId"] == ok.run_id()) {
      EXPECT_EQ(r.key, "run:airflow/dag.task") << "keyed by the parent job";
      EXPECT_EQ(j["job"]["name"], "nightly.orders");
      EXPECT_EQ(j["inputs"][0]["name"], "test.public.orders");
    }
  }
  EXPECT_EQ(types[ok.run_id()], (std::vector<std::string>{"START", "COMPLETE"}));
  EXPECT_EQ(types[fail.run_id()], (std::vector<std::string>{"START", "FAIL"}));
  auto v = validateLineage(lineage.records());
  EXPECT_TRUE(v.ok) << v.output;
  EXPECT_EQ(worker.terminate(), 0);
}

}  // namespace
}  // namespace outpost::test
