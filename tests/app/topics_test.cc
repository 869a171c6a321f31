// The decisions behind `outpost topics`: which topics it wants with which settings, and how it
// judges an existing runs topic. No broker.
#include "topics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace outpost::app {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

constexpr milliseconds kWeek = std::chrono::hours(24 * 7);

TopicsConfig acmeTopics() {
  TopicsConfig t;
  t.prefix = "acme.";
  t.jobs = "acme.jobs";
  t.control = "acme.control";
  t.events = "acme.events";
  t.lineage = "acme.lineage";
  t.dlq = "acme.dlq";
  t.workers = "acme.workers";
  t.runs = "acme.runs";
  return t;
}

// Options as the flags would set them (g++ 12 warns about designated initializers that skip
// members).
TopicsOptions options(int partitions, std::string runs_retention = "7d",
                      int replication_factor = 1) {
  TopicsOptions o;
  o.partitions = partitions;
  o.replication_factor = replication_factor;
  o.runs_retention = std::move(runs_retention);
  return o;
}

const WantedTopic& byRole(const std::vector<WantedTopic>& topics, const std::string& roles) {
  for (const auto& w : topics) {
    if (w.roles == roles) return w;
  }
  ADD_FAILURE() << "no topic with roles '" << roles << "'";
  static const WantedTopic kNone;
  return kNone;
}

TEST(Topics, DefaultsAreSixPartitionsReplicationOneAndAWeekOfRuns) {
  TopicsOptions o;
  EXPECT_EQ(o.partitions, 6);
  EXPECT_EQ(o.replication_factor, 1);
  EXPECT_EQ(checkTopicsOptions(o), kWeek);
}

TEST(Topics, OptionsOutOfRangeThrowNamingTheFlag) {
  auto message = [](TopicsOptions o) -> std::string {
    try {
      checkTopicsOptions(o);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_THAT(message(options(0)), HasSubstr("--partitions must be at least 1"));
  EXPECT_THAT(message(options(6, "7d", 0)), HasSubstr("--replication-factor must be at least 1"));
  EXPECT_THAT(message(options(6, "soon")), HasSubstr("--runs-retention"));
  EXPECT_THAT(message(options(6, "soon")), HasSubstr("'soon'"));
  EXPECT_THAT(message(options(6, "0s")), HasSubstr("--runs-retention"));
  EXPECT_EQ(checkTopicsOptions(options(6, "72h")), std::chrono::hours(72));
}

TEST(Topics, WantsEveryTopicOfTheConfigInOrderWithItsSettings) {
  auto topics = wantedTopics(acmeTopics(), options(3), kWeek, 0);
  std::vector<std::string> names;
  for (const auto& w : topics) names.push_back(w.name);
  EXPECT_THAT(names, ElementsAre("acme.jobs", "acme.control", "acme.events", "acme.lineage",
                                 "acme.dlq", "acme.workers", "acme.runs"));
  for (const auto& w : topics) EXPECT_EQ(w.partitions, 3) << w.name;
  for (const auto& role : {"jobs", "control", "events", "lineage", "dlq"}) {
    EXPECT_THAT(byRole(topics, role).configs, IsEmpty()) << role;
  }
  EXPECT_THAT(byRole(topics, "workers").configs, ElementsAre(Pair("cleanup.policy", "compact")));
  EXPECT_THAT(byRole(topics, "runs").configs, ElementsAre(Pair("cleanup.policy", "compact,delete"),
                                                          Pair("retention.ms", "604800000")));
}

TEST(Topics, RunsRetentionGoesIntoRetentionMs) {
  auto topics = wantedTopics(acmeTopics(), {}, std::chrono::hours(72), 0);
  EXPECT_THAT(byRole(topics, "runs").configs, ElementsAre(Pair("cleanup.policy", "compact,delete"),
                                                          Pair("retention.ms", "259200000")));
}

TEST(Topics, RunsGetsAtLeastThePartitionsOfAnExistingJobsTopic) {
  auto more = wantedTopics(acmeTopics(), options(2), kWeek, 12);
  EXPECT_EQ(byRole(more, "runs").partitions, 12);
  EXPECT_EQ(byRole(more, "jobs").partitions, 2) << "an existing topic is not the one created";
  EXPECT_EQ(byRole(more, "events").partitions, 2);

  auto fewer = wantedTopics(acmeTopics(), options(8), kWeek, 4);
  EXPECT_EQ(byRole(fewer, "runs").partitions, 8);
}

TEST(Topics, KeysNamingOneTopicShareOneEntry) {
  auto t = acmeTopics();
  t.lineage = t.events;
  t.dlq = t.events;
  auto topics = wantedTopics(t, {}, kWeek, 0);
  ASSERT_EQ(topics.size(), 5u);
  const auto& shared = byRole(topics, "events, lineage, dlq");
  EXPECT_EQ(shared.name, "acme.events");
}

TEST(Topics, RunsSharingATopicWithAnotherKeyIsRefused) {
  for (auto clash : {&TopicsConfig::jobs, &TopicsConfig::events, &TopicsConfig::workers}) {
    auto t = acmeTopics();
    t.*clash = t.runs;
    try {
      wantedTopics(t, {}, kWeek, 0);
      ADD_FAILURE() << "accepted runs sharing " << t.runs;
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(), HasSubstr("'topics.runs' (acme.runs) must not be the topic of another "
                                      "key"));
    }
  }
}

TEST(Topics, RunsWithFewerPartitionsThanJobsIsAProblemThatNamesTheFix) {
  auto problem = runsPartitionsProblem(acmeTopics(), "kafka-1:9092", 2, 6);
  ASSERT_TRUE(problem.has_value());
  EXPECT_THAT(*problem, HasSubstr("'acme.runs' (topics.runs) has 2 partition(s)"));
  EXPECT_THAT(*problem, HasSubstr("fewer than the 6 of the jobs topic 'acme.jobs'"));
  EXPECT_THAT(*problem, HasSubstr("kafka-topics.sh --bootstrap-server kafka-1:9092 --alter "
                                  "--topic acme.runs --partitions 6"));
}

TEST(Topics, RunsWithAsManyOrMorePartitionsOrNoneIsNoProblem) {
  EXPECT_EQ(runsPartitionsProblem(acmeTopics(), "b", 6, 6), std::nullopt);
  EXPECT_EQ(runsPartitionsProblem(acmeTopics(), "b", 8, 6), std::nullopt);
  EXPECT_EQ(runsPartitionsProblem(acmeTopics(), "b", 0, 6), std::nullopt)
      << "a runs topic that could not be created is reported as such, not as too small";
  EXPECT_EQ(runsPartitionsProblem(acmeTopics(), "b", 3, 0), std::nullopt);
}

TEST(Topics, RunsCleanupPolicyWithoutCompactAndDeleteIsWarnedAbout) {
  EXPECT_EQ(runsCleanupPolicyWarning(acmeTopics(), "b", "compact,delete", kWeek), std::nullopt);
  EXPECT_EQ(runsCleanupPolicyWarning(acmeTopics(), "b", "delete,compact", kWeek), std::nullopt);
  for (const auto& policy : {"compact", "delete", ""}) {
    auto warning = runsCleanupPolicyWarning(acmeTopics(), "kafka-1:9092", policy, kWeek);
    ASSERT_TRUE(warning.has_value()) << policy;
    EXPECT_THAT(*warning, HasSubstr(std::string("cleanup.policy=") + policy + ";"));
    EXPECT_THAT(*warning, HasSubstr("kafka-configs.sh --bootstrap-server kafka-1:9092 --alter "
                                    "--entity-type topics --entity-name acme.runs --add-config "
                                    "'cleanup.policy=[compact,delete],retention.ms=604800000'"));
  }
}

}  // namespace
}  // namespace outpost::app
