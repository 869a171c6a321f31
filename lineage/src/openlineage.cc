#include "outpost/lineage/openlineage.h"

#include <utility>

#include "outpost/common/clock.h"
#include "outpost/lineage/naming.h"

#ifndef OUTPOST_VERSION
#error "OUTPOST_VERSION must be defined by the build"
#endif

namespace outpost::lineage {
namespace {

using nlohmann::json;

constexpr const char* kSchemaUrl =
    "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
constexpr const char* kFacetBase = "https://openlineage.io/spec/facets/";

// The $id of lineage/schemas/OutpostRunFacet.json (a unit test checks they agree).
constexpr const char* kOutpostFacetId =
    "https://github.com/outpost-dev/outpost/blob/main/lineage/schemas/OutpostRunFacet.json";

json facet(const std::string& versioned_file, const std::string& def) {
  return lineageFacet(std::string(kFacetBase) + versioned_file + "#/$defs/" + def);
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

// The declared datasets that follow the naming conventions, in order.
json datasets(const google::protobuf::RepeatedPtrField<v1::DatasetRef>& refs) {
  json out = json::array();
  for (const auto& d : refs) {
    if (checkDataset(d.namespace_(), d.name())) {
      out.push_back({{"namespace", d.namespace_()}, {"name", d.name()}});
    }
  }
  return out;
}

bool isTerminal(LineageEventType t) {
  return t == LineageEventType::kComplete || t == LineageEventType::kFail ||
         t == LineageEventType::kAbort;
}

}  // namespace

json lineageFacet(const std::string& schema_url) {
  return json{{"_producer", lineageProducer()}, {"_schemaURL", schema_url}};
}

json makeParentRunFacet(const LineageRunRef& parent, const std::optional<LineageRunRef>& root) {
  auto p = facet("1-2-0/ParentRunFacet.json", "ParentRunFacet");
  p["run"] = {{"runId", parent.run_id}};
  p["job"] = {{"namespace", parent.job_namespace}, {"name", parent.job_name}};
  if (root) {
    p["root"] = {{"run", {{"runId", root->run_id}}},
                 {"job", {{"namespace", root->job_namespace}, {"name", root->job_name}}}};
  }
  return p;
}

const std::string& outpostRunFacetSchemaUrl() {
  static const std::string kUrl = std::string(kOutpostFacetId) + "#/$defs/OutpostRunFacet";
  return kUrl;
}

const std::string& lineageProducer() {
  static const std::string kProducer =
      std::string("https://github.com/outpost-dev/outpost/tree/v") + OUTPOST_VERSION;
  return kProducer;
}

LineageBuilder::LineageBuilder(std::string default_namespace, LineageWorkerInfo worker)
    : default_namespace_(std::move(default_namespace)), worker_(std::move(worker)) {}

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

std::optional<json> LineageBuilder::parentFacet(const v1::JobCommand& c) const {
  const auto& l = c.lineage();
  if (l.parent_run_id().empty() || !isUuid(l.parent_run_id()) || l.parent_job_name().empty()) {
    return std::nullopt;
  }
  std::optional<LineageRunRef> root;
  if (!l.root_run_id().empty() && isUuid(l.root_run_id()) && !l.root_job_name().empty()) {
    root = LineageRunRef{l.root_run_id(), l.root_job_namespace(), l.root_job_name()};
  }
  return makeParentRunFacet({l.parent_run_id(), l.parent_job_namespace(), l.parent_job_name()},
                            root);
}

std::vector<DatasetProblem> LineageBuilder::datasetProblems(const v1::JobCommand& c) {
  std::vector<DatasetProblem> out;
  for (bool input : {true, false}) {
    for (const auto& d : input ? c.lineage().inputs() : c.lineage().outputs()) {
      if (auto check = checkDataset(d.namespace_(), d.name()); !check) {
        // A namespace that carries a password is reported without it.
        out.push_back({input, withoutUserInfo(d.namespace_()), d.name(), check.error()});
      }
    }
  }
  return out;
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
  if (auto p = parentFacet(c)) run_facets["parent"] = std::move(*p);
  if (l.nominal_start_ms() > 0) {
    auto n = facet("1-0-1/NominalTimeRunFacet.json", "NominalTimeRunFacet");
    n["nominalStartTime"] = rfc3339(l.nominal_start_ms());
    if (l.nominal_end_ms() > 0) n["nominalEndTime"] = rfc3339(l.nominal_end_ms());
    run_facets["nominalTime"] = std::move(n);
  }
  if (type == LineageEventType::kFail || type == LineageEventType::kAbort) {
    auto e = facet("1-0-1/ErrorMessageRunFacet.json", "ErrorMessageRunFacet");
    e["message"] = outcome.message.empty() ? "run did not succeed" : outcome.message;
    // The job is an external program; "shell" is the closest the spec has to a language name.
    e["programmingLanguage"] = "shell";
    if (!outcome.output_tail.empty()) e["stackTrace"] = outcome.output_tail;
    run_facets["errorMessage"] = std::move(e);
  }
  run_facets["outpost"] = outpostFacet(type, c, event_time, outcome);

  json job_facets = json::object();
  auto jt = facet("2-0-4/JobTypeJobFacet.json", "JobTypeJobFacet");
  jt["processingType"] = "BATCH";
  jt["integration"] = "OUTPOST";
  jt["jobType"] = c.job_type();
  job_facets["jobType"] = std::move(jt);
  if (!l.documentation().empty()) {
    auto d = facet("1-1-0/DocumentationJobFacet.json", "DocumentationJobFacet");
    d["description"] = l.documentation();
    job_facets["documentation"] = std::move(d);
  }
  if (!l.source_code_url().empty()) {
    auto s = facet("1-1-0/SourceCodeLocationJobFacet.json", "SourceCodeLocationJobFacet");
    s["type"] = "git";
    s["url"] = l.source_code_url();
    job_facets["sourceCodeLocation"] = std::move(s);
  }

  return json{
      {"eventType", eventTypeName(type)},
      {"eventTime", formatRfc3339Millis(event_time)},
      {"run", {{"runId", c.run_id()}, {"facets", std::move(run_facets)}}},
      {"job",
       {{"namespace", jobNamespace(c)}, {"name", jobName(c)}, {"facets", std::move(job_facets)}}},
      {"inputs", datasets(l.inputs())},
      {"outputs", datasets(l.outputs())},
      {"producer", lineageProducer()},
      {"schemaURL", kSchemaUrl},
  };
}

json LineageBuilder::outpostFacet(LineageEventType type, const v1::JobCommand& c,
                                  std::chrono::system_clock::time_point event_time,
                                  const LineageOutcome& outcome) const {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  json f = lineageFacet(outpostRunFacetSchemaUrl());
  if (!worker_.worker_id.empty()) f["workerId"] = worker_.worker_id;
  if (!worker_.pool.empty()) f["pool"] = worker_.pool;
  f["attempt"] = outcome.attempt ? *outcome.attempt : (c.attempt() == 0 ? 1u : c.attempt());
  if (c.max_attempts() > 0) f["maxAttempts"] = c.max_attempts();
  if (!c.job_type().empty()) f["template"] = c.job_type();
  if (!c.job_id().empty()) f["jobId"] = c.job_id();
  if (outcome.started_at) {
    if (c.requested_at_ms() > 0) {
      auto queued = toUnixMillis(*outcome.started_at) - c.requested_at_ms();
      // A scheduler clock ahead of the worker's would make this negative: leave it out then.
      if (queued >= 0) f["queuedMs"] = queued;
    }
  }
  const bool terminal = isTerminal(type);
  if (terminal || type == LineageEventType::kRunning) {
    std::optional<std::int64_t> run_ms;
    if (terminal && outcome.run_duration) {
      run_ms = outcome.run_duration->count();
    } else if (outcome.started_at) {
      run_ms = duration_cast<milliseconds>(event_time - *outcome.started_at).count();
    }
    if (run_ms && *run_ms >= 0) f["runMs"] = *run_ms;
  }
  if (terminal) {
    if (outcome.exit_code && *outcome.exit_code >= 0 && *outcome.exit_code <= 255) {
      f["exitCode"] = *outcome.exit_code;
    } else if (outcome.signal && *outcome.signal > 0) {
      f["signal"] = *outcome.signal;
    }
    if (outcome.child_events_forwarded) f["childEventsForwarded"] = *outcome.child_events_forwarded;
    if (outcome.child_events_rejected) f["childEventsRejected"] = *outcome.child_events_rejected;
  }
  auto problems = datasetProblems(c);
  if (!problems.empty()) {
    json list = json::array();
    for (const auto& p : problems) {
      list.push_back({{"direction", p.input ? "input" : "output"},
                      {"namespace", p.ns},
                      {"name", p.name},
                      {"error", p.error}});
    }
    f["invalidDatasets"] = std::move(list);
  }
  return f;
}

std::string lineageRecordText(const nlohmann::json& record) {
  return record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace outpost::lineage
