// ops::Health: what /livez and /readyz answer.
#include "outpost/ops/health.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace outpost::ops {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

TEST(Health, NotLiveBeforeTheFirstBeatThenLiveUntilTheLoopIsSilentTooLong) {
  Health h;
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  EXPECT_THAT(h.whyNotLive(t0, seconds(30)).value_or(""), HasSubstr("not started"));
  h.beat(t0);
  EXPECT_EQ(h.whyNotLive(t0 + seconds(30), seconds(30)), std::nullopt);
  auto why = h.whyNotLive(t0 + seconds(31), seconds(30));
  ASSERT_TRUE(why);
  EXPECT_THAT(*why, HasSubstr("31000 ms (limit 30000 ms)"));
  h.beat(t0 + seconds(40));
  EXPECT_EQ(h.whyNotLive(t0 + seconds(41), seconds(30)), std::nullopt);
}

// A bounded wait of the poll thread (a restore after a rebalance may take 30 s where live_timeout
// is 30 s too) does not make a healthy worker look dead: it is alive until the wait's bound and
// live_timeout have passed, and /readyz says what it waits for.
TEST(Health, ABoundedWaitKeepsTheWorkerLiveUntilItsBoundAndSaysWhatItWaitsFor) {
  Health h;
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  h.setNotReady(std::nullopt);
  h.beat(t0);
  h.beginWait("restoring the run state of 2 partition(s)", t0 + seconds(1), seconds(60));
  EXPECT_EQ(h.whyNotReady(), "restoring the run state of 2 partition(s)");
  EXPECT_EQ(h.whyNotLive(t0 + seconds(45), seconds(30)), std::nullopt);
  EXPECT_EQ(h.whyNotLive(t0 + seconds(91), seconds(30)), std::nullopt);
  auto why = h.whyNotLive(t0 + seconds(92), seconds(30));
  ASSERT_TRUE(why) << "a wait past its bound and live_timeout still counted as alive";
  EXPECT_THAT(*why, HasSubstr("restoring the run state"));
  h.endWait(t0 + seconds(50));
  EXPECT_EQ(h.whyNotReady(), std::nullopt);
  EXPECT_EQ(h.whyNotLive(t0 + seconds(80), seconds(30)), std::nullopt);
  EXPECT_TRUE(h.whyNotLive(t0 + seconds(81), seconds(30))) << "the wait's bound outlived it";
}

TEST(Health, NotReadyUntilToldAndSaysWhy) {
  Health h;
  EXPECT_EQ(h.whyNotReady(), "starting");
  h.setNotReady(std::nullopt);
  EXPECT_EQ(h.whyNotReady(), std::nullopt);
  h.setNotReady("draining");
  EXPECT_EQ(h.whyNotReady(), "draining");
}

}  // namespace
}  // namespace outpost::ops
