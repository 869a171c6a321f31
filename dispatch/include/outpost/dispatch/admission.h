// May this command run here, and with what: the one answer the worker, and later replay and
// signed commands, use. Pure: it reads the command and the configuration, nothing else.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/runner/plan.h"
#include "outpost/secrets/reference.h"
#include "outpost/v1/job.pb.h"

namespace outpost::dispatch {

// What admission needs of the worker's configuration.
struct AdmissionPolicy {
  const std::map<std::string, TemplateConfig>* templates = nullptr;
  const Environment* worker_env = nullptr;  // what templates may pass through
  std::string work_dir;                     // where run directories go
};

struct Admitted {
  const TemplateConfig* tmpl = nullptr;
  // The run as it will start, except that the secret references in its environment and recipe
  // are still references (see resolveInto).
  runner::LaunchPlan plan;
  // The references to resolve before it starts, each allowed by the template (duplicates kept).
  std::vector<secrets::SecretRef> secrets;
};

// Why admit() refused a command: `reason` is a fixed word (for metrics), `message` says what
// and where for the dead letter and the REJECTED event.
struct Refusal {
  static constexpr std::string_view kUnknownTemplate = "unknown_template";
  static constexpr std::string_view kSecretInArguments = "secret_in_arguments";
  static constexpr std::string_view kInvalidArguments = "invalid_arguments";  // args or env
  static constexpr std::string_view kBadSecretReference = "bad_secret_reference";
  static constexpr std::string_view kSecretNotAllowed = "secret_not_allowed";
  std::string_view reason;
  std::string message;
};

// Admits `command` (a decoded command for this worker's pool) as attempt `attempt`, or says why
// not, naming the field and never quoting more than a short escaped excerpt of the input:
// - its job_type names a template of this worker;
// - no argument holds a secret reference (arguments end up on a command line);
// - its arguments and environment are ones the template accepts (planRun);
// - every secret reference in the template's and the command's environment values and in the
//   recipe (when the template delivers one) parses, and the template's `secrets` list allows it.
std::expected<Admitted, Refusal> admit(const v1::JobCommand& command, std::uint32_t attempt,
                                       const AdmissionPolicy& policy);

// Replaces the secret references in `admitted`'s environment values and recipe with `values`
// (by reference text; every reference of admitted.secrets must be there).
void resolveInto(Admitted& admitted, const v1::JobCommand& command,
                 const std::map<std::string, secrets::SecretValue>& values);

}  // namespace outpost::dispatch
