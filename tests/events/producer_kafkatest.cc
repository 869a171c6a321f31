// KafkaProducer when librdkafka's queue is full: produce() is called on the owner's poll thread,
// so it must never wait for room (it used to retry QUEUE_FULL forever, stalling the poll loop for
// as long as the broker was unreachable). Records wait in memory instead, and reach the broker in
// the order they were produced.
#include "outpost/events/producer.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"

namespace outpost::events {
namespace {

// A loopback port nothing listens on (bound, then closed).
int closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(ProducerQueueFull, ProduceNeverWaitsForRoomAndEveryRecordIsReportedAtTheEnd) {
  KafkaConfig kafka;
  kafka.bootstrap_servers = "127.0.0.1:" + std::to_string(closedPort());
  std::atomic<int> reports{0};
  {
    KafkaProducer producer(kafka, {{"queue.buffering.max.messages", "5"}});
    // On another thread, so that a produce() that waits for room fails the test instead of
    // hanging it.
    auto produced = std::async(std::launch::async, [&] {
      for (int i = 0; i < 20; ++i) {
        producer.produce("t", "k", std::to_string(i), {}, [&](const DeliveryReport&) { ++reports; });
      }
    });
    ASSERT_EQ(produced.wait_for(std::chrono::seconds(60)), std::future_status::ready)
        << "produce() waited for room in a queue that no broker empties";
    EXPECT_EQ(producer.waitingForRoom(), 15u);
    EXPECT_EQ(producer.waitedForRoom(), 15u);
    // librdkafka's own count also holds events not yet served (an error, statistics).
    EXPECT_GE(producer.outstanding(), 20);
    EXPECT_FALSE(producer.flush(std::chrono::milliseconds(200)));
  }
  EXPECT_EQ(reports, 20) << "a record was dropped without its report";
}

TEST(ProducerQueueFull, RecordsThatWaitedForRoomReachTheBrokerInOrder) {
  const auto topic = test::uniqueName("producer-order");
  test::createTopic(topic, 1);
  KafkaConfig kafka;
  kafka.bootstrap_servers = test::bootstrap();
  std::atomic<int> delivered{0};
  KafkaProducer producer(kafka, {{"queue.buffering.max.messages", "5"}, {"linger.ms", "50"}});
  for (int i = 0; i < 100; ++i) {
    producer.produce(topic, "k", std::to_string(i), {}, [&](const DeliveryReport& r) {
      if (r.ok()) ++delivered;
    });
  }
  EXPECT_GT(producer.waitedForRoom(), 0u) << "the queue never filled: the test shows nothing";
  ASSERT_TRUE(producer.flush(std::chrono::seconds(60)));
  EXPECT_EQ(delivered, 100);
  test::TopicReader reader(topic);
  ASSERT_TRUE(reader.readUntil([](const auto& r) { return r.size() >= 100; }));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(reader.records()[i].value, std::to_string(i));
}

// A worker's readiness depends on unacknowledgedFor(): it must grow while records wait for a
// broker that takes none, and be 0 once every record is acknowledged.
TEST(ProducerStall, UnacknowledgedForGrowsWhileNothingIsAcknowledgedAndIsZeroWhenAllIs) {
  {
    KafkaConfig kafka;
    kafka.bootstrap_servers = "127.0.0.1:" + std::to_string(closedPort());
    KafkaProducer producer(kafka, {});
    EXPECT_EQ(producer.unacknowledgedFor(), std::chrono::milliseconds(0)) << "nothing waits";
    producer.produce("t", "k", "v", {}, {});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (producer.unacknowledgedFor() < std::chrono::milliseconds(1500) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_GE(producer.unacknowledgedFor(), std::chrono::milliseconds(1500))
        << "a record no broker took is not counted as waiting";
  }
  const auto topic = test::uniqueName("producer-acked");
  test::createTopic(topic, 1);
  KafkaConfig kafka;
  kafka.bootstrap_servers = test::bootstrap();
  KafkaProducer producer(kafka, {});
  producer.produce(topic, "k", "v", {}, {});
  ASSERT_TRUE(producer.flush(std::chrono::seconds(30)));
  EXPECT_EQ(producer.unacknowledgedFor(), std::chrono::milliseconds(0));
  EXPECT_TRUE(producer.unreachableBrokers().empty());
}

}  // namespace
}  // namespace outpost::events
