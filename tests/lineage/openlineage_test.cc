// LineageBuilder and the clock/id helpers it relies on: OpenLineage RunEvents for Outpost's runs,
// RFC 3339 times and UUIDv7 ids, checked exactly with a fake clock; the `outpost` run facet; and
// every kind of record checked by tests/tools/validate_lineage.py against the official schemas.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lineage_validator.h"
#include "outpost/common/clock.h"
#include "outpost/lineage/openlineage.h"

namespace outpost::lineage {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::system_clock;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kRunId = "0190a5d2-7c3e-7abc-8def-0123456789ab";
constexpr const char* kParentRunId = "0190a5d2-0000-7000-8000-00000000000a";
constexpr const char* kRootRunId = "0190a5d2-0000-7000-8000-00000000000b";
// 2026-11-21T10:00:00Z
constexpr std::int64_t kNovember21 = 1'795'255'200'000;

system_clock::time_point at(std::int64_t unix_ms) {
  return system_clock::time_point(milliseconds(unix_ms));
}

class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::int64_t unix_ms) : now_(at(unix_ms)) {}
  system_clock::time_point now() const override { return now_; }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::time_point(now_.time_since_epoch());
  }
  void advance(milliseconds d) { now_ += d; }

 private:
  system_clock::time_point now_;
};

v1::JobCommand command() {
  v1::JobCommand c;
  c.set_run_id(kRunId);
  c.set_job_id("mysql-orders");
  c.set_job_type("datahub-ingest");
  return c;
}

json build(LineageEventType type, const v1::JobCommand& c, const LineageOutcome& o = {}) {
  return LineageBuilder("outpost").build(type, c, at(kNovember21 + 123), o);
}

// ---------------------------------------------------------------------------------------------
// Event shape

TEST(LineageBuilder, EventTypeNamesFollowTheSpec) {
  for (auto [type, name] : {std::pair{LineageEventType::kStart, "START"},
                            {LineageEventType::kRunning, "RUNNING"},
                            {LineageEventType::kComplete, "COMPLETE"},
                            {LineageEventType::kFail, "FAIL"},
                            {LineageEventType::kAbort, "ABORT"}}) {
    EXPECT_EQ(build(type, command())["eventType"], name);
  }
}

TEST(LineageBuilder, EventTimeIsRfc3339WithMillisecondsInUtc) {
  json e = build(LineageEventType::kStart, command());
  EXPECT_EQ(e["eventTime"], "2026-11-21T10:00:00.123Z");
}

TEST(LineageBuilder, RunIdIsTheCommandsRunId) {
  EXPECT_EQ(build(LineageEventType::kStart, command())["run"]["runId"], kRunId);
}

TEST(LineageBuilder, TopLevelProducerAndSchemaUrlAreSet) {
  json e = build(LineageEventType::kStart, command());
  EXPECT_EQ(e["producer"], lineageProducer());
  EXPECT_EQ(e["schemaURL"], "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent");
  EXPECT_THAT(lineageProducer(), StartsWith("https://github.com/outpost-dev/outpost/tree/v"));
}

TEST(LineageBuilder, JobNamespaceDefaultsToTheBuildersNamespace) {
  v1::JobCommand c = command();
  json e = LineageBuilder("acme").build(LineageEventType::kStart, c, at(0));
  EXPECT_EQ(e["job"]["namespace"], "acme");
  EXPECT_EQ(LineageBuilder("acme").jobNamespace(c), "acme");
}

TEST(LineageBuilder, JobNameDefaultsToJobIdThenJobType) {
  v1::JobCommand c = command();
  EXPECT_EQ(build(LineageEventType::kStart, c)["job"]["name"], "mysql-orders");
  c.clear_job_id();
  EXPECT_EQ(build(LineageEventType::kStart, c)["job"]["name"], "datahub-ingest");
  EXPECT_EQ(LineageBuilder::jobName(c), "datahub-ingest");
}

TEST(LineageBuilder, LineageBlockOverridesJobNamespaceAndName) {
  v1::JobCommand c = command();
  c.mutable_lineage()->set_job_namespace("warehouse");
  c.mutable_lineage()->set_job_name("orders-ingest");
  json e = build(LineageEventType::kStart, c);
  EXPECT_EQ(e["job"]["namespace"], "warehouse");
  EXPECT_EQ(e["job"]["name"], "orders-ingest");
}

TEST(LineageBuilder, JobTypeFacetDescribesABatchOutpostJob) {
  json jt = build(LineageEventType::kStart, command())["job"]["facets"]["jobType"];
  EXPECT_EQ(jt["processingType"], "BATCH");
  EXPECT_EQ(jt["integration"], "OUTPOST");
  EXPECT_EQ(jt["jobType"], "datahub-ingest");
}

TEST(LineageBuilder, ProcessingEngineFacetNamesOutpost) {
  json pe = build(LineageEventType::kStart, command())["run"]["facets"]["processing_engine"];
  EXPECT_EQ(pe["name"], "outpost");
  ASSERT_TRUE(pe["version"].is_string());
  EXPECT_FALSE(pe["version"].get<std::string>().empty());
  EXPECT_THAT(lineageProducer(), HasSubstr(pe["version"].get<std::string>()));
}

TEST(LineageBuilder, InputsAndOutputsAreCopiedInOrder) {
  v1::JobCommand c = command();
  auto* l = c.mutable_lineage();
  for (auto [ns, name] :
       {std::pair{"mysql://db:3306", "shop.orders"}, {"mysql://db:3306", "shop.customers"}}) {
    auto* d = l->add_inputs();
    d->set_namespace_(ns);
    d->set_name(name);
  }
  auto* out = l->add_outputs();
  out->set_namespace_("s3://lake");
  out->set_name("raw/orders");
  json e = build(LineageEventType::kComplete, c);
  EXPECT_EQ(e["inputs"], json::parse(R"([{"namespace":"mysql://db:3306","name":"shop.orders"},
                                         {"namespace":"mysql://db:3306","name":"shop.customers"}])"));
  EXPECT_EQ(e["outputs"], json::parse(R"([{"namespace":"s3://lake","name":"raw/orders"}])"));
}

TEST(LineageBuilder, NoDatasetsGiveEmptyArrays) {
  json e = build(LineageEventType::kStart, command());
  EXPECT_EQ(e["inputs"], json::array());
  EXPECT_EQ(e["outputs"], json::array());
}

// ---------------------------------------------------------------------------------------------
// Parent and root

v1::JobCommand withParent() {
  v1::JobCommand c = command();
  auto* l = c.mutable_lineage();
  l->set_parent_run_id(kParentRunId);
  l->set_parent_job_namespace("airflow");
  l->set_parent_job_name("nightly.ingest_orders");
  return c;
}

TEST(LineageParent, ParentFacetNamesTheParentRunAndJob) {
  json p = build(LineageEventType::kStart, withParent())["run"]["facets"]["parent"];
  EXPECT_EQ(p["run"]["runId"], kParentRunId);
  EXPECT_EQ(p["job"]["namespace"], "airflow");
  EXPECT_EQ(p["job"]["name"], "nightly.ingest_orders");
  EXPECT_FALSE(p.contains("root"));
}

TEST(LineageParent, NoParentFacetWithoutAParent) {
  EXPECT_FALSE(build(LineageEventType::kStart, command())["run"]["facets"].contains("parent"));
}

TEST(LineageParent, NoParentFacetWhenTheParentRunIdIsNotAUuid) {
  v1::JobCommand c = withParent();
  c.mutable_lineage()->set_parent_run_id("manual__2026-11-21");
  EXPECT_FALSE(build(LineageEventType::kStart, c)["run"]["facets"].contains("parent"));
}

TEST(LineageParent, NoParentFacetWithoutTheParentJobName) {
  v1::JobCommand c = withParent();
  c.mutable_lineage()->clear_parent_job_name();
  EXPECT_FALSE(build(LineageEventType::kStart, c)["run"]["facets"].contains("parent"));
}

TEST(LineageParent, RootIsIncludedWhenGiven) {
  v1::JobCommand c = withParent();
  c.mutable_lineage()->set_root_run_id(kRootRunId);
  c.mutable_lineage()->set_root_job_namespace("airflow");
  c.mutable_lineage()->set_root_job_name("nightly");
  json p = build(LineageEventType::kStart, c)["run"]["facets"]["parent"];
  EXPECT_EQ(p["root"]["run"]["runId"], kRootRunId);
  EXPECT_EQ(p["root"]["job"]["namespace"], "airflow");
  EXPECT_EQ(p["root"]["job"]["name"], "nightly");
}

TEST(LineageParent, RootIsLeftOutWhenItsRunIdIsNotAUuid) {
  v1::JobCommand c = withParent();
  c.mutable_lineage()->set_root_run_id("not-a-uuid");
  c.mutable_lineage()->set_root_job_name("nightly");
  json p = build(LineageEventType::kStart, c)["run"]["facets"]["parent"];
  EXPECT_FALSE(p.contains("root"));
}

// ---------------------------------------------------------------------------------------------
// Nominal time, documentation, source code

TEST(LineageFacets, NominalTimeIsFormattedLikeEventTime) {
  v1::JobCommand c = command();
  c.mutable_lineage()->set_nominal_start_ms(kNovember21);
  c.mutable_lineage()->set_nominal_end_ms(kNovember21 + 3'600'000 + 5);
  json n = build(LineageEventType::kStart, c)["run"]["facets"]["nominalTime"];
  EXPECT_EQ(n["nominalStartTime"], "2026-11-21T10:00:00.000Z");
  EXPECT_EQ(n["nominalEndTime"], "2026-11-21T11:00:00.005Z");
}

TEST(LineageFacets, NominalEndIsOptional) {
  v1::JobCommand c = command();
  c.mutable_lineage()->set_nominal_start_ms(kNovember21);
  json n = build(LineageEventType::kStart, c)["run"]["facets"]["nominalTime"];
  EXPECT_EQ(n["nominalStartTime"], "2026-11-21T10:00:00.000Z");
  EXPECT_FALSE(n.contains("nominalEndTime"));
}

TEST(LineageFacets, NoNominalTimeFacetWithoutANominalStart) {
  v1::JobCommand c = command();
  c.mutable_lineage()->set_nominal_end_ms(kNovember21);
  EXPECT_FALSE(build(LineageEventType::kStart, c)["run"]["facets"].contains("nominalTime"));
}

TEST(LineageFacets, DocumentationAndSourceCodeFacetsOnlyWhenGiven) {
  v1::JobCommand c = command();
  json bare = build(LineageEventType::kStart, c)["job"]["facets"];
  EXPECT_FALSE(bare.contains("documentation"));
  EXPECT_FALSE(bare.contains("sourceCodeLocation"));

  c.mutable_lineage()->set_documentation("Copies orders into the lake.");
  c.mutable_lineage()->set_source_code_url("https://git.example.com/etl/orders");
  json f = build(LineageEventType::kStart, c)["job"]["facets"];
  EXPECT_EQ(f["documentation"]["description"], "Copies orders into the lake.");
  EXPECT_EQ(f["sourceCodeLocation"]["type"], "git");
  EXPECT_EQ(f["sourceCodeLocation"]["url"], "https://git.example.com/etl/orders");
}

// ---------------------------------------------------------------------------------------------
// errorMessage

TEST(LineageError, FailCarriesTheMessageAndTheOutputTailAsStackTrace) {
  LineageOutcome o;
  o.exit_code = 2;
  o.message = "exited with status 2";
  o.output_tail = "Traceback (most recent call last):\n  boom\n";
  json e = build(LineageEventType::kFail, command(), o)["run"]["facets"]["errorMessage"];
  EXPECT_EQ(e["message"], "exited with status 2");
  EXPECT_EQ(e["stackTrace"], "Traceback (most recent call last):\n  boom\n");
  EXPECT_EQ(e["programmingLanguage"], "shell");
}

TEST(LineageError, AbortCarriesAnErrorMessageToo) {
  LineageOutcome o;
  o.message = "cancelled by alice";
  o.output_tail = "partial output";
  json e = build(LineageEventType::kAbort, command(), o)["run"]["facets"]["errorMessage"];
  EXPECT_EQ(e["message"], "cancelled by alice");
  EXPECT_EQ(e["stackTrace"], "partial output");
}

TEST(LineageError, EmptyMessageGetsAGenericOneAndEmptyTailNoStackTrace) {
  json e = build(LineageEventType::kFail, command())["run"]["facets"]["errorMessage"];
  EXPECT_EQ(e["message"], "run did not succeed");
  EXPECT_FALSE(e.contains("stackTrace"));
}

TEST(LineageError, NoErrorMessageOnStartRunningOrComplete) {
  LineageOutcome o;
  o.message = "should not appear";
  o.output_tail = "tail";
  for (auto type :
       {LineageEventType::kStart, LineageEventType::kRunning, LineageEventType::kComplete}) {
    EXPECT_FALSE(build(type, command(), o)["run"]["facets"].contains("errorMessage"));
  }
}

// ---------------------------------------------------------------------------------------------
// Every facet

TEST(LineageFacets, EveryFacetHasProducerAndSchemaUrl) {
  v1::JobCommand c = withParent();
  auto* l = c.mutable_lineage();
  l->set_root_run_id(kRootRunId);
  l->set_root_job_namespace("airflow");
  l->set_root_job_name("nightly");
  l->set_nominal_start_ms(kNovember21);
  l->set_documentation("doc");
  l->set_source_code_url("https://git.example.com/x");
  LineageOutcome o;
  o.message = "failed";
  json e = build(LineageEventType::kFail, c, o);

  std::set<std::string> seen;
  static const std::regex kSchema(
      R"(https://openlineage\.io/spec/facets/\d+-\d+-\d+/[A-Za-z]+\.json#/\$defs/[A-Za-z]+)");
  for (const char* where : {"run", "job"}) {
    for (auto& [name, f] : e[where]["facets"].items()) {
      seen.insert(name);
      EXPECT_EQ(f["_producer"], lineageProducer()) << where << "." << name;
      ASSERT_TRUE(f["_schemaURL"].is_string()) << where << "." << name;
      if (name == "outpost") {
        EXPECT_EQ(f["_schemaURL"], outpostRunFacetSchemaUrl());
      } else {
        EXPECT_TRUE(std::regex_match(f["_schemaURL"].get<std::string>(), kSchema))
            << where << "." << name << ": " << f["_schemaURL"];
      }
    }
  }
  EXPECT_EQ(seen,
            (std::set<std::string>{"processing_engine", "parent", "nominalTime", "errorMessage",
                                   "outpost", "jobType", "documentation", "sourceCodeLocation"}));
}

// ---------------------------------------------------------------------------------------------
// kafkaKey

TEST(LineageKafkaKey, OwnJobWithoutParentOrRoot) {
  EXPECT_EQ(LineageBuilder("outpost").kafkaKey(command()), "run:outpost/mysql-orders");
}

TEST(LineageKafkaKey, OwnJobUsesTheLineageOverrides) {
  v1::JobCommand c = command();
  c.mutable_lineage()->set_job_namespace("warehouse");
  c.mutable_lineage()->set_job_name("orders");
  EXPECT_EQ(LineageBuilder("outpost").kafkaKey(c), "run:warehouse/orders");
}

TEST(LineageKafkaKey, ParentJobWinsOverOwnJob) {
  EXPECT_EQ(LineageBuilder("outpost").kafkaKey(withParent()), "run:airflow/nightly.ingest_orders");
}

TEST(LineageKafkaKey, RootJobWinsOverParent) {
  v1::JobCommand c = withParent();
  c.mutable_lineage()->set_root_run_id(kRootRunId);
  c.mutable_lineage()->set_root_job_namespace("scheduler");
  c.mutable_lineage()->set_root_job_name("nightly");
  EXPECT_EQ(LineageBuilder("outpost").kafkaKey(c), "run:scheduler/nightly");
}

// ---------------------------------------------------------------------------------------------
// The outpost run facet

LineageBuilder workerBuilder() {
  return LineageBuilder("outpost", {"worker-7", "etl"});
}

json outpostFacet(LineageEventType type, const v1::JobCommand& c, const LineageOutcome& o = {}) {
  return workerBuilder().build(type, c, at(kNovember21 + 123), o)["run"]["facets"]["outpost"];
}

json readJsonFile(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

const std::string kFacetFile =
    std::string(OUTPOST_SOURCE_DIR) + "/lineage/schemas/OutpostRunFacet.json";

TEST(OutpostFacet, StartSaysWhoRanWhichAttemptOfWhichTemplate) {
  v1::JobCommand c = command();
  c.set_attempt(2);
  c.set_max_attempts(3);
  json expected = {{"_producer", lineageProducer()},
                   {"_schemaURL", outpostRunFacetSchemaUrl()},
                   {"workerId", "worker-7"},
                   {"pool", "etl"},
                   {"attempt", 2},
                   {"maxAttempts", 3},
                   {"template", "datahub-ingest"},
                   {"jobId", "mysql-orders"}};
  EXPECT_EQ(outpostFacet(LineageEventType::kStart, c), expected);
}

TEST(OutpostFacet, IsOnEveryEventType) {
  for (auto type :
       {LineageEventType::kStart, LineageEventType::kRunning, LineageEventType::kComplete,
        LineageEventType::kFail, LineageEventType::kAbort}) {
    EXPECT_TRUE(build(type, command())["run"]["facets"].contains("outpost"));
  }
}

TEST(OutpostFacet, AttemptZeroCountsAsTheFirstAndNoMaxAttemptsWhenUnset) {
  json f = outpostFacet(LineageEventType::kStart, command());
  EXPECT_EQ(f["attempt"], 1);
  EXPECT_FALSE(f.contains("maxAttempts"));
}

TEST(OutpostFacet, WorkerAndPoolAreLeftOutWhenTheBuilderHasNone) {
  json f = build(LineageEventType::kStart, command())["run"]["facets"]["outpost"];
  EXPECT_FALSE(f.contains("workerId"));
  EXPECT_FALSE(f.contains("pool"));
  EXPECT_EQ(f["template"], "datahub-ingest");
}

TEST(OutpostFacet, QueuedMsRunsFromRequestedAtToTheProcessStart) {
  v1::JobCommand c = command();
  c.set_requested_at_ms(kNovember21 - 1500);
  LineageOutcome o;
  o.started_at = at(kNovember21);
  json f = outpostFacet(LineageEventType::kStart, c, o);
  EXPECT_EQ(f["queuedMs"], 1500);
  EXPECT_FALSE(f.contains("runMs"));
}

TEST(OutpostFacet, NoQueuedMsWithoutRequestedAtOrWhenTheSchedulersClockIsAhead) {
  LineageOutcome o;
  o.started_at = at(kNovember21);
  EXPECT_FALSE(outpostFacet(LineageEventType::kStart, command(), o).contains("queuedMs"));
  v1::JobCommand c = command();
  c.set_requested_at_ms(kNovember21 + 10);
  EXPECT_FALSE(outpostFacet(LineageEventType::kStart, c, o).contains("queuedMs"));
}

TEST(OutpostFacet, RunningCarriesTheRunTimeSoFar) {
  LineageOutcome o;
  o.started_at = at(kNovember21 + 123 - 5000);
  json f = outpostFacet(LineageEventType::kRunning, command(), o);
  EXPECT_EQ(f["runMs"], 5000);
  EXPECT_FALSE(f.contains("exitCode"));
}

TEST(OutpostFacet, CompleteCarriesTheExitCodeAndTheRunDuration) {
  LineageOutcome o;
  o.exit_code = 0;
  o.started_at = at(kNovember21 - 100'000);
  o.run_duration = milliseconds(73'000);
  json f = outpostFacet(LineageEventType::kComplete, command(), o);
  EXPECT_EQ(f["exitCode"], 0);
  EXPECT_FALSE(f.contains("signal"));
  EXPECT_EQ(f["runMs"], 73'000);  // the supervisor's duration wins over event time - start
}

TEST(OutpostFacet, FailByASignalCarriesTheSignalAndNoExitCode) {
  LineageOutcome o;
  o.signal = 9;
  o.message = "killed by SIGKILL";
  json f = outpostFacet(LineageEventType::kFail, command(), o);
  EXPECT_EQ(f["signal"], 9);
  EXPECT_FALSE(f.contains("exitCode"));
}

TEST(OutpostFacet, ExitCodeSignalAndChildCountsOnlyOnTerminalEvents) {
  LineageOutcome o;
  o.exit_code = 3;
  o.child_events_forwarded = 4;
  o.child_events_rejected = 1;
  for (auto type : {LineageEventType::kStart, LineageEventType::kRunning}) {
    json f = outpostFacet(type, command(), o);
    EXPECT_FALSE(f.contains("exitCode"));
    EXPECT_FALSE(f.contains("childEventsForwarded"));
  }
  json f = outpostFacet(LineageEventType::kFail, command(), o);
  EXPECT_EQ(f["exitCode"], 3);
  EXPECT_EQ(f["childEventsForwarded"], 4);
  EXPECT_EQ(f["childEventsRejected"], 1);
}

TEST(OutpostFacet, SchemaUrlIsTheSchemaFilesIdAndDefinition) {
  json schema = readJsonFile(kFacetFile);
  EXPECT_EQ(outpostRunFacetSchemaUrl(),
            schema["$id"].get<std::string>() + "#/$defs/OutpostRunFacet");
  EXPECT_TRUE(schema["$defs"].contains("OutpostRunFacet"));
  EXPECT_EQ(schema["properties"]["outpost"]["$ref"], "#/$defs/OutpostRunFacet");
  EXPECT_THAT(schema["$id"].get<std::string>(),
              StartsWith("https://github.com/outpost-dev/outpost/"));
}

TEST(OutpostFacet, EveryFieldTheBuilderWritesIsDeclaredInTheSchema) {
  json schema = readJsonFile(kFacetFile);
  const json& props = schema["$defs"]["OutpostRunFacet"]["allOf"][1]["properties"];
  v1::JobCommand c = command();
  c.set_max_attempts(2);
  c.set_requested_at_ms(kNovember21 - 10);
  auto* bad = c.mutable_lineage()->add_inputs();
  bad->set_namespace_("postgres://db");
  bad->set_name("a.b.c");
  LineageOutcome o;
  o.exit_code = 1;
  o.started_at = at(kNovember21);
  o.run_duration = milliseconds(5);
  o.child_events_forwarded = 1;
  o.child_events_rejected = 0;
  LineageOutcome by_signal = o;
  by_signal.exit_code.reset();
  by_signal.signal = 15;
  std::set<std::string> written;
  for (const auto& outcome : {o, by_signal}) {
    json facet = outpostFacet(LineageEventType::kFail, c, outcome);
    for (auto& [k, v] : facet.items()) {
      written.insert(k);
      if (k == "_producer" || k == "_schemaURL") continue;
      EXPECT_TRUE(props.contains(k)) << k << " is not declared in " << kFacetFile;
    }
  }
  for (auto& [k, v] : props.items()) {
    EXPECT_TRUE(written.contains(k)) << "the schema declares " << k << ", never written";
  }
}

// ---------------------------------------------------------------------------------------------
// Declared datasets and the naming conventions

TEST(LineageDatasets, MalformedDeclaredDatasetsAreLeftOutAndListedInTheOutpostFacet) {
  v1::JobCommand c = command();
  auto add = [](auto* d, const char* ns, const char* name) {
    d->set_namespace_(ns);
    d->set_name(name);
  };
  add(c.mutable_lineage()->add_inputs(), "postgres://db:5432", "shop.public.orders");
  add(c.mutable_lineage()->add_inputs(), "postgres://db", "shop.public.customers");
  add(c.mutable_lineage()->add_outputs(), "s3a://lake", "raw/orders");
  json e = build(LineageEventType::kStart, c);
  EXPECT_EQ(e["inputs"], json::parse(R"([{"namespace":"postgres://db:5432",
                                         "name":"shop.public.orders"}])"));
  EXPECT_EQ(e["outputs"], json::array());
  json bad = e["run"]["facets"]["outpost"]["invalidDatasets"];
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_EQ(bad[0]["direction"], "input");
  EXPECT_EQ(bad[0]["namespace"], "postgres://db");
  EXPECT_EQ(bad[0]["name"], "shop.public.customers");
  EXPECT_THAT(bad[0]["error"].get<std::string>(), HasSubstr("the port is missing"));
  EXPECT_EQ(bad[1]["direction"], "output");
  EXPECT_THAT(bad[1]["error"].get<std::string>(), HasSubstr("'s3'"));

  auto problems = LineageBuilder::datasetProblems(c);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_TRUE(problems[0].input);
  EXPECT_FALSE(problems[1].input);
  EXPECT_EQ(problems[1].ns, "s3a://lake");
}

TEST(LineageDatasets, APasswordInADeclaredNamespaceIsNotRepeated) {
  v1::JobCommand c = command();
  auto* d = c.mutable_lineage()->add_inputs();
  d->set_namespace_("postgres://etl:hunter22@db:5432");
  d->set_name("shop.public.orders");
  json e = build(LineageEventType::kStart, c);
  EXPECT_EQ(e["inputs"], json::array());
  EXPECT_EQ(e["run"]["facets"]["outpost"]["invalidDatasets"][0]["namespace"],
            "postgres://***@db:5432");
  EXPECT_THAT(e.dump(), Not(HasSubstr("hunter22")));
}

TEST(LineageDatasets, NoInvalidDatasetsFieldWhenAllAreWellNamed) {
  v1::JobCommand c = command();
  auto* d = c.mutable_lineage()->add_inputs();
  d->set_namespace_("bigquery");
  d->set_name("proj.sales.orders");
  json e = build(LineageEventType::kStart, c);
  EXPECT_EQ(e["inputs"].size(), 1u);
  EXPECT_FALSE(e["run"]["facets"]["outpost"].contains("invalidDatasets"));
  EXPECT_TRUE(LineageBuilder::datasetProblems(c).empty());
}

TEST(LineageDatasets, DatasetsOfPlatformsTheConventionsDoNotListPass) {
  v1::JobCommand c = command();
  auto* d = c.mutable_lineage()->add_outputs();
  d->set_namespace_("mongodb://mongo:27017");
  d->set_name("shop.orders");
  EXPECT_EQ(build(LineageEventType::kStart, c)["outputs"].size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Every record against the official schemas (tests/tools/validate_lineage.py)

v1::JobCommand fullCommand() {
  v1::JobCommand c = withParent();
  c.set_attempt(3);
  c.set_max_attempts(5);
  c.set_requested_at_ms(kNovember21 - 60'000);
  auto* l = c.mutable_lineage();
  l->set_root_run_id(kRootRunId);
  l->set_root_job_namespace("airflow");
  l->set_root_job_name("nightly");
  l->set_nominal_start_ms(kNovember21);
  l->set_nominal_end_ms(kNovember21 + 3'600'000);
  l->set_documentation("Copies orders into the lake.");
  l->set_source_code_url("https://git.example.com/etl/orders");
  for (auto [ns, name] : {std::pair{"mysql://db:3306", "shop.orders"},
                          {"postgres://pg.internal:5432", "analytics.public.orders"},
                          {"kafka://broker-1:9092", "orders.v1"},
                          {"postgres://no-port", "a.b.c"}}) {
    auto* d = l->add_inputs();
    d->set_namespace_(ns);
    d->set_name(name);
  }
  for (auto [ns, name] : {std::pair{"s3://lake", "raw/orders/2026-11-21.parquet"},
                          {"bigquery", "proj.lake.orders"}}) {
    auto* d = l->add_outputs();
    d->set_namespace_(ns);
    d->set_name(name);
  }
  return c;
}

TEST(LineageSchema, EveryKindOfRecordValidates) {
  std::vector<std::string> events;
  std::vector<LineageOutcome> outcomes(4);
  outcomes[1].exit_code = 0;
  outcomes[1].started_at = at(kNovember21);
  outcomes[1].run_duration = milliseconds(1234);
  outcomes[2].exit_code = 2;
  outcomes[2].message = "exited with status 2";
  outcomes[2].output_tail = "Traceback:\n  boom\n";
  outcomes[2].child_events_forwarded = 3;
  outcomes[2].child_events_rejected = 1;
  outcomes[3].signal = 9;
  outcomes[3].message = "cancelled by alice: wrong recipe";
  outcomes[3].started_at = at(kNovember21);
  for (const auto& c : {command(), withParent(), fullCommand()}) {
    for (auto type :
         {LineageEventType::kStart, LineageEventType::kRunning, LineageEventType::kComplete,
          LineageEventType::kFail, LineageEventType::kAbort}) {
      for (const auto& o : outcomes) {
        events.push_back(workerBuilder().build(type, c, at(kNovember21 + 5), o).dump());
        events.push_back(LineageBuilder("acme").build(type, c, at(kNovember21), o).dump());
      }
    }
  }
  auto v = lineage_test::validateLineageEvents(events);
  if (v.skipped) return;
  EXPECT_TRUE(v.ok) << v.output;
  EXPECT_EQ(std::count(v.output.begin(), v.output.end(), '\n'), static_cast<long>(events.size()))
      << v.output;
}

TEST(LineageSchema, TheValidatorChecksTheOutpostFacet) {
  // Not a vacuous pass: a broken outpost facet is caught by its own schema.
  json e = workerBuilder().build(LineageEventType::kComplete, command(), at(kNovember21));
  e["run"]["facets"]["outpost"]["attempt"] = 0;
  e["run"]["facets"]["outpost"]["exitCode"] = 1;
  e["run"]["facets"]["outpost"]["signal"] = 9;
  auto v = lineage_test::validateLineageEvents({e.dump()});
  if (v.skipped) return;
  EXPECT_FALSE(v.ok) << v.output;
  EXPECT_THAT(v.output, HasSubstr("run.facets.outpost"));
  EXPECT_THAT(v.output, HasSubstr("attempt"));
}

// ---------------------------------------------------------------------------------------------
// formatRfc3339Millis, toUnixMillis

TEST(FormatRfc3339Millis, EpochAndMilliseconds) {
  EXPECT_EQ(formatRfc3339Millis(at(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(formatRfc3339Millis(at(1'234)), "1970-01-01T00:00:01.234Z");
  EXPECT_EQ(formatRfc3339Millis(at(kNovember21 + 7)), "2026-11-21T10:00:00.007Z");
}

TEST(FormatRfc3339Millis, LeapDayAndEndOfYear) {
  EXPECT_EQ(formatRfc3339Millis(at(1'709'251'199'999)), "2024-02-29T23:59:59.999Z");
  EXPECT_EQ(formatRfc3339Millis(at(1'735'689'599'999)), "2024-12-31T23:59:59.999Z");
}

TEST(FormatRfc3339Millis, SubMillisecondPartIsTruncated) {
  auto t = at(1'234) + std::chrono::microseconds(999);
  EXPECT_EQ(formatRfc3339Millis(t), "1970-01-01T00:00:01.234Z");
}

TEST(FormatRfc3339Millis, TimesBeforeTheEpoch) {
  EXPECT_EQ(formatRfc3339Millis(at(-1)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(formatRfc3339Millis(at(-1000)), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(formatRfc3339Millis(at(-1001)), "1969-12-31T23:59:58.999Z");
}

TEST(ToUnixMillis, CountsMillisecondsSinceTheEpoch) {
  EXPECT_EQ(toUnixMillis(at(kNovember21)), kNovember21);
  EXPECT_EQ(toUnixMillis(at(0)), 0);
}

// ---------------------------------------------------------------------------------------------
// isUuid

TEST(IsUuid, CanonicalFormsAreAccepted) {
  EXPECT_TRUE(isUuid("0190a5d2-7c3e-7abc-8def-0123456789ab"));
  EXPECT_TRUE(isUuid("0190A5D2-7C3E-7ABC-8DEF-0123456789AB"));
  EXPECT_TRUE(isUuid("00000000-0000-0000-0000-000000000000"));
}

TEST(IsUuid, OtherTextIsRefused) {
  for (const char* bad :
       {"", "../etc", "0190a5d2-7c3e-7abc-8def-0123456789a",
        "0190a5d2-7c3e-7abc-8def-0123456789abc", "0190a5d27c3e7abc8def0123456789ab",
        "{0190a5d2-7c3e-7abc-8def-0123456789a}", "0190a5d2-7c3e-7abc-8def_0123456789ab",
        "0190a5d2-7c3e-7abc-8def-0123456789ag", "0190a5d-27c3e-7abc-8def-0123456789ab",
        "0190a5d2-7c3e-7abc-8def-01234567/../", " 190a5d2-7c3e-7abc-8def-0123456789ab"}) {
    EXPECT_FALSE(isUuid(bad)) << "'" << bad << "'";
  }
}

// ---------------------------------------------------------------------------------------------
// UuidGenerator

std::string hex48(std::int64_t ms) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%012llx", static_cast<unsigned long long>(ms));
  return buf;
}

TEST(UuidGenerator, MakesCanonicalLowercaseUuids) {
  FakeClock clock(kNovember21);
  UuidGenerator gen(clock);
  for (int i = 0; i < 100; ++i) {
    std::string id = gen.next();
    ASSERT_TRUE(isUuid(id)) << id;
    ASSERT_EQ(id.find_first_of("ABCDEF"), std::string::npos) << id;
  }
}

TEST(UuidGenerator, VersionIsSevenAndVariantIsRfc9562) {
  FakeClock clock(kNovember21);
  UuidGenerator gen(clock);
  for (int i = 0; i < 200; ++i) {
    std::string id = gen.next();
    ASSERT_EQ(id[14], '7') << id;
    ASSERT_THAT(std::string("89ab"), HasSubstr(std::string(1, id[19]))) << id;
  }
}

TEST(UuidGenerator, First48BitsAreTheClocksUnixMilliseconds) {
  FakeClock clock(kNovember21 + 42);
  UuidGenerator gen(clock);
  std::string id = gen.next();
  std::string hex = id.substr(0, 8) + id.substr(9, 4);
  EXPECT_EQ(hex, hex48(kNovember21 + 42));
}

TEST(UuidGenerator, IdsAreOrderedWhenTheClockAdvances) {
  FakeClock clock(kNovember21);
  UuidGenerator gen(clock);
  std::string previous = gen.next();
  for (int i = 0; i < 1000; ++i) {
    clock.advance(milliseconds(1));
    std::string id = gen.next();
    ASSERT_GT(id, previous) << "at step " << i;
    previous = id;
  }
}

TEST(UuidGenerator, IdsInTheSameMillisecondAreDistinct) {
  FakeClock clock(kNovember21);
  UuidGenerator gen(clock);
  std::set<std::string> ids;
  for (int i = 0; i < 10'000; ++i) ids.insert(gen.next());
  EXPECT_EQ(ids.size(), 10'000u);
}

TEST(UuidGenerator, ConcurrentCallersGetDistinctValidIds) {
  FakeClock clock(kNovember21);
  UuidGenerator gen(clock);
  constexpr int kThreads = 4, kEach = 2'000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) made[t].push_back(gen.next());
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (auto& v : made) {
    for (auto& id : v) {
      ASSERT_TRUE(isUuid(id)) << id;
      all.insert(id);
    }
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace outpost::lineage
