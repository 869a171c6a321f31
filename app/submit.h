// `outpost submit`: builds a JobCommand from flags or a file, writes it to the jobs topic the way
// a control plane does (key: job_id; requested_at_ms; a UUIDv7 run_id unless given) and prints
// its run_id; with --wait, waits for the run's end and exits with a status that says how it
// ended, for a cron line or a CI step.
#pragma once

#include <string>
#include <vector>

#include "client_config.h"
#include "outpost/common/clock.h"
#include "outpost/v1/job.pb.h"
#include "signing.h"

namespace CLI {
class App;
}

namespace outpost::app {

struct SubmitOptions {
  ClientOptions client;
  std::string file, job_type, job_id, run_id, recipe_file, timeout, pool, requested_by, not_after;
  std::vector<std::string> args, env, labels;
  std::string job_namespace, job_name;
  // --wait: until the run's terminal event, then exit with its status (run_wait.h).
  bool wait = false;
  std::string wait_timeout;  // empty: no limit
  bool follow_logs = false;  // print the run's output lines as its LOG events come
  SignOptions sign;
};

CLI::App* addSubmitCommand(CLI::App& app, SubmitOptions& options);

// The command the options describe, as of `clock`'s now. Throws ConfigError on bad options.
v1::JobCommand buildCommand(const SubmitOptions& options, const Clock& clock);

// Exits 0 once the command was written (8 when it was not), or with --wait the run's exit status
// (run_wait.h).
int cmdSubmit(const SubmitOptions& options);

}  // namespace outpost::app
