// The owner loop (owner_loop.h) on the fakes of the dispatcher's ports: the inbox, the turn, the
// stop and the drain, quiesce(); and, for every source of callbacks (the secret resolver, the
// lineage HTTP transport, transactions, the supervisor, delivery reports), that a callback still
// in flight when the owner has gone touches nothing but the inbox. Those tests are meant to run
// under AddressSanitizer (scripts/test builds them so): a callback that reached into the destroyed
// dispatcher is a heap-use-after-free there.
#include "outpost/dispatch/owner_loop.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes.h"
#include "outpost/secrets/async_resolver.h"
#include "outpost/secrets/resolver.h"

namespace outpost::dispatch::test {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;

// Steps that take nothing, let the test act at each turn, and move the manual clock on.
struct ScriptedSteps final : OwnerLoop::Steps {
  ManualClock& clock;
  std::function<void()> each_turn;
  bool done = false;
  int turns = 0;
  bool drained = false;
  ScriptedSteps(ManualClock& c, std::function<void()> f) : clock(c), each_turn(std::move(f)) {}
  void take(milliseconds wait) override {
    ++turns;
    clock.advance(wait);
    if (each_turn) each_turn();
  }
  bool finished() const override { return done; }
  void draining() override { drained = true; }
};

TEST(Inbox, RunsClosuresInOrderWithWhatTheyPost) {
  Inbox inbox;
  std::vector<int> ran;
  inbox.post([&] {
    ran.push_back(1);
    inbox.post([&] { ran.push_back(3); });
  });
  inbox.post([&] { ran.push_back(2); });
  inbox.serve();
  EXPECT_THAT(ran, ElementsAre(1, 2, 3));
}

TEST(Inbox, WakesOnTheFirstOfABurstAndFromAnyThread) {
  Inbox inbox;
  int wakes = 0;
  inbox.setWake([&] { ++wakes; });
  std::thread([&] {
    inbox.post([] {});
    inbox.post([] {});
  }).join();
  EXPECT_EQ(wakes, 1);
  EXPECT_TRUE(inbox.wait(milliseconds(0)));
  inbox.serve();
  EXPECT_FALSE(inbox.wait(milliseconds(0)));
  inbox.post([] {});
  EXPECT_EQ(wakes, 2);
  EXPECT_TRUE(inbox.isOwnerThread());
}

TEST(Inbox, DropsWhatWaitsAndWhatComesOnceClosed) {
  Inbox inbox;
  bool ran = false;
  inbox.post([&] { ran = true; });
  inbox.close();
  inbox.post([&] { ran = true; });
  inbox.serve();
  EXPECT_FALSE(ran);
  EXPECT_EQ(inbox.dropped(), 2u);
}

TEST(OwnerLoop, QuiesceStopsTheSourcesInTheOrderAddedThenClosesTheInbox) {
  ManualClock clock;
  OwnerLoop loop(clock);
  std::vector<std::string> stopped;
  bool ran = false;
  loop.addSource("first", [&] { stopped.push_back("first"); });
  loop.addSource("second", [&] {
    stopped.push_back("second");
    loop.inbox().post([&] { ran = true; });  // a last callback while it stops
  });
  loop.quiesce();
  loop.quiesce();  // once
  EXPECT_THAT(stopped, ElementsAre("first", "second"));
  loop.inbox().serve();
  EXPECT_FALSE(ran) << "what a source posted while stopping ran after the quiesce";
  EXPECT_TRUE(loop.quiesced());
}

TEST(OwnerLoop, EndsWhenTheInputIsDoneAndEveryRunHasEnded) {
  ManualClock clock;
  OwnerLoop loop(clock);
  Harness h("", "at-least-once", {.poster = &loop.inbox()});
  const auto c = command("ok");
  ScriptedSteps steps(clock, nullptr);
  steps.each_turn = [&] {
    if (steps.turns == 1) {
      h.send(c);  // launched once the loop serves the start record's acknowledgement
    } else if (steps.turns == 2) {
      h.executor.start(c.run_id());
      runner::RunOutcome exited;
      exited.ending = runner::RunOutcome::Ending::kExited;
      exited.exit_code = 0;
      h.executor.finish(c.run_id(), exited);
      steps.done = true;
    }
  };
  std::atomic<bool> stop{false};
  EXPECT_TRUE(loop.run(*h.dispatcher, steps, stop, DrainPolicy{}));
  EXPECT_FALSE(steps.drained);
  EXPECT_TRUE(std::ranges::any_of(h.eventsOf(c.run_id()),
                                  [](const auto& e) { return e.state() == v1::SUCCEEDED; }));
}

TEST(OwnerLoop, AStopDrainsThenStopsWhatStillRunsAtTheDrainTimeout) {
  ManualClock clock;
  OwnerLoop loop(clock);
  Harness h("", "at-least-once", {.poster = &loop.inbox()});
  const auto c = command("ok");
  h.send(c);
  loop.inbox().serve();  // the start record's acknowledgement: the launch
  h.executor.start(c.run_id());
  std::atomic<bool> stop{true};
  ScriptedSteps steps(clock, nullptr);
  steps.each_turn = [&] {
    // The executor ends the run as a supervisor would once it is told to stop everything.
    if (!h.executor.stops.empty() && h.executor.find(c.run_id())) {
      runner::RunOutcome o;
      o.ending = runner::RunOutcome::Ending::kCancelled;
      o.message = h.executor.stops.back().second;
      h.executor.finish(c.run_id(), o);
    }
  };
  const auto began = clock.steadyNow();
  EXPECT_TRUE(loop.run(*h.dispatcher, steps, stop,
                       DrainPolicy{.drain_timeout = milliseconds(1000),
                                   .stop_bound = milliseconds(5000),
                                   .stop_reason = "shutting down"}));
  EXPECT_TRUE(steps.drained);
  ASSERT_THAT(h.executor.stops, ElementsAre(std::pair<std::string, std::string>{"*", "shutting down"}));
  EXPECT_GE(clock.steadyNow() - began, milliseconds(1000)) << "stopped before the drain timeout";
  // Claimed and stopped at the drain timeout: released, to run again elsewhere.
  EXPECT_TRUE(std::ranges::any_of(h.eventsOf(c.run_id()), [](const auto& e) {
    return e.state() == v1::FAILED && e.retrying();
  }));
}

TEST(OwnerLoop, GivesUpOnRunsThatDoNotEndWithinTheStopBound) {
  ManualClock clock;
  OwnerLoop loop(clock);
  Harness h("", "at-least-once", {.poster = &loop.inbox()});
  const auto c = command("ok");
  h.send(c);
  loop.inbox().serve();  // the start record's acknowledgement: the launch
  h.executor.start(c.run_id());
  std::atomic<bool> stop{true};
  ScriptedSteps steps(clock, nullptr);  // the run never ends
  EXPECT_FALSE(loop.run(*h.dispatcher, steps, stop,
                        DrainPolicy{.drain_timeout = milliseconds(0),
                                    .stop_bound = milliseconds(2000),
                                    .stop_reason = "interrupted"}));
  EXPECT_EQ(h.executor.stops.size(), 1u);
  EXPECT_LE(steps.turns, 25) << "the loop went on past its bound";
}

// --- Callbacks in flight when the owner has gone (run these under ASan).

// A provider whose fetch waits until the test releases it.
class HeldProvider final : public secrets::SecretProvider {
 public:
  std::string name() const override { return "env"; }
  std::expected<secrets::FetchedSecret, secrets::SecretError> fetch(
      const secrets::SecretRef&) override {
    std::unique_lock lock(mutex_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return released_; });
    return secrets::FetchedSecret{secrets::SecretValue("s3cret"), ""};
  }
  void waitEntered() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return entered_; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool entered_ = false, released_ = false;
};

// The real AsyncSecretResolver as the dispatcher's secret source.
class AsyncSecrets final : public SecretSource {
 public:
  explicit AsyncSecrets(secrets::AsyncSecretResolver& async) : async_(async) {}
  void resolve(std::vector<secrets::SecretRef> refs,
               std::function<void(ResolvedSecrets)> done) override {
    async_.resolve(std::move(refs), std::move(done));
  }
  std::string mask(std::string_view text) const override { return std::string(text); }
  std::unique_ptr<StreamRedactor> outputRedactor() const override { return nullptr; }

 private:
  secrets::AsyncSecretResolver& async_;
};

TEST(CallbackLifetime, ASecretFetchThatEndsAfterTheOwnerWentOnlyPostsToTheInbox) {
  ManualClock clock;
  OwnerLoop loop(clock);
  auto provider = std::make_shared<HeldProvider>();
  secrets::SecretResolver resolver({{"env", provider}}, {"env"}, "", milliseconds(60'000),
                                   milliseconds(60'000), clock);
  secrets::AsyncSecretResolver async(resolver, 1);
  loop.addSource("secret resolver", [&] { async.shutdown(); });
  AsyncSecrets source(async);
  auto h = std::make_unique<Harness>("", "at-least-once",
                                     Harness::Parts{.poster = &loop.inbox(), .secrets = &source});
  auto c = command("secret");
  (*c.mutable_env())["DB_PASS"] = "${DB_PASSWORD}";
  h->send(c);
  provider->waitEntered();
  h.reset();  // the owner goes while the fetch is in flight
  provider->release();
  loop.quiesce();  // joins the resolver's thread: its callback has run
  EXPECT_EQ(loop.inbox().dropped(), 1u) << "the resolved secrets were not handed to the inbox";
}

TEST(CallbackLifetime, ATransactionReportedAfterTheOwnerWentOnlyPostsToTheInbox) {
  ManualClock clock;
  OwnerLoop loop(clock);
  auto h = std::make_unique<Harness>("", "exactly-once", Harness::Parts{.poster = &loop.inbox()});
  h->auto_commit = false;
  const auto c = command("ok");
  h->send(c);
  h->txn.commitAll();    // its claim
  loop.inbox().serve();  // launched
  h->executor.start(c.run_id());
  runner::RunOutcome exited;
  exited.ending = runner::RunOutcome::Ending::kExited;
  exited.exit_code = 0;
  h->executor.finish(c.run_id(), exited);
  loop.inbox().serve();  // ended: its terminal event and end record go in a transaction
  h->dispatcher->tick();
  ASSERT_FALSE(h->txn.units.empty()) << "the run's end was not submitted";
  auto unit = std::move(h->txn.units.front());
  h->txn.units.pop_front();
  h->dispatcher.reset();
  std::thread([&] { unit.done(events::TxnOutcome{events::TxnOutcome::Status::kCommitted, ""}); })
      .join();
  loop.quiesce();
  EXPECT_EQ(loop.inbox().dropped(), 1u);
}

TEST(CallbackLifetime, RunCallbacksAfterTheOwnerWentOnlyPostToTheInbox) {
  ManualClock clock;
  OwnerLoop loop(clock);
  auto h = std::make_unique<Harness>("", "at-least-once", Harness::Parts{.poster = &loop.inbox()});
  h->send(command("ok"));
  loop.inbox().serve();
  ASSERT_EQ(h->executor.launched.size(), 1u);
  auto callbacks = h->executor.launched.front().callbacks;
  h->dispatcher.reset();
  std::thread([&] {
    callbacks.on_started(42, std::chrono::system_clock::time_point{});
    callbacks.on_log(runner::LogBatch{});
    callbacks.on_heartbeat(runner::Heartbeat{});
    callbacks.on_finished(runner::RunOutcome{});
  }).join();
  loop.quiesce();
  EXPECT_EQ(loop.inbox().dropped(), 4u);
}

TEST(CallbackLifetime, DeliveryReportsAfterTheOwnerWentOnlyPostToTheInbox) {
  ManualClock clock;
  OwnerLoop loop(clock);
  auto h = std::make_unique<Harness>("", "at-least-once", Harness::Parts{.poster = &loop.inbox()});
  h->records.auto_ack = false;
  h->starts.auto_ack = false;
  h->send(command("ok"));
  auto pending = std::move(h->starts.unacked);
  ASSERT_FALSE(pending.empty());
  h->dispatcher.reset();
  std::thread([&] {
    for (auto& done : pending) done(events::DeliveryReport{});
  }).join();
  loop.quiesce();
  EXPECT_EQ(loop.inbox().dropped(), pending.size());
}

// The lineage HTTP transport's port, answering on a thread of its own when the test says.
class HeldLineage final : public LineageEndpoint {
 public:
  void send(std::string, std::function<void(const lineage::LineageDelivery&)> done) override {
    pending.push_back(std::move(done));
  }
  std::vector<std::function<void(const lineage::LineageDelivery&)>> pending;
};

TEST(CallbackLifetime, ALineageDeliveryAfterTheOwnerWentOnlyPostsToTheInbox) {
  ManualClock clock;
  OwnerLoop loop(clock);
  HeldLineage lineage;
  auto h = std::make_unique<Harness>(
      "", "at-least-once",
      Harness::Parts{.poster = &loop.inbox(), .lineage_http = &lineage});
  auto c = command("ok");
  h->send(c);
  loop.inbox().serve();
  h->executor.start(c.run_id());
  loop.inbox().serve();
  ASSERT_FALSE(lineage.pending.empty()) << "no lineage record was sent over HTTP";
  h->dispatcher.reset();
  std::thread([&] {
    for (auto& done : lineage.pending) done(lineage::LineageDelivery{});
  }).join();
  loop.quiesce();
  EXPECT_EQ(loop.inbox().dropped(), lineage.pending.size());
}

}  // namespace
}  // namespace outpost::dispatch::test
