// A real 3-node KRaft cluster (`scripts/kafka start --brokers 3`: three JVMs, each a broker and a
// controller voter, three replicas and two in sync for a write) of the test's own, in a state
// directory of its own rather than the suite's single broker: what losing a node does to records a
// producer was told were written. The cluster is stopped and purged at the end, failed or not.
//
// Label cluster, not robustness: three more JVMs on a 2-core machine take minutes that CI's run
// has no room for, so scripts/test leaves the label out unless asked (`scripts/test -L cluster`).
// Like the chaos tests, CTest lists it as disabled unless OUTPOST_ROBUSTNESS_TESTS is on.
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include "kafka_testing.h"

namespace outpost::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct ScriptRun {
  int status = -1;
  std::string out;  // stdout, trailing blanks trimmed
};

// A cluster of scripts/kafka in a fresh state directory of its own. Only the test's thread may
// use it. The destructor stops it and deletes the directory whatever happened (after printing the
// nodes' logs when the test failed), so a failing test leaves no JVM behind.
class OwnCluster {
 public:
  OwnCluster() {
    std::array<char, 64> dir{};
    std::snprintf(dir.data(), dir.size(), "/tmp/outpost-cluster-test.XXXXXX");
    if (mkdtemp(dir.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp under /tmp failed";
      return;
    }
    dir_ = dir.data();
  }
  ~OwnCluster() {
    if (dir_.empty()) return;
    if (::testing::Test::HasFailure()) {
      std::cout << "---- scripts/kafka status ----\n"
                << run("status").out << "\n---- scripts/kafka logs ----\n"
                << run("logs").out << std::endl;
    }
    if (run("stop --purge").status != 0) {
      ADD_FAILURE() << "scripts/kafka stop --purge failed for " << dir_;
    }
  }
  OwnCluster(const OwnCluster&) = delete;
  OwnCluster& operator=(const OwnCluster&) = delete;

  // scripts/kafka <args> for this cluster; its notes go to the test's stderr.
  ScriptRun run(const std::string& args) const {
    const std::string cmd = "OUTPOST_KAFKA_DIR='" + dir_ + "' '" + std::string(OUTPOST_SOURCE_DIR) +
                            "/scripts/kafka' " + args;
    ScriptRun r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    while (fgets(buf.data(), buf.size(), p)) r.out += buf.data();
    const int raw = pclose(p);
    r.status = raw >= 0 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) r.out.pop_back();
    return r;
  }

  // `scripts/kafka node leader TOPIC PARTITION`: the node number, or -1 (and a test failure).
  int leaderOf(const std::string& topic, int partition) const {
    auto r = run("node leader '" + topic + "' " + std::to_string(partition));
    EXPECT_EQ(r.status, 0) << "scripts/kafka node leader failed";
    try {
      return r.status == 0 ? std::stoi(r.out) : -1;
    } catch (const std::exception&) {
      ADD_FAILURE() << "scripts/kafka node leader printed '" << r.out << "'";
      return -1;
    }
  }

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// What the cluster's metadata says: the brokers it lists (registered and not fenced), and one
// partition's leader and in-sync replicas.
struct ClusterView {
  int brokers = -1;
  std::int32_t leader = -1;
  int in_sync = -1;
};

ClusterView view(rd_kafka_t* rk, const std::string& topic, std::int32_t partition) {
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> rkt(
      rd_kafka_topic_new(rk, topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  const rd_kafka_metadata_t* md = nullptr;
  ClusterView v;
  if (rd_kafka_metadata(rk, 0, rkt.get(), &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) return v;
  v.brokers = md->broker_cnt;
  if (md->topic_cnt == 1) {
    const auto& t = md->topics[0];
    for (int i = 0; i < t.partition_cnt; ++i) {
      if (t.partitions[i].id != partition) continue;
      v.leader = t.partitions[i].leader;
      v.in_sync = t.partitions[i].isr_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  return v;
}

bool waitFor(const std::function<bool()>& done, seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(200));
  }
  return true;
}

// The producer's delivery reports, as events (enabled_events=1, RD_KAFKA_EVENT_DR) from its main
// queue: the broker's acknowledgement or the final failure of each record, by its key (its index).
class Deliveries {
 public:
  Deliveries(rd_kafka_t* producer, std::size_t records)
      : queue_(rd_kafka_queue_get_main(producer)), acked_(records, false) {}

  // Serves the reports that arrive within `wait`, and any more already there.
  void serve(milliseconds wait) {
    const auto until = Clock::now() + wait;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now()).count();
      std::unique_ptr<rd_kafka_event_t, kafka_testing::Deleter> ev(
          rd_kafka_queue_poll(queue_.get(), static_cast<int>(std::clamp<long>(left, 0, 10))));
      if (!ev) {
        if (Clock::now() >= until) return;
        continue;
      }
      if (rd_kafka_event_type(ev.get()) != RD_KAFKA_EVENT_DR) continue;
      while (const rd_kafka_message_t* m = rd_kafka_event_message_next(ev.get())) {
        const std::size_t index =
            std::stoul(std::string(static_cast<const char*>(m->key), m->key_len));
        if (m->err) {
          failures_[index] = rd_kafka_err2str(m->err);
        } else {
          acked_.at(index) = true;
          ++acked_count_;
          if (index >= mark_ && !first_ack_from_mark_) first_ack_from_mark_ = Clock::now();
        }
      }
    }
  }

  // Remember when the first of the records from `index` on is acknowledged (written after the
  // leader died, it ends the failover's stall). Measured as served, to some milliseconds.
  void mark(std::size_t index) { mark_ = index; }
  std::optional<Clock::time_point> firstAckFromMark() const { return first_ack_from_mark_; }

  std::size_t ackedCount() const { return acked_count_; }
  bool acked(std::size_t index) const { return acked_[index]; }
  const std::map<std::size_t, std::string>& failures() const { return failures_; }
  std::size_t reported() const { return acked_count_ + failures_.size(); }

 private:
  std::unique_ptr<rd_kafka_queue_t, kafka_testing::Deleter> queue_;
  std::vector<bool> acked_;
  std::size_t acked_count_ = 0;
  std::map<std::size_t, std::string> failures_;
  std::size_t mark_ = SIZE_MAX;
  std::optional<Clock::time_point> first_ack_from_mark_;
};

// The leader of a replicated partition is SIGKILLed half-way through a stream of acks=all writes,
// and the writes go on while the cluster elects another leader. Every record the producer was told
// was written must be read back exactly once, in the order written (the producer is idempotent:
// its retries across the failover must not write a record twice). Then the killed node is started
// again on its ports and data and must rejoin: listed among 3 brokers and back in sync.
TEST(Cluster, ALeaderKilledLosesNoAcknowledgedRecord) {
  constexpr std::size_t kRecords = 3000;
  constexpr auto kPace = milliseconds(2);  // ~6 s of writes, the kill in the middle
  const std::string topic = "cluster.acks";

  OwnCluster cluster;
  ASSERT_FALSE(cluster.dir().empty());
  const auto t_start = Clock::now();
  auto started = cluster.run("start --brokers 3");
  const double start_secs = secondsSince(t_start);
  ASSERT_EQ(started.status, 0) << "scripts/kafka start --brokers 3 failed";
  const std::string bootstrap = started.out;
  ASSERT_EQ(std::count(bootstrap.begin(), bootstrap.end(), ','), 2)
      << "not three addresses: " << bootstrap;
  std::cout << "[cluster] 3 nodes up in " << start_secs << " s: " << bootstrap << std::endl;

  kafka_testing::NewTopicSpec spec{topic, 1, {}};
  spec.replication_factor = 3;
  kafka_testing::createTopics(bootstrap, {spec});

  auto producer = kafka_testing::makeClient(RD_KAFKA_PRODUCER, bootstrap,
                                            {{"enable.idempotence", "true"},
                                             {"acks", "all"},
                                             {"linger.ms", "5"},
                                             {"message.timeout.ms", "120000"},
                                             {"enabled_events", "1"}});
  auto metadata = kafka_testing::makeClient(RD_KAFKA_PRODUCER, bootstrap, {});
  // All three replicas in sync before the first write: acks=all then means on every node.
  ASSERT_TRUE(waitFor([&] { return view(metadata.get(), topic, 0).in_sync == 3; }, seconds(30)))
      << "the new topic's partition never had 3 replicas in sync";

  Deliveries deliveries(producer.get(), kRecords);
  std::size_t sent = 0;
  auto send = [&] {
    const std::string key = std::to_string(sent);
    std::string value = "record-" + key;
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                                    RD_KAFKA_V_KEY(key.data(), key.size()),
                                    RD_KAFKA_V_VALUE(value.data(), value.size()),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      deliveries.serve(milliseconds(100));
    }
    EXPECT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR)
        << "record " << sent << ": " << rd_kafka_err2str(err);
    ++sent;
  };
  while (sent < kRecords / 2) {
    send();
    deliveries.serve(kPace);
  }
  ASSERT_TRUE(waitFor(
      [&] {
        deliveries.serve(milliseconds(50));
        return deliveries.ackedCount() >= kRecords / 4;
      },
      seconds(30)))
      << "only " << deliveries.ackedCount() << " records acknowledged before the kill";
  const int killed = cluster.leaderOf(topic, 0);
  ASSERT_GE(killed, 1);

  // The kill runs on a thread of its own (the script takes some tens of milliseconds) while this
  // one writes without a pause, so that when the SIGKILL lands some records are acknowledged,
  // some in flight to the leader and some still queued in the producer.
  deliveries.serve(milliseconds(0));
  const std::size_t sent_before_kill = sent, acked_before_kill = deliveries.ackedCount();
  const auto t_kill = Clock::now();
  std::atomic<bool> kill_done{false};
  int kill_status = -1;
  std::thread killer([&] {
    kill_status = cluster.run("node kill " + std::to_string(killed)).status;
    kill_done = true;
  });
  while (!kill_done && sent < kRecords) {
    send();
    deliveries.serve(milliseconds(0));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  killer.join();
  deliveries.mark(sent);
  const std::size_t acked_after_kill = deliveries.ackedCount();
  ASSERT_EQ(kill_status, 0) << "scripts/kafka node kill " << killed << " failed";
  std::cout << "[cluster] SIGKILLed node " << killed << ", the partition's leader, after "
            << sent_before_kill << " records sent and " << acked_before_kill
            << " acknowledged; when the kill returned " << sent << " sent and " << acked_after_kill
            << " acknowledged" << std::endl;
  while (sent < kRecords) {
    send();
    deliveries.serve(kPace);
  }
  const auto report_deadline = Clock::now() + seconds(150);
  while (deliveries.reported() < kRecords && Clock::now() < report_deadline) {
    deliveries.serve(milliseconds(200));
  }
  ASSERT_EQ(deliveries.reported(), kRecords) << "delivery reports missing after 150 s";
  if (auto first = deliveries.firstAckFromMark()) {
    std::cout << "[cluster] records written after the kill acknowledged from "
              << std::chrono::duration<double>(*first - t_kill).count() << " s after it on"
              << std::endl;
  }
  // Two of three replicas are min.insync.replicas: losing one node must not fail a write.
  const std::string first_failure =
      deliveries.failures().empty() ? "" : deliveries.failures().begin()->second;
  EXPECT_EQ(deliveries.ackedCount(), kRecords)
      << deliveries.failures().size() << " records failed, the first with: " << first_failure;

  const int new_leader = cluster.leaderOf(topic, 0);
  EXPECT_NE(new_leader, killed) << "the killed node still leads the partition";
  EXPECT_TRUE(waitFor([&] { return view(metadata.get(), topic, 0).brokers == 2; }, seconds(30)))
      << "the metadata still lists the killed node";

  // Read back from the two nodes left.
  kafka_testing::TopicReader reader(bootstrap, topic);
  reader.readUntil([&](const auto& rs) { return rs.size() >= deliveries.ackedCount(); },
                   seconds(60));
  reader.readFor(milliseconds(2000));  // anything more would be a duplicate
  std::map<std::size_t, int> seen;
  std::vector<std::size_t> order;
  for (const auto& r : reader.records()) {
    const std::size_t index = std::stoul(r.key);
    EXPECT_EQ(r.value, "record-" + r.key);
    ++seen[index];
    order.push_back(index);
  }
  std::size_t lost = 0, duplicated = 0, unacknowledged_but_written = 0;
  for (std::size_t i = 0; i < kRecords; ++i) {
    const int copies = seen.contains(i) ? seen[i] : 0;
    if (copies > 1) ++duplicated;
    if (deliveries.acked(i) && copies == 0) ++lost;
    if (!deliveries.acked(i) && copies > 0) ++unacknowledged_but_written;
  }
  std::cout << "[cluster] read " << reader.records().size() << " records: " << lost
            << " acknowledged ones lost, " << duplicated << " written twice, "
            << unacknowledged_but_written << " unacknowledged ones written" << std::endl;
  EXPECT_EQ(lost, 0u) << "acknowledged records lost; reader's last error: " << reader.lastError();
  EXPECT_EQ(duplicated, 0u);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()))
      << "records out of the order they were produced in";

  // The killed node again, on its ports and data: it must rejoin as a broker and a replica.
  const auto t_restart = Clock::now();
  ASSERT_EQ(cluster.run("node start " + std::to_string(killed)).status, 0);
  std::cout << "[cluster] node " << killed << " registered again " << secondsSince(t_restart)
            << " s after its start" << std::endl;
  ClusterView after;
  EXPECT_TRUE(waitFor(
      [&] {
        after = view(metadata.get(), topic, 0);
        return after.brokers == 3 && after.in_sync == 3;
      },
      seconds(60)))
      << "after the restart the metadata lists " << after.brokers << " brokers and "
      << after.in_sync << " replicas in sync";
  std::cout << "[cluster] node " << killed << " back in sync " << secondsSince(t_restart)
            << " s after its start" << std::endl;
  EXPECT_EQ(cluster.run("status").status, 0) << "scripts/kafka status: not every node running";
}

}  // namespace
}  // namespace outpost::test
