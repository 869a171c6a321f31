// `outpost topics` against the real broker: the topics it creates (partitions, the runs topic's
// cleanup.policy and retention), a second run that changes nothing, and an existing runs topic it
// refuses or warns about.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"

namespace outpost::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

struct AdminDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
  void operator()(rd_kafka_ConfigResource_t* p) const { rd_kafka_ConfigResource_destroy(p); }
  void operator()(rd_kafka_DeleteTopic_t* p) const { rd_kafka_DeleteTopic_destroy(p); }
  void operator()(rd_kafka_NewPartitions_t* p) const { rd_kafka_NewPartitions_destroy(p); }
  void operator()(const rd_kafka_metadata_t* p) const { rd_kafka_metadata_destroy(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, AdminDeleter>;

// What the test asks the broker itself, apart from `outpost topics`.
class Admin {
 public:
  Admin() {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    for (const auto& [k, v] :
         {std::pair<std::string, std::string>{"bootstrap.servers", bootstrap()},
          {"log_level", "3"}}) {
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        throw std::runtime_error("admin client " + k + ": " + err);
      }
    }
    rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err));  // owns conf when made
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("admin client: ") + err);
    }
  }

  // Partition counts of `names` as the metadata shows them (0: not there).
  std::map<std::string, int> partitions(const std::vector<std::string>& names) {
    std::map<std::string, int> counts;
    for (const auto& n : names) counts[n] = 0;
    const rd_kafka_metadata_t* raw = nullptr;
    auto err = rd_kafka_metadata(rk_.get(), 1, nullptr, &raw, 10000);
    Owned<const rd_kafka_metadata_t> md(raw);
    if (err) return counts;
    for (int i = 0; i < md->topic_cnt; ++i) {
      const auto& t = md->topics[i];
      if (!t.err && counts.contains(t.topic)) counts[t.topic] = t.partition_cnt;
    }
    return counts;
  }

  // Waits (safety timeout) until the metadata shows `wanted`; returns the last reading.
  std::map<std::string, int> waitForPartitions(const std::map<std::string, int>& wanted) {
    std::vector<std::string> names;
    for (const auto& [name, n] : wanted) names.push_back(name);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto got = partitions(names);
    while (got != wanted && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      got = partitions(names);
    }
    return got;
  }

  // Every topic-level setting of `topic`, as DescribeConfigs reports them.
  std::map<std::string, std::string> configs(const std::string& topic) {
    Owned<rd_kafka_ConfigResource_t> resource(
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
    rd_kafka_ConfigResource_t* resources[] = {resource.get()};
    auto ev = request([&](rd_kafka_queue_t* q) {
      rd_kafka_DescribeConfigs(rk_.get(), resources, 1, nullptr, q);
    });
    std::size_t n = 0;
    const rd_kafka_ConfigResource_t** described = rd_kafka_DescribeConfigs_result_resources(
        rd_kafka_event_DescribeConfigs_result(ev.get()), &n);
    std::map<std::string, std::string> out;
    for (std::size_t i = 0; i < n; ++i) {
      if (auto err = rd_kafka_ConfigResource_error(described[i])) {
        throw std::runtime_error("DescribeConfigs " + topic + ": " + rd_kafka_err2str(err));
      }
      std::size_t count = 0;
      const rd_kafka_ConfigEntry_t** entries =
          rd_kafka_ConfigResource_configs(described[i], &count);
      for (std::size_t j = 0; j < count; ++j) {
        const char* value = rd_kafka_ConfigEntry_value(entries[j]);
        out[rd_kafka_ConfigEntry_name(entries[j])] = value ? value : "";
      }
    }
    return out;
  }

  // Grows `topic` to `partitions` (what kafka-topics.sh --alter --partitions does).
  void addPartitions(const std::string& topic, int partitions) {
    char err[512];
    Owned<rd_kafka_NewPartitions_t> np(
        rd_kafka_NewPartitions_new(topic.c_str(), partitions, err, sizeof err));
    if (!np) throw std::runtime_error(std::string("NewPartitions: ") + err);
    rd_kafka_NewPartitions_t* list[] = {np.get()};
    auto ev = request(
        [&](rd_kafka_queue_t* q) { rd_kafka_CreatePartitions(rk_.get(), list, 1, nullptr, q); });
    std::size_t n = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreatePartitions_result_topics(
        rd_kafka_event_CreatePartitions_result(ev.get()), &n);
    for (std::size_t i = 0; i < n; ++i) {
      if (rd_kafka_topic_result_error(results[i])) {
        throw std::runtime_error("CreatePartitions " + topic + ": " +
                                 rd_kafka_topic_result_error_string(results[i]));
      }
    }
  }

  // Deletes what exists of `names`; errors (e.g. a topic never created) are ignored.
  void deleteTopics(const std::vector<std::string>& names) {
    std::vector<Owned<rd_kafka_DeleteTopic_t>> owned;
    std::vector<rd_kafka_DeleteTopic_t*> topics;
    for (const auto& name : names) {
      owned.emplace_back(rd_kafka_DeleteTopic_new(name.c_str()));
      topics.push_back(owned.back().get());
    }
    try {
      request([&](rd_kafka_queue_t* q) {
        rd_kafka_DeleteTopics(rk_.get(), topics.data(), topics.size(), nullptr, q);
      });
    } catch (const std::exception&) {
    }
  }

 private:
  template <typename Post>
  Owned<rd_kafka_event_t> request(Post post) {
    Owned<rd_kafka_queue_t> q(rd_kafka_queue_new(rk_.get()));
    post(q.get());
    Owned<rd_kafka_event_t> ev(rd_kafka_queue_poll(q.get(), 30000));
    if (!ev) throw std::runtime_error("no answer from the broker");
    if (rd_kafka_event_error(ev.get())) {
      throw std::runtime_error(rd_kafka_event_error_string(ev.get()));
    }
    return ev;
  }

  Owned<rd_kafka_t> rk_;
};

std::vector<std::string> allNames(const Topics& t) {
  return {t.jobs, t.control, t.events, t.lineage, t.dlq, t.workers, t.runs};
}

// A test's topic names, a config file naming them (through topics.prefix) and the broker, and
// the removal of both at the end.
class TopicsFixture {
 public:
  explicit TopicsFixture(const std::string& stem)
      : topics_(topicNames(stem)),
        dir_(fs::temp_directory_path() / uniqueName("outpost-topics-it")) {
    fs::create_directories(dir_);
    std::ofstream(config()) << "kafka:\n  bootstrap_servers: \"" << bootstrap()
                            << "\"\ntopics:\n  prefix: \"" << topics_.prefix << "\"\n";
  }
  ~TopicsFixture() {
    admin_.deleteTopics(allNames(topics_));
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  const Topics& topics() const { return topics_; }
  Admin& admin() { return admin_; }
  std::string config() const { return (dir_ / "outpost.yaml").string(); }

  struct Result {
    int status = -1;
    std::string out, err;
  };
  // Runs `outpost topics --config <the config> <args>`.
  Result run(const std::string& args) const {
    const auto err_path = dir_ / uniqueName("stderr");
    std::string cmd = "'" + outpostBinary() + "' topics --config '" + config() + "' " +
                      args + " 2>'" + err_path.string() + "'";
    Result r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) r.out += buf;
    int status = pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_path);
    std::stringstream ss;
    ss << in.rdbuf();
    r.err = ss.str();
    return r;
  }

 private:
  Topics topics_;
  fs::path dir_;
  Admin admin_;
};

std::map<std::string, int> allWith(const Topics& t, int partitions) {
  std::map<std::string, int> m;
  for (const auto& name : allNames(t)) m[name] = partitions;
  return m;
}

TEST(Topics, CreatesEveryTopicWithThePartitionsAskedAndTheRunsTopicCompactedAndPruned) {
  TopicsFixture f("topics-create");
  const auto& t = f.topics();
  auto r = f.run("--partitions 3 --runs-retention 2d");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  for (const auto& name : allNames(t)) {
    EXPECT_THAT(r.out, HasSubstr(name + " (")) << "a line for every topic";
  }
  EXPECT_THAT(r.out, HasSubstr(t.jobs + " (jobs): created with 3 partition(s), replication factor "
                                        "1\n"));
  EXPECT_THAT(r.out, HasSubstr(t.workers + " (workers): created with 3 partition(s), replication "
                                           "factor 1, cleanup.policy=compact\n"));
  EXPECT_THAT(r.out, HasSubstr(t.runs + " (runs): created with 3 partition(s), replication factor "
                                        "1, cleanup.policy=compact,delete, retention.ms=172800000"
                                        "\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("exists")));

  EXPECT_EQ(f.admin().waitForPartitions(allWith(t, 3)), allWith(t, 3));
  auto runs = f.admin().configs(t.runs);
  EXPECT_EQ(runs["cleanup.policy"], "compact,delete");
  EXPECT_EQ(runs["retention.ms"], "172800000");
  EXPECT_EQ(f.admin().configs(t.workers)["cleanup.policy"], "compact");
  EXPECT_EQ(f.admin().configs(t.jobs)["cleanup.policy"], "delete") << "the broker's default";
}

TEST(Topics, ASecondRunFindsEveryTopicAndChangesNothing) {
  TopicsFixture f("topics-again");
  const auto& t = f.topics();
  auto first = f.run("--partitions 2");
  ASSERT_EQ(first.status, 0) << first.out << first.err;
  ASSERT_EQ(f.admin().waitForPartitions(allWith(t, 2)), allWith(t, 2));

  auto second = f.run("--partitions 5");
  EXPECT_EQ(second.status, 0) << second.out << second.err;
  for (const auto& name : allNames(t)) {
    EXPECT_THAT(second.out, HasSubstr(name + " (")) << second.out;
  }
  EXPECT_THAT(second.out, HasSubstr(t.jobs + " (jobs): exists with 2 partition(s)\n"));
  EXPECT_THAT(second.out, HasSubstr(t.runs + " (runs): exists with 2 partition(s)\n"));
  EXPECT_THAT(second.out, Not(HasSubstr("created")));
  EXPECT_THAT(second.err, Not(HasSubstr("outpost topics:"))) << "no problem, no warning";
  EXPECT_EQ(f.admin().partitions(allNames(t)), allWith(t, 2)) << "an existing topic is not grown";
  EXPECT_EQ(f.admin().configs(t.runs)["cleanup.policy"], "compact,delete");
}

TEST(Topics, RunsTopicWithFewerPartitionsThanJobsFailsNamingTheFixAndTheFixWorks) {
  TopicsFixture f("topics-small-runs");
  const auto& t = f.topics();
  createTopic(t.jobs, 4);
  createTopic(t.runs, 2, {{"cleanup.policy", "compact,delete"}});
  ASSERT_EQ(f.admin().waitForPartitions({{t.jobs, 4}, {t.runs, 2}}),
            (std::map<std::string, int>{{t.jobs, 4}, {t.runs, 2}}));

  auto r = f.run("--partitions 1");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(t.jobs + " (jobs): exists with 4 partition(s)\n"));
  EXPECT_THAT(r.out, HasSubstr(t.runs + " (runs): exists with 2 partition(s)\n"));
  EXPECT_THAT(r.out, HasSubstr(t.control + " (control): created with 1 partition(s)"))
      << "the missing topics are created all the same";
  EXPECT_THAT(r.err, HasSubstr("the runs topic '" + t.runs +
                               "' (topics.runs) has 2 partition(s), "
                               "fewer than the 4 of the jobs topic '" +
                               t.jobs + "'"));
  EXPECT_THAT(r.err, HasSubstr("kafka-topics.sh --bootstrap-server " + bootstrap() +
                               " --alter --topic " + t.runs + " --partitions 4"));
  EXPECT_EQ(f.admin().partitions({t.runs}).at(t.runs), 2) << "it does not alter the topic itself";

  // Do what the message says; then all is well.
  f.admin().addPartitions(t.runs, 4);
  ASSERT_EQ(f.admin().waitForPartitions({{t.runs, 4}}), (std::map<std::string, int>{{t.runs, 4}}));
  auto fixed = f.run("--partitions 1");
  EXPECT_EQ(fixed.status, 0) << fixed.out << fixed.err;
  EXPECT_THAT(fixed.out, HasSubstr(t.runs + " (runs): exists with 4 partition(s)\n"));
  EXPECT_THAT(fixed.err, Not(HasSubstr("fewer than")));
}

TEST(Topics, RunsTopicItCreatesHasAtLeastThePartitionsOfAnExistingJobsTopic) {
  TopicsFixture f("topics-big-jobs");
  const auto& t = f.topics();
  createTopic(t.jobs, 4);
  ASSERT_EQ(f.admin().waitForPartitions({{t.jobs, 4}}), (std::map<std::string, int>{{t.jobs, 4}}));

  auto r = f.run("--partitions 2");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(t.runs + " (runs): created with 4 partition(s)"));
  EXPECT_THAT(r.out, HasSubstr(t.events + " (events): created with 2 partition(s)"));
  auto expected = allWith(t, 2);
  expected[t.jobs] = 4;
  expected[t.runs] = 4;
  EXPECT_EQ(f.admin().waitForPartitions(expected), expected);
}

TEST(Topics, ExistingRunsTopicOnlyCompactedIsWarnedAboutButAccepted) {
  TopicsFixture f("topics-compact-runs");
  const auto& t = f.topics();
  createTopic(t.runs, 1, {{"cleanup.policy", "compact"}});
  ASSERT_EQ(f.admin().waitForPartitions({{t.runs, 1}}), (std::map<std::string, int>{{t.runs, 1}}));

  auto r = f.run("--partitions 1 --runs-retention 3d");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(t.runs + " (runs): exists with 1 partition(s)\n"));
  EXPECT_THAT(r.err,
              HasSubstr("warning: the runs topic '" + t.runs + "' has cleanup.policy=compact;"));
  EXPECT_THAT(r.err, HasSubstr("kafka-configs.sh --bootstrap-server " + bootstrap() +
                               " --alter --entity-type topics --entity-name " + t.runs +
                               " --add-config 'cleanup.policy=[compact,delete],retention.ms="
                               "259200000'"));
}

TEST(Topics, RunsTopicSharedWithAnotherKeyIsAConfigurationError) {
  TopicsFixture f("topics-shared-runs");
  const auto& t = f.topics();
  std::ofstream(f.config(), std::ios::app) << "  events: \"" << t.runs << "\"\n";
  auto r = f.run("");
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("'topics.runs' (" + t.runs + ") must not be the topic of another"));
  EXPECT_EQ(f.admin().partitions(allNames(t)), allWith(t, 0)) << "nothing created";
}

}  // namespace
}  // namespace outpost::test
