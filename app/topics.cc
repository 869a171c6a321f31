#include "topics.h"

#include "client_config.h"

#include <algorithm>
#include <expected>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include <CLI/CLI.hpp>

#include "outpost/events/admin.h"

namespace outpost::app {

std::chrono::milliseconds checkTopicsOptions(const TopicsOptions& o) {
  if (o.partitions < 1) throw ConfigError("--partitions must be at least 1");
  if (o.replication_factor < 1) throw ConfigError("--replication-factor must be at least 1");
  auto retention = parseDuration(o.runs_retention);
  if (!retention || retention->count() <= 0) {
    throw ConfigError("--runs-retention must be a duration such as 7d or 72h, not '" +
                      o.runs_retention + "'");
  }
  return *retention;
}

std::vector<WantedTopic> wantedTopics(const TopicsConfig& t, const TopicsOptions& o,
                                      std::chrono::milliseconds runs_retention,
                                      int jobs_partitions) {
  // The runs topic holds the state of commands read from jobs partition p in its partition p: it
  // needs at least as many partitions as jobs, and one record per run_id (compacted), pruned after
  // the retention (runs whose commands may still be delivered are rewritten long before).
  std::vector<WantedTopic> wanted = {
      {"jobs", t.jobs, o.partitions, {}},
      {"control", t.control, o.partitions, {}},
      {"events", t.events, o.partitions, {}},
      {"lineage", t.lineage, o.partitions, {}},
      {"dlq", t.dlq, o.partitions, {}},
      {"workers", t.workers, o.partitions, {{"cleanup.policy", "compact"}}},
      {"runs",
       t.runs,
       std::max(o.partitions, jobs_partitions),
       {{"cleanup.policy", "compact,delete"},
        {"retention.ms", std::to_string(runs_retention.count())}}},
  };
  // Two keys may name one topic; the runs topic must be a topic of its own.
  std::vector<WantedTopic> topics;
  for (auto& w : wanted) {
    auto same = std::ranges::find(topics, w.name, &WantedTopic::name);
    if (same == topics.end()) {
      topics.push_back(std::move(w));
    } else if (w.roles == "runs" || same->roles == "runs") {
      throw ConfigError("'topics.runs' (" + t.runs + ") must not be the topic of another key");
    } else {
      same->roles += ", " + w.roles;
    }
  }
  return topics;
}

std::optional<std::string> runsPartitionsProblem(const TopicsConfig& t,
                                                 const std::string& bootstrap, int runs_partitions,
                                                 int jobs_partitions) {
  if (runs_partitions <= 0 || runs_partitions >= jobs_partitions) return std::nullopt;
  // Safe to add: the worker writes run records to explicit partitions, never by key hash.
  return "the runs topic '" + t.runs + "' (topics.runs) has " + std::to_string(runs_partitions) +
         " partition(s), fewer than the " + std::to_string(jobs_partitions) +
         " of the jobs topic '" + t.jobs +
         "'; workers refuse to start until it has as many. Add partitions: "
         "kafka-topics.sh --bootstrap-server " +
         bootstrap + " --alter --topic " + t.runs + " --partitions " +
         std::to_string(jobs_partitions);
}

std::optional<std::string> runsCleanupPolicyWarning(const TopicsConfig& t,
                                                    const std::string& bootstrap,
                                                    const std::string& cleanup_policy,
                                                    std::chrono::milliseconds runs_retention) {
  if (cleanup_policy.find("compact") != std::string::npos &&
      cleanup_policy.find("delete") != std::string::npos) {
    return std::nullopt;
  }
  // Not fatal: the worker is correct either way, but a worker assigned a partition reads it
  // whole, so without compaction it reads every record and without deletion every run ever.
  return "the runs topic '" + t.runs + "' has cleanup.policy=" + cleanup_policy +
         "; compact,delete keeps it short (kafka-configs.sh --bootstrap-server " + bootstrap +
         " --alter --entity-type topics --entity-name " + t.runs +
         " --add-config 'cleanup.policy=[compact,delete],retention.ms=" +
         std::to_string(runs_retention.count()) + "')";
}

CLI::App* addTopicsCommand(CLI::App& app, TopicsOptions& o) {
  auto* sub = app.add_subcommand(
      "topics", "Create the config's topics (the runs topic compacted); idempotent");
  sub->add_option("-c,--config", o.config_path,
                  "Configuration file (for Kafka and topic settings)");
  sub->add_option("-b,--bootstrap", o.bootstrap, "Kafka bootstrap servers (overrides the config)");
  sub->add_option("-p,--partitions", o.partitions,
                  "Partitions of topics it creates (runs: at least the jobs topic's)")
      ->capture_default_str();
  sub->add_option("--replication-factor", o.replication_factor,
                  "Replication factor of topics it creates")
      ->capture_default_str();
  sub->add_option("--runs-retention", o.runs_retention,
                  "retention.ms of the runs topic it creates: longer than a command may wait "
                  "uncommitted")
      ->capture_default_str();
  return sub;
}

int cmdTopics(const TopicsOptions& o) {
  Config config = clientConfig({o.config_path, o.bootstrap});
  const auto retention = checkTopicsOptions(o);
  const auto& t = config.topics;
  events::KafkaAdmin admin(config.kafka);
  auto counts = admin.partitionCounts();
  if (!counts) {
    std::cerr << "outpost topics: cannot list the topics of " << config.kafka.bootstrap_servers
              << ": " << counts.error() << "\n";
    return 1;
  }
  auto count = [&](const std::string& name) {
    auto it = counts->find(name);
    return it == counts->end() ? 0 : it->second;
  };

  const auto topics = wantedTopics(t, o, retention, count(t.jobs));
  std::vector<events::NewTopic> missing;
  for (const auto& w : topics) {
    if (!counts->contains(w.name)) missing.push_back({w.name, w.partitions, w.configs});
  }
  // `raced`: created by someone else between our look and our request.
  auto [failed, raced] = admin.createTopics(missing, o.replication_factor);
  if (!raced.empty()) {
    if (auto again = admin.partitionCounts()) counts = std::move(again);
  }

  int status = 0;
  int jobs_partitions = 0, runs_partitions = 0;
  bool runs_existed = false;
  for (const auto& w : topics) {
    std::cout << w.name << " (" << w.roles << "): ";
    int partitions = 0;
    if (auto f = failed.find(w.name); f != failed.end()) {
      std::cout << "NOT CREATED: " << f->second << "\n";
      status = 1;
      continue;
    }
    if (counts->contains(w.name) || raced.contains(w.name)) {
      partitions = count(w.name);
      std::cout << "exists with " << partitions << " partition(s)\n";
      if (w.name == t.runs) runs_existed = true;
    } else {
      partitions = w.partitions;
      std::cout << "created with " << partitions << " partition(s), replication factor "
                << o.replication_factor;
      for (const auto& [key, value] : w.configs) std::cout << ", " << key << "=" << value;
      std::cout << "\n";
    }
    if (w.name == t.jobs) jobs_partitions = partitions;
    if (w.name == t.runs) runs_partitions = partitions;
  }

  if (auto problem = runsPartitionsProblem(t, config.kafka.bootstrap_servers, runs_partitions,
                                           jobs_partitions)) {
    std::cerr << "outpost topics: " << *problem << "\n";
    status = 1;
  }
  if (runs_existed) {
    auto policy = admin.topicSetting(t.runs, "cleanup.policy");
    if (!policy) {
      std::cerr << "outpost topics: cannot read the cleanup.policy of '" << t.runs
                << "': " << policy.error() << "\n";
    } else if (auto warning = runsCleanupPolicyWarning(t, config.kafka.bootstrap_servers, *policy,
                                                       retention)) {
      std::cerr << "outpost topics: warning: " << *warning << "\n";
    }
  }
  return status;
}

}  // namespace outpost::app
