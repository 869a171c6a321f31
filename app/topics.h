// `outpost topics`: creates the config's topics with the librdkafka admin API (the runs topic
// compacted and pruned) and checks what the worker needs of those that already exist.
//
// Deciding which topics to create with which settings, and judging an existing runs topic, are
// pure, for the unit tests; cmdTopics does the Kafka talking. Everything here runs on the calling
// thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "outpost/common/config.h"

namespace CLI {
class App;
}

namespace outpost::app {

struct TopicsOptions {
  std::string config_path;
  std::string bootstrap;  // overrides kafka.bootstrap_servers
  int partitions = 6;
  int replication_factor = 1;
  std::string runs_retention = "7d";
};

// One topic of the config as `outpost topics` wants it.
struct WantedTopic {
  std::string roles;  // the topics.* keys naming it, e.g. "runs" ("events, lineage" if shared)
  std::string name;
  int partitions = 1;
  std::vector<std::pair<std::string, std::string>> configs;  // topic-level settings
};

// Checks the numeric options and returns --runs-retention. Throws ConfigError naming the flag.
std::chrono::milliseconds checkTopicsOptions(const TopicsOptions& options);

// The config's topics, one entry per distinct name, in the order jobs, control, events, lineage,
// dlq, workers, runs. Topics get --partitions; workers is compacted; runs is compacted and pruned
// after `runs_retention`, with at least as many partitions as the jobs topic has already
// (`jobs_partitions`, 0 when it does not exist). Throws ConfigError when the runs topic is also
// the topic of another key.
std::vector<WantedTopic> wantedTopics(const TopicsConfig& topics, const TopicsOptions& options,
                                      std::chrono::milliseconds runs_retention,
                                      int jobs_partitions);

// Why workers would refuse a runs topic with `runs_partitions` beside a jobs topic with
// `jobs_partitions` (0: not there), and the command that fixes it; nullopt when they would not.
std::optional<std::string> runsPartitionsProblem(const TopicsConfig& topics,
                                                 const std::string& bootstrap, int runs_partitions,
                                                 int jobs_partitions);

// A warning when an existing runs topic's cleanup.policy lacks compact or delete, with the command
// that sets it; nullopt when it has both.
std::optional<std::string> runsCleanupPolicyWarning(const TopicsConfig& topics,
                                                    const std::string& bootstrap,
                                                    const std::string& cleanup_policy,
                                                    std::chrono::milliseconds runs_retention);

// Adds the `topics` subcommand, filling `options`; returns it so main can tell it was chosen.
CLI::App* addTopicsCommand(CLI::App& app, TopicsOptions& options);

// Creates every topic of the config that does not exist yet and checks what the worker needs of
// those that do; prints one line per topic. Idempotent. 0 when all is well; 1 when the brokers
// cannot be listed, a topic cannot be created or the runs topic has fewer partitions than the
// jobs topic. Throws ConfigError.
int cmdTopics(const TopicsOptions& options);

}  // namespace outpost::app
