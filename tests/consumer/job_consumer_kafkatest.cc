// JobConsumer against the real broker that scripts/test starts: a consumer closed while its first
// join of the group is still under way (a worker stopped by SIGTERM right after it started). The
// group's assignment then arrives inside rd_kafka_consumer_close(), when librdkafka no longer
// names a rebalance protocol: it used to crash the worker (found by Ops.ListenOff... under load).
#include <atomic>
#include <map>
#include <string>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"
#include "outpost/consumer/job_consumer.h"

namespace outpost::consumer {
namespace {

struct CountingListener : RebalanceListener {
  std::atomic<int> assigned{0}, revoked{0};
  void onAssigned(const std::vector<TopicPartition>&) override { ++assigned; }
  void onRevoked(const std::vector<TopicPartition>&, consumer::Revocation) override { ++revoked; }
};

TEST(JobConsumerClose, ClosingWhileTheFirstJoinIsUnderWayIsClean) {
  auto topics = test::createTopics("consumer-close", 1);
  KafkaConfig kafka;
  kafka.bootstrap_servers = test::bootstrap();
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> wait_ms(0, 60);
  for (int i = 0; i < 30; ++i) {
    CountingListener listener;
    JobConsumer consumer(kafka, test::uniqueName("close-group"), topics.jobs, listener);
    if (i % 2 == 0) consumer.poll(std::chrono::milliseconds(0));  // or never polled at all
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms(rng)));
    consumer.close(std::chrono::seconds(30));  // must return, without a crash, whatever the join's state
    EXPECT_EQ(listener.assigned, 0) << "an assignment that arrives while closing is not served";
  }
}

// A commit made after the group's generation moved on without this member (it did not poll within
// max.poll.interval.ms, and another member took its partitions) fails; the failure is counted by
// its class, where it used to be dropped without a word.
TEST(JobConsumerCommit, ACommitAfterTheGroupMovedOnIsCountedAsARebalanceFailure) {
  auto topics = test::createTopics("consumer-commit", 2);
  KafkaConfig kafka;
  kafka.bootstrap_servers = test::bootstrap();
  const auto group = test::uniqueName("commit-group");
  const std::map<std::string, std::string> quick = {{"session.timeout.ms", "6000"},
                                                    {"max.poll.interval.ms", "6000"},
                                                    {"heartbeat.interval.ms", "500"}};
  CountingListener a_listener, b_listener;
  JobConsumer a(kafka, group, topics.jobs, a_listener, quick);
  for (int i = 0; i < 300 && a_listener.assigned == 0; ++i) a.poll(std::chrono::milliseconds(100));
  ASSERT_GT(a_listener.assigned, 0) << "the first member never joined";

  // The second member joins and keeps polling; the first stops polling past max.poll.interval.ms.
  std::atomic<bool> stop{false};
  std::thread b_thread([&] {
    JobConsumer b(kafka, group, topics.jobs, b_listener, quick);
    while (!stop) b.poll(std::chrono::milliseconds(100));
    b.close();
  });
  for (int i = 0; i < 300 && b_listener.assigned == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(8));
  EXPECT_TRUE(a.commitFailures().empty());

  a.commit({{{topics.jobs, 0}, 1}}, CommitMode::kAsync);
  std::uint64_t failed = 0;
  for (int i = 0; i < 100 && failed == 0; ++i) {
    a.poll(std::chrono::milliseconds(100));
    for (const auto& [why, n] : a.commitFailures()) failed += n;
  }
  stop = true;
  b_thread.join();
  ASSERT_EQ(failed, 1u) << "the failed commit was not reported";
  EXPECT_EQ(a.commitFailures().count(CommitFailure::kRebalance), 1u)
      << "classified as " << commitFailureName(a.commitFailures().begin()->first);
}

}  // namespace
}  // namespace outpost::consumer
