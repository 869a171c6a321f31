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
