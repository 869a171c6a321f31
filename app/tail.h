// `outpost tail`: the run events and lineage records on the topics as JSON lines (json_lines.h),
// and with --dlq the dead letters' headers and sizes. Every partition is read from the beginning
// without joining a group; with --follow the reading goes on (topics that appear are picked up),
// with --run only that run's records are printed, with --until-done it stops after the run's end.
#pragma once

#include <string>

#include "client_config.h"

namespace CLI {
class App;
}

namespace outpost::app {

struct TailOptions {
  ClientOptions client;
  bool follow = false;
  std::string run_id;  // empty: every run
  bool dlq = false;
  bool until_done = false;
  std::string timeout;  // empty: no limit
};

CLI::App* addTailCommand(CLI::App& app, TailOptions& options);

// Prints the records until the partitions' ends (or, with --follow, until --timeout, --until-done
// or a signal). 0; 1 when the metadata or the partitions cannot be read, or with --until-done when
// the run's terminal event was not seen. Throws ConfigError for a --timeout that is not a
// duration.
int cmdTail(const TailOptions& options);

}  // namespace outpost::app
