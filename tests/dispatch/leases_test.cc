// LeaseView: when the worker holding a run counts as gone, judged on the workers topic's own flow.
#include "outpost/dispatch/leases.h"

#include <gtest/gtest.h>

namespace outpost::dispatch {
namespace {

using namespace std::chrono_literals;
using SteadyTime = LeaseView::SteadyTime;

v1::WorkerStatus status(const std::string& id, const std::string& incarnation,
                        v1::WorkerState state = v1::READY) {
  v1::WorkerStatus s;
  s.set_worker_id(id);
  s.set_incarnation(incarnation);
  s.set_state(state);
  return s;
}

class LeasesTest : public ::testing::Test {
 protected:
  // Lease 30 s, statuses every 10 s.
  LeaseView view{{"w-self", "self-1", 30s, 10s}};
  SteadyTime t0 = SteadyTime{} + 1000s;

  // This worker's own status came back at t0 + at.
  void own(std::chrono::seconds at) { view.onStatus(status("w-self", "self-1"), t0 + at); }
  void other(const std::string& id, std::chrono::seconds at, const std::string& inc = "a-1",
             v1::WorkerState state = v1::READY) {
    view.onStatus(status(id, inc, state), t0 + at);
  }
  LeaseVerdict lease(const std::string& id, const std::string& inc, std::chrono::seconds at) {
    return view.lease(id, inc, t0 + at);
  }
};

TEST_F(LeasesTest, AWorkerWhoseStatusesKeepComingHoldsItsRunsHoweverLong) {
  for (int i = 0; i <= 600; i += 10) {
    own(std::chrono::seconds(i));
    other("w-a", std::chrono::seconds(i + 1));
    EXPECT_FALSE(lease("w-a", "a-1", std::chrono::seconds(i + 5)).lapsed) << i;
  }
}

TEST_F(LeasesTest, SilenceWhileTheTopicFlowsLapsesTheLeaseAfterTheTimeoutNotBefore) {
  other("w-a", 0s);
  own(5s);  // the topic flows without w-a from here
  for (int i = 15; i <= 45; i += 10) own(std::chrono::seconds(i));
  EXPECT_FALSE(lease("w-a", "a-1", 34s).lapsed);
  auto v = lease("w-a", "a-1", 35s);
  EXPECT_TRUE(v.lapsed);
  EXPECT_NE(v.why.find("no status from worker w-a for 30 s"), std::string::npos) << v.why;
}

TEST_F(LeasesTest, ABrokerOutageEndsNoLeaseWhenTheHoldersStatusComesBackWithOurs) {
  other("w-a", 0s);
  own(5s);
  // Nothing at all is read for five minutes: no status of ours either.
  EXPECT_FALSE(lease("w-a", "a-1", 120s).lapsed);
  EXPECT_FALSE(lease("w-a", "a-1", 300s).lapsed);
  // The brokers return: our status first, the holder's a moment later.
  own(305s);
  EXPECT_FALSE(lease("w-a", "a-1", 306s).lapsed);
  other("w-a", 307s);
  for (int i = 315; i <= 400; i += 10) own(std::chrono::seconds(i));
  EXPECT_FALSE(lease("w-a", "a-1", 336s).lapsed) << "silent only since 315 s";
  EXPECT_TRUE(lease("w-a", "a-1", 400s).lapsed) << "silent since 315 s, the topic flowing";
}

TEST_F(LeasesTest, NoLeaseLapsesWhileOurOwnStatusesDoNotComeBack) {
  other("w-a", 0s);
  own(5s);
  own(15s);
  // Our statuses stop coming back after 15 s (we cannot read the topic, or it does not flow):
  // however long w-a has been silent, nothing is decided.
  EXPECT_FALSE(lease("w-a", "a-1", 41s).lapsed);
  EXPECT_FALSE(lease("w-a", "a-1", 100s).lapsed);
  EXPECT_FALSE(view.flowing(t0 + 100s));
  EXPECT_TRUE(view.flowing(t0 + 15s));
}

TEST_F(LeasesTest, ARestartedWorkersOldIncarnationLosesItsRunsAtOnce) {
  other("w-a", 0s, "a-1");
  own(5s);
  other("w-a", 6s, "a-2");
  auto v = lease("w-a", "a-1", 7s);
  EXPECT_TRUE(v.lapsed);
  EXPECT_NE(v.why.find("restarted"), std::string::npos) << v.why;
  EXPECT_FALSE(lease("w-a", "a-2", 7s).lapsed);
}

TEST_F(LeasesTest, AStoppedOrDeletedWorkerHoldsNothing) {
  other("w-a", 0s, "a-1", v1::STOPPED);
  EXPECT_TRUE(lease("w-a", "a-1", 1s).lapsed);
  other("w-b", 0s, "b-1");
  EXPECT_FALSE(lease("w-b", "b-1", 1s).lapsed);
  view.onRemoved("w-b", t0 + 2s);
  EXPECT_TRUE(lease("w-b", "b-1", 3s).lapsed);
}

TEST_F(LeasesTest, OurOwnIncarnationHoldsAndOurPreviousOneDoesNot) {
  EXPECT_FALSE(lease("w-self", "self-1", 1000s).lapsed);
  auto v = lease("w-self", "self-0", 0s);
  EXPECT_TRUE(v.lapsed);
  EXPECT_NE(v.why.find("self-0"), std::string::npos) << v.why;
}

TEST_F(LeasesTest, AWorkerNeverSeenLapsesOnceTheTopicFlowedForTheTimeout) {
  EXPECT_FALSE(lease("w-ghost", "g-1", 100s).lapsed) << "nothing read yet";
  for (int i = 100; i <= 140; i += 10) own(std::chrono::seconds(i));
  EXPECT_FALSE(lease("w-ghost", "g-1", 129s).lapsed);
  EXPECT_TRUE(lease("w-ghost", "g-1", 130s).lapsed);
}

TEST_F(LeasesTest, ARecordWithoutAnIncarnationMatchesTheWorkersCurrentOne) {
  other("w-a", 0s, "a-1");
  own(5s);
  EXPECT_FALSE(lease("w-a", "", 6s).lapsed);
}

TEST_F(LeasesTest, ThePoolsRunningWorkersAreListedWithTheirLeases) {
  auto in_pool = [](const std::string& id, const std::string& inc, const std::string& pool,
                    v1::WorkerState state = v1::READY) {
    auto s = status(id, inc, state);
    s.set_pool(pool);
    return s;
  };
  view.onStatus(in_pool("w-b", "b-1", "p1"), t0);
  view.onStatus(in_pool("w-a", "a-1", "p1"), t0);
  view.onStatus(in_pool("w-other", "o-1", "p2"), t0);
  view.onStatus(in_pool("w-done", "d-1", "p1", v1::STOPPED), t0);
  view.onStatus(in_pool("w-self", "self-0", "p1"), t0);  // our previous incarnation
  own(5s);
  for (int i = 15; i <= 45; i += 10) {
    own(std::chrono::seconds(i));
    view.onStatus(in_pool("w-a", "a-1", "p1"), t0 + std::chrono::seconds(i + 1));
  }
  auto listed = view.running("p1", t0 + 46s);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].worker_id, "w-a");
  EXPECT_FALSE(listed[0].lease.lapsed);
  EXPECT_EQ(listed[1].worker_id, "w-b");
  EXPECT_EQ(listed[1].incarnation, "b-1");
  EXPECT_TRUE(listed[1].lease.lapsed) << "silent since 5 s";
}

}  // namespace
}  // namespace outpost::dispatch
