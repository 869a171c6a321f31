// `outpost replay`: commands taken again from the jobs topic (or the dead-letter topic) for
// testing, safely by default. It reads with assign, never joins a group and never commits; the
// default mode only prints what would be replayed (plan); `republish` writes the selected
// commands again with new, deterministic run ids to another topic or pool; `local` runs them here
// (replay_local.h); and `--compare` checks how the replayed runs ended against how the originals
// did.
//
// The pure parts (bounds, selection, run ids, the comparison, the tables) are here for the unit
// tests; cmdReplay does the Kafka reading and writing.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "client_config.h"
#include "outpost/v1/event.pb.h"
#include "outpost/v1/job.pb.h"
#include "signing.h"

namespace CLI {
class App;
}

namespace outpost::app {

// What is done with the commands selected: printed (plan), written again (republish), or run here
// (local).
enum class ReplayMode { kPlan, kRepublish, kLocal };

// "plan", "republish" or "local"; nullopt for anything else.
std::optional<ReplayMode> parseReplayMode(std::string_view text);

struct ReplayOptions {
  ClientOptions client;
  ReplayMode mode = ReplayMode::kPlan;
  std::string from, to;  // bounds: a time, a duration back from now, or partition:offset
  std::vector<std::string> runs;
  std::string job_type, job_id, pool, state;
  std::size_t limit = 0;  // 0: no limit
  bool dlq = false;       // take the commands from the dead-letter topic
  // republish
  std::string to_topic, to_prefix, to_pool;
  bool allow_same_topic = false;
  unsigned replay_number = 1;
  std::string replayed_by;
  // local
  std::string out_dir, emit_prefix;
  bool no_secrets = false, dry_run = false;
  // --compare
  bool compare = false;
  std::string wait_timeout = "10m";
  double duration_factor = 3.0;
  std::string timeout = "60s";  // bounds the reading
  // republish: signs the commands written (their value changes: the old signature cannot carry
  // over)
  SignOptions sign;
};

CLI::App* addReplayCommand(CLI::App& app, ReplayOptions& options);
// `stop` (SIGINT, SIGTERM) interrupts `local`: its runs are stopped.
int cmdReplay(const ReplayOptions& options, const std::atomic<bool>& stop);

// --from / --to: a time (RFC 3339 UTC, e.g. 2026-12-05T10:00:00Z, or Unix milliseconds), a
// duration back from `now_ms` (2h), or PARTITION:OFFSET. Throws ConfigError.
struct ReplayBound {
  std::optional<std::int64_t> time_ms;
  std::optional<std::pair<std::int32_t, std::int64_t>> position;
};
ReplayBound parseReplayBound(const std::string& text, std::int64_t now_ms);

// The run id of replay `n` of `original`: a UUIDv5 of both, in Outpost's replay namespace
// (c7e37c2c-9ce9-57b0-9de8-4172bf00fd35, the UUIDv5 of the URL "urn:outpost:replay"), of the
// name "<original run id, lower case>/<n>". The same replay of the same run always gets the same
// id.
std::string replayRunId(const std::string& original, unsigned n);

// How a run ended, as recorded on the topics.
struct RecordedOutcome {
  v1::RunState state = v1::RUN_STATE_UNSPECIFIED;  // unspecified: no terminal event
  std::int32_t exit_code = -1;
  std::int64_t duration_ms = 0;
  std::string message;
  std::set<std::string> datasets;  // lineage inputs and outputs, "in:ns/name" and "out:ns/name"
};

// What the events and lineage topics say of runs, gathered record by record.
struct OutcomeBook {
  std::map<std::string, RecordedOutcome> runs;
  // A terminal run event (not a lost attempt's `retrying` FAILED) sets its run's outcome, keeping
  // the datasets found so far. Returns whether it did.
  bool addEvent(const v1::RunEvent& event);
  // An OpenLineage record adds its inputs and outputs to its run's datasets, when `only` is null
  // or holds the run. Returns the run id ("" when the text is not a run's record).
  std::string addLineage(std::string_view json, const std::set<std::string>* only = nullptr);
};

// One command found on the source topic.
struct ReplayCandidate {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;  // requested_at_ms, else the record's timestamp
  v1::JobCommand command;
  RecordedOutcome recorded;
  // How its record was signed, for the plan: "unsigned", "kid", "kid INVALID: why", or "kid (not
  // checked)" when the configuration names no trusted keys.
  std::string signature;
};

// The signature column of the plan for a command record read from `topic` (its source topic for
// a dead letter) of a command for `pool`: checked with `keys` (nullptr: not checked) as a worker
// checked it when it was written (at its record's timestamp), replays and all.
std::string describeSignature(const std::string& value, const std::vector<events::Header>& headers,
                              const std::string& topic, const std::string& pool,
                              const security::KeySet* keys, const SecurityConfig& security,
                              std::int64_t timestamp_ms);

// Whether the options select the candidate (runs, job type, job id, pool, recorded state).
bool replaySelects(const ReplayOptions& options, const ReplayCandidate& candidate);

// The command written again: the new run id, attempt 1, no start deadline, requested now, the
// labels outpost.replay_of and outpost.replayed_by, and the pool when given.
v1::JobCommand replayCommand(const v1::JobCommand& original, unsigned n,
                             const std::string& replayed_by, const std::string& pool,
                             std::int64_t now_ms);

// One line of the comparison; `differences` empty when the replay matches.
struct ReplayComparison {
  std::string original, replay, job_type;
  RecordedOutcome recorded, replayed;
  bool ended = false;  // the replay ended within --wait-timeout
  std::vector<std::string> differences;
};
ReplayComparison compareReplay(const ReplayCandidate& original, const std::string& replay_id,
                               const std::optional<RecordedOutcome>& replayed,
                               double duration_factor);

std::string formatPlan(const std::vector<ReplayCandidate>& selected, const std::string& source);
std::string formatComparison(const std::vector<ReplayComparison>& rows);

}  // namespace outpost::app
