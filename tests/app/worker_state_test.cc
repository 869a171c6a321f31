// What the worker decides about itself (app/worker_state.h): the settings a reload keeps until a
// restart, readiness and its reasons in their order, and the state its status says.
#include "worker_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace outpost::app {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Config config(const std::string& yaml) { return parseConfig(yaml, {}, "test"); }

TEST(Reload, OnlyWhatNeedsARestartIsKeptAndNamed) {
  const auto in_use = config("worker: {slots: 4}\ntemplates: {a: {argv: [true], recipe: none}}\n");
  EXPECT_THAT(keptUntilRestart(in_use, in_use), IsEmpty());
  // Templates, secrets, output limits and the log level are applied, not kept.
  EXPECT_THAT(keptUntilRestart(in_use, config("worker: {slots: 4, log_level: debug}\n"
                                              "templates: {b: {argv: [true], recipe: none}}\n"
                                              "output: {tail_bytes: 8192}\n")),
              IsEmpty());
  EXPECT_THAT(keptUntilRestart(in_use, config("worker: {slots: 8, pool: other}\n"
                                              "kafka: {bootstrap_servers: 'b:9092'}\n"
                                              "topics: {prefix: x.}\nlog: {format: json}\n"
                                              "templates: {a: {argv: [true], recipe: none}}\n")),
              ElementsAre("kafka", "worker.id/pool", "worker.slots", "topics", "log.format"));
}

TEST(Readiness, ReasonsComeInOrderAndReadyNeedsEveryCondition) {
  ReadinessInputs in;
  in.joined = true;
  in.producers_connected = true;
  in.pool = "etl";
  in.bootstrap_servers = "k:9092";
  EXPECT_EQ(whyNotReady(in), std::nullopt);
  auto not_joined = in;
  not_joined.joined = false;
  EXPECT_EQ(whyNotReady(not_joined), "waiting to join the consumer group outpost.etl");
  not_joined.left_group = true;  // handed its partitions over on purpose: not a reason
  EXPECT_EQ(whyNotReady(not_joined), std::nullopt);
  auto down = in;
  down.producers_connected = false;
  EXPECT_THAT(whyNotReady(down).value_or(""), HasSubstr("no broker connection up (k:9092)"));
  auto full = in;
  full.records_waiting_for_room = 12;
  EXPECT_THAT(whyNotReady(full).value_or(""), HasSubstr("12 wait in memory"));
  auto stalled = in;
  stalled.unacknowledged_for = std::chrono::milliseconds(9'999);  // not yet
  EXPECT_EQ(whyNotReady(stalled), std::nullopt);
  stalled.unacknowledged_for = std::chrono::seconds(12);
  EXPECT_THAT(whyNotReady(stalled).value_or(""),
              HasSubstr("acknowledged no write for 12 s (too few replicas in sync?)"));
  stalled.unreachable_brokers = {"127.0.0.1:9001", "127.0.0.1:9002"};
  EXPECT_THAT(whyNotReady(stalled).value_or(""),
              HasSubstr("for 12 s (127.0.0.1:9001, 127.0.0.1:9002 unreachable)"));
  auto txn = in;
  txn.transactions_ready = false;
  EXPECT_EQ(whyNotReady(txn), "the transactional producer is not ready");
  // Stopping and drained come first, whatever else holds.
  auto drained = down;
  drained.drained = "drained by alice: maintenance";
  EXPECT_THAT(whyNotReady(drained).value_or(""), HasSubstr("drained by alice"));
  drained.draining = true;
  EXPECT_THAT(whyNotReady(drained).value_or(""), HasSubstr("draining"));
}

TEST(WorkerState, StartingUntilFirstReadyThenReadyAndDrainingWhenStoppingOrDrained) {
  EXPECT_EQ(workerState(false, std::nullopt, false, "waiting to join").first, v1::STARTING);
  EXPECT_EQ(workerState(false, std::nullopt, false, "waiting to join").second, "waiting to join");
  EXPECT_EQ(workerState(false, std::nullopt, true, "no broker").first, v1::READY)
      << "once ready, a passing reason does not make it STARTING again";
  EXPECT_EQ(workerState(false, std::string("drained by bob"), true, std::nullopt),
            std::make_pair(v1::DRAINING, std::string("drained by bob")));
  EXPECT_EQ(workerState(true, std::nullopt, true, std::nullopt).first, v1::DRAINING);
}

}  // namespace
}  // namespace outpost::app
