// What the worker decides about itself, apart from the clients it wires (app/worker.cc): which
// settings of a reloaded configuration wait for a restart, whether it is ready for work and why
// not, and the state its status says. A library of its own so that tests/app checks it without a
// broker.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/v1/worker.pb.h"

namespace outpost::app {

// The settings that differ between `in_use` and `next` but can only change with a restart (the
// clients, the identity, the topics, the slots, delivery, the HTTP endpoint, the log format, the
// cgroup mode, lineage), by name; a reload applies the rest.
std::vector<std::string> keptUntilRestart(const Config& in_use, const Config& next);

// What readiness depends on, as the poll loop sees it.
struct ReadinessInputs {
  bool draining = false;                // stopping
  std::optional<std::string> drained;   // drained by an operator, and why
  bool joined = false;                  // a rebalance gave the worker its partitions (or none)
  bool left_group = false;              // it left the group (a drain with hand-over)
  bool producers_connected = false;     // the event and start producers have a broker up
  std::size_t records_waiting_for_room = 0;
  bool transactions_ready = true;       // exactly-once: the transactional producer is ready
  // How long the event producer's records have waited with no acknowledgement, and the brokers
  // it wants but cannot reach (KafkaProducer::unacknowledgedFor, unreachableBrokers).
  std::chrono::milliseconds unacknowledged_for{0};
  std::vector<std::string> unreachable_brokers;
  std::string pool;
  std::string bootstrap_servers;
};

// Records unacknowledged this long make the worker not ready: the brokers take no writes (too few
// of them up for min.insync.replicas, partitions without a leader), so no claim can be made and
// no run can end; what waits is kept and written when they return.
inline constexpr std::chrono::seconds kUnacknowledgedNotReady{10};

// Why the worker should take no work now (/readyz), or nullopt when it is ready.
std::optional<std::string> whyNotReady(const ReadinessInputs& in);

// The state its status says: DRAINING when stopping or drained, STARTING until it was first
// ready, then READY; and why.
std::pair<v1::WorkerState, std::string> workerState(bool draining,
                                                    const std::optional<std::string>& drained,
                                                    bool was_ready,
                                                    const std::optional<std::string>& not_ready);

}  // namespace outpost::app
