// The configuration of a client subcommand (submit, cancel, tail, workers, ...): the file when one
// is given, else the defaults; --bootstrap over either.
#pragma once

#include <string>

#include "outpost/common/config.h"

namespace outpost::app {

inline Config clientConfig(const std::string& config_path, const std::string& bootstrap) {
  Config c = config_path.empty() ? parseConfig("", processEnvironment(), "defaults")
                                 : loadConfig(config_path, processEnvironment());
  if (!bootstrap.empty()) c.kafka.bootstrap_servers = bootstrap;
  return c;
}

}  // namespace outpost::app
