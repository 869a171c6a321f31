// OpenLineage RunEvents for Outpost's runs: what the platform learns about what a run read and
// wrote and how it ended. Built as JSON that validates against the official 2-0-2 spec and, for
// Outpost's own `outpost` run facet, against lineage/schemas/OutpostRunFacet.json.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "outpost/v1/job.pb.h"

namespace outpost::lineage {

enum class LineageEventType { kStart, kRunning, kComplete, kFail, kAbort };

// What the worker knows about the run when it writes a record. Only `started_at` applies from
// START on; the rest describes how the run ended and is read on terminal records only.
struct LineageOutcome {
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string message;      // the error message on FAIL/ABORT
  std::string output_tail;  // goes to errorMessage.stackTrace on FAIL
  // When the job's process started: gives the outpost facet's queuedMs (from the command's
  // requested_at_ms) and, without run_duration, runMs up to the event time.
  std::optional<std::chrono::system_clock::time_point> started_at;
  // How long the process ran (terminal records): the outpost facet's runMs.
  std::optional<std::chrono::milliseconds> run_duration;
  // Events the job wrote itself that were forwarded / refused (see child_events.h).
  std::optional<std::uint64_t> child_events_forwarded;
  std::optional<std::uint64_t> child_events_rejected;
  // The attempt when it is not the command's (a rerun after a lost worker is the next one).
  std::optional<std::uint32_t> attempt;
};

// The worker-wide part of the `outpost` run facet.
struct LineageWorkerInfo {
  std::string worker_id;
  std::string pool;
};

// A run and its job, as the parent facet names them.
struct LineageRunRef {
  std::string run_id;
  std::string job_namespace;
  std::string job_name;
  bool operator==(const LineageRunRef&) const = default;
};

// A declared dataset the builder leaves out because its name breaks the naming conventions.
struct DatasetProblem {
  bool input = true;  // else an output
  std::string ns;     // without user information (withoutUserInfo, naming.h)
  std::string name;
  std::string error;  // from checkDataset (naming.h)
};

class LineageBuilder {
 public:
  // `default_namespace`: the job namespace when the command names none. `worker` fills the
  // outpost facet's workerId and pool (left out when empty).
  explicit LineageBuilder(std::string default_namespace, LineageWorkerInfo worker = {});

  nlohmann::json build(LineageEventType type, const v1::JobCommand& command,
                       std::chrono::system_clock::time_point event_time,
                       const LineageOutcome& outcome = {}) const;

  // The OpenLineage Kafka transport's key: "run:{namespace}/{name}" of the root job if known,
  // else of the parent job, else of the run's own job.
  std::string kafkaKey(const v1::JobCommand& command) const;

  std::string jobNamespace(const v1::JobCommand& command) const;
  static std::string jobName(const v1::JobCommand& command);

  // The parent facet of the run's own records (with root when known); nullopt without a
  // usable parent (a UUID parent_run_id and a parent job name).
  std::optional<nlohmann::json> parentFacet(const v1::JobCommand& command) const;

  // Declared inputs and outputs that break the OpenLineage naming conventions, in order. The
  // records leave them out of inputs/outputs and list them in the outpost facet's
  // invalidDatasets; intake may call this to refuse or warn earlier.
  static std::vector<DatasetProblem> datasetProblems(const v1::JobCommand& command);

 private:
  nlohmann::json outpostFacet(LineageEventType type, const v1::JobCommand& command,
                              std::chrono::system_clock::time_point event_time,
                              const LineageOutcome& outcome) const;

  std::string default_namespace_;
  LineageWorkerInfo worker_;
};

// The one way a lineage record becomes the text Outpost sends: compact JSON, with any invalid
// UTF-8 in its strings (a message quoting bad input) replaced by U+FFFD. Never throws.
std::string lineageRecordText(const nlohmann::json& record);

// The `producer` URI written in every record, with Outpost's version.
const std::string& lineageProducer();

// `_schemaURL` of the `outpost` run facet: lineage/schemas/OutpostRunFacet.json by its $id,
// with the #/$defs/OutpostRunFacet fragment.
const std::string& outpostRunFacetSchemaUrl();

// A facet skeleton: {"_producer": lineageProducer(), "_schemaURL": schema_url}.
nlohmann::json lineageFacet(const std::string& schema_url);

// The ParentRunFacet (1-2-0) naming `parent`, and `root` when given.
nlohmann::json makeParentRunFacet(const LineageRunRef& parent,
                                  const std::optional<LineageRunRef>& root = std::nullopt);

}  // namespace outpost::lineage
