// `outpost ledger`: the instrument of the delivery guarantees. It reads the jobs and events topics
// to their end (events read_committed) and the group's committed offsets, and counts what was
// submitted, what ended, what was lost, what ended twice and what ran twice; and from the runs
// and workers topics, which runs are claimed now, by whom, and which wait to run again because
// their worker is gone.
//
// The counting (countLedger) and the formatting are pure, for the unit tests; cmdLedger does the
// Kafka reading. Everything here runs on the calling thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "outpost/v1/event.pb.h"
#include "outpost/v1/worker.pb.h"

namespace CLI {
class App;
}

namespace outpost::app {

// One record of the jobs topic. `run_id` is empty when the record is not a JobCommand with one.
struct LedgerCommand {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string run_id;
};

// What the ledger needs of one RunEvent, in the order the events topic holds them.
struct LedgerEvent {
  std::string run_id;
  v1::RunState state = v1::RUN_STATE_UNSPECIFIED;
  std::uint32_t attempt = 0;
  std::string worker_id;
  bool retrying = false;  // a FAILED that ends a lost attempt; the run goes on as the next one
};

// One partition of the jobs topic: its log's start and end, and the group's committed offset
// (the next offset the group would read; -1 when the group committed none).
struct LedgerPartition {
  std::int32_t partition = 0;
  std::int64_t low = 0;
  std::int64_t end = 0;
  std::int64_t committed = -1;
};

// The last record of a run on the runs topic, when it holds the run: a claim (STARTED, with its
// command) or a release (its worker let it go as it stopped).
struct LedgerClaim {
  std::string run_id, worker_id, incarnation;
  bool released = false;
};

// A worker's latest status on the workers topic.
struct LedgerWorker {
  std::string incarnation;
  v1::WorkerState state = v1::WORKER_STATE_UNSPECIFIED;
};

struct LedgerInput {
  std::vector<LedgerClaim> claims;
  std::map<std::string, LedgerWorker> workers;  // by worker id
  std::vector<LedgerCommand> commands;
  std::vector<LedgerEvent> events;
  std::vector<LedgerPartition> partitions;
  std::int64_t dlq_records = 0;
  // Runs to report one by one (LedgerFigures::runs).
  std::set<std::string> watch;
};

// Everything known about one run, for --run.
struct LedgerRun {
  bool submitted = false;
  bool committed = false;  // every command of the run lies below its partition's committed offset
  int starts = 0;
  std::vector<std::string> terminal;  // the run's terminal states, in log order
  std::set<std::uint32_t> attempts;   // attempt numbers of its events (NOTICE aside)
  std::set<std::string> workers;      // workers that wrote its events (NOTICE aside)
};

struct LedgerFigures {
  std::int64_t commands = 0;     // records in the jobs topic
  std::int64_t undecodable = 0;  // of which carry no run_id
  std::int64_t submitted = 0;    // distinct run_ids in the jobs topic
  std::int64_t resubmitted = 0;  // run_ids found in more than one command
  std::int64_t events = 0;       // committed records in the events topic
  std::int64_t terminal = 0;     // submitted run_ids with at least one terminal event
  // Submitted runs by the state of their last terminal event (their outcome).
  std::map<std::string, std::int64_t> terminal_by_state;
  // Lost: submitted runs with no terminal event (a retrying FAILED does not count), or with a
  // command the group has not committed.
  std::int64_t lost = 0;
  std::int64_t lost_no_terminal = 0;
  std::int64_t lost_uncommitted = 0;
  // Runs with more than one terminal event for one attempt, and those extra events in all.
  std::int64_t duplicate_terminal = 0;
  std::int64_t duplicate_terminal_extra = 0;
  // Re-runs: more than one STARTED, or events (NOTICE aside) from more than one (worker, attempt).
  std::int64_t reruns = 0;
  std::int64_t rerun_extra_starts = 0;  // STARTED events beyond the first, in all
  std::uint32_t max_attempt = 0;        // highest attempt number in any event
  std::int64_t rejected = 0;            // submitted runs whose last terminal event is REJECTED
  std::int64_t dlq = 0;                 // records in the dead-letter topic
  std::int64_t unknown_runs = 0;        // run_ids with events (NOTICE aside) but no command
  std::vector<LedgerPartition> partitions;
  std::int64_t uncommitted = 0;  // sum over partitions of end - max(committed, low)
  // Runs held now (their last record on the runs topic is a claim), in all and by worker.
  std::int64_t claims = 0;
  std::map<std::string, std::int64_t> claims_by_worker;
  // Runs waiting to run again: released, or claimed by a worker that is gone (its last status is
  // LOST or STOPPED, names another incarnation, or there is none). The owner of each one's
  // partition runs it again.
  std::int64_t claims_lost = 0;
  std::vector<std::string> claims_lost_sample;
  // Up to kLedgerSamples run_ids of each kind, sorted.
  std::vector<std::string> lost_sample, duplicate_sample, rerun_sample;
  std::map<std::string, LedgerRun> runs;  // the watched runs
};

inline constexpr std::size_t kLedgerSamples = 20;

LedgerFigures countLedger(const LedgerInput& input);

// Where the figures were read from, for the header of the output.
struct LedgerSource {
  std::string bootstrap, jobs_topic, events_topic, dlq_topic, group;
  std::string runs_topic, workers_topic;
};

// `name: value` lines, then one line per partition and the samples.
std::string formatLedgerText(const LedgerSource& source, const LedgerFigures& figures);
// One JSON object (the same names as LedgerFigures) and a trailing newline.
std::string formatLedgerJson(const LedgerSource& source, const LedgerFigures& figures);

struct LedgerOptions {
  std::string config_path;
  std::string bootstrap, jobs_topic, events_topic, dlq_topic, group;
  std::vector<std::string> runs;
  bool json = false;
  std::string timeout = "60s";
};

// Adds the `ledger` subcommand, filling `options`; returns it so main can tell it was chosen.
CLI::App* addLedgerCommand(CLI::App& app, LedgerOptions& options);

// Reads the topics and offsets and prints the figures. 0 when it could read everything, 1 when it
// could not (broker unreachable, or the end not reached within --timeout). Throws ConfigError.
int cmdLedger(const LedgerOptions& options);

}  // namespace outpost::app
