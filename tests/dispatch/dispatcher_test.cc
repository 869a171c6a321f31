// The run lifecycle on fakes (fakes.h): intake and refusals, slots and per-template concurrency,
// queueing and pause, deadlines, cancels in each phase, rebalances, drain, lost attempts, and both
// completion strategies. No broker, no process: every step happens when the test says so.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes.h"

namespace outpost::dispatch::test {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Ending = runner::RunOutcome::Ending;
using std::chrono::milliseconds;
using std::chrono::seconds;

// ---------------------------------------------------------------------------------------------
// What the dispatcher reports for metrics (Observer)

TEST(DispatcherObserver, AStartedRunReportsItsScheduleToStartAndItsEndWithHowLongItRan) {
  Harness h;
  h.record_time = std::chrono::system_clock::time_point{} - milliseconds(1500);
  auto c = command("ok");
  h.send(c);
  h.started(c.run_id());  // the fake starts processes at the epoch
  runner::RunOutcome o;
  o.ending = Ending::kExited;
  o.exit_code = 0;
  o.duration = milliseconds(3000);
  h.executor.finish(c.run_id(), o);
  h.settle();
  EXPECT_THAT(h.observer.calls, ElementsAre("started 1500", "ended ok SUCCEEDED 3000"));
}

TEST(DispatcherObserver, EachRefusalIsReportedWithItsReasonAndItsDeadLetter) {
  Harness h;
  h.sendBytes("\xff\xfe not a command");
  h.send(command("nope"));
  h.send(command("sleep", {{"secs", "1; reboot"}}));
  auto twice = command("sleep", {{"secs", "5"}});
  h.send(twice);
  h.send(twice);
  EXPECT_THAT(h.observer.calls,
              ElementsAre("rejected undecodable", "dead letter",  //
                          "rejected unknown_template", "dead letter", "ended nope REJECTED -",
                          "rejected invalid_arguments", "dead letter", "ended sleep REJECTED -",
                          "rejected duplicate", "dead letter"));
}

TEST(DispatcherObserver, SkippedCommandsAreReportedWithTheirReason) {
  Harness h;
  auto other = command("ok");
  other.set_pool("gpu");
  h.send(other);
  auto done = command("ok");
  h.attempts.recordEnd(done, 1, v1::SUCCEEDED, h.jobs(0), 0, 0, false);
  h.send(done);
  EXPECT_THAT(h.observer.calls, ElementsAre("skipped other_pool", "skipped already_ended"));
}

TEST(DispatcherObserver, ARunThatNeverStartedEndsWithoutADuration) {
  Harness h;
  auto c = command("ok");
  c.set_not_after_ms(toUnixMillis(h.clock.now()) - 1);
  h.send(c);
  EXPECT_THAT(h.observer.calls, ElementsAre("ended ok EXPIRED -"));
}

// ---------------------------------------------------------------------------------------------
// Intake

TEST(DispatcherIntake, AGoodCommandRunsAndEndsSucceededWithItsOffsetDone) {
  Harness h;
  auto c = command("ok");
  auto offset = h.send(c);
  ASSERT_NE(h.executor.find(c.run_id()), nullptr) << "launched";
  h.succeed(c.run_id());
  EXPECT_THAT(h.statesOf(c.run_id()), ElementsAre(v1::STARTED, v1::SUCCEEDED));
  EXPECT_EQ(h.doneOffset(), offset + 1);
  EXPECT_TRUE(h.dispatcher->idle());
}

TEST(DispatcherIntake, UndecodableBytesGoToTheDeadLetterTopicWithoutAnEvent) {
  Harness h;
  auto offset = h.sendBytes("\xff\xfe not a command");
  EXPECT_EQ(h.deadLetters(), 1u);
  EXPECT_TRUE(h.events().empty()) << "no run_id to key an event by";
  EXPECT_EQ(h.doneOffset(), offset + 1) << "nothing is lost, nothing blocks the partition";
}

TEST(DispatcherIntake, AnUnknownTemplateIsRejectedWithADeadLetterAndOneTerminalEvent) {
  Harness h;
  auto c = command("nope");
  h.send(c);
  EXPECT_EQ(h.deadLetters(), 1u);
  auto t = h.terminalsOf(c.run_id());
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state(), v1::REJECTED);
  EXPECT_THAT(t[0].message(), HasSubstr("unknown job_type 'nope'"));
  EXPECT_EQ(h.executor.launched.size(), 0u);
}

TEST(DispatcherIntake, ArgumentsTheTemplateRefusesAreRejected) {
  Harness h;
  auto c = command("sleep", {{"secs", "1; reboot"}});
  h.send(c);
  EXPECT_THAT(h.statesOf(c.run_id()), ElementsAre(v1::REJECTED));
  EXPECT_EQ(h.deadLetters(), 1u);
}

TEST(DispatcherIntake, ACommandForAnotherPoolIsSkippedSilently) {
  Harness h;
  auto c = command("ok");
  c.set_pool("gpu");
  auto offset = h.send(c);
  EXPECT_TRUE(h.events().empty());
  EXPECT_EQ(h.deadLetters(), 0u);
  EXPECT_EQ(h.dispatcher->skippedForOtherPools(), 1u);
  EXPECT_EQ(h.doneOffset(), offset + 1);
}

TEST(DispatcherIntake, ACommandForThisPoolOrNoPoolRuns) {
  Harness h;
  auto mine = command("ok");
  mine.set_pool("main");
  auto any = command("ok");
  h.send(mine);
  h.send(any);
  EXPECT_EQ(h.executor.launched.size(), 2u);
}

TEST(DispatcherIntake, ASecondCommandWithALiveRunIdIsRefusedWithoutASecondTerminalEvent) {
  Harness h;
  auto c = command("ok");
  h.send(c);
  h.send(c);
  EXPECT_EQ(h.deadLetters(), 1u);
  h.succeed(c.run_id());
  EXPECT_EQ(h.terminalsOf(c.run_id()).size(), 1u);
}

TEST(DispatcherIntake, ACommandPastItsDeadlineEndsExpiredWithoutRunning) {
  Harness h;
  auto c = command("ok");
  c.set_not_after_ms(toUnixMillis(h.clock.now()) - 1);
  h.send(c);
  EXPECT_THAT(h.statesOf(c.run_id()), ElementsAre(v1::EXPIRED));
  EXPECT_EQ(h.executor.launched.size(), 0u);
}

TEST(DispatcherIntake, ARunThatAlreadyEndedIsNotRunAgainAndNothingIsPublished) {
  Harness h;
  auto c = command("ok");
  h.attempts.recordEnd(c, 1, v1::SUCCEEDED, h.jobs(0), 0, 0, false);
  auto offset = h.send(c);
  EXPECT_TRUE(h.events().empty());
  EXPECT_EQ(h.executor.launched.size(), 0u);
  EXPECT_EQ(h.doneOffset(), offset + 1);
}

// ---------------------------------------------------------------------------------------------
// Secrets

TEST(DispatcherSecrets, ARunWaitsForItsSecretsThenStartsWithThemResolved) {
  Harness h;
  auto c = command("secret");
  (*c.mutable_env())["DB_PASS"] = "${DB_PASSWORD}";
  h.secrets.values["${DB_PASSWORD}"] = "s3cret";
  h.send(c);
  EXPECT_EQ(h.executor.launched.size(), 0u) << "not before its secrets are there";
  h.secrets.answerAll();
  h.settle();
  auto* l = h.executor.find(c.run_id());
  ASSERT_NE(l, nullptr);
  EXPECT_THAT(l->plan.env, ::testing::Contains("DB_PASS=s3cret"));
}

TEST(DispatcherSecrets, ASecretThatCannotBeResolvedEndsTheRunFailedWithoutStarting) {
  Harness h;
  auto c = command("secret");
  (*c.mutable_env())["DB_PASS"] = "${DB_MISSING}";
  h.send(c);
  h.secrets.answerAll();
  h.settle();
  auto t = h.terminalsOf(c.run_id());
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state(), v1::FAILED);
  EXPECT_THAT(t[0].message(), HasSubstr("cannot resolve a secret"));
  EXPECT_EQ(h.deadLetters(), 0u) << "the command was fine";
}

TEST(DispatcherSecrets, AFailureMessageNeverCarriesASecretValue) {
  Harness h;
  auto c = command("secret");
  (*c.mutable_env())["DB_PASS"] = "${DB_PASSWORD}";
  h.secrets.values["${DB_PASSWORD}"] = "s3cret-value";
  h.send(c);
  h.secrets.answerAll();
  h.settle();
  h.started(c.run_id());
  h.finished(c.run_id(), Ending::kSpawnFailed, 0, "cannot start: s3cret-value is not a program");
  for (const auto& e : h.events()) EXPECT_THAT(e.message(), ::testing::Not(HasSubstr("s3cret")));
}

// ---------------------------------------------------------------------------------------------
// Slots, queue, pause

TEST(DispatcherSlots, NoMoreRunsThanSlotsAndTheNextStartsWhenOneEnds) {
  Harness h("  slots: 2\n");
  std::vector<v1::JobCommand> cs;
  for (int i = 0; i < 4; ++i) {
    cs.push_back(command("ok"));
    h.send(cs.back());
  }
  EXPECT_EQ(h.executor.live(), 2u);
  EXPECT_EQ(h.dispatcher->running(), 2u);
  h.succeed(cs[0].run_id());
  EXPECT_EQ(h.executor.live(), 2u);
  EXPECT_NE(h.executor.find(cs[2].run_id()), nullptr) << "the first waiting one, in order";
}

TEST(DispatcherSlots, ATemplateAtItsConcurrencyLetsOthersGoFirst) {
  Harness h("  slots: 4\n");
  auto a = command("one"), b = command("one"), c = command("ok");
  h.send(a);
  h.send(b);
  h.send(c);
  EXPECT_NE(h.executor.find(a.run_id()), nullptr);
  EXPECT_EQ(h.executor.find(b.run_id()), nullptr) << "template 'one' runs one at a time";
  EXPECT_NE(h.executor.find(c.run_id()), nullptr) << "another template takes a free slot";
  h.succeed(a.run_id());
  EXPECT_NE(h.executor.find(b.run_id()), nullptr);
}

TEST(DispatcherSlots, PartitionsPauseAtMaxQueuedAndResumeAtHalf) {
  Harness h("  slots: 1\n  max_queued: 4\n");
  std::vector<v1::JobCommand> cs;
  for (int i = 0; i < 5; ++i) {
    cs.push_back(command("ok"));
    h.send(cs.back());
  }
  EXPECT_TRUE(h.source.paused()) << "4 waiting";
  h.succeed(cs[0].run_id());
  EXPECT_TRUE(h.source.paused()) << "3 waiting: more than half";
  h.succeed(cs[1].run_id());
  EXPECT_FALSE(h.source.paused()) << "2 waiting: half";
}

TEST(DispatcherSlots, PartitionsAlsoPauseAtMaxQueuedBytesAndResumeAtHalf) {
  Harness h("  slots: 1\n  max_queued_bytes: 1MiB\n");
  std::vector<v1::JobCommand> cs;
  auto big = [&] {
    cs.push_back(command("ok"));
    (*cs.back().mutable_labels())["blob"] = std::string(300 * 1024, 'b');
    h.send(cs.back());
  };
  for (int i = 0; i < 4; ++i) big();
  EXPECT_FALSE(h.source.paused()) << "one runs, 3 x 300 KiB wait: under 1 MiB";
  big();
  EXPECT_TRUE(h.source.paused()) << "4 x 300 KiB wait";
  h.succeed(cs[0].run_id());
  EXPECT_TRUE(h.source.paused()) << "900 KiB wait: more than half";
  h.succeed(cs[1].run_id());
  EXPECT_TRUE(h.source.paused()) << "600 KiB wait: more than half";
  h.succeed(cs[2].run_id());
  EXPECT_FALSE(h.source.paused()) << "300 KiB wait";
}

// Refused commands wait too, until their dead letters (carrying the original bytes) are
// acknowledged: a flood of big bad commands is bounded by bytes like the good ones (it drove a
// worker's RSS to over 100 MB while the bench's flood of good ones stayed under 40).
TEST(DispatcherSlots, DeadLettersWaitingForTheBrokerCountAgainstMaxQueuedBytes) {
  Harness h("  slots: 1\n  max_queued_bytes: 1MiB\n");
  h.records.auto_ack = false;
  const std::string garbage(300 * 1024, '\xff');  // not a JobCommand in any encoding
  for (int i = 0; i < 3; ++i) h.sendBytes(garbage);
  EXPECT_FALSE(h.source.paused()) << "900 KiB of dead letters unacknowledged: under 1 MiB";
  h.sendBytes(garbage);
  EXPECT_TRUE(h.source.paused()) << "1.2 MiB of dead letters unacknowledged";
  h.records.ackAll();
  h.settle();
  EXPECT_FALSE(h.source.paused()) << "every dead letter acknowledged";
}

TEST(DispatcherSlots, ACommandWhoseDeadlinePassesWhileQueuedEndsExpired) {
  Harness h("  slots: 1\n");
  auto first = command("ok"), waiting = command("ok");
  waiting.set_not_after_ms(toUnixMillis(h.clock.now()) + 1000);
  h.send(first);
  h.send(waiting);
  h.clock.advance(seconds(2));
  h.succeed(first.run_id());
  EXPECT_THAT(h.statesOf(waiting.run_id()), ElementsAre(v1::EXPIRED));
  EXPECT_EQ(h.executor.launched.size(), 1u);
}

TEST(DispatcherRuns, AStartRecordIsWrittenBeforeTheProcessStarts) {
  Harness h;
  h.starts.auto_ack = false;
  auto c = command("ok");
  h.send(c);
  ASSERT_EQ(h.starts.all.size(), 1u);
  EXPECT_EQ(h.executor.launched.size(), 0u) << "waits for the start record";
  h.starts.ackAll();
  h.settle();
  EXPECT_EQ(h.executor.launched.size(), 1u);
}

TEST(DispatcherRuns, EventsCarryAnIncreasingSequenceAndTheSourcePosition) {
  Harness h;
  auto c = command("ok");
  auto offset = h.send(c);
  h.started(c.run_id());
  h.executor.find(c.run_id())->callbacks.on_log(runner::LogBatch{{"a", "b"}, 0});
  h.executor.find(c.run_id())->callbacks.on_heartbeat(runner::Heartbeat{10, 5, 100, 1, 0});
  h.settle();
  h.finished(c.run_id(), Ending::kExited, 0);
  auto es = h.eventsOf(c.run_id());
  ASSERT_EQ(es.size(), 4u);
  for (std::size_t i = 0; i < es.size(); ++i) {
    EXPECT_EQ(es[i].sequence(), i + 1);
    EXPECT_EQ(es[i].source().offset(), offset);
    EXPECT_EQ(es[i].worker_id(), "w-test");
  }
  EXPECT_THAT(es[1].log_lines(), ElementsAre("a", "b"));
}

TEST(DispatcherRuns, HowAProcessEndedDecidesTheTerminalState) {
  Harness h("  slots: 8\n");
  struct Case {
    Ending ending;
    int code;
    v1::RunState want;
  };
  for (auto [ending, code, want] :
       {Case{Ending::kExited, 0, v1::SUCCEEDED}, Case{Ending::kExited, 3, v1::FAILED},
        Case{Ending::kSignaled, 11, v1::FAILED}, Case{Ending::kTimedOut, 0, v1::TIMED_OUT},
        Case{Ending::kSpawnFailed, 0, v1::FAILED}}) {
    auto c = command("ok");
    h.send(c);
    if (ending != Ending::kSpawnFailed) h.started(c.run_id());
    h.finished(c.run_id(), ending, code, ending == Ending::kTimedOut ? "timed out" : "");
    auto t = h.terminalsOf(c.run_id());
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].state(), want) << t[0].message();
  }
}

// ---------------------------------------------------------------------------------------------
// Cancels

v1::ControlCommand cancelOf(const std::string& run_id) {
  v1::ControlCommand c;
  c.set_command_id("0190a5d2-7c3e-7abc-8def-ffffffffffff");
  c.mutable_cancel()->set_run_id(run_id);
  c.mutable_cancel()->set_reason("wrong recipe");
  c.mutable_cancel()->set_requested_by("alice");
  return c;
}

consumer::ControlMessage controlMessage(Harness& h, const std::string& run_id) {
  consumer::ControlMessage m;
  m.tp = {"test.control", 0};
  m.timestamp = h.clock.now();
  m.command = cancelOf(run_id);
  return m;
}

TEST(DispatcherCancel, ARunningRunIsStoppedAndEndsCancelledByTheRequester) {
  Harness h;
  auto c = command("ok");
  h.send(c);
  h.started(c.run_id());
  h.dispatcher->onControl(controlMessage(h, c.run_id()));
  ASSERT_EQ(h.executor.stops.size(), 1u);
  EXPECT_EQ(h.executor.stops[0].first, c.run_id());
  EXPECT_EQ(h.executor.causes[0], runner::StopCause::kCancel);
  h.finished(c.run_id(), Ending::kCancelled, 0, h.executor.stops[0].second);
  auto t = h.terminalsOf(c.run_id());
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state(), v1::CANCELLED);
  EXPECT_EQ(t[0].cancelled_by(), "alice");
}

TEST(DispatcherCancel, AQueuedRunEndsCancelledWithoutStarting) {
  Harness h("  slots: 1\n");
  auto running = command("ok"), queued = command("ok");
  h.send(running);
  h.send(queued);
  h.dispatcher->onControl(controlMessage(h, queued.run_id()));
  h.settle();
  EXPECT_THAT(h.statesOf(queued.run_id()), ElementsAre(v1::CANCELLED));
  EXPECT_THAT(h.terminalsOf(queued.run_id())[0].message(), HasSubstr("while queued"));
  h.succeed(running.run_id());
  EXPECT_EQ(h.executor.launched.size(), 1u) << "the cancelled one never starts";
}

TEST(DispatcherCancel, ARunCancelledWhileItsStartRecordIsWrittenNeverStarts) {
  Harness h;
  h.starts.auto_ack = false;
  auto c = command("ok");
  h.send(c);
  h.dispatcher->onControl(controlMessage(h, c.run_id()));
  h.starts.ackAll();
  h.settle();
  EXPECT_EQ(h.executor.launched.size(), 0u);
  EXPECT_THAT(h.statesOf(c.run_id()), ElementsAre(v1::CANCELLED));
  EXPECT_EQ(h.dispatcher->running(), 0u) << "its slot is free again";
}

TEST(DispatcherCancel, ACancelBeforeItsCommandEndsTheCommandCancelledWithoutStarting) {
  Harness h;
  auto c = command("ok");
  h.source.assigned = {h.jobs(0)};
  h.dispatcher->onControl(controlMessage(h, c.run_id()));
  h.send(c);
  auto states = h.statesOf(c.run_id());
  EXPECT_THAT(states, ElementsAre(v1::NOTICE, v1::CANCELLED)) << "a notice, then the end";
  EXPECT_EQ(h.executor.launched.size(), 0u);
}

TEST(DispatcherCancel, ACancelForARunThatEndedHereGetsANoticeAndNoSecondTerminalEvent) {
  Harness h;
  auto c = command("ok");
  h.send(c);
  h.succeed(c.run_id());
  h.dispatcher->onControl(controlMessage(h, c.run_id()));
  h.settle();
  EXPECT_THAT(h.statesOf(c.run_id()), ElementsAre(v1::STARTED, v1::SUCCEEDED, v1::NOTICE));
}

TEST(DispatcherCancel, OnlyTheHolderOfPartitionZeroAnswersAnUnknownRun) {
  Harness h;
  h.source.assigned = {h.jobs(1)};
  h.dispatcher->onControl(controlMessage(h, command("ok").run_id()));
  EXPECT_TRUE(h.events().empty());
  h.source.assigned = {h.jobs(0)};
  auto other = command("ok");
  h.dispatcher->onControl(controlMessage(h, other.run_id()));
  EXPECT_THAT(h.statesOf(other.run_id()), ElementsAre(v1::NOTICE));
}

TEST(DispatcherCancel, ARunAlreadyEndingOtherwiseKeepsItsStateAndANoticeSaysTheCancelWasLate) {
  Harness h;
  auto c = command("ok");
  h.send(c);
  h.started(c.run_id());
  h.dispatcher->onControl(controlMessage(h, c.run_id()));
  h.finished(c.run_id(), Ending::kExited, 0);  // it ended by itself before the stop took
  EXPECT_THAT(h.statesOf(c.run_id()), ElementsAre(v1::STARTED, v1::SUCCEEDED, v1::NOTICE));
}

// ---------------------------------------------------------------------------------------------
// Lost runs

// The lost-run watch looks about every second.
void watch(Harness& h) {
  h.clock.advance(milliseconds(1100));
  h.settle();
}

TEST(DispatcherLost, ARunClaimedByALostWorkerRunsAgainAfterTheFenceAsTheNextAttempt) {
  Harness h;
  auto c = command("ok");
  h.attempts.claimedBy("w-gone", "inc-1", c, 0, 7);
  watch(h);
  EXPECT_TRUE(h.leases.fences.empty()) << "its lease holds";
  h.leases.lapsed["w-gone"] = "no status from worker w-gone for 31 s";
  watch(h);
  ASSERT_THAT(h.leases.fences, ElementsAre("w-gone"));
  watch(h);
  EXPECT_EQ(h.leases.fences.size(), 1u) << "fenced once, not at every look";
  EXPECT_TRUE(h.executor.launched.empty()) << "nothing runs before the fence";
  h.leases.answerAll();
  h.settle();
  EXPECT_THAT(h.attempts.restored, ElementsAre(0)) << "its partition is read again first";
  ASSERT_EQ(h.attempts.last_read_past.size(), 1u) << "past a barrier written after the fence";
  EXPECT_EQ(h.records.all.front().key, "barrier:1");
  h.succeed(c.run_id());
  auto es = h.eventsOf(c.run_id());
  ASSERT_EQ(es.size(), 3u);
  EXPECT_EQ(es[0].state(), v1::FAILED);
  EXPECT_EQ(es[0].attempt(), 1u);
  EXPECT_TRUE(es[0].retrying());
  EXPECT_THAT(es[0].message(), AllOf(HasSubstr("w-gone was lost"), HasSubstr("31 s")));
  EXPECT_EQ(es[2].state(), v1::SUCCEEDED);
  EXPECT_EQ(es[2].attempt(), 2u);
  EXPECT_TRUE(es[2].redelivered());
  EXPECT_EQ(h.attempts.records[c.run_id()].state(), v1::SUCCEEDED);
  EXPECT_EQ(h.attempts.records[c.run_id()].starts(), 2u);
  watch(h);
  EXPECT_EQ(h.executor.launched.size(), 1u) << "run again once";
}

TEST(DispatcherLost, WhatTheLostWorkerEndedBeforeTheFenceIsNotRunAgain) {
  Harness h;
  auto c = command("ok");
  h.attempts.claimedBy("w-gone", "inc-1", c, 0, 7);
  h.leases.lapsed["w-gone"] = "silent";
  watch(h);
  h.attempts.on_restore[c.run_id()] =
      consumer::RunStore::endRecord(c, 1, v1::SUCCEEDED, h.jobs(0), 7, "w-gone", {});
  h.leases.answerAll();
  h.settle();
  EXPECT_TRUE(h.executor.launched.empty());
  EXPECT_TRUE(h.events().empty());
}

TEST(DispatcherLost, AWorkerThatCannotBeFencedHasNothingRunAgainUntilItIs) {
  Harness h;
  auto c = command("ok");
  h.attempts.claimedBy("w-gone", "inc-1", c, 0, 7);
  h.leases.lapsed["w-gone"] = "silent";
  watch(h);
  h.leases.answerAll("not authorised to write transactional id");
  h.settle();
  EXPECT_TRUE(h.executor.launched.empty());
  watch(h);
  EXPECT_EQ(h.leases.fences.size(), 2u) << "tried again";
  h.leases.answerAll();
  h.settle();
  EXPECT_EQ(h.executor.launched.size(), 1u);
}

TEST(DispatcherLost, APartitionThatCannotBeReadAgainIsReadAgainAtTheNextLook) {
  Harness h;
  auto c = command("ok");
  h.attempts.claimedBy("w-gone", "inc-1", c, 0, 7);
  h.attempts.on_restore[c.run_id()] = h.attempts.records[c.run_id()];  // what a good read finds
  h.attempts.fail_restores = 1;  // the first read fails, and forgets what was known of partition 0
  h.leases.lapsed["w-gone"] = "silent";
  watch(h);
  h.leases.answerAll();
  h.settle();
  EXPECT_TRUE(h.executor.launched.empty());
  watch(h);
  EXPECT_EQ(h.attempts.restored.size(), 2u);
  EXPECT_EQ(h.executor.launched.size(), 1u) << "run again after the second read";
  EXPECT_EQ(h.leases.fences.size(), 1u) << "fenced once";
}

// Drained and stopped cleanly: everything it claimed has its end on the runs topic. Nothing is run
// again, and it is neither fenced nor written LOST.
TEST(DispatcherLost, AWorkerThatStoppedAfterEndingItsRunsIsNeitherFencedNorItsRunsRunAgain) {
  Harness h;
  auto c = command("ok");
  h.attempts.claimedBy("w-gone", "inc-1", c, 0, 7);  // what this worker read when assigned
  h.attempts.on_restore[c.run_id()] =
      consumer::RunStore::endRecord(c, 1, v1::SUCCEEDED, h.jobs(0), 7, "w-gone", {});
  h.leases.lapsed["w-gone"] = "worker w-gone stopped";
  h.leases.stopped.insert("w-gone");
  watch(h);
  watch(h);
  EXPECT_TRUE(h.leases.fences.empty());
  EXPECT_TRUE(h.executor.launched.empty());
  EXPECT_TRUE(h.events().empty());
}

TEST(DispatcherLost, ARedeliveredCommandWhoseRunIsClaimedIsNotRunAndItsOffsetIsDone) {
  Harness h;
  auto c = command("ok");
  h.attempts.claimedBy("w-other", "inc-1", c, 0, 0);
  auto offset = h.send(c);
  EXPECT_TRUE(h.executor.launched.empty());
  EXPECT_TRUE(h.events().empty());
  EXPECT_EQ(h.deadLetters(), 0u);
  EXPECT_THAT(h.observer.calls, ElementsAre("skipped claimed"));
  EXPECT_EQ(h.doneOffset(), offset + 1);
}

// Records written before claims carried their command: a STARTED one is a lost start, run again
// when its command is delivered again.
TEST(DispatcherLost, AStartRecordWithoutItsCommandCountsAsLostOnRedelivery) {
  Harness h;
  auto c = command("ok");
  h.attempts.claimedBy("w-old", "", c, 0, 0);
  h.attempts.records[c.run_id()].clear_command();
  h.send(c);
  h.succeed(c.run_id());
  EXPECT_THAT(h.statesOf(c.run_id()),
              ElementsAre(v1::FAILED, v1::STARTED, v1::SUCCEEDED));
  EXPECT_TRUE(h.leases.fences.empty());
}

TEST(DispatcherLost, ARerunRunsAloneUntilItsEndIsWritten) {
  Harness h("  slots: 4\n");
  auto rerun = command("ok"), other = command("ok");
  h.attempts.claimedBy("w-gone", "inc-1", rerun, 1, 3);
  h.leases.lapsed["w-gone"] = "silent";
  watch(h);
  h.leases.answerAll();
  h.settle();
  h.send(other);
  EXPECT_EQ(h.executor.live(), 1u) << "nothing beside a rerun";
  h.succeed(rerun.run_id());
  EXPECT_NE(h.executor.find(other.run_id()), nullptr);
}

TEST(DispatcherLost, LostMaxAttemptsTimesEndsFailedWithoutRunning) {
  Harness h("  max_attempts: 2\n");
  auto c = command("ok");
  h.attempts.claimedBy("w-gone", "inc-1", c, 0, 0, /*starts=*/2);
  h.leases.lapsed["w-gone"] = "silent";
  watch(h);
  h.leases.answerAll();
  h.settle();
  EXPECT_EQ(h.executor.launched.size(), 0u);
  auto t = h.terminalsOf(c.run_id());
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state(), v1::FAILED);
  EXPECT_THAT(t[0].message(), HasSubstr("lost 2 times"));
  EXPECT_EQ(h.attempts.records[c.run_id()].state(), v1::FAILED);
}

TEST(DispatcherLost, ExactlyOnceTheRerunsClaimAndTheLostAttemptsEndCommitTogetherWithoutAnOffset) {
  Harness h("", "exactly-once");
  h.auto_commit = false;
  auto c = command("ok");
  h.attempts.claimedBy("w-gone", "inc-1", c, 0, 5);
  h.leases.lapsed["w-gone"] = "silent";
  watch(h);
  h.leases.answerAll();
  h.settle();
  EXPECT_EQ(h.executor.launched.size(), 0u) << "waits for the transaction";
  ASSERT_EQ(h.txn.units.size(), 1u);
  std::vector<std::string> topics;
  for (const auto& r : h.txn.units.front().records) topics.push_back(r.topic);
  EXPECT_THAT(topics, ElementsAre("test.events", "test.runs"));
  EXPECT_TRUE(h.txn.units.front().offsets.empty()) << "its offset was done with the first claim";
  h.txn.finishOne(events::TxnOutcome::Status::kAborted);  // e.g. a transaction before it failed
  h.settle();
  ASSERT_EQ(h.txn.units.size(), 1u) << "written again";
  h.txn.commitAll();
  h.settle();
  EXPECT_EQ(h.executor.launched.size(), 1u);
}

TEST(DispatcherLost, ARunReleasedByAWorkerThatStoppedRunsAgainWithoutAFenceAsTheNextAttempt) {
  Harness h;
  auto c = command("ok");
  auto released = consumer::RunStore::endRecord(c, 1, v1::FAILED, h.jobs(0), 7, "w-gone", {}, 0,
                                                true);
  released.set_incarnation("inc-1");
  h.attempts.records[c.run_id()] = released;
  h.leases.lapsed["w-gone"] = "worker w-gone stopped";
  h.leases.stopped.insert("w-gone");
  watch(h);
  EXPECT_TRUE(h.leases.fences.empty()) << "it let its runs go: nothing to fence";
  h.succeed(c.run_id());
  auto es = h.eventsOf(c.run_id());
  ASSERT_EQ(es.size(), 2u) << "no lost attempt's event: its worker ended it";
  EXPECT_EQ(es[0].state(), v1::STARTED);
  EXPECT_EQ(es[0].attempt(), 2u);
  EXPECT_EQ(es[1].state(), v1::SUCCEEDED);
  EXPECT_EQ(h.attempts.records[c.run_id()].releases(), 1u) << "carried on";
}

TEST(DispatcherLost, ThisWorkersOwnClaimsAreNeverLost) {
  Harness h;
  auto c = command("sleep", {{"secs", "60"}});
  h.send(c);
  h.started(c.run_id());
  h.leases.lapsed["w-test"] = "it would be, if asked";
  watch(h);
  EXPECT_TRUE(h.leases.fences.empty());
  EXPECT_EQ(h.executor.launched.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Rebalance and drain

// Another worker fenced this one (it counted it lost): its runs are the other's now.
TEST(DispatcherLost, AFencedWorkerStopsItsRunsAndWritesNothingMoreAboutThem) {
  Harness h("  slots: 1\n", "exactly-once");
  auto running = command("ok"), queued = command("ok");
  h.send(running);
  h.send(queued);
  h.started(running.run_id());
  const auto written = h.records.all.size() + h.txn.committed.size();
  h.dispatcher->abandon("fenced by another");
  ASSERT_EQ(h.executor.stops.size(), 1u);
  EXPECT_EQ(h.executor.stops[0].first, "*");
  h.finished(running.run_id(), Ending::kCancelled, 0, "fenced by another");
  EXPECT_EQ(h.records.all.size() + h.txn.committed.size(), written) << "nothing more written";
  EXPECT_TRUE(h.txn.units.empty());
  EXPECT_EQ(h.executor.launched.size(), 1u) << "the queued one never starts";
  EXPECT_TRUE(h.dispatcher->idle());
}

TEST(DispatcherRebalance, AssignedPartitionsAreRestoredFromTheRunsTopic) {
  Harness h;
  h.dispatcher->onAssigned({h.jobs(0), h.jobs(1)});
  EXPECT_THAT(h.attempts.restored, ElementsAre(0, 1));
}

TEST(DispatcherRebalance, QueuedCommandsOfARevokedPartitionAreDroppedForTheNextOwner) {
  Harness h("  slots: 1\n");
  auto running = command("ok"), queued = command("ok");
  h.send(running, 1);
  h.send(queued, 0);
  h.dispatcher->onRevoked({h.jobs(0)}, consumer::Revocation::kRevoked, [&] { h.settle(); });
  h.succeed(running.run_id());
  EXPECT_TRUE(h.eventsOf(queued.run_id()).empty());
  EXPECT_EQ(h.executor.launched.size(), 1u);
  EXPECT_THAT(h.attempts.forgotten, ElementsAre(0));
}

// The story: a rebalance took the partitions of long runs away. Claimed, they go on to
// their end on this worker, in both modes; nothing is stopped or handed over.
class ClaimedRuns : public ::testing::TestWithParam<std::string> {};

TEST_P(ClaimedRuns, AClaimedRunGoesOnAfterItsPartitionIsRevokedOrLostAndEndsHere) {
  for (auto how : {consumer::Revocation::kRevoked, consumer::Revocation::kLost}) {
    Harness h("  revoke_timeout: 1s\n", GetParam());
    auto c = command("ok");
    auto offset = h.send(c);
    h.started(c.run_id());
    EXPECT_EQ(h.doneOffset(), offset + 1) << "done with its claim, while it runs";
    int served = 0;
    h.dispatcher->onRevoked({h.jobs(0)}, how, [&] {
      ++served;
      h.clock.advance(milliseconds(200));
    });
    EXPECT_EQ(served, 0) << "nothing of the partition left to wait for";
    EXPECT_TRUE(h.executor.stops.empty());
    h.finished(c.run_id(), Ending::kExited, 0);
    auto t = h.terminalsOf(c.run_id());
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].state(), v1::SUCCEEDED);
    EXPECT_EQ(h.attempts.records[c.run_id()].state(), v1::SUCCEEDED) << "its end is written";
    EXPECT_TRUE(h.dispatcher->idle());
  }
}

TEST_P(ClaimedRuns, AClaimOnItsWayWhenThePartitionIsRevokedIsWaitedForAndTheRunGoesOn) {
  Harness h("", GetParam());
  h.auto_commit = false;
  h.starts.auto_ack = false;
  auto c = command("ok");
  auto offset = h.send(c);
  EXPECT_TRUE(h.executor.launched.empty());
  int served = 0;
  h.dispatcher->onRevoked({h.jobs(0)}, consumer::Revocation::kRevoked, [&] {
    if (++served == 1) {
      h.starts.ackAll();
      h.txn.commitAll();
    }
    h.settle();
    h.clock.advance(milliseconds(100));
  });
  EXPECT_EQ(served, 1);
  ASSERT_EQ(h.executor.launched.size(), 1u) << "claimed before the partition went: it runs here";
  auto& committed = GetParam() == "exactly-once" ? h.txn.offsets : h.source.committed;
  EXPECT_EQ(committed[h.jobs(0)], offset + 1) << "its offset went with the claim";
}

INSTANTIATE_TEST_SUITE_P(BothModes, ClaimedRuns,
                         ::testing::Values("at-least-once", "exactly-once"));

TEST(DispatcherRebalance, ExactlyOnceAClaimThatDidNotCommitBeforeTheRevocationIsNotRun) {
  Harness h("  revoke_timeout: 1s\n", "exactly-once");
  h.auto_commit = false;
  auto c = command("ok");
  h.send(c);
  h.dispatcher->onRevoked({h.jobs(0)}, consumer::Revocation::kRevoked,
                          [&] { h.clock.advance(milliseconds(200)); });
  h.txn.finishOne(events::TxnOutcome::Status::kAborted);  // its generation was gone
  h.settle();
  EXPECT_TRUE(h.txn.units.empty()) << "not written again: the next owner takes the command";
  EXPECT_TRUE(h.executor.launched.empty());
  EXPECT_TRUE(h.events().empty());
  EXPECT_TRUE(h.dispatcher->idle());
}

// Found by the broker-outage chaos test: the session ended during the outage (partitions lost)
// while a claim was on its way; the worker got its partitions back and read the command again.
// The new copy was skipped as "here already", the old one was not claimed (its transaction
// aborted), and the command was committed by the skip with nobody running it.
TEST(DispatcherRebalance, ACommandDeliveredAgainAfterItsPartitionWentBeforeItsClaimIsTakenAgain) {
  using Status = events::TxnOutcome::Status;
  Harness h("", "exactly-once");
  h.auto_commit = false;
  auto c = command("ok");
  auto offset = h.send(c);
  ASSERT_EQ(h.txn.units.size(), 1u) << "its claim, on its way";
  h.dispatcher->onRevoked({h.jobs(0)}, consumer::Revocation::kLost, [] {});
  h.dispatcher->onAssigned({h.jobs(0)});
  consumer::ConsumedMessage again{h.jobs(0), offset, "k", c.SerializeAsString(), {}, {}};
  h.dispatcher->onMessage(std::move(again));
  h.settle();
  h.txn.finishOne(Status::kAborted);  // the old claim: its generation is gone
  h.settle();
  EXPECT_EQ(h.deadLetters(), 0u) << "not refused as a duplicate";
  ASSERT_EQ(h.txn.units.size(), 1u) << "claimed again";
  EXPECT_EQ(h.txn.units.front().records.size(), 1u) << "a claim, not a skip's bare offset";
  h.txn.commitAll();
  h.settle();
  EXPECT_EQ(h.executor.launched.size(), 1u);
}

TEST(DispatcherRebalance, ACommandOfAClaimedRunDeliveredAgainIsSkippedNotRunTwice) {
  Harness h;
  auto c = command("ok");
  auto offset = h.send(c);
  h.started(c.run_id());
  h.dispatcher->onRevoked({h.jobs(0)}, consumer::Revocation::kLost, [] {});
  // Redelivered to us (the commit of its offset did not reach the broker).
  consumer::ConsumedMessage again{h.jobs(0), offset, "k", c.SerializeAsString(), {}, {}};
  h.dispatcher->onMessage(std::move(again));
  h.settle();
  EXPECT_EQ(h.executor.launched.size(), 1u);
  EXPECT_EQ(h.deadLetters(), 0u);
  h.finished(c.run_id(), Ending::kExited, 0);
  EXPECT_EQ(h.terminalsOf(c.run_id()).size(), 1u);
  EXPECT_EQ(h.doneOffset(), offset + 1);
}

TEST(DispatcherDrain, DrainingDropsQueuedCommandsUncommittedAndLetsRunningOnesFinish) {
  Harness h("  slots: 1\n");
  auto running = command("ok"), queued = command("ok");
  h.send(running);
  h.send(queued);
  h.dispatcher->beginDrain();
  EXPECT_TRUE(h.source.paused());
  EXPECT_FALSE(h.dispatcher->idle());
  h.succeed(running.run_id());
  EXPECT_TRUE(h.dispatcher->idle());
  EXPECT_TRUE(h.eventsOf(queued.run_id()).empty());
  h.dispatcher->close();
  EXPECT_EQ(h.source.committed[h.jobs(0)], 1) << "up to the queued one, which another worker runs";
}

TEST(DispatcherDrain, NothingNewIsTakenWhileDraining) {
  Harness h;
  h.dispatcher->beginDrain();
  h.send(command("ok"));
  EXPECT_TRUE(h.executor.launched.empty());
  EXPECT_TRUE(h.dispatcher->idle());
}

TEST(DispatcherHold, AHeldWorkerStartsNothingKeepsWhatArrivesAndLosesNoOffset) {
  Harness h("  slots: 2\n");
  auto running = command("ok"), waiting = command("ok");
  h.send(running);
  h.dispatcher->holdStarts();
  EXPECT_TRUE(h.source.paused());
  h.send(waiting);  // fetched before the pause took effect
  EXPECT_EQ(h.executor.find(waiting.run_id()), nullptr) << "a free slot, but held";
  EXPECT_EQ(h.dispatcher->queued(), 1u);
  h.succeed(running.run_id());
  EXPECT_EQ(h.executor.find(waiting.run_id()), nullptr) << "a run ending does not start another";
  EXPECT_EQ(h.doneOffset(), 1) << "the waiting command stays uncommitted";

  h.dispatcher->releaseStarts();
  h.settle();
  EXPECT_FALSE(h.source.paused());
  ASSERT_NE(h.executor.find(waiting.run_id()), nullptr) << "released: it starts";
  h.succeed(waiting.run_id());
  EXPECT_EQ(h.doneOffset(), 2);
}

TEST(DispatcherReload, NewCommandsUseTheNewTemplatesRunsAdmittedBeforeKeepTheirs) {
  Harness h("  slots: 1\n");
  auto running = command("ok"), waiting = command("ok");
  h.send(running);
  h.send(waiting);
  auto templates = h.config.templates;
  templates.erase("ok");
  h.dispatcher->setTemplates(templates);
  h.succeed(running.run_id());
  ASSERT_NE(h.executor.find(waiting.run_id()), nullptr)
      << "admitted before the reload: it runs with the template it was admitted under";
  auto after = command("ok");
  h.send(after);
  EXPECT_THAT(h.statesOf(after.run_id()), ElementsAre(v1::REJECTED))
      << "the template is gone for commands that come now";
}

// Scale-in: a run still running when the drain timeout passes is released, not cancelled. Its
// attempt ends FAILED (retrying) and its end record says released and carries the command, so
// that the owner of its partition runs it again at once.
TEST(DispatcherDrain, ARunStillRunningAtTheDrainTimeoutIsReleasedToRunAgainElsewhere) {
  for (const std::string delivery : {"at-least-once", "exactly-once"}) {
    Harness h("", delivery);
    auto c = command("ok");
    c.set_recipe("the recipe");
    h.send(c);
    h.started(c.run_id());
    h.dispatcher->beginDrain();
    h.dispatcher->stopAll("drain timeout exceeded");
    h.finished(c.run_id(), Ending::kCancelled, 0, "drain timeout exceeded");
    auto t = h.terminalsOf(c.run_id());
    ASSERT_EQ(t.size(), 1u) << delivery;
    EXPECT_EQ(t[0].state(), v1::FAILED);
    EXPECT_TRUE(t[0].retrying());
    EXPECT_THAT(t[0].message(), AllOf(HasSubstr("released"), HasSubstr("attempt 2")));
    const auto& end = h.attempts.records[c.run_id()];
    EXPECT_TRUE(end.released());
    EXPECT_EQ(end.releases(), 1u);
    v1::JobCommand carried;
    ASSERT_TRUE(carried.ParseFromString(end.command()));
    EXPECT_EQ(carried.recipe(), "the recipe") << "run again from it, recipe and all";
    EXPECT_TRUE(h.dispatcher->idle());
  }
}

TEST(DispatcherDrain, StopAllStopsEveryRun) {
  Harness h;
  h.send(command("ok"));
  h.dispatcher->stopAll("shutting down");
  ASSERT_EQ(h.executor.stops.size(), 1u);
  EXPECT_EQ(h.executor.stops[0].first, "*");
  EXPECT_EQ(h.executor.causes[0], runner::StopCause::kShutdown);
}

// Who stopped a run is told by the outcome's stop cause, not by its message: a cancel that comes
// after the drain already stopped the run does not claim its end.
TEST(DispatcherDrain, ACancelAfterTheDrainStoppedTheRunDoesNotClaimItsEnd) {
  Harness h;
  auto c = command("ok");
  h.send(c);
  h.started(c.run_id());
  h.dispatcher->stopAll("shutting down");
  h.dispatcher->onControl(controlMessage(h, c.run_id()));
  h.finished(c.run_id(), Ending::kCancelled, 0, "shutting down");
  auto t = h.terminalsOf(c.run_id());
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].cancelled_by(), "") << "the drain stopped it, not alice";
  EXPECT_THAT(h.statesOf(c.run_id()), ::testing::Contains(v1::NOTICE));
}

// ---------------------------------------------------------------------------------------------
// Completion

TEST(CompletionAtLeastOnce, AStartedRunsOffsetIsDoneOnceItsClaimIsAcknowledged) {
  Harness h;
  h.starts.auto_ack = false;
  auto c = command("sleep", {{"secs", "600"}});
  auto offset = h.send(c);
  EXPECT_LE(h.doneOffset(), offset) << "claim not acknowledged yet: not past its offset";
  h.starts.ackAll();
  h.settle();
  h.started(c.run_id());
  EXPECT_EQ(h.doneOffset(), offset + 1) << "done while it runs";
}

TEST(CompletionAtLeastOnce, ACommandThatNeverStartsIsDoneOnceItsEndIsAcknowledged) {
  Harness h;
  h.records.auto_ack = false;
  auto offset = h.send(command("nope"));
  EXPECT_LE(h.doneOffset(), offset);
  h.records.ackAll();
  h.settle();
  h.records.ackAll();  // the end record, written after the terminal event's acknowledgement
  h.settle();
  EXPECT_EQ(h.doneOffset(), offset + 1);
}

TEST(CompletionAtLeastOnce, TheEndRecordFollowsTheTerminalEvent) {
  Harness h;
  auto c = command("ok");
  h.send(c);
  h.succeed(c.run_id());
  ASSERT_TRUE(h.attempts.records.contains(c.run_id()));
  EXPECT_EQ(h.attempts.records[c.run_id()].state(), v1::SUCCEEDED);
}

TEST(CompletionAtLeastOnce, OffsetsCommitAsTheLowWatermarkOfClaimsAndWaitingCommands) {
  Harness h("  slots: 1\n");
  auto a = command("ok"), b = command("ok");
  h.send(a);
  h.send(b);
  EXPECT_EQ(h.doneOffset(), 1) << "a is claimed; b (offset 1) waits for a slot";
  h.succeed(a.run_id());
  EXPECT_EQ(h.doneOffset(), 2) << "b is claimed now";
}

TEST(CompletionExactlyOnce, TheClaimCommitsWithTheOffsetAndTheEndLaterWithoutIt) {
  Harness h("", "exactly-once");
  h.auto_commit = false;
  auto c = command("ok");
  auto offset = h.send(c);
  ASSERT_EQ(h.txn.units.size(), 1u);
  {
    const auto& claim = h.txn.units.front();
    ASSERT_EQ(claim.records.size(), 1u);
    EXPECT_EQ(claim.records[0].topic, "test.runs");
    v1::RunRecord r;
    ASSERT_TRUE(r.ParseFromString(claim.records[0].value));
    EXPECT_EQ(r.state(), v1::STARTED);
    v1::JobCommand carried;
    ASSERT_TRUE(carried.ParseFromString(r.command())) << "the claim carries its command";
    EXPECT_EQ(carried.run_id(), c.run_id());
    EXPECT_EQ(claim.offsets.at(h.jobs(0)), offset + 1);
  }
  EXPECT_TRUE(h.executor.launched.empty()) << "the process waits for its claim";
  h.txn.commitAll();
  h.settle();
  h.succeed(c.run_id());
  ASSERT_EQ(h.txn.units.size(), 1u);
  const auto& end = h.txn.units.front();
  std::vector<std::string> topics;
  for (const auto& r : end.records) topics.push_back(r.topic);
  EXPECT_THAT(topics, ElementsAre("test.events", "test.lineage", "test.runs"));
  EXPECT_TRUE(end.offsets.empty());
  EXPECT_FALSE(h.dispatcher->idle());
  h.txn.commitAll();
  h.settle();
  EXPECT_TRUE(h.dispatcher->idle());
  EXPECT_EQ(h.terminalsOf(c.run_id()).size(), 1u);
}

TEST(CompletionExactlyOnce, ARejectedCommandsDeadLetterGoesInItsTransaction) {
  Harness h("", "exactly-once");
  h.auto_commit = false;
  h.send(command("nope"));
  ASSERT_EQ(h.txn.units.size(), 1u);
  std::vector<std::string> topics;
  for (const auto& r : h.txn.units.front().records) topics.push_back(r.topic);
  EXPECT_THAT(topics, ElementsAre("test.dlq", "test.events", "test.runs"));
  EXPECT_EQ(h.records.all.size(), 0u) << "nothing of it outside the transaction";
}

TEST(CompletionExactlyOnce, AnAbortedClaimIsWrittenAgainWithTheGroupOfNowAndCommitsOnce) {
  Harness h("", "exactly-once");
  h.auto_commit = false;
  auto c = command("ok");
  auto offset = h.send(c);
  ASSERT_EQ(h.txn.units.size(), 1u);
  h.txn.finishOne(events::TxnOutcome::Status::kAborted);
  h.settle();
  EXPECT_EQ(h.source.refreshes, 1) << "the group identity is read afresh";
  ASSERT_EQ(h.txn.units.size(), 1u) << "written again";
  EXPECT_EQ(h.txn.units.front().offsets.at(h.jobs(0)), offset + 1);
  h.txn.commitAll();
  h.settle();
  h.succeed(c.run_id());
  h.txn.finishOne(events::TxnOutcome::Status::kAborted);  // the end, this time
  h.settle();
  EXPECT_EQ(h.source.refreshes, 1) << "no offset in the end: nothing to refresh";
  h.txn.commitAll();
  h.settle();
  EXPECT_EQ(h.terminalsOf(c.run_id()).size(), 1u);
  EXPECT_TRUE(h.dispatcher->idle());
}

// Found by the broker-outage chaos test (a command committed without its run): two claims whose
// transaction aborted; the first came back and was written again before the second's abort did,
// its offsets counting the second as done. The second's partition then went away: its command
// was committed, and nobody ran it.
TEST(CompletionExactlyOnce, AfterAnAbortNoUnitCountsAsDoneARunWhoseAbortHasNotComeBack) {
  using Status = events::TxnOutcome::Status;
  Harness h("  slots: 2\n", "exactly-once");
  h.auto_commit = false;
  auto x = command("ok"), y = command("ok");
  h.send(x);  // offset 0
  h.send(y);  // offset 1
  ASSERT_EQ(h.txn.units.size(), 2u);
  h.txn.finishOne(Status::kAborted);  // x's; y's abort comes back later
  h.settle();
  EXPECT_EQ(h.txn.units.size(), 1u) << "x waits until y's abort is back";
  h.txn.finishOne(Status::kAborted);  // y's
  h.settle();
  ASSERT_EQ(h.txn.units.size(), 2u) << "both written again";
  EXPECT_EQ(h.txn.units[0].offsets.at(h.jobs(0)), 1) << "x's offsets do not count y as done";
  h.txn.finishOne(Status::kCommitted);
  h.settle();
  h.dispatcher->onRevoked({h.jobs(0)}, consumer::Revocation::kLost, [] {});
  h.txn.finishOne(Status::kAborted);  // y's claim never commits: the next owner takes y
  h.settle();
  EXPECT_EQ(h.txn.offsets.at(h.jobs(0)), 1) << "y's command is not committed without it";
  EXPECT_EQ(h.executor.launched.size(), 1u);
}

TEST(CompletionExactlyOnce, ARefusedClaimEndsTheRunFailedWithoutStartingAndItsOffsetDone) {
  Harness h("", "exactly-once");
  h.auto_commit = false;
  auto c = command("ok");
  auto offset = h.send(c);
  h.txn.finishOne(events::TxnOutcome::Status::kRejected);
  h.settle();
  h.txn.commitAll();
  h.settle();
  EXPECT_TRUE(h.executor.launched.empty());
  auto t = h.terminalsOf(c.run_id());
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state(), v1::FAILED);
  EXPECT_THAT(t[0].message(), HasSubstr("claim"));
  EXPECT_EQ(h.txn.offsets.at(h.jobs(0)), offset + 1);
  EXPECT_TRUE(h.dispatcher->idle());
}

TEST(CompletionExactlyOnce, ARejectedEndIsNotWrittenAgain) {
  Harness h("", "exactly-once");
  auto c = command("ok");
  h.send(c);
  h.auto_commit = false;
  h.succeed(c.run_id());
  h.txn.finishOne(events::TxnOutcome::Status::kRejected);
  h.settle();
  EXPECT_TRUE(h.txn.units.empty());
  EXPECT_TRUE(h.dispatcher->idle());
}

TEST(CompletionExactlyOnce, StartedAndLogEventsAreNotHeldForTheTransaction) {
  Harness h("", "exactly-once");
  h.auto_commit = false;
  auto c = command("ok");
  h.send(c);
  h.txn.commitAll();  // its claim
  h.settle();
  h.started(c.run_id());
  std::vector<v1::RunState> outside;
  for (const auto& r : h.records.all) {
    v1::RunEvent e;
    if (r.topic == "test.events" && e.ParseFromString(r.value)) outside.push_back(e.state());
  }
  EXPECT_THAT(outside, ElementsAre(v1::STARTED));
}

}  // namespace
}  // namespace outpost::dispatch::test
