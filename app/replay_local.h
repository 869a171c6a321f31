// `outpost replay local`: replayed commands run here, in this process, through a worker's own
// run lifecycle (dispatch::Dispatcher: admission, secrets, the supervisor, events, lineage) with
// ports that keep production out of it. Commands are handed to the dispatcher directly (nothing
// is consumed, nothing committed), attempts are counted in memory, and what a worker would write
// to Kafka goes to JSON-lines files (--out) or to topics under --emit-prefix, never to the
// production topics or the lineage HTTP endpoint.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/v1/job.pb.h"
#include "replay.h"

namespace outpost::app {

struct LocalReplayOptions {
  // --out: events.jsonl, lineage.jsonl and dlq.jsonl (one JSON object per record, as
  // `outpost tail` prints them) and logs/<run id>.log (each run's output lines, masked).
  std::string out_dir;
  // --emit-prefix: the records go to <prefix>events, <prefix>lineage and <prefix>dlq instead.
  std::string emit_prefix;
  bool no_secrets = false;  // secret references are refused, not resolved
  bool dry_run = false;     // templates' dry_run_args appended; templates without any run nothing
};

// The configuration replayed runs run under: `config`'s templates, secret stores, output limits,
// slots and runner settings, with at-least-once delivery, lineage written as records (never to
// the HTTP endpoint), `work_dir` for the run directories, the id replay-<its id>, and topics that are
// the --out files' names or under --emit-prefix. For a dry run, each template's dry_run_args are
// appended to its argv and templates without any are left out (a command of one is refused, not
// run for real).
Config localReplayConfig(Config config, const LocalReplayOptions& options,
                         const std::string& work_dir);

// Runs `commands` (replay commands: new run ids, this pool) with `config` (localReplayConfig's)
// until each has ended or `stop` is set (then the runs are stopped and the rest not started).
// `ended` is called, on this thread, as each run ends. Returns how each that ended did, by run
// id, with its lineage datasets. Throws ConfigError when the output cannot be written.
std::map<std::string, RecordedOutcome> runLocally(
    const Config& config, const std::vector<v1::JobCommand>& commands,
    const LocalReplayOptions& options, const std::atomic<bool>& stop,
    const std::function<void(const std::string& run_id, const RecordedOutcome&)>& ended);

}  // namespace outpost::app
