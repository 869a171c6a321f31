// OffsetTracker: only a low watermark is ever committed, whatever order runs finish in.
#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outpost/consumer/offset_tracker.h"

namespace outpost::consumer {
namespace {

using Committable = std::map<TopicPartition, std::int64_t>;

const TopicPartition kJobs0{"outpost.jobs", 0};
const TopicPartition kJobs1{"outpost.jobs", 1};
const TopicPartition kOther0{"other.jobs", 0};

TEST(OffsetTracker, EmptyTrackerHasNothingToCommit) {
  OffsetTracker t;
  EXPECT_TRUE(t.takeCommittable().empty());
  EXPECT_EQ(t.watermark(kJobs0), -1);
  EXPECT_EQ(t.inFlight(kJobs0), 0u);
  EXPECT_EQ(t.inFlight(), 0u);
}

TEST(OffsetTracker, WatermarkIsTheLowestOffsetInFlight) {
  OffsetTracker t;
  t.begin(kJobs0, 5);
  t.begin(kJobs0, 6);
  EXPECT_EQ(t.watermark(kJobs0), 5);
  EXPECT_EQ(t.inFlight(kJobs0), 2u);
}

TEST(OffsetTracker, WatermarksGivesEveryPartitionAgainAfterItWasTaken) {
  OffsetTracker t;
  t.begin(kJobs0, 5);
  t.begin(kJobs1, 7);
  t.complete(kJobs1, 7);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 5}, {kJobs1, 8}}));
  EXPECT_TRUE(t.takeCommittable().empty()) << "nothing moved";
  // A failed async commit is not retried by the consumer: the full set is committed again.
  EXPECT_EQ(t.watermarks(), (Committable{{kJobs0, 5}, {kJobs1, 8}}));
}

TEST(OffsetTracker, OffsetZeroIsCommittable) {
  OffsetTracker t;
  t.begin(kJobs0, 0);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 0}}));
  t.complete(kJobs0, 0);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 1}}));
}

TEST(OffsetTracker, AllDoneCommitsOnePastTheHighestTaken) {
  OffsetTracker t;
  t.begin(kJobs0, 10);
  t.begin(kJobs0, 11);
  t.complete(kJobs0, 10);
  t.complete(kJobs0, 11);
  EXPECT_EQ(t.watermark(kJobs0), 12);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 12}}));
  EXPECT_EQ(t.inFlight(kJobs0), 0u);
}

TEST(OffsetTracker, OutOfOrderCompletionNeverCommitsPastAnInFlightOffset) {
  OffsetTracker t;
  for (std::int64_t o : {10, 11, 12}) t.begin(kJobs0, o);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 10}}));

  t.complete(kJobs0, 12);
  EXPECT_EQ(t.watermark(kJobs0), 10);
  EXPECT_TRUE(t.takeCommittable().empty());

  t.complete(kJobs0, 11);
  EXPECT_EQ(t.watermark(kJobs0), 10);
  EXPECT_TRUE(t.takeCommittable().empty());

  t.complete(kJobs0, 10);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 13}}));
}

TEST(OffsetTracker, RandomCompletionOrderKeepsTheWatermarkAtOrBelowEveryInFlightOffset) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 50; ++round) {
    OffsetTracker t;
    std::vector<std::int64_t> offsets(40);
    std::iota(offsets.begin(), offsets.end(), 100);
    for (auto o : offsets) t.begin(kJobs0, o);
    std::vector<std::int64_t> order = offsets;
    std::shuffle(order.begin(), order.end(), rng);
    std::set<std::int64_t> in_flight(offsets.begin(), offsets.end());
    std::int64_t last_committed = -1;
    for (auto o : order) {
      t.complete(kJobs0, o);
      in_flight.erase(o);
      auto c = t.takeCommittable();
      std::int64_t expected = in_flight.empty() ? 140 : *in_flight.begin();
      ASSERT_EQ(t.watermark(kJobs0), expected);
      if (!c.empty()) {
        ASSERT_EQ(c.at(kJobs0), expected);
        ASSERT_GT(c.at(kJobs0), last_committed);  // never moves backwards
        last_committed = c.at(kJobs0);
      }
      ASSERT_EQ(t.inFlight(kJobs0), in_flight.size());
    }
    EXPECT_EQ(last_committed, 140);
  }
}

TEST(OffsetTracker, TakeCommittableReturnsOnlyPartitionsThatMoved) {
  OffsetTracker t;
  t.begin(kJobs0, 1);
  t.begin(kJobs1, 7);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 1}, {kJobs1, 7}}));
  EXPECT_TRUE(t.takeCommittable().empty());

  t.complete(kJobs1, 7);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs1, 8}}));
  EXPECT_TRUE(t.takeCommittable().empty());
}

TEST(OffsetTracker, BeginningMoreWhileOthersRunDoesNotMoveTheWatermark) {
  OffsetTracker t;
  t.begin(kJobs0, 3);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 3}}));
  t.begin(kJobs0, 4);
  t.begin(kJobs0, 5);
  EXPECT_TRUE(t.takeCommittable().empty());
}

TEST(OffsetTracker, PartitionsAndTopicsAreIndependent) {
  OffsetTracker t;
  t.begin(kJobs0, 10);
  t.begin(kJobs1, 10);
  t.begin(kOther0, 10);
  t.complete(kJobs1, 10);
  EXPECT_EQ(t.watermark(kJobs0), 10);
  EXPECT_EQ(t.watermark(kJobs1), 11);
  EXPECT_EQ(t.watermark(kOther0), 10);
  EXPECT_EQ(t.inFlight(), 2u);
  EXPECT_EQ(t.inFlight(kJobs1), 0u);
  // Completing an offset of one partition does not touch the same offset of another.
  t.complete(kOther0, 10);
  EXPECT_EQ(t.watermark(kJobs0), 10);
  EXPECT_EQ(t.watermark(kOther0), 11);
}

TEST(OffsetTracker, ForgetDropsThePartitionsState) {
  OffsetTracker t;
  t.begin(kJobs0, 5);
  t.begin(kJobs1, 9);
  t.takeCommittable();
  t.forget(kJobs0);
  EXPECT_EQ(t.watermark(kJobs0), -1);
  EXPECT_EQ(t.inFlight(kJobs0), 0u);
  EXPECT_EQ(t.inFlight(), 1u);
  EXPECT_TRUE(t.takeCommittable().empty());
  EXPECT_EQ(t.watermark(kJobs1), 9);
}

TEST(OffsetTracker, CompletingAfterForgetIsIgnored) {
  OffsetTracker t;
  t.begin(kJobs0, 5);
  t.forget(kJobs0);
  t.complete(kJobs0, 5);
  EXPECT_EQ(t.watermark(kJobs0), -1);
  EXPECT_TRUE(t.takeCommittable().empty());
}

TEST(OffsetTracker, PartitionCanBeginAgainAfterForget) {
  OffsetTracker t;
  t.begin(kJobs0, 5);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 5}}));
  t.forget(kJobs0);
  t.begin(kJobs0, 5);  // reassigned: the same position is committable again
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 5}}));
}

TEST(OffsetTracker, CompleteOfUnknownOffsetsIsIgnored) {
  OffsetTracker t;
  t.complete(kJobs0, 3);  // partition never seen
  EXPECT_EQ(t.watermark(kJobs0), -1);
  EXPECT_TRUE(t.takeCommittable().empty());

  t.begin(kJobs0, 5);
  t.takeCommittable();
  t.complete(kJobs0, 4);  // below everything taken
  t.complete(kJobs0, 7);  // never taken
  EXPECT_EQ(t.watermark(kJobs0), 5);
  EXPECT_EQ(t.inFlight(kJobs0), 1u);
  EXPECT_TRUE(t.takeCommittable().empty());
}

TEST(OffsetTracker, CompletingTwiceIsHarmless) {
  OffsetTracker t;
  t.begin(kJobs0, 5);
  t.begin(kJobs0, 6);
  t.complete(kJobs0, 5);
  t.complete(kJobs0, 5);
  EXPECT_EQ(t.watermark(kJobs0), 6);
  EXPECT_EQ(t.inFlight(kJobs0), 1u);
}

TEST(OffsetTracker, GapsBetweenOffsetsAreHandled) {
  // Compacted topics and transaction markers leave holes in the offsets a consumer sees.
  OffsetTracker t;
  t.begin(kJobs0, 5);
  t.begin(kJobs0, 9);
  t.complete(kJobs0, 9);
  EXPECT_EQ(t.watermark(kJobs0), 5);
  t.complete(kJobs0, 5);
  EXPECT_EQ(t.watermark(kJobs0), 10);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 10}}));
}

TEST(OffsetTracker, GapIsSkippedWhenTheLowerOffsetFinishesFirst) {
  OffsetTracker t;
  t.begin(kJobs0, 5);
  t.begin(kJobs0, 9);
  t.complete(kJobs0, 5);
  EXPECT_EQ(t.watermark(kJobs0), 9);
  EXPECT_EQ(t.takeCommittable(), (Committable{{kJobs0, 9}}));
}

TEST(OffsetTracker, WatermarkOfOnePartitionIsReportedEvenIfItDidNotMove) {
  OffsetTracker t;
  t.begin(kJobs0, 8);
  t.takeCommittable();
  EXPECT_EQ(t.watermark(kJobs0), 8);
  EXPECT_EQ(t.watermark(kJobs0), 8);
}

}  // namespace
}  // namespace outpost::consumer
