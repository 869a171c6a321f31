// OpenLineage RunEvents for Outpost's runs: what the platform learns about what a run read and
// wrote and how it ended. Built as JSON that validates against the official 2-0-2 spec.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "outpost/v1/job.pb.h"

namespace outpost {

enum class LineageEventType { kStart, kRunning, kComplete, kFail, kAbort };

// How a run ended, for the terminal record. Empty on START/RUNNING.
struct LineageOutcome {
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string message;      // the error message on FAIL/ABORT
  std::string output_tail;  // goes to errorMessage.stackTrace on FAIL
};

class LineageBuilder {
 public:
  // `default_namespace`: the job namespace when the command names none.
  explicit LineageBuilder(std::string default_namespace);

  nlohmann::json build(LineageEventType type, const v1::JobCommand& command,
                       std::chrono::system_clock::time_point event_time,
                       const LineageOutcome& outcome = {}) const;

  // The OpenLineage Kafka transport's key: "run:{namespace}/{name}" of the root job if known,
  // else of the parent job, else of the run's own job.
  std::string kafkaKey(const v1::JobCommand& command) const;

  std::string jobNamespace(const v1::JobCommand& command) const;
  static std::string jobName(const v1::JobCommand& command);

 private:
  std::string default_namespace_;
};

// The `producer` URI written in every record, with Outpost's version.
const std::string& lineageProducer();

}  // namespace outpost
