// The counting behind `outpost ledger`: what is lost, what ended twice, what ran twice.
#include "ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace outpost::app {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kA = "018f0000-0000-7000-8000-00000000000a";
const std::string kB = "018f0000-0000-7000-8000-00000000000b";
const std::string kC = "018f0000-0000-7000-8000-00000000000c";

LedgerEvent ev(const std::string& run, v1::RunState state, std::string worker = "w1",
               std::uint32_t attempt = 1) {
  return {run, state, attempt, std::move(worker)};
}

// Three commands on partition 0 (offsets 0..2), all committed.
LedgerInput threeCommitted() {
  LedgerInput in;
  in.commands = {{0, 0, kA}, {0, 1, kB}, {0, 2, kC}};
  in.partitions = {{0, 0, 3, 3}};
  return in;
}

// Claims: who holds which run now, and which runs wait to run again because their worker is gone
// (lost, stopped, restarted) or let them go.
TEST(Ledger, ClaimsAreCountedByWorkerAndThoseOfGoneWorkersWaitToRunAgain) {
  LedgerInput in;
  in.workers["w1"] = {"inc-1", v1::READY};
  in.workers["w2"] = {"inc-2", v1::LOST};
  in.workers["w3"] = {"inc-3b", v1::READY};  // restarted since it claimed
  in.claims = {{kA, "w1", "inc-1", false},
               {kB, "w2", "inc-2", false},
               {kC, "w3", "inc-3a", false},
               {"018f0000-0000-7000-8000-00000000000d", "w1", "inc-1", true},
               {"018f0000-0000-7000-8000-00000000000e", "w9", "inc-9", false}};  // never seen
  auto f = countLedger(in);
  EXPECT_EQ(f.claims, 4);
  EXPECT_EQ(f.claims_by_worker["w1"], 1);
  EXPECT_EQ(f.claims_by_worker["w2"], 1);
  EXPECT_EQ(f.claims_lost, 4);
  EXPECT_THAT(f.claims_lost_sample,
              ElementsAre(kB, kC, "018f0000-0000-7000-8000-00000000000d",
                          "018f0000-0000-7000-8000-00000000000e"));
  LedgerSource src;
  EXPECT_THAT(formatLedgerText(src, f), HasSubstr("claims: 4 (w1 1, w2 1, w3 1, w9 1)"));
  EXPECT_EQ(nlohmann::json::parse(formatLedgerJson(src, f))["claims_lost"], 4);
}

TEST(Ledger, EveryRunStartedOnceAndEndedOnceIsClean) {
  auto in = threeCommitted();
  for (const auto& r : {kA, kB, kC}) {
    in.events.push_back(ev(r, v1::STARTED));
    in.events.push_back(ev(r, v1::LOG));
    in.events.push_back(ev(r, v1::SUCCEEDED));
  }
  auto f = countLedger(in);
  EXPECT_EQ(f.commands, 3);
  EXPECT_EQ(f.submitted, 3);
  EXPECT_EQ(f.events, 9);
  EXPECT_EQ(f.terminal, 3);
  EXPECT_EQ(f.terminal_by_state.at("SUCCEEDED"), 3);
  EXPECT_EQ(f.lost, 0);
  EXPECT_EQ(f.duplicate_terminal, 0);
  EXPECT_EQ(f.reruns, 0);
  EXPECT_EQ(f.uncommitted, 0);
  EXPECT_EQ(f.max_attempt, 1u);
}

TEST(Ledger, ARunWithoutATerminalEventIsLost) {
  auto in = threeCommitted();
  in.events = {ev(kA, v1::STARTED), ev(kA, v1::SUCCEEDED), ev(kB, v1::STARTED),
               ev(kC, v1::REJECTED)};
  auto f = countLedger(in);
  EXPECT_EQ(f.terminal, 2);
  EXPECT_EQ(f.lost, 1);
  EXPECT_EQ(f.lost_no_terminal, 1);
  EXPECT_EQ(f.lost_uncommitted, 0);
  EXPECT_THAT(f.lost_sample, ElementsAre(kB));
  EXPECT_EQ(f.rejected, 1);
  EXPECT_EQ(f.terminal_by_state.at("REJECTED"), 1);
}

TEST(Ledger, ACommandAtOrAboveTheCommittedOffsetIsLostEvenWithATerminalEvent) {
  LedgerInput in;
  in.commands = {{0, 0, kA}, {0, 1, kB}, {1, 0, kC}};
  // Partition 0 committed up to 1 (offset 1 not done); partition 1 never committed.
  in.partitions = {{1, 0, 1, -1}, {0, 0, 2, 1}};
  for (const auto& r : {kA, kB, kC}) in.events.push_back(ev(r, v1::SUCCEEDED));
  auto f = countLedger(in);
  EXPECT_EQ(f.terminal, 3);
  EXPECT_EQ(f.lost_no_terminal, 0);
  EXPECT_EQ(f.lost_uncommitted, 2);
  EXPECT_EQ(f.lost, 2);
  EXPECT_EQ(f.uncommitted, 2);
  ASSERT_EQ(f.partitions.size(), 2u);
  EXPECT_EQ(f.partitions[0].partition, 0);  // sorted
  EXPECT_EQ(f.partitions[1].committed, -1);
}

TEST(Ledger, AnEmptiedPartitionCountsUncommittedFromItsStart) {
  LedgerInput in;
  in.partitions = {{0, 10, 12, -1}};
  EXPECT_EQ(countLedger(in).uncommitted, 2);
}

TEST(Ledger, CountsRunsWithMoreThanOneTerminalEventAndTheExtraEvents) {
  auto in = threeCommitted();
  in.events = {ev(kA, v1::STARTED), ev(kA, v1::SUCCEEDED), ev(kA, v1::SUCCEEDED),
               ev(kA, v1::FAILED),  ev(kB, v1::STARTED),   ev(kB, v1::FAILED),
               ev(kC, v1::EXPIRED), ev(kC, v1::CANCELLED)};
  auto f = countLedger(in);
  EXPECT_EQ(f.duplicate_terminal, 2);
  EXPECT_EQ(f.duplicate_terminal_extra, 3);
  EXPECT_THAT(f.duplicate_sample, ElementsAre(kA, kC));
  // By the last terminal event of each run.
  EXPECT_EQ(f.terminal_by_state.at("FAILED"), 2);
  EXPECT_EQ(f.terminal_by_state.at("CANCELLED"), 1);
  EXPECT_FALSE(f.terminal_by_state.contains("SUCCEEDED"));
}

TEST(Ledger, OneTerminalEventPerAttemptIsNoDuplicate) {
  auto in = threeCommitted();
  // Attempt 1's worker was lost: the next worker ends attempt 1, then runs attempt 2.
  auto lost = ev(kA, v1::FAILED, "w2", 1);
  lost.retrying = true;
  in.events = {ev(kA, v1::STARTED, "w1", 1),   lost,
               ev(kA, v1::STARTED, "w2", 2),   ev(kA, v1::SUCCEEDED, "w2", 2),
               ev(kB, v1::SUCCEEDED, "w1", 2), ev(kB, v1::SUCCEEDED, "w2", 2)};
  // The rerun of C never ended: its only terminal event says it goes on.
  auto lost_c = ev(kC, v1::FAILED, "w2", 1);
  lost_c.retrying = true;
  in.events.push_back(lost_c);
  auto f = countLedger(in);
  EXPECT_EQ(f.lost_no_terminal, 1);
  EXPECT_THAT(f.lost_sample, ElementsAre(kC));
  EXPECT_EQ(f.duplicate_terminal, 1);
  EXPECT_THAT(f.duplicate_sample, ElementsAre(kB));
  EXPECT_EQ(f.terminal_by_state.at("SUCCEEDED"), 2);
  EXPECT_EQ(f.reruns, 2);
}

TEST(Ledger, ARunStartedTwiceOrByTwoWorkersOrAttemptsIsARerun) {
  auto in = threeCommitted();
  // Started twice by one worker.
  in.events = {ev(kA, v1::STARTED), ev(kA, v1::STARTED), ev(kA, v1::SUCCEEDED)};
  // The first worker died before its STARTED was written; its LOG got out.
  for (auto e : {ev(kB, v1::LOG, "w1"), ev(kB, v1::STARTED, "w2"), ev(kB, v1::SUCCEEDED, "w2")})
    in.events.push_back(e);
  // A second attempt.
  for (auto e :
       {ev(kC, v1::STARTED, "w1", 1), ev(kC, v1::STARTED, "w1", 2), ev(kC, v1::FAILED, "w1", 2)})
    in.events.push_back(e);
  auto f = countLedger(in);
  EXPECT_EQ(f.reruns, 3);
  EXPECT_EQ(f.rerun_extra_starts, 2);
  EXPECT_EQ(f.max_attempt, 2u);
  EXPECT_EQ(f.duplicate_terminal, 0);
}

TEST(Ledger, NoticesFromOtherWorkersAreNotReruns) {
  auto in = threeCommitted();
  in.events = {ev(kA, v1::STARTED, "w1"), ev(kA, v1::NOTICE, "w2"), ev(kA, v1::SUCCEEDED, "w1")};
  auto f = countLedger(in);
  EXPECT_EQ(f.reruns, 0);
  EXPECT_EQ(f.events, 3);
}

TEST(Ledger, UndecodableCommandsAndResubmittedRunIdsAndEventsOfUnknownRuns) {
  LedgerInput in;
  in.commands = {{0, 0, ""}, {0, 1, kA}, {0, 2, kA}};
  in.partitions = {{0, 0, 3, 3}};
  in.events = {ev(kA, v1::SUCCEEDED), ev(kB, v1::SUCCEEDED), ev(kC, v1::NOTICE)};
  in.dlq_records = 1;
  auto f = countLedger(in);
  EXPECT_EQ(f.commands, 3);
  EXPECT_EQ(f.undecodable, 1);
  EXPECT_EQ(f.submitted, 1);
  EXPECT_EQ(f.resubmitted, 1);
  EXPECT_EQ(f.unknown_runs, 1);  // kB; a NOTICE alone (kC) is not a run
  EXPECT_EQ(f.terminal, 1);
  EXPECT_EQ(f.dlq, 1);
}

TEST(Ledger, ReportsWatchedRunsOneByOne) {
  auto in = threeCommitted();
  in.partitions = {{0, 0, 3, 1}};
  in.events = {ev(kB, v1::STARTED, "w1", 1), ev(kB, v1::STARTED, "w2", 2),
               ev(kB, v1::FAILED, "w2", 2)};
  in.watch = {kB, "not-there"};
  auto f = countLedger(in);
  ASSERT_EQ(f.runs.size(), 2u);
  const auto& b = f.runs.at(kB);
  EXPECT_TRUE(b.submitted);
  EXPECT_FALSE(b.committed);
  EXPECT_EQ(b.starts, 2);
  EXPECT_THAT(b.terminal, ElementsAre("FAILED"));
  EXPECT_THAT(b.attempts, ElementsAre(1u, 2u));
  EXPECT_THAT(b.workers, ElementsAre("w1", "w2"));
  EXPECT_FALSE(f.runs.at("not-there").submitted);
}

TEST(Ledger, SamplesAreBounded) {
  LedgerInput in;
  for (int i = 0; i < 50; ++i) {
    char id[40];
    std::snprintf(id, sizeof id, "018f0000-0000-7000-8000-%012d", i);
    in.commands.push_back({0, i, id});
  }
  in.partitions = {{0, 0, 50, 50}};
  auto f = countLedger(in);
  EXPECT_EQ(f.lost, 50);
  EXPECT_EQ(f.lost_sample.size(), kLedgerSamples);
}

TEST(Ledger, JsonCarriesEveryFigureAndTextNamesThem) {
  auto in = threeCommitted();
  in.events = {ev(kA, v1::STARTED), ev(kA, v1::STARTED), ev(kA, v1::SUCCEEDED),
               ev(kA, v1::SUCCEEDED)};
  in.watch = {kA};
  LedgerSource src{"127.0.0.1:9092", "x.jobs", "x.events", "x.dlq", "outpost.p", "x.runs", "x.workers"};
  auto f = countLedger(in);
  auto doc = nlohmann::json::parse(formatLedgerJson(src, f));
  EXPECT_EQ(doc["submitted"], 3);
  EXPECT_EQ(doc["terminal"], 1);
  EXPECT_EQ(doc["lost"], 2);
  EXPECT_EQ(doc["duplicate_terminal"], 1);
  EXPECT_EQ(doc["duplicate_terminal_extra"], 1);
  EXPECT_EQ(doc["reruns"], 1);
  EXPECT_EQ(doc["group"], "outpost.p");
  EXPECT_EQ(doc["partitions"][0]["uncommitted"], 0);
  EXPECT_EQ(doc["runs"][kA]["starts"], 2);
  EXPECT_EQ(doc["runs"][kA]["terminal"].size(), 2u);

  auto text = formatLedgerText(src, f);
  EXPECT_THAT(text, HasSubstr("submitted: 3\n"));
  EXPECT_THAT(text, HasSubstr("lost: 2 (no terminal event 2, command not committed 0)\n"));
  EXPECT_THAT(text, HasSubstr("duplicate_terminal: 1 runs (1 extra terminal events)\n"));
  EXPECT_THAT(text, HasSubstr("reruns: 1 runs (1 extra STARTED events)\n"));
  EXPECT_THAT(text, HasSubstr("partition 0: committed 3, end 3, uncommitted 0\n"));
}

}  // namespace
}  // namespace outpost::app
