// `outpost replay`'s own decisions (app/replay.h), without a broker: its bounds, its selection,
// the replayed command and its run id, how outcomes are read from records, the comparison, and
// the configuration `replay local` runs under (app/replay_local.h). The whole command runs against
// the broker in tests/integration/replay_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outpost/common/config.h"
#include "replay.h"
#include "replay_local.h"

namespace outpost::app {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::int64_t kNow = 1'796'464'800'000;  // 2026-12-05T10:00:00Z
constexpr const char* kRun = "0190a5d2-7c3e-7abc-8def-0123456789ab";

TEST(ReplayBound, TimesDurationsAndPositions) {
  EXPECT_EQ(parseReplayBound("2026-12-05T10:00:00Z", 0).time_ms, kNow);
  EXPECT_EQ(parseReplayBound("2026-12-05T10:00:00.250Z", 0).time_ms, kNow + 250);
  EXPECT_EQ(parseReplayBound("2026-12-05T12:00:00+02:00", 0).time_ms, kNow);
  EXPECT_EQ(parseReplayBound("1796464800000", 0).time_ms, kNow);
  EXPECT_EQ(parseReplayBound("2h", kNow).time_ms, kNow - 2 * 3600 * 1000);
  auto at = parseReplayBound("3:1200", kNow);
  ASSERT_TRUE(at.position);
  EXPECT_EQ(at.position->first, 3);
  EXPECT_EQ(at.position->second, 1200);
  EXPECT_FALSE(at.time_ms);
  EXPECT_THROW(parseReplayBound("yesterday", kNow), ConfigError);
  EXPECT_THROW(parseReplayBound("2026-12-05T10:00:00", kNow), ConfigError) << "no zone";
}

TEST(ReplayMode, ParsesTheThreeNamesOnly) {
  EXPECT_EQ(parseReplayMode("plan"), ReplayMode::kPlan);
  EXPECT_EQ(parseReplayMode("republish"), ReplayMode::kRepublish);
  EXPECT_EQ(parseReplayMode("local"), ReplayMode::kLocal);
  EXPECT_FALSE(parseReplayMode("Plan"));
  EXPECT_FALSE(parseReplayMode(""));
  EXPECT_FALSE(parseReplayMode("0")) << "not the enum's number";
}

TEST(ReplayRunId, IsTheUuidV5OfTheOriginalAndTheReplayNumber) {
  // Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "urn:outpost:replay"), f"{run}/{n}")
  EXPECT_EQ(replayRunId(kRun, 1), "f8f79bea-952f-5d09-a86d-b729e7207800");
  EXPECT_EQ(replayRunId(kRun, 2), "8e084a01-b2af-5978-af7b-e055a920a061");
  EXPECT_EQ(replayRunId("0190A5D2-7C3E-7ABC-8DEF-0123456789AB", 1), replayRunId(kRun, 1));
}

ReplayCandidate candidate(v1::RunState state, std::int32_t exit_code = -1,
                          std::int64_t duration_ms = 0) {
  ReplayCandidate c;
  c.command.set_run_id(kRun);
  c.command.set_job_type("ingest");
  c.command.set_job_id("orders");
  c.command.set_pool("etl");
  c.recorded.state = state;
  c.recorded.exit_code = exit_code;
  c.recorded.duration_ms = duration_ms;
  return c;
}

TEST(ReplaySelection, EveryFilterMustMatch) {
  auto c = candidate(v1::FAILED, 1);
  ReplayOptions o;
  EXPECT_TRUE(replaySelects(o, c));
  o.state = "failed";
  EXPECT_TRUE(replaySelects(o, c));
  o.state = "SUCCEEDED";
  EXPECT_FALSE(replaySelects(o, c));
  o = {};
  o.job_type = "ingest";
  o.pool = "etl";
  o.job_id = "orders";
  EXPECT_TRUE(replaySelects(o, c));
  o.pool = "gpu";
  EXPECT_FALSE(replaySelects(o, c));
  o = {};
  o.runs = {"another"};
  EXPECT_FALSE(replaySelects(o, c));
  o.runs.push_back(kRun);
  EXPECT_TRUE(replaySelects(o, c));
  o = {};
  o.state = "none";
  EXPECT_TRUE(replaySelects(o, candidate(v1::RUN_STATE_UNSPECIFIED)));
}

TEST(ReplayCommand, ANewRunOfTheSameCommand) {
  v1::JobCommand original = candidate(v1::FAILED).command;
  original.set_attempt(3);
  original.set_not_after_ms(1000);
  original.set_requested_at_ms(5);
  (*original.mutable_args())["db"] = "shop";
  auto c = replayCommand(original, 2, "ci", "replay-pool", kNow);
  EXPECT_EQ(c.run_id(), replayRunId(kRun, 2));
  EXPECT_EQ(c.attempt(), 1u);
  EXPECT_EQ(c.not_after_ms(), 0) << "the original's deadline has passed";
  EXPECT_EQ(c.requested_at_ms(), kNow);
  EXPECT_EQ(c.pool(), "replay-pool");
  EXPECT_EQ(c.labels().at("outpost.replay_of"), kRun);
  EXPECT_EQ(c.labels().at("outpost.replayed_by"), "ci");
  EXPECT_EQ(c.args().at("db"), "shop");
  EXPECT_EQ(c.job_id(), "orders");
  EXPECT_EQ(replayCommand(original, 2, "ci", "", kNow).pool(), "etl");
}

RecordedOutcome outcome(v1::RunState state, std::int32_t exit_code, std::int64_t duration_ms,
                        std::set<std::string> datasets = {}) {
  RecordedOutcome o;
  o.state = state;
  o.exit_code = exit_code;
  o.duration_ms = duration_ms;
  o.datasets = std::move(datasets);
  return o;
}

TEST(ReplayComparison, StateExitDatasetsAndDuration) {
  auto original = candidate(v1::SUCCEEDED, 0, 2000);
  original.recorded.datasets = {"in:pg/orders", "out:dh/orders"};
  const auto id = replayRunId(kRun, 1);
  auto same = compareReplay(original, id,
                            outcome(v1::SUCCEEDED, 0, 2500, {"in:pg/orders", "out:dh/orders"}), 3);
  EXPECT_TRUE(same.differences.empty());

  auto state =
      compareReplay(original, id, outcome(v1::FAILED, 1, 2000, original.recorded.datasets), 3);
  EXPECT_THAT(state.differences, ElementsAre("state SUCCEEDED (exit 0) -> FAILED"));

  auto failed = candidate(v1::FAILED, 2, 100);
  auto exit = compareReplay(failed, id, outcome(v1::FAILED, 3, 100), 3);
  EXPECT_THAT(exit.differences, ElementsAre("exit 2 -> 3"));

  auto datasets = compareReplay(original, id, outcome(v1::SUCCEEDED, 0, 2000, {"in:pg/orders"}), 3);
  EXPECT_THAT(datasets.differences, ElementsAre("lineage datasets -out:dh/orders"));

  auto slow =
      compareReplay(original, id, outcome(v1::SUCCEEDED, 0, 7000, original.recorded.datasets), 3);
  ASSERT_EQ(slow.differences.size(), 1u);
  EXPECT_THAT(slow.differences[0], HasSubstr("duration 2.000 s -> 7.000 s"));
  // Under a second, durations are noise.
  auto quick = candidate(v1::SUCCEEDED, 0, 5);
  EXPECT_TRUE(compareReplay(quick, id, outcome(v1::SUCCEEDED, 0, 400), 3).differences.empty());

  auto never = compareReplay(original, id, std::nullopt, 3);
  EXPECT_THAT(never.differences, ElementsAre("no end within --wait-timeout"));
  EXPECT_THAT(formatComparison({same, state, never}),
              HasSubstr("3 replayed, 1 the same, 2 different"));
}

TEST(ReplayPlan, OneLineEachAndTheCount) {
  auto c = candidate(v1::REJECTED);
  c.recorded.message = "unknown job_type 'x'";
  c.timestamp_ms = kNow;
  auto text = formatPlan({c, candidate(v1::RUN_STATE_UNSPECIFIED)}, "outpost.jobs");
  EXPECT_THAT(text, HasSubstr("2026-12-05T10:00:00.000Z  unsigned          REJECTED: unknown "
                              "job_type 'x'"));
  EXPECT_THAT(text, HasSubstr("no end recorded"));
  EXPECT_THAT(text, HasSubstr("2 command(s) of outpost.jobs would be replayed"));
}

TEST(ReplayOutcomes, TerminalEventsAndLineageDatasets) {
  OutcomeBook book;
  v1::RunEvent e;
  e.set_run_id(kRun);
  e.set_state(v1::STARTED);
  EXPECT_FALSE(book.addEvent(e));
  e.set_state(v1::FAILED);
  e.set_retrying(true);  // a lost attempt's end: the run goes on
  EXPECT_FALSE(book.addEvent(e));
  EXPECT_EQ(book.addLineage(R"({"eventType":"COMPLETE","run":{"runId":")" + std::string(kRun) +
                            R"("},"inputs":[{"namespace":"pg","name":"a"}],)"
                            R"("outputs":[{"namespace":"dh","name":"b"}]})"),
            kRun);
  e.set_retrying(false);
  e.set_exit_code(3);
  e.set_duration_ms(1500);
  EXPECT_TRUE(book.addEvent(e));
  const auto& o = book.runs.at(kRun);
  EXPECT_EQ(o.state, v1::FAILED);
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_EQ(o.duration_ms, 1500);
  EXPECT_THAT(o.datasets, ElementsAre("in:pg/a", "out:dh/b")) << "kept across the terminal event";
  // Only the runs asked about; text that is not a run's record is ignored.
  const std::set<std::string> only = {"other"};
  EXPECT_EQ(
      book.addLineage(R"({"run":{"runId":"x"},"inputs":[{"namespace":"n","name":"m"}]})", &only),
      "x");
  EXPECT_FALSE(book.runs.contains("x"));
  EXPECT_EQ(book.addLineage("not json"), "");
}

TEST(ReplayLocalConfig, NothingOfProductionAndTheDryRunArgs) {
  Config c = parseConfig(R"(
worker: {id: prod-1, pool: etl, slots: 3, work_dir: /var/lib/outpost, delivery: exactly-once}
topics: {prefix: "acme."}
lineage: {transport: http, http: {url: "http://127.0.0.1:1/api/v1/lineage"}}
templates:
  ingest:
    argv: [datahub, ingest, -c, "{recipe_file}"]
    dry_run_args: [--dry-run]
  report:
    argv: [report]
)",
                         {});
  LocalReplayOptions to_files;
  to_files.out_dir = "/tmp/x";
  auto files = localReplayConfig(c, to_files, "/tmp/work");
  EXPECT_EQ(files.worker.id, "replay-prod-1");
  EXPECT_EQ(files.worker.pool, "etl");
  EXPECT_EQ(files.worker.slots, 3u);
  EXPECT_EQ(files.worker.work_dir, "/tmp/work");
  EXPECT_FALSE(files.exactlyOnce());
  EXPECT_TRUE(files.lineage.toKafka());
  EXPECT_FALSE(files.lineage.toHttp()) << "never the production lineage endpoint";
  for (const auto& t :
       {files.topics.jobs, files.topics.events, files.topics.lineage, files.topics.dlq,
        files.topics.runs, files.topics.control, files.topics.workers}) {
    EXPECT_EQ(t.find("acme."), std::string::npos) << t;
  }
  EXPECT_EQ(files.topics.events, "events");
  EXPECT_EQ(files.templates.at("ingest").argv.size(), 4u) << "not a dry run";
  EXPECT_TRUE(files.templates.contains("report"));

  LocalReplayOptions dry_to_topics;
  dry_to_topics.emit_prefix = "staging.";
  dry_to_topics.dry_run = true;
  auto dry = localReplayConfig(c, dry_to_topics, "/tmp/work");
  EXPECT_EQ(dry.topics.events, "staging.events");
  EXPECT_EQ(dry.topics.lineage, "staging.lineage");
  EXPECT_EQ(dry.topics.dlq, "staging.dlq");
  EXPECT_THAT(dry.templates.at("ingest").argv,
              ElementsAre("datahub", "ingest", "-c", "{recipe_file}", "--dry-run"));
  EXPECT_FALSE(dry.templates.contains("report")) << "no dry run: refused, never run for real";
}

}  // namespace
}  // namespace outpost::app

namespace outpost::app {
namespace {

// The plan says how each recorded command was signed, checked as a worker checked it when it was
// written (at its record's time: a token that expired since still counts as valid then).
TEST(ReplayPlan, SaysWhetherEachCommandWasValidlySigned) {
  auto key = security::SigningKey::generateEd25519();
  auto keys = *security::KeySet::parseJwks(*security::addToJwks("", key.publicJwk("k1")));
  SecurityConfig security;
  security.commands = CommandSigning::kRequire;
  v1::JobCommand c;
  c.set_run_id("0190a5d2-7c3e-7abc-8def-000000000001");
  c.set_job_type("ok");
  const auto value = c.SerializeAsString();
  const std::int64_t written_ms = 1'780'000'000'000;  // long ago: the token has expired since
  const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(written_ms));
  const std::vector<events::Header> signed_headers = {
      {"outpost-signature",
       security::signCommandToken(
           key, "k1",
           security::claimsFor(value, "outpost.jobs", {"main"}, security::CommandKind::kJob,
                               c.run_id(), "protobuf", "test", at, std::chrono::minutes(5)))}};
  EXPECT_EQ(
      describeSignature(value, signed_headers, "outpost.jobs", "main", &keys, security, written_ms),
      "k1");
  EXPECT_EQ(describeSignature(value, {}, "outpost.jobs", "main", &keys, security, written_ms),
            "unsigned");
  EXPECT_THAT(describeSignature(value + "x", signed_headers, "outpost.jobs", "main", &keys,
                                security, written_ms),
              HasSubstr("INVALID: signature: the value is not the one signed"));
  EXPECT_THAT(describeSignature(value, signed_headers, "outpost.jobs", "main", nullptr, security,
                                written_ms),
              HasSubstr("not checked"));
}

}  // namespace
}  // namespace outpost::app
