// `outpost workers`: the pool's workers as their last WorkerStatus on the workers topic says —
// the "Connected" view. A worker whose last status is not STOPPED and is older than
// kStaleAfter status intervals died without saying so, and is shown as stale.
//
// Judging and printing statuses is pure, for the unit tests; cmdWorkers reads the topic.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "client_config.h"
#include "outpost/v1/worker.pb.h"

namespace CLI {
class App;
}

namespace outpost::app {

struct WorkersOptions {
  ClientOptions client;
  std::string pool;  // only this pool
  bool json = false;
  bool all = false;  // also workers that stopped more than an hour ago
};

// A worker's last status is stale after this many of its status intervals.
inline constexpr int kStaleAfter = 3;

struct WorkerRow {
  v1::WorkerStatus status;
  std::chrono::milliseconds age{0};  // since status.last_seen_ms
  bool stale = false;
};

// The rows to show from the last status of each worker id, ordered by pool then worker id:
// `pool` only (all when empty); STOPPED workers last seen over an hour ago left out unless `all`.
// `default_interval` stands for a status that does not say its interval.
std::vector<WorkerRow> workerRows(const std::map<std::string, v1::WorkerStatus>& latest,
                                  std::chrono::system_clock::time_point now,
                                  std::chrono::milliseconds default_interval,
                                  const std::string& pool, bool all);

// A table: worker, pool, state (STALE (was READY) when stale), slots busy/total, queued, version,
// last seen (age), host, and the reason for a state other than READY.
std::string formatWorkers(const std::vector<WorkerRow>& rows);
// JSON: an array of the statuses (proto field names) with "age_ms" and "stale" added.
std::string workersJson(const std::vector<WorkerRow>& rows);

CLI::App* addWorkersCommand(CLI::App& app, WorkersOptions& options);

// Reads the workers topic to its end and prints the rows. 0; 1 when the topic cannot be read.
int cmdWorkers(const WorkersOptions& options);

}  // namespace outpost::app
