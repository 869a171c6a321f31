// How `outpost workers` judges and shows the workers' last statuses. No broker.
#include "workers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "outpost/common/clock.h"

namespace outpost::app {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const auto kNow =
    std::chrono::system_clock::time_point(std::chrono::milliseconds(1'800'000'000'000));

v1::WorkerStatus status(const std::string& id, v1::WorkerState state, std::chrono::seconds ago,
                        const std::string& pool = "default") {
  v1::WorkerStatus s;
  s.set_worker_id(id);
  s.set_pool(pool);
  s.set_state(state);
  s.set_version("1.2.3");
  s.set_slots_total(4);
  s.set_slots_busy(1);
  s.set_host("node-" + id);
  s.set_status_interval_ms(10'000);
  s.set_last_seen_ms(toUnixMillis(kNow) - std::chrono::milliseconds(ago).count());
  return s;
}

TEST(WorkerRows, AWorkerSilentForThreeIntervalsIsStaleUnlessItSaidStopped) {
  std::map<std::string, v1::WorkerStatus> latest = {
      {"fresh", status("fresh", v1::READY, 25s)},
      {"dead", status("dead", v1::READY, 31s)},
      {"gone", status("gone", v1::STOPPED, 600s)},
  };
  auto rows = workerRows(latest, kNow, 10s, "", false);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].status.worker_id(), "dead");
  EXPECT_TRUE(rows[0].stale);
  EXPECT_FALSE(rows[1].stale) << "fresh: 25 s is within three 10 s intervals";
  EXPECT_FALSE(rows[2].stale) << "a worker that said STOPPED is not stale, whatever its age";
  EXPECT_EQ(rows[0].age, 31s);
}

TEST(WorkerRows, AStatusWithoutItsIntervalIsJudgedByTheConfiguredOne) {
  auto s = status("old", v1::READY, 100s);
  s.clear_status_interval_ms();
  auto rows = workerRows({{"old", s}}, kNow, 60s, "", false);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_FALSE(rows[0].stale) << "100 s < 3 x 60 s";
}

TEST(WorkerRows, OnePoolAndLongStoppedWorkersOnlyWithAll) {
  std::map<std::string, v1::WorkerStatus> latest = {
      {"a", status("a", v1::READY, 1s, "etl")},
      {"b", status("b", v1::READY, 1s, "bi")},
      {"c", status("c", v1::STOPPED, 7200s, "etl")},
  };
  EXPECT_EQ(workerRows(latest, kNow, 10s, "etl", false).size(), 1u);
  EXPECT_EQ(workerRows(latest, kNow, 10s, "etl", true).size(), 2u);
  EXPECT_EQ(workerRows(latest, kNow, 10s, "", true).size(), 3u);
}

TEST(FormatWorkers, ATableWithStateSlotsAgeHostAndWhy) {
  auto drained = status("w2", v1::DRAINING, 3s);
  drained.set_state_reason("drained by alice: maintenance");
  std::map<std::string, v1::WorkerStatus> latest = {{"w1", status("w1", v1::READY, 45s)},
                                                    {"w2", drained}};
  auto text = formatWorkers(workerRows(latest, kNow, 10s, "", false));
  EXPECT_THAT(text, HasSubstr("WORKER"));
  EXPECT_THAT(text, HasSubstr("STALE (was READY)"));
  EXPECT_THAT(text, HasSubstr("1/4"));
  EXPECT_THAT(text, HasSubstr("45s ago"));
  EXPECT_THAT(text, HasSubstr("node-w2"));
  EXPECT_THAT(text, HasSubstr("drained by alice: maintenance"));
  EXPECT_THAT(text, HasSubstr("2 worker(s): 0 ready, 1 stale"));
}

TEST(FormatWorkers, JsonCarriesTheStatusWithAgeAndStale) {
  auto rows = workerRows({{"w1", status("w1", v1::READY, 45s)}}, kNow, 10s, "", false);
  auto doc = nlohmann::json::parse(workersJson(rows));
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc[0]["worker_id"], "w1");
  EXPECT_EQ(doc[0]["state"], "READY");
  EXPECT_EQ(doc[0]["stale"], true);
  EXPECT_EQ(doc[0]["age_ms"], 45000);
  EXPECT_EQ(doc[0]["slots_total"], 4);
}

}  // namespace
}  // namespace outpost::app
