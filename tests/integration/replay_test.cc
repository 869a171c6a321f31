// `outpost replay` against the real broker: a recorded mix of succeeded, failed and rejected runs
// is planned, selected and republished to other topics where another worker runs it, and
// --compare finds a template whose behaviour changed; the production topics' end offsets and the
// production group's committed offsets are the same before and after.
#include <cstdio>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// UUIDv5 of "<run id>/<n>" in the replay namespace, by Python's uuid module (not our code).
std::string pythonReplayId(const std::string& run_id, unsigned n) {
  std::string cmd =
      "/usr/bin/python3 -c \"import uuid; print(uuid.uuid5(uuid.uuid5("
      "uuid.NAMESPACE_URL, 'urn:outpost:replay'), '" +
      run_id + "/" + std::to_string(n) + "'))\"";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[64];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  if (p) pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Every end offset of the production topics, and the production group's committed offsets.
struct Production {
  std::map<std::string, std::map<std::int32_t, std::int64_t>> ends;
  std::map<std::int32_t, std::int64_t> committed;
  bool operator==(const Production&) const = default;
};

Production production(const Topics& t, const std::string& group) {
  Production p;
  for (const auto& topic : {t.jobs, t.runs}) p.ends[topic] = endOffsets(topic, 2);
  for (const auto& topic : {t.events, t.lineage, t.dlq, t.control, t.workers}) {
    p.ends[topic] = endOffsets(topic, 1);
  }
  p.committed = committedOffsets(group, t.jobs, 2);
  return p;
}

TEST(Replay, PlansSelectsRepublishesAndComparesWithoutTouchingProduction) {
  auto prod = createTopics("replay-prod", 2);
  WorkerProcess::Options po;
  po.slots = 4;
  auto worker = std::make_unique<WorkerProcess>(prod, po);
  ASSERT_TRUE(worker->waitForLog("partitions assigned"));
  auto ok1 = makeCommand("ok", {{"n", "1"}});
  auto failed = makeCommand("exit", {{"code", "3"}});
  auto rejected = makeCommand("nope");
  auto ok2 = makeCommand("ok", {{"n", "2"}});
  for (const auto& c : {ok1, failed, rejected, ok2}) submit(prod, c);
  TopicReader events(prod.events);
  ASSERT_TRUE(events.readUntil([&](const auto& r) { return terminalByRun(r).size() >= 4; }));
  const std::string group = worker->group();
  ASSERT_EQ(waitForCommitted(group, prod.jobs, 2, 4), 4);
  // The recording is done; production stops, as a platform's would go on elsewhere.
  EXPECT_EQ(worker->terminate(), 0);
  worker.reset();
  const auto before = production(prod, group);

  // plan (the default): every command with its recorded end.
  auto [plan, plan_out] = runCli(prod, "replay");
  EXPECT_EQ(plan, 0) << plan_out;
  EXPECT_THAT(plan_out, HasSubstr("4 command(s) of " + prod.jobs + " would be replayed"));
  for (const auto& c : {ok1, ok2}) {
    EXPECT_THAT(plan_out, HasSubstr(c.run_id())) << plan_out;
  }
  EXPECT_THAT(plan_out, HasSubstr("FAILED (exit 3)"));
  EXPECT_THAT(plan_out, Not(HasSubstr("1970-"))) << "when each was submitted";
  EXPECT_THAT(plan_out, HasSubstr("REJECTED"));

  // Selection.
  auto [_, only_failed] = runCli(prod, "replay --state failed");
  EXPECT_THAT(only_failed, HasSubstr(failed.run_id()));
  EXPECT_THAT(only_failed, Not(HasSubstr(ok1.run_id())));
  EXPECT_THAT(only_failed, HasSubstr("1 command(s)"));
  auto [__, by_run] = runCli(prod, "replay --run " + ok1.run_id() + " --run " + ok2.run_id());
  EXPECT_THAT(by_run, HasSubstr("2 command(s)"));
  auto [___, limited] = runCli(prod, "replay --limit 3");
  EXPECT_THAT(limited, HasSubstr("3 command(s)"));
  auto [dlq, dlq_out] = runCli(prod, "replay --dlq");
  EXPECT_EQ(dlq, 0) << dlq_out;
  EXPECT_THAT(dlq_out, HasSubstr(rejected.run_id()));
  EXPECT_THAT(dlq_out, HasSubstr("1 command(s) of " + prod.dlq));
  EXPECT_THAT(dlq_out, HasSubstr("unknown job_type"));

  // Republishing into the topic read from needs saying so.
  auto [same, same_out] = runCli(prod, "replay republish --to-pool other 2>&1");
  EXPECT_EQ(same, 2) << same_out;
  EXPECT_THAT(same_out, HasSubstr("--allow-same-topic"));

  // republish --compare to staging topics, where a worker with the same templates runs them.
  auto staging = createTopics("replay-staging", 1);
  WorkerProcess staging_worker(staging, {});
  ASSERT_TRUE(staging_worker.waitForLog("partitions assigned"));
  auto [same_run, compared] = runCli(
      prod, "replay republish --to-prefix " + staging.prefix + " --compare --wait-timeout 60s");
  EXPECT_EQ(same_run, 0) << compared;
  EXPECT_THAT(compared, HasSubstr("4 replayed, 4 the same, 0 different"));
  for (const auto& c : {ok1, failed, rejected, ok2}) {
    // Deterministic: the UUIDv5 of the original and the replay number.
    EXPECT_THAT(compared, HasSubstr(c.run_id() + " -> " + pythonReplayId(c.run_id(), 1)));
  }
  TopicReader staged(staging.events);
  ASSERT_TRUE(staged.readUntil([&](const auto& r) { return terminalByRun(r).size() >= 4; }));
  const auto replay_of_failed = terminalByRun(staged.records())[pythonReplayId(failed.run_id(), 1)];
  ASSERT_FALSE(replay_of_failed.empty());
  EXPECT_EQ(replay_of_failed.front().labels().at("outpost.replay_of"), failed.run_id());
  EXPECT_EQ(replay_of_failed.front().attempt(), 1u);

  // A template changed between recording and replay: --compare says so and exits 1.
  auto changed = createTopics("replay-changed", 1);
  WorkerProcess::Options co;
  co.templates =
      "templates:\n  exit:\n    argv: [sh, -c, \"echo fixed; exit 0\"]\n    allow_shell: true\n"
      "    params: {code: {pattern: \"[0-9]+\"}}\n    recipe: none\n";
  WorkerProcess changed_worker(changed, co);
  ASSERT_TRUE(changed_worker.waitForLog("partitions assigned"));
  auto [diff, diff_out] =
      runCli(prod, "replay republish --job-type exit --replay-number 2 --to-prefix " +
                       changed.prefix + " --compare --wait-timeout 60s");
  EXPECT_EQ(diff, 1) << diff_out;
  EXPECT_THAT(diff_out, HasSubstr("DIFFERENT: state FAILED (exit 3) -> SUCCEEDED"));
  EXPECT_THAT(diff_out, HasSubstr(pythonReplayId(failed.run_id(), 2)));
  EXPECT_THAT(diff_out, HasSubstr("1 replayed, 0 the same, 1 different"));

  // Nothing production-facing was written or committed.
  EXPECT_TRUE(production(prod, group) == before) << "production topics or offsets moved";
}

}  // namespace
}  // namespace outpost::test
