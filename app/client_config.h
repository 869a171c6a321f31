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

// The file's (or the defaults') settings, --bootstrap over them, and the secret references in
// kafka's property sections resolved (a SASL password from a secret store). Throws ConfigError.
Config clientConfig(const ClientOptions& o);

}  // namespace outpost::app
