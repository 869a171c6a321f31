// The delivery guarantees under faults, against the real broker with real `outpost run` workers:
// every submitted command ends in exactly one terminal event and has its offset committed, whatever
// happens to the workers or the broker. `outpost ledger` counts; the tests assert on its figures.
//
// Scale with OUTPOST_CHAOS_* (printed at the start of each test): JOBS (2000; the other tests take
// fractions of it), WORKERS (3), SLOTS (4), JOB_SECS (0.2, the length of a job), RATE (25 commands
// a second in the kill test), KILL_EVERY_MS (8000, a little over the 6 s session timeout so the
// group can settle between kills), MAX_KILLS (20), BROKER_DOWN_S (20), MAX_ATTEMPTS (3),
// DEADLINE_S (900, how long a test waits for its runs), POISON_DEADLINE_S (300), LOG_LEVEL (warn),
// ASSIGNOR (librdkafka's default, eager; e.g. cooperative-sticky).
// A quick variant: OUTPOST_CHAOS_JOBS=200 OUTPOST_CHAOS_RATE=10.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "chaos.h"
#include "scrape.h"

namespace outpost::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;


Clock::time_point deadline() {
  return Clock::now() + seconds(knob("DEADLINE_S", 900));
}

// Waits until at least `fraction` of what the load submitted (once it is done) has ended.
void waitForFraction(RunWatch& watch, const Load& load, double fraction, Clock::time_point until) {
  while (Clock::now() < until) {
    watch.poll();
    auto runs = load.runIds();
    if (load.finished() && static_cast<double>(watch.endedOf(runs)) >= fraction * runs.size())
      return;
  }
}


// (1) Workers SIGKILLed at random every few seconds and restarted while they work through the
// jobs: nothing lost, nothing ended twice. Re-runs are expected (at-least-once) and printed.
TEST(Chaos, WorkersKilledAtRandomLoseNothingAndEndEveryRunOnce) {
  const long jobs = knob("JOBS", 2000);
  const int size = static_cast<int>(knob("WORKERS", 3));
  const auto kill_every = milliseconds(knob("KILL_EVERY_MS", 8000));
  auto topics = createTopics("chaos-kill", 2 * size);
  Fleet fleet(topics, size, chaosOptions(uniqueName("chaos-kill")));
  ASSERT_TRUE(fleet.waitUntilStable());

  RunWatch watch(topics.events);
  // Paced, so that the kills fall all through the load (80 s at the default scale).
  Load load(topics, sleeper(), static_cast<std::size_t>(jobs),
            static_cast<double>(knob("RATE", 25)));
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(0, size - 1);
  std::uniform_int_distribution<long> jitter(kill_every.count() * 3 / 4,
                                             kill_every.count() * 5 / 4);
  // The first kill early, so that even a small load sees one.
  auto next_kill = Clock::now() + milliseconds(jitter(rng) / 4);
  // Kills stop after MAX_KILLS, so that the group can always settle and finish.
  const long max_kills = knob("MAX_KILLS", 20);
  int kills = 0;
  bool all_ended = waitForAllEnded(watch, load, deadline(), [&] {
    if (Clock::now() < next_kill || kills >= max_kills) return;
    fleet.crashAndRestart(pick(rng));
    ++kills;
    next_kill = Clock::now() + milliseconds(jitter(rng));
  });
  load.stop();
  std::cout << "[chaos] " << kills << " worker(s) killed" << std::endl;
  EXPECT_TRUE(all_ended) << "not every run ended before the deadline";
  EXPECT_EQ(fleet.terminateAll(), 0);

  auto l = ledger(topics, fleet.group());
  EXPECT_GT(kills, 0);
  EXPECT_EQ(figure(l, "submitted"), jobs);
  EXPECT_EQ(figure(l, "lost"), 0);
  EXPECT_EQ(figure(l, "duplicate_terminal"), 0);
  std::cout << "[chaos] re-runs: " << figure(l, "reruns") << " runs, "
            << figure(l, "rerun_extra_starts") << " extra starts" << std::endl;
  if (HasFailure()) std::cout << fleet.logTails();
}

// (3) Every worker restarted in turn with SIGTERM while jobs keep coming: a drain hands over
// cleanly, so nothing runs twice (and nothing is lost or ended twice).
TEST(Chaos, RollingRestartWithSigtermRunsNothingTwice) {
  const long jobs = knob("JOBS", 2000) / 2;
  const int size = static_cast<int>(knob("WORKERS", 3));
  auto topics = createTopics("chaos-roll", 2 * size);
  Fleet fleet(topics, size, chaosOptions(uniqueName("chaos-roll")));
  ASSERT_TRUE(fleet.waitUntilStable());

  RunWatch watch(topics.events);
  // Paced, so that the load lasts through the restarts (about 20 s at the default scale).
  Load load(topics, sleeper(), static_cast<std::size_t>(jobs), static_cast<double>(jobs) / 20.0);
  auto until = deadline();
  for (int i = 0; i < size; ++i) {
    std::this_thread::sleep_for(seconds(2));
    EXPECT_EQ(fleet.terminateAndRestart(i), 0) << "worker " << i << " did not drain cleanly";
    EXPECT_TRUE(fleet.waitUntilStable()) << "after restarting worker " << i;
  }
  bool load_outlasted = !load.finished();
  bool all_ended = waitForAllEnded(watch, load, until);
  EXPECT_TRUE(all_ended) << "not every run ended before the deadline";
  if (!load_outlasted) std::cout << "[chaos] note: the load ended before the last restart\n";
  EXPECT_EQ(fleet.terminateAll(), 0);

  auto l = ledger(topics, fleet.group());
  EXPECT_EQ(figure(l, "submitted"), jobs);
  EXPECT_EQ(figure(l, "reruns"), 0);
  EXPECT_EQ(figure(l, "lost"), 0);
  EXPECT_EQ(figure(l, "duplicate_terminal"), 0);
  if (HasFailure()) std::cout << fleet.logTails();
}

// (4) A job whose run kills its worker every time (SIGKILL to the worker, its parent process):
// after max_attempts attempts it ends FAILED, and every other job ends SUCCEEDED exactly once.
// The workers are restarted whenever they die, as a supervisor would.
TEST(Chaos, AJobThatKillsItsWorkerEndsFailedAfterMaxAttemptsAndSparesTheOthers) {
  const long others = std::max(2L, knob("JOBS", 2000) / 20);
  const long max_attempts = knob("MAX_ATTEMPTS", 3);
  const int size = static_cast<int>(knob("WORKERS", 3));
  auto topics = createTopics("chaos-poison", 2 * size);
  auto options = chaosOptions(uniqueName("chaos-poison"));
  // The worker runs the template directly, so $PPID is the worker; its name is checked so that
  // nothing else is ever killed. It reports exit 3 if it finds no worker to kill.
  options.templates = standardTemplates() + R"(  poison:
    argv: [sh, -c, "w=$PPID; if [ \"$(cat /proc/$w/comm)\" = outpost ]; then echo killing worker $w; kill -9 $w; sleep 5; fi; echo no worker to kill; exit 3"]
    allow_shell: true
    recipe: none
)";
  Fleet fleet(topics, size, options);
  ASSERT_TRUE(fleet.waitUntilStable());

  auto poison = makeCommand("poison");
  poison.set_max_attempts(static_cast<std::uint32_t>(max_attempts));
  RunWatch watch(topics.events);
  long n = 0;
  // Half the others before the poison, half after it.
  Load load(
      topics,
      [&n, others, poison, make = sleeper()]() mutable {
        return n++ == others / 2 ? poison : make();
      },
      static_cast<std::size_t>(others + 1));
  int deaths = 0;
  bool all_ended =
      waitForAllEnded(watch, load, Clock::now() + seconds(knob("POISON_DEADLINE_S", 300)),
                      [&] { deaths += fleet.restartExited(); });
  load.stop();
  std::cout << "[chaos] the workers died " << deaths << " time(s)" << std::endl;
  EXPECT_TRUE(all_ended) << "not every run ended before the deadline (the poison ended: "
                         << watch.ended(poison.run_id()) << ")";
  EXPECT_EQ(fleet.terminateAll(), 0);

  auto l = ledger(topics, fleet.group(), {poison.run_id()});
  const nlohmann::json::json_pointer at("/runs/" + poison.run_id());
  EXPECT_GE(deaths, 1) << "the poison job never killed its worker";
  // One FAILED per attempt: each lost one ended by the next worker, the last given up.
  auto ends = l.value(at / "terminal", nlohmann::json::array());
  EXPECT_EQ(static_cast<long>(ends.size()), max_attempts) << ends.dump();
  for (const auto& state : ends) EXPECT_EQ(state, "FAILED") << ends.dump();
  EXPECT_LE(l.value(at / "starts", 0), max_attempts);
  EXPECT_EQ(figure(l, "submitted"), others + 1);
  EXPECT_EQ(figure(l, "lost"), 0);
  EXPECT_EQ(figure(l, "duplicate_terminal"), 0);
  EXPECT_EQ(l.value(nlohmann::json::json_pointer("/terminal_by_state/SUCCEEDED"), 0L), others)
      << "the other jobs";
  std::cout << "[chaos] re-runs: " << figure(l, "reruns") << " runs, "
            << figure(l, "rerun_extra_starts") << " extra starts" << std::endl;
  if (HasFailure()) std::cout << fleet.logTails();
}

// (2) The broker stopped for a while under load and started again (same data, same address):
// nothing lost, nothing ended twice. Last, since it takes the broker away from everything.
TEST(Chaos, BrokerStoppedUnderLoadLosesNothingAndEndsEveryRunOnce) {
  const long jobs = knob("JOBS", 2000) / 4;
  const int size = static_cast<int>(knob("WORKERS", 3));
  const auto down = seconds(knob("BROKER_DOWN_S", 20));
  auto topics = createTopics("chaos-broker", 2 * size);
  Fleet fleet(topics, size, chaosOptions(uniqueName("chaos-broker")));
  ASSERT_TRUE(fleet.waitUntilStable());

  RunWatch watch(topics.events);
  Load load(topics, sleeper(), static_cast<std::size_t>(jobs));
  auto until = deadline();
  // Every command is out (the test's producer does not outlive an outage); a quarter has ended.
  waitForFraction(watch, load, 0.25, until);
  auto ended_before = watch.endedOf(load.runIds());
  std::cout << "[chaos] stopping the broker with " << ended_before << " of " << jobs
            << " runs ended" << std::endl;
  // A worker of its own on topics of its own, logging at info (the fleet's log only warnings),
  // watched the way an operator's probe would.
  auto watched_topics = createTopics("chaos-broker-watch", 1);
  WorkerProcess watched(watched_topics, WorkerProcess::Options{});
  const int port = watched.httpPort();
  ASSERT_EQ(waitFor(port, "/readyz", 200).status, 200);
  stopBroker();
  // An operator's probe sees it: alive, not ready, and why.
  auto unready = waitFor(port, "/readyz", 503, down);
  EXPECT_EQ(unready.status, 503);
  EXPECT_THAT(unready.body, HasSubstr("no broker connection"));
  EXPECT_EQ(get(port, "/livez").status, 200);
  std::this_thread::sleep_for(down);
  startBroker();
  std::cout << "[chaos] broker back after " << down.count() << " s" << std::endl;
  EXPECT_EQ(waitFor(port, "/readyz", 200).status, 200) << "ready again once the broker is back";
  EXPECT_EQ(watched.terminate(), 0);
  bool all_ended = waitForAllEnded(watch, load, until);
  EXPECT_LT(ended_before, static_cast<std::size_t>(jobs)) << "the outage was not under load";
  EXPECT_TRUE(all_ended) << "not every run ended before the deadline";
  EXPECT_EQ(fleet.terminateAll(), 0);

  auto l = ledger(topics, fleet.group());
  EXPECT_EQ(figure(l, "submitted"), jobs);
  EXPECT_EQ(figure(l, "lost"), 0);
  EXPECT_EQ(figure(l, "duplicate_terminal"), 0);
  std::cout << "[chaos] re-runs: " << figure(l, "reruns") << " runs, "
            << figure(l, "rerun_extra_starts") << " extra starts" << std::endl;
  if (HasFailure()) std::cout << fleet.logTails();
}

// (5) A rebalance storm: for two minutes a worker joins, or one leaves (SIGTERM: it drains), every
// few seconds, under a mixed load (short jobs and one in ten of 30 s). Dynamic members, so that
// every join and every leave rebalances the group. Claimed runs stay with their workers and the
// workers that leave drain them: nothing lost, nothing ended twice, and no run ran twice.
TEST(Chaos, ARebalanceStormLosesNothingAndRunsNothingTwice) {
  const long jobs = knob("STORM_JOBS", 300);
  const auto storm = seconds(knob("STORM_S", 120));
  auto topics = createTopics("chaos-storm", 6);
  auto o = chaosOptions(uniqueName("chaos-storm"));
  o.static_member = false;
  o.slots = 8;
  o.drain_timeout = "90s";  // longer than any job: a worker that leaves ends its runs itself
  std::vector<std::unique_ptr<WorkerProcess>> members, leaving;
  for (int i = 0; i < 2; ++i) members.push_back(std::make_unique<WorkerProcess>(topics, o));

  RunWatch watch(topics.events);
  Load load(
      topics,
      [n = 0]() mutable {
        return makeCommand("sleep", {{"secs", ++n % 10 == 0 ? "30" : "0.2"}});
      },
      static_cast<std::size_t>(jobs), static_cast<double>(jobs) / (0.8 * storm.count()));
  std::mt19937 rng(std::random_device{}());
  int joins = 0, leaves = 0, unclean = 0;
  const auto storm_end = Clock::now() + storm;
  while (Clock::now() < storm_end) {
    const auto turn = std::uniform_int_distribution<long>(2000, 5000)(rng);
    const auto turn_end = Clock::now() + milliseconds(turn);
    while (Clock::now() < turn_end) watch.poll();
    std::erase_if(leaving, [&](auto& w) {
      if (w->running()) return false;
      unclean += w->terminate() != 0;
      return true;
    });
    const bool join = members.size() < 2 || (members.size() < 5 && rng() % 2 == 0);
    if (join) {
      members.push_back(std::make_unique<WorkerProcess>(topics, o));
      ++joins;
    } else {
      auto victim = members.begin() + static_cast<long>(rng() % members.size());
      ::kill((*victim)->pid(), SIGTERM);
      leaving.push_back(std::move(*victim));
      members.erase(victim);
      ++leaves;
    }
  }
  std::cout << "[chaos] storm: " << joins << " joins, " << leaves << " leaves" << std::endl;
  bool all_ended = waitForAllEnded(watch, load, deadline());
  EXPECT_TRUE(all_ended) << "not every run ended before the deadline";
  for (auto& w : leaving) unclean += w->terminate() != 0;
  for (auto& w : members) unclean += w->terminate() != 0;
  EXPECT_EQ(unclean, 0) << "a worker did not drain cleanly";

  auto l = ledger(topics, "outpost." + o.pool);
  EXPECT_GT(leaves, 0);
  EXPECT_EQ(figure(l, "submitted"), jobs);
  EXPECT_EQ(figure(l, "lost"), 0);
  EXPECT_EQ(figure(l, "duplicate_terminal"), 0);
  EXPECT_EQ(figure(l, "reruns"), 0) << "a run ran twice though no worker was lost";
}

}  // namespace
}  // namespace outpost::test
