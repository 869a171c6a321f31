// `outpost cancel`, `outpost drain` and `outpost resume`: each writes one ControlCommand to the
// control topic, which every worker reads, and prints its command_id.
#pragma once

#include <string>

#include "client_config.h"
#include "signing.h"

namespace CLI {
class App;
}

namespace outpost::app {

struct ControlOptions {
  ClientOptions client;
  std::string run_id;     // cancel
  std::string worker_id;  // drain, resume: one of these two
  std::string pool;
  bool handover = false;  // drain
  std::string reason, requested_by;
  bool wait = false;  // cancel: until the run ends (run_wait.h)
  std::string wait_timeout;
  SignOptions sign;
};

// Adds `cancel`, `drain` and `resume`, filling `options`; each returns its subcommand.
CLI::App* addCancelCommand(CLI::App& app, ControlOptions& options);
CLI::App* addDrainCommand(CLI::App& app, ControlOptions& options);
CLI::App* addResumeCommand(CLI::App& app, ControlOptions& options);

// Each returns 0 once the broker acknowledged the command, 8 when it did not within 30 s; cancel
// --wait returns 0 once the run ended CANCELLED, 9 when it ended otherwise (run_wait.h). Throws
// ConfigError on bad options.
int cmdCancel(const ControlOptions& options);
int cmdDrain(const ControlOptions& options);
int cmdResume(const ControlOptions& options);

}  // namespace outpost::app
