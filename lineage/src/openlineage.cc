#include "outpost/lineage/openlineage.h"

#include "outpost/common/clock.h"

#ifndef OUTPOST_VERSION
#error "OUTPOST_VERSION must be defined by the build"
#endif

namespace outpost {
namespace {

using nlohmann::json;

constexpr const char* kSchemaUrl =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
constexpr const char* kFacetBase = "https://openlineage.io/spec/facets/";

json facet(const std::string& versioned_file, const std::string& def) {
  return json{{"_producer", lineageProducer()},
              {"_schemaURL", std::string(kFacetBase) + versioned_file + "#/$defs/" + def}};
}

const char* eventTypeName(LineageEventType t) {
  switch (t) {
    case LineageEventType::kStart:
      return "START";
    case LineageEventType::kRunning:
      return "RUNNING";
    case LineageEventType::kComplete:
      return "COMPLETE";
    case LineageEventType::kFail:
      return "FAIL";
    case LineageEventType::kAbort:
      return "ABORT";
  }
  return "OTHER";
}

std::string rfc3339(std::int64_t unix_ms) {
  return formatRfc3339Millis(
      std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms)));
}

json datasets(const google::protobuf::RepeatedPtrField<v1::DatasetRef>& refs) {
  json out = json::array();
  for (const auto& d : refs) out.push_back({{"namespace", d.namespace_()}, {"name", d.name()}});
  return out;
}

}  // namespace

const std::string& lineageProducer() {
  static const std::string kProducer =
      std::string("https://github.com/outpost-dev/outpost/tree/v") + OUTPOST_VERSION;
  return kProducer;
}

LineageBuilder::LineageBuilder(std::string default_namespace)
    : default_namespace_(std::move(default_namespace)) {}

std::string LineageBuilder::jobNamespace(const v1::JobCommand& c) const {
  return c.lineage().job_namespace().empty() ? default_namespace_ : c.lineage().job_namespace();
}

std::string LineageBuilder::jobName(const v1::JobCommand& c) {
  if (!c.lineage().job_name().empty()) return c.lineage().job_name();
  if (!c.job_id().empty()) return c.job_id();
  return c.job_type();
}

std::string LineageBuilder::kafkaKey(const v1::JobCommand& c) const {
  const auto& l = c.lineage();
  if (!l.root_job_name().empty()) return "run:" + l.root_job_namespace() + "/" + l.root_job_name();
  if (!l.parent_job_name().empty()) {
    return "run:" + l.parent_job_namespace() + "/" + l.parent_job_name();
  }
  return "run:" + jobNamespace(c) + "/" + jobName(c);
}

json LineageBuilder::build(LineageEventType type, const v1::JobCommand& c,
                           std::chrono::system_clock::time_point event_time,
                           const LineageOutcome& outcome) const {
  const auto& l = c.lineage();

  json run_facets = json::object();
  run_facets["processing_engine"] =
      facet("1-1-1/ProcessingEngineRunFacet.json", "ProcessingEngineRunFacet");
  run_facets["processing_engine"]["name"] = "outpost";
  run_facets["processing_engine"]["version"] = OUTPOST_VERSION;
  if (!l.parent_run_id().empty() && isUuid(l.parent_run_id()) && !l.parent_job_name().empty()) {
    auto p = facet("1-2-0/ParentRunFacet.json", "ParentRunFacet");
    p["run"] = {{"runId", l.parent_run_id()}};
    p["job"] = {{"namespace", l.parent_job_namespace()}, {"name", l.parent_job_name()}};
    if (!l.root_run_id().empty() && isUuid(l.root_run_id()) && !l.root_job_name().empty()) {
      p["root"] = {{"run", {{"runId", l.root_run_id()}}},
                   {"job", {{"namespace", l.root_job_namespace()}, {"name", l.root_job_name()}}}};
    }
    run_facets["parent"] = p;
  }
  if (l.nominal_start_ms() > 0) {
    auto n = facet("1-0-1/NominalTimeRunFacet.json", "NominalTimeRunFacet");
    n["nominalStartTime"] = rfc3339(l.nominal_start_ms());
    if (l.nominal_end_ms() > 0) n["nominalEndTime"] = rfc3339(l.nominal_end_ms());
    run_facets["nominalTime"] = n;
  }
  if (type == LineageEventType::kFail || type == LineageEventType::kAbort) {
    auto e = facet("1-0-1/ErrorMessageRunFacet.json", "ErrorMessageRunFacet");
    e["message"] = outcome.message.empty() ? "run did not succeed" : outcome.message;
    // The job is an external program; "shell" is the closest the spec has to a language name.
    e["programmingLanguage"] = "shell";
    if (!outcome.output_tail.empty()) e["stackTrace"] = outcome.output_tail;
    run_facets["errorMessage"] = e;
  }

  json job_facets = json::object();
  auto jt = facet("2-0-4/JobTypeJobFacet.json", "JobTypeJobFacet");
  jt["processingType"] = "BATCH";
  jt["integration"] = "OUTPOST";
  jt["jobType"] = c.job_type();
  job_facets["jobType"] = jt;
  if (!l.documentation().empty()) {
    auto d = facet("1-1-0/DocumentationJobFacet.json", "DocumentationJobFacet");
    d["description"] = l.documentation();
    job_facets["documentation"] = d;
  }
  if (!l.source_code_url().empty()) {
    auto s = facet("1-1-0/SourceCodeLocationJobFacet.json", "SourceCodeLocationJobFacet");
    s["type"] = "git";
    s["url"] = l.source_code_url();
    job_facets["sourceCodeLocation"] = s;
  }

  return json{
      {"eventType", eventTypeName(type)},
      {"eventTime", formatRfc3339Millis(event_time)},
      {"run", {{"runId", c.run_id()}, {"facets", run_facets}}},
      {"job", {{"namespace", jobNamespace(c)}, {"name", jobName(c)}, {"facets", job_facets}}},
      {"inputs", datasets(l.inputs())},
      {"outputs", datasets(l.outputs())},
      {"producer", lineageProducer()},
      {"schemaURL", kSchemaUrl},
  };
}

}  // namespace outpost
