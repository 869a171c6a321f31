// `outpost submit`: builds a JobCommand from flags or a file, writes it to the jobs topic the way
// a control plane does (key: job_id; requested_at_ms; a UUIDv7 run_id unless given) and prints
// its run_id.
#pragma once

#include <string>
#include <vector>

#include "client_config.h"
#include "outpost/common/clock.h"
#include "outpost/v1/job.pb.h"

namespace CLI {
class App;
}

namespace outpost::app {

struct SubmitOptions {
  ClientOptions client;
  std::string file, job_type, job_id, run_id, recipe_file, timeout, pool, requested_by, not_after;
  std::vector<std::string> args, env, labels;
  std::string job_namespace, job_name;
};

CLI::App* addSubmitCommand(CLI::App& app, SubmitOptions& options);

// The command the options describe, as of `clock`'s now. Throws ConfigError on bad options.
v1::JobCommand buildCommand(const SubmitOptions& options, const Clock& clock);

int cmdSubmit(const SubmitOptions& options);

}  // namespace outpost::app
