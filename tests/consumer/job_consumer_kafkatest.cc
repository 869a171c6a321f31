// JobConsumer against the real broker that scripts/test starts: a consumer closed while its first
// join of the group is still under way (a worker stopped by SIGTERM right after it started). The
// group's assignment then arrives inside rd_kafka_consumer_close(), when librdkafka no longer
// names a rebalance protocol: it used to crash the worker (found by Ops.ListenOff... under load).
#include <atomic>
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
  void onRevoked(const std::vector<TopicPartition>&, bool) override { ++revoked; }
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
    consumer.close();  // must return, without a crash, whatever the join's state
    EXPECT_EQ(listener.assigned, 0) << "an assignment that arrives while closing is not served";
  }
}

}  // namespace
}  // namespace outpost::consumer
