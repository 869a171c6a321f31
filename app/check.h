// `outpost check` and `outpost secrets check`: what a worker with this configuration would run
// into, found before it runs. Each check prints one line (what, ok or FAIL, details; never a
// secret value) and the command exits 0 when all passed, 1 otherwise.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "outpost/common/config.h"

namespace CLI {
class App;
}

namespace outpost::app {

struct CheckOptions {
  std::string config_path;
  bool connect = false;  // also the brokers: topics exist, can be read and written
};

// Each template's argv[0] found and executable on its PATH (the template's env, else the
// worker's). Returns the number that failed; one line each.
int checkExecutables(const Config& config, std::ostream& out);

// Signed commands and what a security review would flag: the trusted keys read (1 when they cannot
// be), a warning when commands need no signature, when a key policy names an untrusted key, and
// when the configuration file is readable by every local user.
int checkSecurity(const Config& config, const std::string& config_path, std::ostream& out);

// One secret reference of a template, resolved or not; never its value.
struct SecretCheck {
  std::string template_name;
  std::string text;  // "${NAME}", or "env VAR" for an env value that does not parse
  bool found = false;
  std::string provider, version;
  std::size_t bytes = 0;
  std::string error;  // when not found
};

// Every secret a template's env uses, and every plain name in its allowlist (`only_template`
// narrows it), each asked once.
std::vector<SecretCheck> checkSecrets(const Config& config, const std::string& only_template);

CLI::App* addCheckCommand(CLI::App& app, CheckOptions& options);

// The configuration (unknown keys and bad values name their path), executables, secrets, and
// with --connect the topics and the group. 0 when all passed, 1 otherwise.
int cmdCheck(const CheckOptions& options);

}  // namespace outpost::app
