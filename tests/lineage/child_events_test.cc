// ChildLineageProcessor: OpenLineage events a job writes itself (OUTPOST_LINEAGE_FD/FILE), tied
// to the Outpost run, redacted, checked, and either forwarded (and valid against the official
// schemas) or refused with a bounded message that carries no secret.
#include <cctype>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lineage_validator.h"
#include "outpost/lineage/child_events.h"
#include "outpost/lineage/openlineage.h"

namespace outpost::lineage {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kRunId = "0190a5d2-7c3e-7abc-8def-0123456789ab";
constexpr const char* kChildRunId = "0190a5d2-7c3e-7abc-8def-00000000c0de";
constexpr const char* kGrandChildRunId = "0190a5d2-7c3e-7abc-8def-00000000c0df";
constexpr const char* kParentRunId = "0190a5d2-0000-7000-8000-00000000000a";
constexpr const char* kRootRunId = "0190a5d2-0000-7000-8000-00000000000b";
constexpr const char* kOtherRunId = "0190a5d2-0000-7000-8000-0000000000ff";
constexpr const char* kSecret = "hunter2-sesame";
constexpr const char* kSchemaUrl =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

v1::JobCommand command() {
  v1::JobCommand c;
  c.set_run_id(kRunId);
  c.set_job_id("orders-dbt");
  c.set_job_type("dbt-run");
  return c;
}

v1::JobCommand withParent(bool root) {
  v1::JobCommand c = command();
  auto* l = c.mutable_lineage();
  l->set_parent_run_id(kParentRunId);
  l->set_parent_job_namespace("airflow");
  l->set_parent_job_name("nightly.dbt");
  if (root) {
    l->set_root_run_id(kRootRunId);
    l->set_root_job_namespace("airflow");
    l->set_root_job_name("nightly");
  }
  return c;
}

// Replaces kSecret wherever it appears, as the secrets masker would.
std::string redact(std::string_view text) {
  std::string out(text);
  for (auto pos = out.find(kSecret); pos != std::string::npos; pos = out.find(kSecret, pos)) {
    out.replace(pos, std::string_view(kSecret).size(), "***");
    pos += 3;
  }
  return out;
}

ChildLineageProcessor processorFor(const v1::JobCommand& c, ChildLineageOptions o = {}) {
  return ChildLineageProcessor(ChildLineageRun::of(LineageBuilder("outpost"), c), redact, o);
}

// An event of a run of the job's own (a dbt model), as the dbt integration would write it.
json childEvent(const std::string& type = "COMPLETE") {
  return {
      {"eventType", type},
      {"eventTime", "2026-11-21T10:00:01.5+01:00"},
      {"producer", "https://github.com/OpenLineage/OpenLineage/tree/1.24.0/integration/dbt"},
      {"schemaURL", kSchemaUrl},
      {"run", {{"runId", kChildRunId}}},
      {"job", {{"namespace", "dbt"}, {"name", "shop.orders_model"}}},
      {"inputs",
       json::array({{{"namespace", "postgres://pg:5432"}, {"name", "shop.public.raw_orders"}}})},
      {"outputs",
       json::array({{{"namespace", "postgres://pg:5432"}, {"name", "shop.public.orders"}}})}};
}

// An event about the Outpost run itself, with runId and job left to Outpost.
json ownEvent(const std::string& type = "RUNNING") {
  json e = childEvent(type);
  e.erase("run");
  e.erase("job");
  return e;
}

json accepted(ChildLineageProcessor& p, const json& event) {
  auto r = p.process(event.dump());
  EXPECT_TRUE(r.record) << r.error;
  EXPECT_TRUE(r.error.empty()) << r.error;
  return r.record ? json::parse(r.record->json) : json();
}

std::string refused(ChildLineageProcessor& p, std::string_view line) {
  auto r = p.process(line);
  EXPECT_FALSE(r.record) << (r.record ? r.record->json : "");
  return r.error;
}

// ---------------------------------------------------------------------------------------------
// Events about the Outpost run itself

TEST(ChildLineageOwnRun, MissingRunIdAndJobAreFilledIn) {
  auto p = processorFor(command());
  auto r = p.process(ownEvent().dump());
  ASSERT_TRUE(r.record) << r.error;
  json e = json::parse(r.record->json);
  EXPECT_EQ(e["run"]["runId"], kRunId);
  EXPECT_EQ(e["job"], json({{"namespace", "outpost"}, {"name", "orders-dbt"}}));
  EXPECT_EQ(r.record->run_id, kRunId);
  EXPECT_EQ(r.record->event_type, "RUNNING");
  EXPECT_EQ(r.record->kafka_key, "run:outpost/orders-dbt");
  EXPECT_EQ(e["outputs"][0]["name"], "shop.public.orders");
  EXPECT_EQ(p.forwarded(), 1u);
}

TEST(ChildLineageOwnRun, TheRunsParentFacetIsAddedAndTheKeyIsTheRunsOwn) {
  v1::JobCommand c = withParent(true);
  auto p = processorFor(c);
  auto r = p.process(ownEvent("OTHER").dump());
  ASSERT_TRUE(r.record) << r.error;
  json e = json::parse(r.record->json);
  EXPECT_EQ(e["run"]["facets"]["parent"], *LineageBuilder("outpost").parentFacet(c));
  EXPECT_EQ(r.record->kafka_key, LineageBuilder("outpost").kafkaKey(c));
  EXPECT_EQ(r.record->kafka_key, "run:airflow/nightly");
}

TEST(ChildLineageOwnRun, GivenRunIdInAnyCaseIsTheRun) {
  auto p = processorFor(command());
  json event = ownEvent();
  std::string upper = kRunId;
  for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  event["run"] = {{"runId", upper}};
  event["job"] = {{"namespace", "outpost"}, {"name", "orders-dbt"}};
  EXPECT_EQ(accepted(p, event)["run"]["runId"], kRunId);
}

TEST(ChildLineageOwnRun, StartAndTerminalEventsAreOutpostsOwn) {
  auto p = processorFor(command());
  for (const char* type : {"START", "COMPLETE", "FAIL", "ABORT"}) {
    EXPECT_THAT(refused(p, ownEvent(type).dump()),
                AllOf(HasSubstr(std::string("eventType ") + type), HasSubstr("Outpost's own")));
  }
  EXPECT_EQ(p.rejected(), 4u);
  EXPECT_EQ(p.forwarded(), 0u);
}

TEST(ChildLineageOwnRun, AnotherJobForTheRunIsRefused) {
  auto p = processorFor(command());
  json e = ownEvent();
  e["job"] = {{"namespace", "outpost"}, {"name", "something-else"}};
  EXPECT_THAT(refused(p, e.dump()), HasSubstr("is not this run's job 'outpost/orders-dbt'"));
}

TEST(ChildLineageOwnRun, AParentThatContradictsTheRunsIsRefused) {
  json e = ownEvent();
  e["run"] = {
      {"runId", kRunId},
      {"facets", {{"parent", makeParentRunFacet({kOtherRunId, "airflow", "nightly.dbt"})}}}};
  auto with_parent = processorFor(withParent(false));
  EXPECT_THAT(refused(with_parent, e.dump()), HasSubstr("not this run's parent"));
  auto without = processorFor(command());
  EXPECT_THAT(refused(without, e.dump()), HasSubstr("this run has no parent"));
}

TEST(ChildLineageOwnRun, AMatchingParentGetsTheRunsRoot) {
  json e = ownEvent();
  e["run"] = {
      {"runId", kRunId},
      {"facets", {{"parent", makeParentRunFacet({kParentRunId, "airflow", "nightly.dbt"})}}}};
  auto p = processorFor(withParent(true));
  json out = accepted(p, e);
  EXPECT_EQ(out["run"]["facets"]["parent"]["root"]["run"]["runId"], kRootRunId);
  EXPECT_EQ(out["run"]["facets"]["parent"]["root"]["job"]["name"], "nightly");
}

// ---------------------------------------------------------------------------------------------
// Runs of the job's own

TEST(ChildLineageChildRuns, GetAParentNamingTheOutpostRunWithItselfAsRoot) {
  auto p = processorFor(command());
  json parent = accepted(p, childEvent())["run"]["facets"]["parent"];
  EXPECT_EQ(parent["run"]["runId"], kRunId);
  EXPECT_EQ(parent["job"], json({{"namespace", "outpost"}, {"name", "orders-dbt"}}));
  EXPECT_EQ(parent["root"]["run"]["runId"], kRunId);
  EXPECT_EQ(parent["_schemaURL"],
            "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet");
}

TEST(ChildLineageChildRuns, RootIsTheCommandsRootElseItsParent) {
  auto with_root = processorFor(withParent(true));
  json r = accepted(with_root, childEvent())["run"]["facets"]["parent"]["root"];
  EXPECT_EQ(r["run"]["runId"], kRootRunId);
  EXPECT_EQ(r["job"]["name"], "nightly");

  auto parent_only = processorFor(withParent(false));
  r = accepted(parent_only, childEvent())["run"]["facets"]["parent"]["root"];
  EXPECT_EQ(r["run"]["runId"], kParentRunId);
  EXPECT_EQ(r["job"]["name"], "nightly.dbt");
}

TEST(ChildLineageChildRuns, AnIntermediateParentIsKeptAndGetsTheRoot) {
  // A dbt model's run whose parent is the dbt invocation's run (itself a child of Outpost's).
  json e = childEvent();
  e["run"] = {{"runId", kGrandChildRunId},
              {"facets", {{"parent", makeParentRunFacet({kChildRunId, "dbt", "shop"})}}}};
  auto p = processorFor(withParent(true));
  json parent = accepted(p, e)["run"]["facets"]["parent"];
  EXPECT_EQ(parent["run"]["runId"], kChildRunId);
  EXPECT_EQ(parent["root"]["run"]["runId"], kRootRunId);
}

TEST(ChildLineageChildRuns, AnotherRootIsRefused) {
  json e = childEvent();
  e["run"] = {{"runId", kChildRunId},
              {"facets",
               {{"parent", makeParentRunFacet({kRunId, "outpost", "orders-dbt"},
                                              LineageRunRef{kOtherRunId, "elsewhere", "x"})}}}};
  auto p = processorFor(command());
  EXPECT_THAT(refused(p, e.dump()), HasSubstr("not the root of this run"));
}

TEST(ChildLineageChildRuns, AParentNamingTheOutpostRunMustNameItsJob) {
  json e = childEvent();
  e["run"] = {{"runId", kChildRunId},
              {"facets", {{"parent", makeParentRunFacet({kRunId, "outpost", "wrong"})}}}};
  auto p = processorFor(command());
  EXPECT_THAT(refused(p, e.dump()), HasSubstr("names this run with the job 'outpost/wrong'"));
}

TEST(ChildLineageChildRuns, ARunCannotBeItsOwnParent) {
  json e = childEvent();
  e["run"] = {{"runId", kChildRunId},
              {"facets", {{"parent", makeParentRunFacet({kChildRunId, "dbt", "x"})}}}};
  auto p = processorFor(command());
  EXPECT_THAT(refused(p, e.dump()), HasSubstr("names the run itself"));
}

TEST(ChildLineageChildRuns, NeedAJobOfTheirOwn) {
  auto p = processorFor(command());
  json e = childEvent();
  e.erase("job");
  EXPECT_THAT(refused(p, e.dump()), HasSubstr("job is missing"));
  e["job"] = {{"namespace", "outpost"}, {"name", "orders-dbt"}};
  EXPECT_THAT(refused(p, e.dump()), HasSubstr("needs a job name of its own"));
}

TEST(ChildLineageChildRuns, AreRefusedWhenOnlyTheRunItselfIsAllowed) {
  ChildLineageOptions o;
  o.allow_child_runs = false;
  auto p = processorFor(command(), o);
  EXPECT_THAT(refused(p, childEvent().dump()), HasSubstr("events about its own run only"));
  EXPECT_TRUE(p.process(ownEvent().dump()).record);
}

// ---------------------------------------------------------------------------------------------
// Redaction

TEST(ChildLineageRedaction, EveryStringKeyAndNumberIsRedacted) {
  auto p = processorFor(command());
  json e = childEvent();
  e["job"]["facets"] = {
      {"sql",
       {{"_producer", "https://example.com/p"},
        {"_schemaURL",
         "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet"},
        {"query", std::string("select * from t where password = '") + kSecret + "'"}}}};
  e["run"]["facets"] = {{"custom",
                         {{"_producer", "https://example.com/p"},
                          {"_schemaURL", "https://example.com/schema.json"},
                          {std::string("key-") + kSecret, "v"},
                          {"pin", 4711'0815},
                          {"nested", {{"deep", json::array({std::string("x") + kSecret})}}}}}};
  auto masking_pin = [](std::string_view s) {
    std::string out = redact(s);
    if (auto pos = out.find("47110815"); pos != std::string::npos) out.replace(pos, 8, "***");
    return out;
  };
  ChildLineageProcessor pin_aware(ChildLineageRun::of(LineageBuilder("outpost"), command()),
                                  masking_pin);
  for (auto* proc : {&p, &pin_aware}) {
    auto r = proc->process(e.dump());
    ASSERT_TRUE(r.record) << r.error;
    EXPECT_THAT(r.record->json, Not(HasSubstr(kSecret)));
    json out = json::parse(r.record->json);
    EXPECT_EQ(out["job"]["facets"]["sql"]["query"], "select * from t where password = '***'");
    EXPECT_TRUE(out["run"]["facets"]["custom"].contains("key-***"));
    EXPECT_EQ(out["run"]["facets"]["custom"]["nested"]["deep"][0], "x***");
  }
  auto r = pin_aware.process(e.dump());
  EXPECT_THAT(r.record->json, Not(HasSubstr("47110815")));
}

TEST(ChildLineageRedaction, RefusalsNeverCarryTheSecret) {
  auto p = processorFor(command());
  json e = ownEvent();
  e["eventType"] = std::string("X") + kSecret;
  std::string msg = refused(p, e.dump());
  EXPECT_THAT(msg, HasSubstr("eventType 'X***'"));
  EXPECT_THAT(msg, Not(HasSubstr(kSecret)));
  // A parse error never quotes the line.
  msg = refused(p, std::string(R"({"eventType": "RUNNING", "x": ")") + kSecret + "\" oops}");
  EXPECT_THAT(msg, HasSubstr("not valid JSON"));
  EXPECT_THAT(msg, Not(HasSubstr(kSecret)));
  e = ownEvent();
  e["eventTime"] = kSecret;
  EXPECT_THAT(refused(p, e.dump()), Not(HasSubstr(kSecret)));
}

TEST(ChildLineageRedaction, NeedsARedactFunction) {
  EXPECT_THROW(ChildLineageProcessor(ChildLineageRun::of(LineageBuilder("o"), command()), nullptr),
               std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Structure checks

TEST(ChildLineageChecks, MalformedEventsAreRefusedWithWhatIsWrong) {
  struct Case {
    std::function<void(json&)> change;
    const char* says;
  };
  std::vector<Case> cases = {
      {[](json& e) { e.erase("eventType"); }, "eventType is missing"},
      {[](json& e) { e["eventType"] = "DONE"; }, "eventType 'DONE' is not one of START, RUNNING"},
      {[](json& e) { e["eventType"] = 3; }, "(not a string)"},
      {[](json& e) { e.erase("eventTime"); }, "eventTime is missing"},
      {[](json& e) { e["eventTime"] = "2026-02-30T10:00:00Z"; }, "not an RFC 3339 date-time"},
      {[](json& e) { e["eventTime"] = "2026-11-21T10:00:00"; }, "not an RFC 3339 date-time"},
      {[](json& e) { e["eventTime"] = "2026-11-21 10:00:00Z"; }, "not an RFC 3339 date-time"},
      {[](json& e) { e["eventTime"] = "2025-02-29T10:00:00Z"; }, "not an RFC 3339 date-time"},
      {[](json& e) { e.erase("producer"); }, "producer is missing"},
      {[](json& e) { e["producer"] = "dbt 1.8"; }, "producer 'dbt 1.8' is not an absolute URI"},
      {[](json& e) { e.erase("schemaURL"); }, "schemaURL is missing"},
      {[](json& e) {
         e["schemaURL"] = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent";
       },
       "only run events"},
      {[](json& e) { e["schemaURL"] = "https://example.com/other.json"; },
       "is not the OpenLineage spec"},
      {[](json& e) { e["run"]["runId"] = "run-1"; }, "run.runId 'run-1' is not a UUID"},
      {[](json& e) { e["run"] = "x"; }, "run is a string"},
      {[](json& e) { e["run"]["facets"] = json::array(); }, "run.facets is a array"},
      {[](json& e) {
         e["run"]["facets"] = {{"f", 1}};
       },
       "run.facets.f is a number"},
      {[](json& e) {
         e["run"]["facets"] = {{"f", {{"_schemaURL", "https://x/y"}}}};
       },
       "run.facets.f._producer is missing"},
      {[](json& e) {
         e["job"]["facets"] = {{"f", {{"_producer", "https://x"}, {"_schemaURL", "not a uri"}}}};
       },
       "job.facets.f._schemaURL 'not a uri' is not an absolute URI"},
      {[](json& e) { e["job"]["name"] = ""; }, "job.name must be a non-empty string"},
      {[](json& e) { e["job"].erase("namespace"); }, "job.namespace is missing"},
      {[](json& e) { e["inputs"] = json::object(); }, "inputs is a object, not an array"},
      {[](json& e) { e["inputs"][0].erase("name"); }, "inputs[0].name is missing"},
      {[](json& e) { e["outputs"][0] = "t"; }, "outputs[0] is a string"},
      {[](json& e) {
         e["outputs"][0]["outputFacets"] = {{"stats", {{"rowCount", 1}}}};
       },
       "outputs[0].outputFacets.stats._producer is missing"},
      {[](json& e) { e["inputs"][0]["namespace"] = "postgres://pg"; },
       "inputs[0]: postgres dataset namespace 'postgres://pg' must be postgres://{host}:{port}"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto p = processorFor(command());
    json e = childEvent();
    cases[i].change(e);
    std::string msg = refused(p, e.dump());
    EXPECT_THAT(msg, AllOf(HasSubstr("lineage line 1 refused: "), HasSubstr(cases[i].says)))
        << "case " << i;
  }
}

TEST(ChildLineageChecks, NotAnEventObject) {
  auto p = processorFor(command());
  EXPECT_THAT(refused(p, "[1,2]"), HasSubstr("the line is a JSON array"));
  EXPECT_THAT(refused(p, "{\"a\": "), HasSubstr("not valid JSON (parse error near byte"));
  EXPECT_THAT(refused(p, std::string(100, '[') + std::string(100, ']')),
              HasSubstr("nested deeper than 64"));
  EXPECT_THAT(refused(p, "\"\xff\xfe\""), HasSubstr("not valid JSON"));
}

TEST(ChildLineageChecks, DatasetNameChecksCanBeTurnedOff) {
  ChildLineageOptions o;
  o.check_dataset_names = false;
  auto p = processorFor(command(), o);
  json e = childEvent();
  e["inputs"][0]["namespace"] = "postgres://pg";
  EXPECT_TRUE(p.process(e.dump()).record);
}

TEST(ChildLineageChecks, MessagesAreBounded) {
  ChildLineageOptions o;
  o.max_error_bytes = 60;
  auto p = processorFor(command(), o);
  json e = ownEvent();
  e["eventType"] = std::string(1000, 'Q');
  std::string msg = refused(p, e.dump());
  EXPECT_LE(msg.size(), 60u);
  EXPECT_TRUE(msg.ends_with("...")) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Lines, limits, streams

TEST(ChildLineageLines, BlankLinesAreSkippedAndCrLfIsAccepted) {
  auto p = processorFor(command());
  auto r = p.process("   ");
  EXPECT_FALSE(r.record);
  EXPECT_TRUE(r.error.empty());
  EXPECT_TRUE(p.process(ownEvent().dump() + "\r").record);
  EXPECT_EQ(p.rejected(), 0u);
}

TEST(ChildLineageLines, OverLongLinesAreRefusedUnparsed) {
  ChildLineageOptions o;
  o.max_line_bytes = 1000;
  auto p = processorFor(command(), o);
  json e = ownEvent();
  e["padding"] = std::string(2000, 'x');
  EXPECT_THAT(refused(p, e.dump()), HasSubstr("over the limit of 1000"));
}

TEST(ChildLineageStream, LinesSplitAcrossChunksComeOutInOrder) {
  auto p = processorFor(command());
  std::string stream;
  for (int i = 0; i < 5; ++i) {
    json e = ownEvent();
    e["eventTime"] = "2026-11-21T10:00:0" + std::to_string(i) + "Z";
    stream += e.dump() + (i == 2 ? "\r\n\n" : "\n");
  }
  std::vector<ChildLineageResult> out;
  for (std::size_t at = 0; at < stream.size(); at += 7) {
    for (auto& r : p.feed(std::string_view(stream).substr(at, 7))) out.push_back(std::move(r));
  }
  ASSERT_EQ(out.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(out[i].record) << out[i].error;
    EXPECT_EQ(json::parse(out[i].record->json)["eventTime"],
              "2026-11-21T10:00:0" + std::to_string(i) + "Z");
  }
  EXPECT_TRUE(p.finish().empty());
}

TEST(ChildLineageStream, ALastLineWithoutNewlineComesAtFinish) {
  auto p = processorFor(command());
  EXPECT_TRUE(p.feed(ownEvent().dump()).empty());
  auto out = p.finish();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].record);
}

TEST(ChildLineageStream, AnOverLongLineIsRefusedOnceAndSkippedToItsNewline) {
  ChildLineageOptions o;
  o.max_line_bytes = 500;
  auto p = processorFor(command(), o);
  std::vector<ChildLineageResult> out;
  auto take = [&](std::vector<ChildLineageResult> rs) {
    for (auto& r : rs) out.push_back(std::move(r));
  };
  take(p.feed(std::string(300, 'a')));
  take(p.feed(std::string(300, 'b')));  // over the limit here
  take(p.feed(std::string(5000, 'c')));
  take(p.feed("c\n" + ownEvent().dump() + "\n"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_THAT(out[0].error,
              AllOf(HasSubstr("lineage line 1 refused"), HasSubstr("more than 500 bytes")));
  ASSERT_TRUE(out[1].record) << out[1].error;
  EXPECT_EQ(p.rejected(), 1u);
  EXPECT_EQ(p.forwarded(), 1u);
}

TEST(ChildLineageLimits, EventsPastTheLimitAreDroppedWithOneMessage) {
  ChildLineageOptions o;
  o.max_events = 3;
  auto p = processorFor(command(), o);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(p.process(ownEvent().dump()).record);
  EXPECT_THAT(p.process(ownEvent().dump()).error, HasSubstr("more than 3 lineage events"));
  for (int i = 0; i < 5; ++i) {
    auto r = p.process(ownEvent().dump());
    EXPECT_FALSE(r.record);
    EXPECT_TRUE(r.error.empty());
  }
  EXPECT_EQ(p.forwarded(), 3u);
  EXPECT_EQ(p.rejected(), 6u);
}

TEST(ChildLineageLimits, RefusalsPastTheReportLimitAreOnlyCounted) {
  ChildLineageOptions o;
  o.max_reported_errors = 2;
  auto p = processorFor(command(), o);
  EXPECT_FALSE(p.process("nope").error.empty());
  EXPECT_THAT(p.process("nope").error, HasSubstr("later refusals are only counted"));
  EXPECT_TRUE(p.process("nope").error.empty());
  EXPECT_EQ(p.rejected(), 3u);
}

// ---------------------------------------------------------------------------------------------
// What is forwarded validates against the official schemas

TEST(ChildLineageSchema, ForwardedEventsValidate) {
  std::vector<std::string> forwarded;
  for (const auto& c : {command(), withParent(false), withParent(true)}) {
    auto p = processorFor(c);
    std::vector<json> events = {ownEvent("RUNNING"), ownEvent("OTHER"), childEvent("START"),
                                childEvent("COMPLETE"), childEvent("FAIL")};
    json nested = childEvent("RUNNING");
    nested["run"] = {{"runId", kGrandChildRunId},
                     {"facets", {{"parent", makeParentRunFacet({kChildRunId, "dbt", "shop"})}}}};
    events.push_back(nested);
    json with_facets = childEvent("COMPLETE");
    with_facets["job"]["facets"] = {
        {"sql",
         {{"_producer", "https://github.com/OpenLineage/OpenLineage/tree/1.24.0/integration/dbt"},
          {"_schemaURL",
           "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet"},
          {"query", std::string("select '") + kSecret + "'"}}}};
    events.push_back(with_facets);
    for (const auto& e : events) {
      auto r = p.process(e.dump());
      ASSERT_TRUE(r.record) << r.error;
      forwarded.push_back(r.record->json);
    }
  }
  auto v = lineage_test::validateLineageEvents(forwarded);
  EXPECT_TRUE(v.ok) << v.output;
}

}  // namespace
}  // namespace outpost::lineage
