// Scale-out under long runs: workers joining the pool while one worker runs long jobs move only
// commands that were not claimed. The runs in flight go on to their end on the worker that
// claimed them; nothing is stopped, nothing runs twice; new commands spread over the pool. For
// both delivery modes, both assignors (eager, cooperative-sticky) and both kinds of members
// (static, dynamic).
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace outpost::test {
namespace {

using namespace std::chrono_literals;

struct ScaleCase {
  std::string delivery;
  bool cooperative = false;
  bool static_members = true;
};

std::string nameOf(const ScaleCase& c) {
  return std::string(c.delivery == "exactly-once" ? "ExactlyOnce" : "AtLeastOnce") +
         (c.cooperative ? "Cooperative" : "Eager") + (c.static_members ? "Static" : "Dynamic");
}

void PrintTo(const ScaleCase& c, std::ostream* os) {
  *os << nameOf(c);
}

int envNumber(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

class ScaleOut : public ::testing::TestWithParam<ScaleCase> {};

TEST_P(ScaleOut, WorkersJoiningStopNoClaimedRunAndRepeatNothing) {
  const auto& param = GetParam();
  // 6 runs of 20 s in the quick suite; the cluster label runs the scale, 12 runs of 60 s
  // (OUTPOST_SCALE_RUNS, OUTPOST_SCALE_SECS; tests/robustness/CMakeLists.txt).
  const int kLong = envNumber("OUTPOST_SCALE_RUNS", 6), kShort = 12;
  const std::string long_secs = std::to_string(envNumber("OUTPOST_SCALE_SECS", 20));
  auto topics = createTopics("scale-" + nameOf(param), 6);
  WorkerProcess::Options o;
  o.pool = uniqueName("pool");
  o.slots = kLong;
  o.static_member = param.static_members;
  o.worker_yaml = "  delivery: " + param.delivery + "\n";
  if (param.cooperative) {
    o.consumer_properties["partition.assignment.strategy"] = "cooperative-sticky";
  }
  auto first = std::make_unique<WorkerProcess>(topics, o);
  ASSERT_TRUE(first->waitUntilReady());
  std::vector<v1::JobCommand> long_runs;
  for (int i = 0; i < kLong; ++i) {
    long_runs.push_back(makeCommand("sleep", {{"secs", long_secs}}));
    submit(topics, long_runs.back());
  }
  TopicReader events(topics.events);
  for (const auto& c : long_runs) {
    ASSERT_TRUE(waitForState(events, c.run_id(), v1::STARTED)) << first->log();
  }

  // Two more workers join while the six run.
  WorkerProcess second(topics, o), third(topics, o);
  ASSERT_TRUE(second.waitUntilReady());
  ASSERT_TRUE(third.waitUntilReady());
  ASSERT_TRUE(waitUntil([&] { return groupState(first->group()) == std::pair<std::string, int>{
                                         "Stable", 3}; }))
      << "the three never formed a group";
  events.readFor(500ms);
  ASSERT_TRUE(terminalByRun(events.records()).empty())
      << "a long run ended before the pool had grown: the test shows nothing on this machine";

  // New commands, while and after the long runs end: they spread over the pool.
  std::vector<v1::JobCommand> short_runs;
  for (int i = 0; i < kShort; ++i) {
    short_runs.push_back(makeCommand("ok", {{"n", std::to_string(i)}}));
    submit(topics, short_runs.back());
  }
  ASSERT_TRUE(events.readUntil([&](const auto& r) {
    auto t = terminalByRun(r);
    auto ended = [&](const v1::JobCommand& c) { return t.contains(c.run_id()); };
    return std::ranges::all_of(long_runs, ended) && std::ranges::all_of(short_runs, ended);
  }, std::chrono::seconds(std::stoi(long_secs) + 120))) << first->log();
  events.readFor(1s);  // anything late (a second terminal event) shows up too

  std::set<std::string> long_workers, short_workers;
  for (const auto& e : decodeEvents(events.records())) {
    bool is_long = std::ranges::any_of(long_runs, [&](const auto& c) {
      return c.run_id() == e.run_id();
    });
    (is_long ? long_workers : short_workers).insert(e.worker_id());
    EXPECT_EQ(e.attempt(), 1u) << e.run_id() << " ran again: " << e.message();
    EXPECT_FALSE(e.redelivered()) << e.run_id();
    EXPECT_NE(e.state(), v1::NOTICE) << e.run_id() << ": " << e.message();
  }
  EXPECT_EQ(long_workers.size(), 1u) << "every long run stays on the worker that claimed it";
  EXPECT_GE(short_workers.size(), 2u) << "new commands go to the grown pool";
  auto terminal = terminalByRun(events.records());
  for (const auto& c : long_runs) {
    ASSERT_EQ(terminal[c.run_id()].size(), 1u) << c.run_id();
    EXPECT_EQ(terminal[c.run_id()][0].state(), v1::SUCCEEDED) << c.run_id();
    EXPECT_EQ(countState(events.records(), c.run_id(), v1::STARTED), 1u) << c.run_id();
  }
  for (const auto& c : short_runs) {
    EXPECT_EQ(terminal[c.run_id()].size(), 1u) << c.run_id();
  }
  EXPECT_EQ(waitForCommitted(first->group(), topics.jobs, 6, kLong + kShort), kLong + kShort);
  EXPECT_EQ(first->terminate(), 0);
  EXPECT_EQ(second.terminate(), 0);
  EXPECT_EQ(third.terminate(), 0);
}

// Each dimension in both of its values, in four runs rather than eight.
INSTANTIATE_TEST_SUITE_P(Pools, ScaleOut,
                         ::testing::Values(ScaleCase{"exactly-once", false, true},
                                           ScaleCase{"at-least-once", false, false},
                                           ScaleCase{"exactly-once", true, false},
                                           ScaleCase{"at-least-once", true, true}),
                         [](const auto& p) { return nameOf(p.param); });

}  // namespace
}  // namespace outpost::test
