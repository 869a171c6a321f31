// The configuration of a client subcommand (submit, cancel, tail, workers, ...): the file when one
// is given, else the defaults; --bootstrap over either.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "outpost/common/config.h"

namespace outpost::app {

// Settings shared by the client subcommands: a config file, or flags.
struct ClientOptions {
  std::string config_path;
  std::string bootstrap;  // overrides kafka.bootstrap_servers
};

// Adds -c/--config and -b/--bootstrap to a client subcommand.
inline void addClientOptions(CLI::App* sub, ClientOptions& o) {
  sub->add_option("-c,--config", o.config_path,
                  "Configuration file (for Kafka and topic settings)");
  sub->add_option("-b,--bootstrap", o.bootstrap, "Kafka bootstrap servers (overrides the config)");
}

inline Config clientConfig(const ClientOptions& o) {
  Config c = o.config_path.empty() ? parseConfig("", processEnvironment(), "defaults")
                                   : loadConfig(o.config_path, processEnvironment());
  if (!o.bootstrap.empty()) c.kafka.bootstrap_servers = o.bootstrap;
  return c;
}

}  // namespace outpost::app
