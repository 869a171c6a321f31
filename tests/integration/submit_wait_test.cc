// `outpost submit --wait` and `outpost cancel --wait`, as a cron line or a CI step calls them,
// against a real worker: the exit status says how the run ended (docs/clients.md, "The
// command line"), --follow-logs streams the run's output, and a run nobody takes gives up after
// --wait-timeout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class SubmitWait : public ::testing::Test {
 protected:
  void SetUp() override {
    topics_ = createTopics("submit-wait", 1);
    WorkerProcess::Options o;
    o.slots = 4;
    o.pool = pool_;
    worker_ = std::make_unique<WorkerProcess>(topics_, o);
    ASSERT_TRUE(worker_->waitUntilReady());
  }
  // `outpost submit ARGS --wait` with its standard error in the output too.
  std::pair<int, std::string> submitWait(const std::string& args) {
    return runCli(topics_, "submit --pool " + pool_ + " " + args + " --wait 2>&1");
  }
  Topics topics_;
  std::string pool_ = uniqueName("wait");
  std::unique_ptr<WorkerProcess> worker_;
};

TEST_F(SubmitWait, TheExitStatusSaysHowTheRunEnded) {
  auto [ok, ok_out] = submitWait("-t ok");
  EXPECT_EQ(ok, 0) << ok_out;
  EXPECT_THAT(ok_out, HasSubstr("SUCCEEDED"));
  EXPECT_THAT(ok_out, HasSubstr(": exit 0"));

  auto [failed, failed_out] = submitWait("-t exit -a code=3");
  EXPECT_EQ(failed, 1) << failed_out;
  EXPECT_THAT(failed_out, HasSubstr("FAILED"));
  EXPECT_THAT(failed_out, HasSubstr("about to fail")) << "the end of its output";

  auto [timed_out, timed_out_out] = submitWait("-t sleep -a secs=30 --timeout 1s");
  EXPECT_EQ(timed_out, 3) << timed_out_out;

  auto [rejected, rejected_out] = submitWait("-t no-such-template");
  EXPECT_EQ(rejected, 5) << rejected_out;
  EXPECT_THAT(rejected_out, HasSubstr("REJECTED"));

  auto [expired, expired_out] = submitWait("-t ok --start-within 1ms");
  EXPECT_EQ(expired, 6) << expired_out;
}

TEST_F(SubmitWait, FollowLogsPrintsTheRunsOutputAsItComes) {
  auto [status, out] =
      runCli(topics_, "submit --pool " + pool_ + " -t sleep -a secs=1 --wait --follow-logs");
  EXPECT_EQ(status, 0) << out;
  // Standard output: the run id, then the run's lines.
  EXPECT_THAT(out, HasSubstr("\nsleeping 1\nwoke\n"));
}

TEST_F(SubmitWait, ARunNobodyTakesGivesUpAfterTheWaitTimeout) {
  auto [status, out] =
      runCli(topics_, "submit --pool nobody-" + pool_ + " -t ok --wait --wait-timeout 2s 2>&1");
  EXPECT_EQ(status, 7) << out;
  EXPECT_THAT(out, HasSubstr("did not end within --wait-timeout"));
}

TEST_F(SubmitWait, CancelWaitEndsWhenTheRunIsCancelled) {
  auto [submitted, run_id_line] =
      runCli(topics_, "submit --pool " + pool_ + " -t sleep -a secs=60");
  ASSERT_EQ(submitted, 0);
  const std::string run_id = run_id_line.substr(0, run_id_line.find('\n'));
  TopicReader events(topics_.events);
  ASSERT_TRUE(waitForState(events, run_id, v1::STARTED));
  auto [cancelled, cancelled_out] = runCli(topics_, "cancel --run " + run_id + " --wait 2>&1");
  EXPECT_EQ(cancelled, 0) << cancelled_out;
  EXPECT_THAT(cancelled_out, HasSubstr("run " + run_id + " CANCELLED"));
  // Again: the run has ended; the worker's NOTICE says so.
  auto [again, again_out] = runCli(topics_, "cancel --run " + run_id + " --wait 2>&1");
  EXPECT_EQ(again, 9) << again_out;
  EXPECT_THAT(again_out, HasSubstr("CANCELLED before the cancel"));
}

}  // namespace
}  // namespace outpost::test
