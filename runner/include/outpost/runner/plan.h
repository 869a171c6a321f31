// Job execution, step one: turning a command's request and its worker-side template into exactly
// what will run (argv, environment, directories, limits). Pure: no processes, no files.
#pragma once

#include <expected>
#include <map>
#include <string>
#include <vector>

#include "outpost/common/config.h"

namespace outpost::runner {

// What a command asks of a template; plain data so that the runner knows nothing of Kafka.
struct RunRequest {
  std::string run_id;
  std::string job_id;
  unsigned attempt = 1;
  std::map<std::string, std::string> args;
  std::map<std::string, std::string> env;
  std::string recipe;
  Millis timeout{0};  // 0: the template's default
};

struct LaunchPlan {
  std::string run_id;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // NAME=value
  std::string run_dir;           // private, 0700; created at launch
  std::string working_dir;       // where the process starts
  RecipeDelivery recipe_delivery = RecipeDelivery::kNone;
  std::string recipe;
  Millis timeout{0};
  Millis kill_grace{0};
  bool keep_run_dir_on_failure = false;
  ResourceLimits limits;
  OutputLimits output;  // 0s: the supervisor's defaults
  // The job may write OpenLineage events to descriptor 3 (OUTPOST_LINEAGE_FD, or the path
  // OUTPOST_LINEAGE_FILE=/dev/fd/3); the supervisor hands them on through on_lineage.
  bool lineage_channel = false;
};

// The descriptor a job writes its own lineage to, when the plan has a lineage channel.
inline constexpr int kLineageFd = 3;

// Gives the plan a lineage channel: sets lineage_channel and the two variables that name it.
void addLineageChannel(LaunchPlan& plan);

// Checks the request against the template and renders the plan. The error says what was refused
// and why, in words fit for a REJECTED event. `worker_env` is the worker's own environment, of
// which only the template's env_passthrough names reach the process.
std::expected<LaunchPlan, std::string> planRun(const TemplateConfig& tmpl, const RunRequest& req,
                                               const Environment& worker_env,
                                               const std::string& work_dir);

}  // namespace outpost::runner
