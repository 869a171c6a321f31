// decideAttempt and the RunStore record builders: what a worker does with a command given the
// last RunRecord of its run_id (run, rerun as the next attempt, skip, give up), without a broker.
#include <chrono>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outpost/consumer/run_store.h"

namespace outpost::consumer {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Verdict = AttemptDecision::Verdict;

const TopicPartition kSource{"outpost.jobs", 3};
const std::chrono::system_clock::time_point kNow{std::chrono::milliseconds(1'700'000'000'123)};

v1::JobCommand command(std::uint32_t attempt = 1, std::uint32_t max_attempts = 0) {
  v1::JobCommand c;
  c.set_run_id("0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
  c.set_job_id("ingest-orders");
  c.set_job_type("datahub-ingest");
  c.set_attempt(attempt);
  c.set_max_attempts(max_attempts);
  return c;
}

// The record a worker left: `starts` starts so far, in `state`.
v1::RunRecord recorded(std::uint32_t starts, v1::RunState state, std::uint32_t attempt = 1,
                       const std::string& worker = "w-1") {
  return RunStore::endRecord(command(attempt), starts, state, kSource, 17, worker, kNow);
}

TEST(RunAdmission, NoRecordMeansRunAsTheCommandsAttempt) {
  auto a = decideAttempt(command(), nullptr, 3);
  EXPECT_EQ(a.verdict, Verdict::kRun);
  EXPECT_EQ(a.attempt, 1u);
  EXPECT_EQ(a.starts, 1u);
  EXPECT_EQ(a.state, v1::STARTED);
  EXPECT_TRUE(a.reason.empty());
  // attempt 0 (an older scheduler) counts as 1.
  EXPECT_EQ(decideAttempt(command(0), nullptr, 3).attempt, 1u);
}

TEST(RunAdmission, AStartedRecordMeansTheWorkerWasLostAndTheRunGoesAgainAsTheNextAttempt) {
  auto r = recorded(1, v1::STARTED, 1, "w-7");
  auto a = decideAttempt(command(), &r, 3);
  EXPECT_EQ(a.verdict, Verdict::kRerun);
  EXPECT_EQ(a.starts, 2u);
  EXPECT_EQ(a.attempt, 2u);
  EXPECT_EQ(a.lost_worker, "w-7");
  EXPECT_EQ(a.reason, "redelivery: attempt 2 after worker w-7 was lost");

  auto r2 = recorded(2, v1::STARTED, 1, "w-8");
  auto a2 = decideAttempt(command(), &r2, 3);
  EXPECT_EQ(a2.verdict, Verdict::kRerun);
  EXPECT_EQ(a2.starts, 3u);
  EXPECT_EQ(a2.attempt, 3u);
}

TEST(RunAdmission, AClaimIsLeftToItsHolderUntilTheHolderIsLost) {
  AttemptDecision first;
  auto claim = RunStore::startRecord(command(), first, kSource, 17, "w-7", kNow);
  ASSERT_FALSE(claim.command().empty()) << "a start record carries its command";
  auto held = decideAttempt(command(), &claim, 3);
  EXPECT_EQ(held.verdict, Verdict::kClaimed);
  EXPECT_EQ(held.attempt, 1u);
  EXPECT_EQ(held.reason, "claimed by worker w-7 (attempt 1): it runs there");
  auto lost = decideAttempt(command(), &claim, 3, /*holder_lost=*/true);
  EXPECT_EQ(lost.verdict, Verdict::kRerun);
  EXPECT_EQ(lost.attempt, 2u);
  EXPECT_EQ(lost.lost_worker, "w-7");
}

TEST(RunAdmission, AReleasedRunGoesAgainAtOnceAndReleasesDoNotCountTowardMaxAttempts) {
  auto released = RunStore::endRecord(command(), 3, v1::FAILED, kSource, 17, "w-7", kNow, 1, true);
  EXPECT_EQ(released.releases(), 2u);
  auto a = decideAttempt(command(), &released, 3);
  EXPECT_EQ(a.verdict, Verdict::kRerun);
  EXPECT_TRUE(a.after_release);
  EXPECT_EQ(a.attempt, 4u);
  EXPECT_EQ(a.starts, 4u);
  EXPECT_EQ(a.releases, 2u);
  // Three starts, two of them released: one lost start, below max_attempts 2.
  AttemptDecision third;
  third.starts = 3;
  third.releases = 2;
  auto claim = RunStore::startRecord(command(), third, kSource, 17, "w-8", kNow);
  auto lost = decideAttempt(command(), &claim, 2, /*holder_lost=*/true);
  EXPECT_EQ(lost.verdict, Verdict::kRerun) << lost.reason;
  auto strict = decideAttempt(command(), &claim, 1, /*holder_lost=*/true);
  EXPECT_EQ(strict.verdict, Verdict::kGiveUp);
  EXPECT_EQ(strict.reason, "worker lost 1 times (last w-8); max_attempts is 1");
}

TEST(RunAdmission, ATerminalRecordIsSkippedWithItsState) {
  for (auto state :
       {v1::SUCCEEDED, v1::FAILED, v1::TIMED_OUT, v1::CANCELLED, v1::REJECTED, v1::EXPIRED}) {
    auto r = recorded(2, state);
    auto a = decideAttempt(command(), &r, 3);
    EXPECT_EQ(a.verdict, Verdict::kSkip) << v1::RunState_Name(state);
    EXPECT_EQ(a.state, state);
    EXPECT_EQ(a.starts, 2u);
    EXPECT_EQ(a.attempt, 2u);  // the attempt that ended
    EXPECT_THAT(a.reason, HasSubstr("already " + v1::RunState_Name(state)));
  }
}

TEST(RunAdmission, LostMaxAttemptsTimesGivesUpFailedInsteadOfRunningAgain) {
  auto r = recorded(3, v1::STARTED, 1, "w-9");
  auto a = decideAttempt(command(), &r, 3);
  EXPECT_EQ(a.verdict, Verdict::kGiveUp);
  EXPECT_EQ(a.state, v1::FAILED);
  EXPECT_EQ(a.starts, 3u);
  EXPECT_EQ(a.attempt, 3u);  // the last lost attempt
  EXPECT_EQ(a.lost_worker, "w-9");
  EXPECT_THAT(a.reason, HasSubstr("worker lost 3 times"));
  // One below the limit still runs.
  auto below = recorded(2, v1::STARTED);
  EXPECT_EQ(decideAttempt(command(), &below, 3).verdict, Verdict::kRerun);
  // max_attempts 1: a single lost start is enough.
  auto once = recorded(1, v1::STARTED);
  auto a1 = decideAttempt(command(), &once, 1);
  EXPECT_EQ(a1.verdict, Verdict::kGiveUp);
  EXPECT_THAT(a1.reason, HasSubstr("worker lost 1 times"));
}

TEST(RunAdmission, TheCommandsMaxAttemptsWinsOverTheWorkersDefault) {
  auto r = recorded(2, v1::STARTED);
  EXPECT_EQ(decideAttempt(command(1, 2), &r, 5).verdict, Verdict::kGiveUp);
  EXPECT_EQ(decideAttempt(command(1, 5), &r, 2).verdict, Verdict::kRerun);
  EXPECT_EQ(decideAttempt(command(1, 0), &r, 2).verdict, Verdict::kGiveUp);
}

TEST(RunAdmission, AnUnknownStateCountsAsALostStart) {
  auto r = recorded(1, v1::RUN_STATE_UNSPECIFIED);
  EXPECT_EQ(decideAttempt(command(), &r, 3).verdict, Verdict::kRerun);
}

TEST(RunAdmission, ALaterAttemptFromTheSchedulerRunsDespiteAnEarlierEndedOne) {
  auto r = recorded(1, v1::FAILED, /*attempt=*/1);
  auto a = decideAttempt(command(2), &r, 3);
  EXPECT_EQ(a.verdict, Verdict::kRun);
  EXPECT_EQ(a.attempt, 2u);
  EXPECT_EQ(a.starts, 1u);
}

TEST(RunAdmission, AnEarlierAttemptThanTheRecordedOneIsSkipped) {
  auto r = recorded(1, v1::STARTED, /*attempt=*/2);
  auto a = decideAttempt(command(1), &r, 3);
  EXPECT_EQ(a.verdict, Verdict::kSkip);
  EXPECT_EQ(a.state, v1::STARTED);
  EXPECT_THAT(a.reason, HasSubstr("attempt 2"));
}

TEST(RunRecords, StartRecordCarriesTheAdmissionTheSourceAndTheWorker) {
  auto r = recorded(1, v1::STARTED, 1, "w-1");
  auto a = decideAttempt(command(), &r, 3);
  auto s = RunStore::startRecord(command(), a, kSource, 42, "w-2", kNow);
  EXPECT_EQ(s.run_id(), command().run_id());
  EXPECT_EQ(s.job_id(), "ingest-orders");
  EXPECT_EQ(s.attempt(), 1u);  // the command's attempt; starts counts the reruns
  EXPECT_EQ(s.starts(), 2u);
  EXPECT_EQ(s.state(), v1::STARTED);
  EXPECT_EQ(s.worker_id(), "w-2");
  EXPECT_EQ(s.updated_ms(), 1'700'000'000'123);
  EXPECT_EQ(s.source().topic(), "outpost.jobs");
  EXPECT_EQ(s.source().partition(), 3);
  EXPECT_EQ(s.source().offset(), 42);
  // Then the worker ends it, and the next delivery skips it.
  auto e = RunStore::endRecord(command(), s.starts(), v1::SUCCEEDED, kSource, 42, "w-2", kNow);
  EXPECT_EQ(e.state(), v1::SUCCEEDED);
  EXPECT_EQ(e.starts(), 2u);
  auto again = decideAttempt(command(), &e, 3);
  EXPECT_EQ(again.verdict, Verdict::kSkip);
  EXPECT_THAT(again.reason, AllOf(HasSubstr("SUCCEEDED"), HasSubstr("w-2")));
}

}  // namespace
}  // namespace outpost::consumer
