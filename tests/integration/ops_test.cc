// What an operator probes and scrapes, against a real worker on the real broker: /livez, /readyz
// through start, work and drain, and /metrics moving as jobs run, checked by promtool.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "scrape.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

WorkerProcess::Options options(unsigned slots, std::string listen = "127.0.0.1:0") {
  WorkerProcess::Options o;
  o.slots = slots;
  o.drain_timeout = "60s";
  o.http_listen = std::move(listen);
  return o;
}

TEST(Ops, ProbesFollowTheWorkerThroughStartWorkAndDrain) {
  auto topics = createTopics("ops-probes", 1);
  WorkerProcess worker(topics, options(2));
  const int port = worker.httpPort();
  ASSERT_GT(port, 0);

  auto live = waitFor(port, "/livez", 200);
  EXPECT_EQ(live.body, "ok\n");
  auto ready = waitFor(port, "/readyz", 200);
  EXPECT_EQ(ready.body, "ok\n") << "ready once the group gave it its partitions";

  // Draining with a job still running: alive, not ready, and it says why.
  auto sleeper = makeCommand("sleep", {{"secs", "3"}});
  submit(topics, sleeper);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, sleeper.run_id(), v1::STARTED));
  ::kill(worker.pid(), SIGTERM);
  auto draining = waitFor(port, "/readyz", 503, 10s);
  EXPECT_EQ(draining.status, 503);
  EXPECT_THAT(draining.body, HasSubstr("draining"));
  EXPECT_EQ(get(port, "/livez").status, 200) << "a draining worker is alive";
  EXPECT_EQ(worker.terminate(), 0);
  EXPECT_EQ(get(port, "/livez").status, -1) << "the endpoint goes with the worker";
}

TEST(Ops, MetricsMoveAsJobsRunAndPassPromtool) {
  auto topics = createTopics("ops-metrics", 1);
  WorkerProcess worker(topics, options(2));
  const int port = worker.httpPort();
  ASSERT_GT(port, 0);
  ASSERT_EQ(waitFor(port, "/readyz", 200).status, 200);

  // Before any job: the families are there, at zero.
  auto before = get(port, "/metrics").body;
  EXPECT_EQ(sample(before, "outpost_jobs{state=\"running\"}"), 0);
  EXPECT_EQ(sample(before, "outpost_slots{state=\"available\"}"), 2);
  EXPECT_EQ(sample(before, "outpost_dlq_total"), 0);

  // A job running now shows as running and as a used slot.
  auto sleeper = makeCommand("sleep", {{"secs", "2"}});
  submit(topics, sleeper);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, sleeper.run_id(), v1::STARTED));
  auto during = waitForSample(port, "outpost_jobs{state=\"running\"}", 1);
  EXPECT_EQ(sample(during, "outpost_slots{state=\"used\"}"), 1);
  EXPECT_EQ(sample(during, "outpost_slots{state=\"available\"}"), 1);

  // Three successes, a failure, a refusal (unknown template), another pool's command.
  std::vector<v1::JobCommand> runs;
  for (int i = 0; i < 3; ++i) runs.push_back(makeCommand("ok", {{"n", std::to_string(i)}}));
  runs.push_back(makeCommand("exit", {{"code", "3"}}));
  runs.push_back(makeCommand("no-such-template"));
  auto other = makeCommand("ok");
  other.set_pool("somebody-else");
  for (const auto& c : runs) submit(topics, c);
  submit(topics, other);
  runs.push_back(sleeper);

  ASSERT_TRUE(events.readUntil([&](const std::vector<Record>& records) {
    auto t = terminalByRun(records);
    return std::ranges::all_of(runs, [&](const auto& c) { return t.contains(c.run_id()); });
  }));
  auto after = waitForSample(port, "outpost_jobs_total{state=\"succeeded\",template=\"ok\"}", 3);
  after = waitForSample(port, "outpost_jobs{state=\"running\"}", 0);
  EXPECT_EQ(sample(after, "outpost_jobs_total{state=\"succeeded\",template=\"sleep\"}"), 1);
  EXPECT_EQ(sample(after, "outpost_jobs_total{state=\"failed\",template=\"exit\"}"), 1);
  EXPECT_EQ(sample(after, "outpost_jobs_total{state=\"rejected\",template=\"other\"}"), 1)
      << "a job_type that is not a template is counted as other: label values stay bounded";
  EXPECT_EQ(sample(after, "outpost_rejected_total{reason=\"unknown_template\"}"), 1);
  EXPECT_EQ(sample(after, "outpost_dlq_total"), 1);
  EXPECT_EQ(sample(after, "outpost_commands_skipped_total{reason=\"other_pool\"}"), 1);
  EXPECT_EQ(sample(after, "outpost_job_duration_seconds_count{template=\"ok\"}"), 3);
  EXPECT_GE(sample(after, "outpost_job_duration_seconds_sum{template=\"sleep\"}").value_or(0), 2);
  EXPECT_EQ(sample(after, "outpost_job_schedule_to_start_seconds_count"), 5)
      << "every run that started, and only those";
  EXPECT_GT(sample(after, "outpost_transactions_total{outcome=\"committed\"}").value_or(0), 0)
      << "exactly-once delivery is the default";
  EXPECT_GE(sample(after, "outpost_rebalances_total{kind=\"assigned\"}").value_or(0), 1);
  EXPECT_GT(sample(after, "process_resident_memory_bytes").value_or(0), 1e6);
  EXPECT_GT(sample(after, "process_cpu_seconds_total").value_or(0), 0);
  const double start = sample(after, "process_start_time_seconds").value_or(0);
  EXPECT_NEAR(start, static_cast<double>(std::time(nullptr)), 600);

  // Never a run id in a label.
  for (const auto& c : runs) EXPECT_THAT(after, ::testing::Not(HasSubstr(c.run_id())));

  auto [status, problems] = promtoolCheck(after);
  EXPECT_EQ(status, 0) << problems;
  EXPECT_EQ(problems, "") << "promtool check metrics warned:\n" << problems;
  std::cout << "---- one scrape ----\n" << after << "---- end ----\n";
  EXPECT_EQ(worker.terminate(), 0);
}

TEST(Ops, ConsumerLagCountsCommandsNotYetClaimedAndFallsToZero) {
  auto topics = createTopics("ops-lag", 1);
  auto o = options(1);
  o.consumer_properties["statistics.interval.ms"] = "200";
  WorkerProcess worker(topics, o);
  const int port = worker.httpPort();
  ASSERT_GT(port, 0);
  ASSERT_EQ(waitFor(port, "/readyz", 200).status, 200);

  // One slot: a sleeper holds it (its command is claimed) while three commands wait behind it.
  auto sleeper = makeCommand("sleep", {{"secs", "3"}});
  submit(topics, sleeper);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, sleeper.run_id(), v1::STARTED));
  for (int i = 0; i < 3; ++i) submit(topics, makeCommand("ok", {{"n", std::to_string(i)}}));
  auto busy = waitForSample(port, "outpost_consumer_lag{partition=\"0\"}", 3);
  EXPECT_EQ(sample(busy, "outpost_jobs{state=\"queued\"}"), 3);
  // All four done: nothing left behind on the partition.
  waitForSample(port, "outpost_consumer_lag{partition=\"0\"}", 0);
  EXPECT_EQ(worker.terminate(), 0);
}

// `outpost workers --json`: the entry for `id`, or null when it lists none.
nlohmann::json workerEntry(const Topics& topics, const std::string& id) {
  auto [status, out] = runCli(topics, "workers --json");
  if (status != 0) return nullptr;
  auto doc = nlohmann::json::parse(out, nullptr, false);
  if (!doc.is_array()) return nullptr;
  for (const auto& w : doc) {
    if (w.value("worker_id", "") == id) return w;
  }
  return nullptr;
}

// Waits (safety timeout) until `outpost workers` shows `id` in `state`; returns the entry.
nlohmann::json waitForWorkerState(const Topics& topics, const std::string& id,
                                  const std::string& state) {
  auto deadline = std::chrono::steady_clock::now() + 60s;
  nlohmann::json w;
  while (std::chrono::steady_clock::now() < deadline) {
    w = workerEntry(topics, id);
    if (!w.is_null() && w.value("state", "") == state) return w;
    std::this_thread::sleep_for(200ms);
  }
  ADD_FAILURE() << "outpost workers never showed " << id << " as " << state << "; last: " << w;
  return w;
}

// Waits (safety timeout) until the status of worker `id` lists template `name`: a reload that
// added it has been applied (the status is written every worker.status_interval).
bool waitForWorkerTemplate(const Topics& topics, const std::string& id, const std::string& name) {
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto w = workerEntry(topics, id);
    auto templates =
        w.is_null() ? nlohmann::json::array() : w.value("templates", nlohmann::json::array());
    if (std::find(templates.begin(), templates.end(), name) != templates.end()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

TEST(Ops, DrainAndResumeWithoutARestartShowInProbesStatusAndWorkers) {
  auto topics = createTopics("ops-drain", 1);
  auto o = options(2);
  o.worker_yaml = "  status_interval: 1s\n";
  WorkerProcess worker(topics, o);
  const int port = worker.httpPort();
  ASSERT_GT(port, 0);
  ASSERT_EQ(waitFor(port, "/readyz", 200).status, 200);
  auto ready = waitForWorkerState(topics, worker.id(), "READY");
  EXPECT_EQ(ready.value("slots_total", 0), 2);

  auto sleeper = makeCommand("sleep", {{"secs", "2"}});
  submit(topics, sleeper);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, sleeper.run_id(), v1::STARTED));
  auto [drained, drain_id] = runCli(
      topics, "drain --worker " + worker.id() + " --reason maintenance --requested-by ops-test");
  ASSERT_EQ(drained, 0);
  auto not_ready = waitFor(port, "/readyz", 503, 30s);
  EXPECT_THAT(not_ready.body, HasSubstr("drained by ops-test: maintenance"));
  auto draining = waitForWorkerState(topics, worker.id(), "DRAINING");
  EXPECT_THAT(draining.value("state_reason", ""), HasSubstr("maintenance"));

  // The run it had finishes; a command that arrives now waits.
  auto waiting = makeCommand("ok");
  submit(topics, waiting);
  ASSERT_TRUE(
      events.readUntil([&](const auto& r) { return terminalByRun(r).contains(sleeper.run_id()); }));
  events.readFor(2s);
  EXPECT_FALSE(terminalByRun(events.records()).contains(waiting.run_id()))
      << "a drained worker takes nothing new";
  EXPECT_EQ(get(port, "/livez").status, 200) << "and stays alive";

  auto [resumed, resume_id] = runCli(topics, "resume --worker " + worker.id());
  ASSERT_EQ(resumed, 0);
  EXPECT_EQ(waitFor(port, "/readyz", 200, 30s).status, 200);
  ASSERT_TRUE(
      events.readUntil([&](const auto& r) { return terminalByRun(r).contains(waiting.run_id()); }));
  EXPECT_EQ(terminalByRun(events.records())[waiting.run_id()].front().state(), v1::SUCCEEDED);
  waitForWorkerState(topics, worker.id(), "READY");

  EXPECT_EQ(worker.terminate(), 0);
  auto stopped = waitForWorkerState(topics, worker.id(), "STOPPED");
  EXPECT_EQ(stopped.value("stale", true), false);
}

TEST(Ops, DrainWithHandoverGivesThePartitionsToTheRestOfThePool) {
  auto topics = createTopics("ops-handover", 2);
  auto o = options(2);
  o.pool = uniqueName("pool");
  WorkerProcess a(topics, o), b(topics, o);
  ASSERT_TRUE(a.waitUntilReady());
  ASSERT_TRUE(b.waitUntilReady());
  auto members = [&] { return groupState(a.group()).second; };
  ASSERT_TRUE(waitUntil([&] { return members() == 2; })) << "both never were members";
  auto [drained, id] = runCli(topics, "drain --handover --worker " + a.id());
  ASSERT_EQ(drained, 0);
  ASSERT_TRUE(waitUntil([&] {
    return groupState(a.group()) == std::pair<std::string, int>{"Stable", 1};
  })) << "a never left the group";
  // b now holds both partitions: commands on either run there.
  std::vector<v1::JobCommand> cs;
  for (int i = 0; i < 6; ++i) {
    cs.push_back(makeCommand("ok", {{"n", std::to_string(i)}}));
    cs.back().set_job_id("job-" + std::to_string(i));  // keys spread over both partitions
    submit(topics, cs.back());
  }
  TopicReader events(topics.events);
  ASSERT_TRUE(events.readUntil([&](const auto& r) {
    auto t = terminalByRun(r);
    return std::ranges::all_of(cs, [&](const auto& c) { return t.contains(c.run_id()); });
  }));
  for (const auto& e : decodeEvents(events.records())) {
    if (v1::isTerminal(e.state())) {
      EXPECT_EQ(e.worker_id(), b.id()) << "a handed over, so b ran it";
    }
  }
  // Resumed, it rejoins the group.
  auto [resumed, rid] = runCli(topics, "resume --pool " + o.pool);
  ASSERT_EQ(resumed, 0);
  EXPECT_TRUE(a.waitUntilReady()) << "a drained worker is not ready until resumed";
  EXPECT_TRUE(waitUntil([&] { return members() == 2; })) << "both are members again";
  EXPECT_EQ(a.terminate(), 0);
  EXPECT_EQ(b.terminate(), 0);
}

TEST(Ops, AWorkerThatDiesWithoutSayingStoppedIsShownStale) {
  auto topics = createTopics("ops-stale", 1);
  auto o = options(1);
  o.worker_yaml = "  status_interval: 1s\n";
  WorkerProcess worker(topics, o);
  waitForWorkerState(topics, worker.id(), "READY");
  worker.crash();
  auto deadline = std::chrono::steady_clock::now() + 30s;
  nlohmann::json w;
  while (std::chrono::steady_clock::now() < deadline) {
    w = workerEntry(topics, worker.id());
    if (w.value("stale", false)) break;
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_EQ(w.value("stale", false), true) << w;
  EXPECT_EQ(w.value("state", ""), "READY") << "its last word";
  auto [status, table] = runCli(topics, "workers");
  EXPECT_EQ(status, 0);
  EXPECT_THAT(table, HasSubstr("STALE (was READY)"));
  EXPECT_THAT(table, HasSubstr(worker.id()));
}

// Each worker reads the workers topic and knows which of its pool's workers are there: a worker
// killed counts as lost once the topic has flowed for lease_timeout without its status; a worker
// that stopped cleanly is not counted at all.
TEST(Ops, AKilledWorkerCountsAsLostAfterTheLeaseTimeoutAndAStoppedOneIsNotCounted) {
  auto topics = createTopics("ops-leases", 2);
  auto o = options(1);
  o.pool = uniqueName("pool-leases");
  o.worker_yaml = "  status_interval: 1s\n  lease_timeout: 4s\n";
  WorkerProcess a(topics, o);
  const int port = a.httpPort();
  const std::string held = "outpost_pool_workers{lease=\"held\"}";
  const std::string lapsed = "outpost_pool_workers{lease=\"lapsed\"}";
  {
    WorkerProcess b(topics, o);
    WorkerProcess c(topics, o);
    waitForSample(port, held, 2);
    EXPECT_EQ(sample(waitForSample(port, lapsed, 0), held), 2);
    EXPECT_EQ(c.terminate(), 0);  // says STOPPED: no longer counted, not lost
    auto scrape = waitForSample(port, held, 1);
    EXPECT_EQ(sample(scrape, lapsed), 0) << scrape;
    b.crash();  // says nothing
    scrape = waitForSample(port, lapsed, 1);
    EXPECT_EQ(sample(scrape, held), 0) << scrape;
  }
  EXPECT_EQ(a.terminate(), 0);
}

TEST(Ops, SighupReloadsTemplatesRunningRunsKeepTheirsAndABadFileIsRefused) {
  auto topics = createTopics("ops-reload", 1);
  auto o = options(2);
  o.templates =
      "templates:\n"
      "  ver:\n    argv: [sh, -c, \"sleep {secs}; echo version-one\"]\n    allow_shell: true\n"
      "    params: {secs: {pattern: \"[0-9]+\"}}\n    recipe: none\n";
  o.worker_yaml = "  status_interval: 1s\n";  // its status shows a reload within a second
  WorkerProcess worker(topics, o);
  auto before = makeCommand("ver", {{"secs", "3"}});
  submit(topics, before);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, before.run_id(), v1::STARTED));

  std::string yaml;
  {
    std::ifstream in(worker.configPath());
    yaml.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto edited = yaml;
  edited.replace(edited.find("version-one"), 11, "version-two");
  edited +=
      "  added:\n    argv: [sh, -c, \"echo added\"]\n    allow_shell: true\n"
      "    recipe: none\n";
  { std::ofstream(worker.configPath()) << edited; }
  ::kill(worker.pid(), SIGHUP);
  ASSERT_TRUE(waitForWorkerTemplate(topics, worker.id(), "added")) << "the reload never applied";

  auto after = makeCommand("ver", {{"secs", "0"}});
  auto added = makeCommand("added");
  submit(topics, after);
  submit(topics, added);
  auto ended = [&](const std::vector<std::string>& ids) {
    return events.readUntil([&](const auto& r) {
      auto t = terminalByRun(r);
      return std::ranges::all_of(ids, [&](const auto& id) { return t.contains(id); });
    });
  };
  ASSERT_TRUE(ended({before.run_id(), after.run_id(), added.run_id()}));
  auto t = terminalByRun(events.records());
  EXPECT_THAT(t[before.run_id()].front().log_tail(), HasSubstr("version-one"))
      << "a run started before the reload keeps its template";
  EXPECT_THAT(t[after.run_id()].front().log_tail(), HasSubstr("version-two"));
  EXPECT_EQ(t[added.run_id()].front().state(), v1::SUCCEEDED);

  // A file the worker refuses: it says why and keeps what it has.
  { std::ofstream(worker.configPath()) << edited << "  broken: {argv: []}\nnonsense_key: 1\n"; }
  ::kill(worker.pid(), SIGHUP);
  ASSERT_TRUE(worker.waitForLog("reload refused, the configuration in use stays"));
  auto still = makeCommand("added");
  submit(topics, still);
  ASSERT_TRUE(ended({still.run_id()}));
  EXPECT_EQ(terminalByRun(events.records())[still.run_id()].front().state(), v1::SUCCEEDED);
  EXPECT_EQ(worker.terminate(), 0) << "SIGHUP never stops the worker";
}

// SIGHUP applies the secret settings too (the next run reads the new store, and a value resolved
// before stays masked) and the output limits (runs launched after get the new tail size; a run
// launched before keeps its own).
TEST(Ops, SighupReloadsSecretSettingsAndOutputLimits) {
  auto topics = createTopics("ops-reload-secrets", 1);
  const auto dir = std::filesystem::temp_directory_path() / uniqueName("ops-reload-secrets");
  std::filesystem::create_directories(dir / "before");
  std::filesystem::create_directories(dir / "after");
  const std::string old_value = "reload-secret-before-4e1a";
  { std::ofstream(dir / "before" / "db") << old_value << "\n"; }
  { std::ofstream(dir / "after" / "db") << "reload-secret-after-9b2c\n"; }
  const auto gate = (dir / "go").string();
  auto o = options(2);
  o.templates =
      "templates:\n"
      "  show:\n"
      "    argv: [sh, -c, \"while [ ! -e " +
      gate +
      " ]; do sleep 0.05; done; "
      "yes x | head -c 3000; case $DB in *after*) echo store=after;; *before*) echo "
      "store=before;; esac; echo text={text}\"]\n"
      "    allow_shell: true\n    recipe: none\n"
      "    params: {text: {pattern: \"[a-z0-9-]+\"}}\n"
      "    env: {DB: \"${file:db}\"}\n    secrets: [\"file:db\"]\n";
  o.extra_yaml = "secrets:\n  file_dir: " + (dir / "before").string() + "\n";
  o.worker_yaml = "  status_interval: 1s\n";  // its status shows a reload within a second
  WorkerProcess worker(topics, o);
  auto before = makeCommand("show", {{"text", "none"}});
  submit(topics, before);
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, before.run_id(), v1::STARTED));

  std::string yaml;
  {
    std::ifstream in(worker.configPath());
    yaml.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  yaml.replace(yaml.find("tail_bytes: 4096"), 16, "tail_bytes: 1024");  // the harness's 4 KiB
  yaml.replace(yaml.find((dir / "before").string()), (dir / "before").string().size(),
               (dir / "after").string());
  // A template added with them, never run: the worker's status lists it once the reload applied.
  yaml.insert(yaml.find("templates:\n") + 11,
              "  reloaded:\n    argv: [\"true\"]\n    recipe: none\n");
  { std::ofstream(worker.configPath()) << yaml; }
  ::kill(worker.pid(), SIGHUP);
  ASSERT_TRUE(waitForWorkerTemplate(topics, worker.id(), "reloaded")) << "the reload never applied";
  { std::ofstream(gate) << "go\n"; }

  // The old value as a plain argument: the worker still masks it in what the run prints.
  auto after = makeCommand("show", {{"text", old_value}});
  submit(topics, after);
  ASSERT_TRUE(events.readUntil([&](const auto& r) {
    auto t = terminalByRun(r);
    return t.contains(before.run_id()) && t.contains(after.run_id());
  }));
  auto t = terminalByRun(events.records());
  const auto& b = t[before.run_id()].front();
  const auto& a = t[after.run_id()].front();
  ASSERT_EQ(b.state(), v1::SUCCEEDED) << b.message();
  ASSERT_EQ(a.state(), v1::SUCCEEDED) << a.message();
  EXPECT_THAT(b.log_tail(), HasSubstr("store=before"));
  EXPECT_THAT(a.log_tail(), HasSubstr("store=after")) << "the reloaded file_dir, not the cache";
  EXPECT_THAT(a.log_tail(), HasSubstr("text=***")) << "resolved before the reload: still masked";
  EXPECT_GT(b.log_tail().size(), 3000u) << "launched before the reload: its 4 KiB tail";
  EXPECT_LT(a.log_tail().size(), 1200u) << "launched after: the new 1 KiB tail";
  EXPECT_EQ(worker.terminate(), 0);
  EXPECT_THAT(worker.log(), ::testing::Not(HasSubstr(old_value)));
  for (const auto& r : events.records()) EXPECT_THAT(r.value, ::testing::Not(HasSubstr(old_value)));
  std::filesystem::remove_all(dir);
}

TEST(Ops, ListenOffServesNothingAndABusyPortIsAClearError) {
  auto topics = createTopics("ops-off", 1);
  WorkerProcess off(topics, options(1, "off"));
  waitForWorkerState(topics, off.id(), "READY");  // no /readyz to ask: its status says it
  EXPECT_THAT(off.log(), ::testing::Not(HasSubstr("/metrics on")));
  EXPECT_EQ(off.terminate(), 0);

  WorkerProcess first(topics, {});
  const int port = first.httpPort();
  ASSERT_GT(port, 0);
  WorkerProcess second(topics, options(1, "127.0.0.1:" + std::to_string(port)));
  EXPECT_TRUE(second.waitForExit()) << "it refuses to start, as for any configuration error";
  EXPECT_EQ(second.terminate(), 2) << "a configuration error";
  EXPECT_THAT(second.log(),
              HasSubstr("http.listen: cannot listen on 127.0.0.1:" + std::to_string(port)));
  EXPECT_EQ(first.terminate(), 0);
}

}  // namespace
}  // namespace outpost::test

namespace outpost::test {
namespace {

// `outpost check` on a config file written for the test; its exit status and report.
std::pair<int, std::string> check(const std::string& yaml, const std::string& flags = "") {
  auto dir = std::filesystem::temp_directory_path() / uniqueName("ops-check");
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "outpost.yaml") << yaml; }
  std::string cmd = outpostBinary() + " check -c " + (dir / "outpost.yaml").string() +
                    " " + flags + " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  int status = p ? pclose(p) : -1;
  std::filesystem::remove_all(dir);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(Check, ABadSettingIsNamedByItsPath) {
  auto [status, out] = check("worker:\n  slots: 2\n  slot_count: 3\n");
  EXPECT_EQ(status, 1);
  EXPECT_THAT(out, HasSubstr("worker.slot_count"));
  EXPECT_THAT(out, HasSubstr("FAIL"));
}

TEST(Check, ExecutablesAndSecretsAreCheckedAndNoValueIsPrinted) {
  ::setenv("IT_OPS_CHECK_TOKEN", "ops-check-value-7c1d", 1);
  const std::string templates =
      "templates:\n"
      "  fine:\n    argv: [env]\n    recipe: none\n"
      "    env: {TOKEN: \"${IT_OPS_CHECK_TOKEN}\"}\n    secrets: [IT_OPS_CHECK_TOKEN]\n";
  auto [bad, bad_out] =
      check(templates + "  broken:\n    argv: [no-such-program-3f9a]\n    recipe: none\n");
  EXPECT_EQ(bad, 1) << bad_out;
  EXPECT_THAT(bad_out, HasSubstr("broken: no-such-program-3f9a is not an executable on PATH"));
  EXPECT_THAT(bad_out, HasSubstr("fine ${IT_OPS_CHECK_TOKEN}: found (provider env"));
  EXPECT_THAT(bad_out, ::testing::Not(HasSubstr("ops-check-value-7c1d")));
  auto [good, good_out] = check(templates);
  EXPECT_EQ(good, 0) << good_out;
  EXPECT_THAT(good_out, HasSubstr("all checks passed"));
}

TEST(Check, ConnectFindsTheTopicsReadsAndWritesThemAndLeavesNothingVisible) {
  auto topics = createTopics("ops-check", 2);
  const std::string yaml = "kafka:\n  bootstrap_servers: " + bootstrap() +
                           "\ntopics:\n  prefix: " + topics.prefix + "\n";
  auto [status, out] = check(yaml, "--connect");
  EXPECT_EQ(status, 0) << out;
  EXPECT_THAT(out, HasSubstr(topics.jobs + " (jobs): 2 partition(s), readable"));
  EXPECT_THAT(out, HasSubstr(topics.events + ": writable"));
  EXPECT_THAT(out, HasSubstr(topics.workers + ": writable"));
  EXPECT_THAT(out, HasSubstr("committed offsets readable"));
  // The write was aborted: a read_committed reader sees nothing.
  TopicReader events(topics.events);
  events.readFor(1500ms);
  EXPECT_TRUE(events.records().empty());

  auto missing = topicNames("ops-check-missing");
  auto [status2, out2] = check("kafka:\n  bootstrap_servers: " + bootstrap() +
                                   "\ntopics:\n  prefix: " + missing.prefix + "\n",
                               "--connect");
  EXPECT_EQ(status2, 1) << out2;
  EXPECT_THAT(out2, HasSubstr(missing.jobs + " (jobs): does not exist"));
}

}  // namespace
}  // namespace outpost::test
