#include "worker_state.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace outpost::app {

std::vector<std::string> keptUntilRestart(const Config& in_use, const Config& next) {
  std::vector<std::string> kept;
  auto keep = [&](bool same, const char* what) {
    if (!same) kept.push_back(what);
  };
  const auto& w = in_use.worker;
  keep(next.kafka == in_use.kafka, "kafka");
  keep(next.worker.id == w.id && next.worker.pool == w.pool, "worker.id/pool");
  keep(next.worker.slots == w.slots, "worker.slots");
  keep(next.worker.delivery == w.delivery, "worker.delivery");
  keep(next.topics == in_use.topics, "topics");
  keep(next.http.listen == in_use.http.listen, "http");
  keep(next.log.format == in_use.log.format, "log.format");
  keep(next.runner.cgroup == in_use.runner.cgroup, "runner.cgroup");
  keep(next.lineage == in_use.lineage, "lineage");
  return kept;
}

std::optional<std::string> whyNotReady(const ReadinessInputs& in) {
  if (in.draining) return "draining: finishing its runs and taking no new ones";
  if (in.drained) return *in.drained + " (finishing its runs, taking no new ones until resumed)";
  if (!in.joined && !in.left_group) return "waiting to join the consumer group outpost." + in.pool;
  if (!in.producers_connected) {
    return "the event producers have no broker connection up (" + in.bootstrap_servers + ")";
  }
  if (in.records_waiting_for_room > 0) {
    return fmt::format(
        "the broker is not taking records: {} wait in memory for room in the producer's queue",
        in.records_waiting_for_room);
  }
  if (in.unacknowledged_for >= kUnacknowledgedNotReady) {
    return fmt::format(
        "the brokers have acknowledged no write for {} s{}: nothing is claimed until they do, "
        "and what waits is written when they return",
        std::chrono::duration_cast<std::chrono::seconds>(in.unacknowledged_for).count(),
        in.unreachable_brokers.empty()
            ? " (too few replicas in sync?)"
            : fmt::format(" ({} unreachable)", fmt::join(in.unreachable_brokers, ", ")));
  }
  if (!in.transactions_ready) return "the transactional producer is not ready";
  return std::nullopt;
}

std::pair<v1::WorkerState, std::string> workerState(bool draining,
                                                    const std::optional<std::string>& drained,
                                                    bool was_ready,
                                                    const std::optional<std::string>& not_ready) {
  if (draining) return {v1::DRAINING, "shutting down"};
  if (drained) return {v1::DRAINING, *drained};
  if (!was_ready) return {v1::STARTING, not_ready.value_or("starting")};
  return {v1::READY, ""};
}

}  // namespace outpost::app
