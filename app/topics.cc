#include "topics.h"

#include <algorithm>
#include <expected>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include <CLI/CLI.hpp>

#include "outpost/events/kafka.h"

namespace outpost {
namespace {

// Owners of the admin API's objects (kafka.h owns the clients' own handles).
struct AdminDeleter {
  void operator()(rd_kafka_NewTopic_t* p) const { rd_kafka_NewTopic_destroy(p); }
  void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
  void operator()(rd_kafka_ConfigResource_t* p) const { rd_kafka_ConfigResource_destroy(p); }
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
  void operator()(const rd_kafka_metadata_t* p) const { rd_kafka_metadata_destroy(p); }
};
using NewTopicPtr = std::unique_ptr<rd_kafka_NewTopic_t, AdminDeleter>;
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, AdminDeleter>;
using ConfigResourcePtr = std::unique_ptr<rd_kafka_ConfigResource_t, AdminDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, AdminDeleter>;
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, AdminDeleter>;

constexpr int kAdminTimeoutMs = 30000;

// The partition count of every topic the cluster has.
std::expected<std::map<std::string, int>, std::string> partitionCounts(rd_kafka_t* rk) {
  const rd_kafka_metadata_t* raw = nullptr;
  auto err = rd_kafka_metadata(rk, 1, nullptr, &raw, 10000);
  MetadataPtr md(raw);
  if (err) return std::unexpected(std::string(rd_kafka_err2str(err)));
  std::map<std::string, int> counts;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (!md->topics[i].err) counts[md->topics[i].topic] = md->topics[i].partition_cnt;
  }
  return counts;
}

// Runs one admin request (`post` sends it to the queue) and returns its result event, which
// carries any error of the request as a whole.
template <typename Post>
std::expected<EventPtr, std::string> adminRequest(rd_kafka_t* rk, rd_kafka_admin_op_t op,
                                                  Post post) {
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk, op));
  char err[512];
  rd_kafka_AdminOptions_set_request_timeout(options.get(), kAdminTimeoutMs, err, sizeof err);
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS) {
    // Answer once the topics are created, not only accepted.
    rd_kafka_AdminOptions_set_operation_timeout(options.get(), kAdminTimeoutMs, err, sizeof err);
  }
  kafka::QueuePtr queue(rd_kafka_queue_new(rk));
  post(options.get(), queue.get());
  EventPtr ev(rd_kafka_queue_poll(queue.get(), kAdminTimeoutMs + 5000));
  if (!ev) return std::unexpected(std::string("no answer from the brokers"));
  if (rd_kafka_event_error(ev.get())) {
    return std::unexpected(std::string(rd_kafka_event_error_string(ev.get())));
  }
  return ev;
}

// Creates `missing`; for each name, nothing when it was created (or appeared meanwhile: `exists`
// then says so), else why not.
std::map<std::string, std::string> createTopics(rd_kafka_t* rk,
                                                const std::vector<const WantedTopic*>& missing,
                                                int replication_factor,
                                                std::set<std::string>& exists) {
  std::map<std::string, std::string> failed;
  std::vector<NewTopicPtr> owned;
  std::vector<rd_kafka_NewTopic_t*> topics;
  for (const auto* t : missing) {
    char err[512];
    NewTopicPtr nt(
        rd_kafka_NewTopic_new(t->name.c_str(), t->partitions, replication_factor, err, sizeof err));
    if (!nt) {
      failed[t->name] = err;
      continue;
    }
    for (const auto& [key, value] : t->configs) {
      if (auto e = rd_kafka_NewTopic_set_config(nt.get(), key.c_str(), value.c_str())) {
        failed[t->name] = key + ": " + rd_kafka_err2str(e);
      }
    }
    if (failed.contains(t->name)) continue;
    topics.push_back(nt.get());
    owned.push_back(std::move(nt));
  }
  if (topics.empty()) return failed;
  auto ev = adminRequest(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS,
                         [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                           rd_kafka_CreateTopics(rk, topics.data(), topics.size(), options, queue);
                         });
  if (!ev) {
    for (const auto* t : missing) failed.emplace(t->name, ev.error());
    return failed;
  }
  std::size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev->get()), &n);
  for (std::size_t i = 0; i < n; ++i) {
    std::string name = rd_kafka_topic_result_name(results[i]);
    auto err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      exists.insert(name);  // another `outpost topics`, or a producer's auto-creation, was first
    } else if (err) {
      const char* why = rd_kafka_topic_result_error_string(results[i]);
      failed[name] = why && *why ? why : rd_kafka_err2str(err);
    }
  }
  return failed;
}

// The value of one topic-level setting of an existing topic (empty when the broker lists none).
std::expected<std::string, std::string> topicSetting(rd_kafka_t* rk, const std::string& topic,
                                                     const std::string& key) {
  ConfigResourcePtr resource(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  rd_kafka_ConfigResource_t* resources[] = {resource.get()};
  auto ev = adminRequest(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
                         [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                           rd_kafka_DescribeConfigs(rk, resources, 1, options, queue);
                         });
  if (!ev) return std::unexpected(ev.error());
  std::size_t n = 0;
  const rd_kafka_ConfigResource_t** described = rd_kafka_DescribeConfigs_result_resources(
      rd_kafka_event_DescribeConfigs_result(ev->get()), &n);
  for (std::size_t i = 0; i < n; ++i) {
    if (auto err = rd_kafka_ConfigResource_error(described[i])) {
      return std::unexpected(std::string(rd_kafka_err2str(err)));
    }
    std::size_t count = 0;
    const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(described[i], &count);
    for (std::size_t j = 0; j < count; ++j) {
      if (key == rd_kafka_ConfigEntry_name(entries[j])) {
        const char* value = rd_kafka_ConfigEntry_value(entries[j]);
        return std::string(value ? value : "");
      }
    }
  }
  return std::string();
}

}  // namespace

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
  Config config = o.config_path.empty() ? parseConfig("", processEnvironment(), "defaults")
                                        : loadConfig(o.config_path, processEnvironment());
  if (!o.bootstrap.empty()) config.kafka.bootstrap_servers = o.bootstrap;
  const auto retention = checkTopicsOptions(o);
  const auto& t = config.topics;
  kafka::Properties props = {{"bootstrap.servers", config.kafka.bootstrap_servers}};
  auto rk = kafka::makeHandle(
      RD_KAFKA_PRODUCER, kafka::makeConf({&props, &config.kafka.properties}, "kafka.properties"));
  auto counts = partitionCounts(rk.get());
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
  std::vector<const WantedTopic*> missing;
  for (const auto& w : topics) {
    if (!counts->contains(w.name)) missing.push_back(&w);
  }
  std::set<std::string> raced;  // created by someone else between our look and our request
  auto failed = createTopics(rk.get(), missing, o.replication_factor, raced);
  if (!raced.empty()) {
    if (auto again = partitionCounts(rk.get())) counts = std::move(again);
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
    auto policy = topicSetting(rk.get(), t.runs, "cleanup.policy");
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

}  // namespace outpost
