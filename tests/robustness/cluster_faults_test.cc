// The five faults of a real 3-node cluster under exactly-once load, with real `outpost run`
// workers: the leader of the jobs partitions killed, the broker hosting a transaction coordinator
// killed, a rolling restart of all three, a broker paused for 30 s (a gray failure), and two
// brokers down at once (below min.insync.replicas). Each ends with `outpost ledger`: nothing lost,
// no terminal event twice, and no rerun (no worker was lost); each prints the longest time the
// runs' ends stopped.
//
// Run through tests/robustness/on_cluster, which starts the cluster (`scripts/kafka start
// --brokers 3`) and exports OUTPOST_TEST_BOOTSTRAP and OUTPOST_KAFKA_DIR for it: CTest's label
// cluster (`scripts/test -L cluster`) does. Scale with OUTPOST_CHAOS_* as the chaos tests do
// (CLUSTER_JOBS, 1000; RATE, 25 a second; JOB_SECS, 0.2; PAUSE_S, 30; DOWN_S, 20).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <cstdlib>
#include <future>
#include <iostream>

#include "chaos.h"
#include "kafka_testing.h"
#include "scrape.h"

namespace outpost::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// Whether every partition of every topic has all three replicas in sync, by the metadata.
bool allInSync() {
  static auto rk = kafka_testing::makeClient(RD_KAFKA_PRODUCER, bootstrap(), {});
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk.get(), 1, nullptr, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return false;
  bool in_sync = md->broker_cnt == 3;
  for (int t = 0; t < md->topic_cnt && in_sync; ++t) {
    for (int p = 0; p < md->topics[t].partition_cnt; ++p) {
      in_sync = in_sync && md->topics[t].partitions[p].isr_cnt == 3;
    }
  }
  rd_kafka_metadata_destroy(md);
  return in_sync;
}

void waitAllInSync(seconds timeout = seconds(120)) {
  const auto deadline = Clock::now() + timeout;
  while (!allInSync()) {
    if (Clock::now() > deadline) {
      ADD_FAILURE() << "not every partition has 3 replicas in sync after " << timeout.count()
                    << " s";
      return;
    }
    std::this_thread::sleep_for(milliseconds(500));
  }
}

int leaderOf(const std::string& topic, int partition) {
  try {
    return std::stoi(kafkaScript("node leader '" + topic + "' " + std::to_string(partition)));
  } catch (const std::exception&) {
    ADD_FAILURE() << "no leader for " << topic << "[" << partition << "]";
    return 1;
  }
}

// Java's String.hashCode and Kafka's Utils.abs: which partition of __transaction_state (and so
// which broker, its leader) coordinates a transactional id.
int transactionStatePartition(const std::string& transactional_id, int partitions) {
  std::int32_t h = 0;
  for (unsigned char c : transactional_id) {
    h = static_cast<std::int32_t>(static_cast<std::uint32_t>(h) * 31u + c);
  }
  const std::int32_t abs = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
  return abs % partitions;
}

void node(const std::string& action, int n) {
  std::cout << "[cluster] node " << action << " " << n << std::endl;
  kafkaScript("node " + action + " " + std::to_string(n));
}

// Three exactly-once workers on six jobs partitions, a paced load of short jobs, and a fault run
// on a thread of its own once a quarter of the load has ended, while this thread watches the ends.
// `during` is called between polls while the fault runs (to probe the workers).
struct Scenario {
  Topics topics;
  std::unique_ptr<Fleet> fleet;
  std::unique_ptr<RunWatch> watch;
  std::unique_ptr<Load> load;
  long jobs = 0;

  // `rate`: commands a second (the load lasts jobs / rate seconds). `log_level` info logs the
  // HTTP port (WorkerProcess::httpPort).
  explicit Scenario(const std::string& stem, long rate = knob("RATE", 25),
                    const std::string& log_level = "") {
    jobs = knob("CLUSTER_JOBS", 1000);
    topics = createTopics(stem, 6);
    auto options = chaosOptions(uniqueName(stem));
    if (!log_level.empty()) options.worker_yaml = "  log_level: " + log_level + "\n";
    fleet = std::make_unique<Fleet>(topics, 3, options);
    EXPECT_TRUE(fleet->waitUntilStable());
    watch = std::make_unique<RunWatch>(topics.events);
    load = std::make_unique<Load>(topics, sleeper(), static_cast<std::size_t>(jobs),
                                  static_cast<double>(rate));
  }

  std::string transactionalId(int worker) const {
    return fleet->group() + "." + fleet->worker(worker).id();
  }

  void run(const std::function<void()>& fault, const std::function<void()>& during = [] {}) {
    const auto until = Clock::now() + seconds(knob("DEADLINE_S", 900));
    const auto quarter = static_cast<std::size_t>(jobs / 4);
    while (Clock::now() < until && watch->endedOf(load->runIds()) < quarter) watch->poll();
    std::cout << "[cluster] the fault begins with " << watch->endedOf(load->runIds()) << " of "
              << jobs << " runs ended" << std::endl;
    auto faulted = std::async(std::launch::async, fault);
    while (faulted.wait_for(milliseconds(0)) != std::future_status::ready) {
      watch->poll();
      during();
    }
    faulted.get();
    std::cout << "[cluster] the fault is over with " << watch->endedOf(load->runIds()) << " of "
              << jobs << " runs ended" << std::endl;
    const bool all_ended = waitForAllEnded(*watch, *load, until);
    EXPECT_TRUE(all_ended) << "not every run ended before the deadline";
    std::cout << "[cluster] longest time without a run ending: "
              << static_cast<double>(watch->longestGap().count()) / 1000 << " s" << std::endl;
  }

  // No worker left (none was fenced or died), each drains and exits 0, and the ledger finds every
  // command ended once with no rerun: a broker's fault is never a worker's loss.
  void check() {
    EXPECT_EQ(fleet->restartExited(), 0) << "a worker exited during the fault";
    EXPECT_EQ(fleet->terminateAll(), 0);
    auto l = ledger(topics, fleet->group());
    EXPECT_EQ(figure(l, "submitted"), jobs);
    EXPECT_EQ(figure(l, "lost"), 0);
    EXPECT_EQ(figure(l, "duplicate_terminal"), 0);
    EXPECT_EQ(figure(l, "reruns"), 0) << "a run ran again though no worker was lost";
    EXPECT_EQ(figure(l, "claims_lost"), 0);
    if (::testing::Test::HasFailure()) std::cout << fleet->logTails();
  }
};

// (1) The node leading the first jobs partitions SIGKILLed under load, started again 15 s later.
TEST(ClusterFaults, TheJobsLeaderKilledLosesNothingAndRunsNothingTwice) {
  Scenario s("cl-leader");
  s.run([&] {
    const int victim = leaderOf(s.topics.jobs, 0);
    node("kill", victim);
    std::this_thread::sleep_for(seconds(15));
    node("start", victim);
  });
  s.check();
  waitAllInSync();
}

// (2) The node coordinating a worker's transactions SIGKILLed while its transactions commit:
// the transactions move to another coordinator, each committed or aborted and redone, none twice.
TEST(ClusterFaults, TheTransactionCoordinatorKilledLosesNothingAndRunsNothingTwice) {
  Scenario s("cl-coordinator");
  // transaction.state.log.num.partitions=4 in scripts/kafka's cluster.
  const int partition = transactionStatePartition(s.transactionalId(0), 4);
  s.run([&] {
    const int victim = leaderOf("__transaction_state", partition);
    std::cout << "[cluster] " << s.transactionalId(0) << " is coordinated from __transaction_state["
              << partition << "], led by node " << victim << std::endl;
    node("kill", victim);
    std::this_thread::sleep_for(seconds(15));
    node("start", victim);
  });
  s.check();
  waitAllInSync();
}

// (3) All three nodes restarted in turn (SIGTERM: a controlled shutdown), each once every replica
// is back in sync, under load.
TEST(ClusterFaults, ARollingRestartOfTheBrokersLosesNothingAndRunsNothingTwice) {
  Scenario s("cl-rolling", 10);  // 100 s of load: the three restarts fall within it
  s.run([&] {
    for (int n = 1; n <= 3; ++n) {
      node("restart", n);
      waitAllInSync();
    }
  });
  s.check();
}

// (4) A gray failure: the node leading the first jobs partitions stops answering (SIGSTOP, its
// connections open) for 30 s, then goes on as if nothing happened.
TEST(ClusterFaults, ABrokerPausedForThirtySecondsLosesNothingAndRunsNothingTwice) {
  Scenario s("cl-paused");
  const auto pause = seconds(knob("PAUSE_S", 30));
  s.run([&] {
    const int victim = leaderOf(s.topics.jobs, 0);
    node("pause", victim);
    std::this_thread::sleep_for(pause);
    node("resume", victim);
  });
  s.check();
  waitAllInSync();
}

// (5) Two nodes down: one left, below min.insync.replicas (and the controllers' quorum). Nothing
// can be written, so nothing is claimed and no run ends; every worker's /readyz says why while
// /livez stays up. When the nodes return, the work resumes and nothing was lost.
TEST(ClusterFaults, TwoBrokersDownStopClaimingSayWhyAndLoseNothing) {
  Scenario s("cl-two-down", knob("RATE", 25), "info");
  const auto down = seconds(knob("DOWN_S", 20));
  std::vector<int> ports;
  for (int i = 0; i < 3; ++i) ports.push_back(s.fleet->worker(i).httpPort());
  std::atomic<int> unready{0};
  std::vector<std::string> reasons(3);
  std::atomic<bool> probing{false};
  s.run(
      [&] {
        // Two nodes that are not the bootstrap's first, so that a client started now would still
        // find the cluster.
        node("kill", 2);
        node("kill", 3);
        probing = true;
        // Each worker's probe turns 503 (10 s without an acknowledged write, then the next
        // check), then the outage lasts `down` more.
        const auto deadline = Clock::now() + seconds(90);
        while (unready < 3 && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(200));
        std::this_thread::sleep_for(down);
        probing = false;
        std::cout << "[cluster] node start 2 3" << std::endl;
        kafkaScript("node start 2 3");  // together: neither registers without the other
      },
      [&] {
        if (!probing) return;
        for (int i = 0; i < 3; ++i) {
          if (reasons[i].find("acknowledged no write") != std::string::npos) continue;
          auto a = get(ports[i], "/readyz");
          if (a.status != 503) continue;
          reasons[i] = a.body;  // the last reason until it is the one the outage should give
          if (a.body.find("acknowledged no write") == std::string::npos) continue;
          EXPECT_EQ(get(ports[i], "/livez").status, 200);
          std::cout << "[cluster] " << s.fleet->worker(i).id() << " /readyz 503: " << a.body
                    << std::endl;
          ++unready;
        }
      });
  EXPECT_EQ(unready, 3) << "not every worker said it was not ready";
  for (const auto& why : reasons) EXPECT_THAT(why, HasSubstr("acknowledged no write"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(waitFor(ports[i], "/readyz", 200).status, 200) << "not ready again";
  }
  s.check();
  waitAllInSync();
}

}  // namespace
}  // namespace outpost::test
