// `outpost replay` against the real broker: a recorded mix of succeeded, failed and rejected runs
// is planned, selected, republished to other topics where another worker runs it, and run here
// with `replay local` (to files or to other topics, with secrets, without, and as a dry run);
// --compare finds a template whose behaviour changed; the production topics' end offsets and the
// production group's committed offsets are the same before and after.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <httplib.h>

#include "harness.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// UUIDv5 of "<run id>/<n>" in the replay namespace, by Python's uuid module (not our code).
std::string pythonReplayId(const std::string& run_id, unsigned n) {
  std::string cmd =
      "/usr/bin/python3 -c \"import uuid; print(uuid.uuid5(uuid.uuid5("
      "uuid.NAMESPACE_URL, 'urn:outpost:replay'), '" +
      run_id + "/" + std::to_string(n) + "'))\"";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[64];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  if (p) pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Every end offset of the production topics, and the production group's committed offsets.
struct Production {
  std::map<std::string, std::map<std::int32_t, std::int64_t>> ends;
  std::map<std::int32_t, std::int64_t> committed;
  bool operator==(const Production&) const = default;
};

Production production(const Topics& t, const std::string& group) {
  Production p;
  for (const auto& topic : {t.jobs, t.runs}) p.ends[topic] = endOffsets(topic, 2);
  for (const auto& topic : {t.events, t.lineage, t.dlq, t.control, t.workers}) {
    p.ends[topic] = endOffsets(topic, 1);
  }
  p.committed = committedOffsets(group, t.jobs, 2);
  return p;
}

// The recording: a production worker runs `commands` to their end and their offsets are
// committed; then production stops, as a platform's would go on elsewhere. Returns its group.
std::string record(const Topics& prod, const WorkerProcess::Options& options,
                   const std::vector<v1::JobCommand>& commands) {
  WorkerProcess worker(prod, options);
  EXPECT_TRUE(worker.waitUntilReady());
  for (const auto& c : commands) submit(prod, c);
  TopicReader events(prod.events);
  EXPECT_TRUE(
      events.readUntil([&](const auto& r) { return terminalByRun(r).size() >= commands.size(); }));
  EXPECT_EQ(
      waitForCommitted(worker.group(), prod.jobs, 2, static_cast<std::int64_t>(commands.size())),
      static_cast<std::int64_t>(commands.size()));
  EXPECT_EQ(worker.terminate(), 0);
  return worker.group();
}

TEST(Replay, PlansSelectsRepublishesAndComparesWithoutTouchingProduction) {
  auto prod = createTopics("replay-prod", 2);
  auto ok1 = makeCommand("ok", {{"n", "1"}});
  auto failed = makeCommand("exit", {{"code", "3"}});
  auto rejected = makeCommand("nope");
  auto ok2 = makeCommand("ok", {{"n", "2"}});
  const std::string group = record(prod, {}, {ok1, failed, rejected, ok2});
  ASSERT_FALSE(HasFailure()) << "the recording";
  const auto before = production(prod, group);

  // plan (the default): every command with its recorded end.
  auto [plan, plan_out] = runCli(prod, "replay");
  EXPECT_EQ(plan, 0) << plan_out;
  EXPECT_THAT(plan_out, HasSubstr("4 command(s) of " + prod.jobs + " would be replayed"));
  for (const auto& c : {ok1, ok2}) {
    EXPECT_THAT(plan_out, HasSubstr(c.run_id())) << plan_out;
  }
  EXPECT_THAT(plan_out, HasSubstr("FAILED (exit 3)"));
  EXPECT_THAT(plan_out, Not(HasSubstr("1970-"))) << "when each was submitted";
  EXPECT_THAT(plan_out, HasSubstr("REJECTED"));

  // Selection.
  auto [_, only_failed] = runCli(prod, "replay --state failed");
  EXPECT_THAT(only_failed, HasSubstr(failed.run_id()));
  EXPECT_THAT(only_failed, Not(HasSubstr(ok1.run_id())));
  EXPECT_THAT(only_failed, HasSubstr("1 command(s)"));
  auto [__, by_run] = runCli(prod, "replay --run " + ok1.run_id() + " --run " + ok2.run_id());
  EXPECT_THAT(by_run, HasSubstr("2 command(s)"));
  auto [___, limited] = runCli(prod, "replay --limit 3");
  EXPECT_THAT(limited, HasSubstr("3 command(s)"));
  auto [dlq, dlq_out] = runCli(prod, "replay --dlq");
  EXPECT_EQ(dlq, 0) << dlq_out;
  EXPECT_THAT(dlq_out, HasSubstr(rejected.run_id()));
  EXPECT_THAT(dlq_out, HasSubstr("1 command(s) of " + prod.dlq));
  EXPECT_THAT(dlq_out, HasSubstr("unknown job_type"));

  // Republishing into the topic read from needs saying so.
  auto [same, same_out] = runCli(prod, "replay republish --to-pool other 2>&1");
  EXPECT_EQ(same, 2) << same_out;
  EXPECT_THAT(same_out, HasSubstr("--allow-same-topic"));

  // republish --compare to staging topics, where a worker with the same templates runs them.
  auto staging = createTopics("replay-staging", 1);
  WorkerProcess staging_worker(staging, {});
  ASSERT_TRUE(staging_worker.waitUntilReady());
  auto [same_run, compared] = runCli(
      prod, "replay republish --to-prefix " + staging.prefix + " --compare --wait-timeout 60s");
  EXPECT_EQ(same_run, 0) << compared;
  EXPECT_THAT(compared, HasSubstr("4 replayed, 4 the same, 0 different"));
  for (const auto& c : {ok1, failed, rejected, ok2}) {
    // Deterministic: the UUIDv5 of the original and the replay number.
    EXPECT_THAT(compared, HasSubstr(c.run_id() + " -> " + pythonReplayId(c.run_id(), 1)));
  }
  TopicReader staged(staging.events);
  ASSERT_TRUE(staged.readUntil([&](const auto& r) { return terminalByRun(r).size() >= 4; }));
  const auto replay_of_failed = terminalByRun(staged.records())[pythonReplayId(failed.run_id(), 1)];
  ASSERT_FALSE(replay_of_failed.empty());
  EXPECT_EQ(replay_of_failed.front().labels().at("outpost.replay_of"), failed.run_id());
  EXPECT_EQ(replay_of_failed.front().attempt(), 1u);

  // A template changed between recording and replay: --compare says so and exits 1.
  auto changed = createTopics("replay-changed", 1);
  WorkerProcess::Options co;
  co.templates =
      "templates:\n  exit:\n    argv: [sh, -c, \"echo fixed; exit 0\"]\n    allow_shell: true\n"
      "    params: {code: {pattern: \"[0-9]+\"}}\n    recipe: none\n";
  WorkerProcess changed_worker(changed, co);
  ASSERT_TRUE(changed_worker.waitUntilReady());
  auto [diff, diff_out] =
      runCli(prod, "replay republish --job-type exit --replay-number 2 --to-prefix " +
                       changed.prefix + " --compare --wait-timeout 60s");
  EXPECT_EQ(diff, 1) << diff_out;
  EXPECT_THAT(diff_out, HasSubstr("DIFFERENT: state FAILED (exit 3) -> SUCCEEDED"));
  EXPECT_THAT(diff_out, HasSubstr(pythonReplayId(failed.run_id(), 2)));
  EXPECT_THAT(diff_out, HasSubstr("1 replayed, 0 the same, 1 different"));

  // Nothing production-facing was written or committed.
  EXPECT_TRUE(production(prod, group) == before) << "production topics or offsets moved";
}

// The templates of the local replay: the standard ones, `ok` with a dry run, and `tok`, which
// prints a secret from the file store.
std::string localTemplates(const std::string& exit_argv) {
  return R"(templates:
  ok:
    argv: [sh, -c, 'echo ok {n} "$@"', ok]
    dry_run_args: [--dry-run]
    allow_shell: true
    params: {n: {pattern: "[0-9]+", default: "0"}}
    recipe: none
  exit:
    argv: )" +
         exit_argv + R"(
    allow_shell: true
    params: {code: {pattern: "[0-9]+"}}
    recipe: none
  tok:
    argv: [sh, -c, 'echo token=$TOKEN']
    allow_shell: true
    env: {TOKEN: "${file:replay-token}"}
    secrets: ["file:replay-token"]
    recipe: none
)";
}

// Every line of a JSON-lines file.
std::vector<nlohmann::json> jsonLines(const std::filesystem::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::string fileText(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(Replay, LocalRunsTheCommandsHereWithoutTouchingProduction) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / uniqueName("outpost-replay-local");
  fs::create_directories(dir / "secrets");
  const std::string token = "s3cr3t-" + uniqueName("token");
  std::ofstream(dir / "secrets" / "replay-token") << token << "\n";
  const std::string secrets_yaml = "secrets:\n  file_dir: " + (dir / "secrets").string() + "\n";

  // The recording: production runs ok, a failure, a refusal and a run with a secret.
  auto prod = createTopics("replay-local", 2);
  WorkerProcess::Options po;
  po.templates = localTemplates(R"([sh, -c, "echo about to fail; exit {code}"])");
  po.extra_yaml = secrets_yaml;
  auto ok = makeCommand("ok", {{"n", "1"}});
  auto failed = makeCommand("exit", {{"code", "3"}});
  auto rejected = makeCommand("nope");
  auto tok = makeCommand("tok");
  const std::string group = record(prod, po, {ok, failed, rejected, tok});
  ASSERT_FALSE(HasFailure()) << "the recording";
  const auto before = production(prod, group);

  auto writeConfig = [&](const std::string& name, const std::string& exit_argv) {
    const auto path = dir / name;
    std::ofstream(path) << "worker:\n  slots: 2\n" << secrets_yaml << localTemplates(exit_argv);
    return path.string();
  };
  const auto config = writeConfig("local.yaml", R"([sh, -c, "echo about to fail; exit {code}"])");
  auto id = [](const v1::JobCommand& c) { return pythonReplayId(c.run_id(), 1); };

  // To files: every command runs here as a worker would run it.
  const fs::path out = dir / "out";
  auto [code, said] = runCli(prod, "replay local -c " + config + " --out " + out.string());
  EXPECT_EQ(code, 0) << said;
  EXPECT_THAT(said, HasSubstr("4 command(s) replayed here, 4 ended"));
  EXPECT_THAT(said, HasSubstr(ok.run_id() + " -> " + id(ok) + "  SUCCEEDED (exit 0)"));
  EXPECT_THAT(said, HasSubstr(failed.run_id() + " -> " + id(failed) + "  FAILED (exit 3)"));
  EXPECT_THAT(said, HasSubstr(id(rejected) + "  REJECTED: unknown job_type 'nope'"));
  std::map<std::string, nlohmann::json> ends;
  for (const auto& line : jsonLines(out / "events.jsonl")) {
    const auto& v = line["value"];
    v1::RunState state = v1::RUN_STATE_UNSPECIFIED;
    if (v1::RunState_Parse(v["state"].get<std::string>(), &state) && v1::isTerminal(state)) {
      ends[v["run_id"]] = v;
    }
  }
  ASSERT_EQ(ends.size(), 4u) << fileText(out / "events.jsonl");
  EXPECT_EQ(ends[id(ok)]["state"], "SUCCEEDED");
  EXPECT_EQ(ends[id(ok)]["labels"]["outpost.replay_of"], ok.run_id());
  EXPECT_EQ(ends[id(failed)]["exit_code"], 3);
  EXPECT_EQ(ends[id(rejected)]["state"], "REJECTED");
  EXPECT_EQ(ends[id(tok)]["state"], "SUCCEEDED");
  EXPECT_EQ(jsonLines(out / "dlq.jsonl").size(), 1u);
  std::set<std::string> lineage_runs;
  for (const auto& line : jsonLines(out / "lineage.jsonl")) {
    lineage_runs.insert(line["value"]["run"]["runId"].get<std::string>());
  }
  EXPECT_TRUE(lineage_runs.contains(id(ok)) && lineage_runs.contains(id(failed)));
  EXPECT_THAT(fileText(out / "logs" / (id(ok) + ".log")), HasSubstr("ok 1"));
  // The secret came from this machine's store, masked in what was written.
  EXPECT_THAT(fileText(out / "logs" / (id(tok) + ".log")), HasSubstr("token=***"));
  for (const auto& f : fs::recursive_directory_iterator(out)) {
    if (f.is_regular_file()) {
      EXPECT_THAT(fileText(f.path()), Not(HasSubstr(token))) << f.path();
    }
  }
  EXPECT_THAT(said, Not(HasSubstr(token)));

  // --no-secrets: the run that needs a secret fails, saying why.
  auto [refused, refused_said] = runCli(prod, "replay local -c " + config + " --no-secrets --out " +
                                                  (dir / "refused").string() + " --job-type tok");
  EXPECT_EQ(refused, 0) << refused_said;
  EXPECT_THAT(refused_said, HasSubstr(id(tok) + "  FAILED"));
  EXPECT_THAT(refused_said, HasSubstr("--no-secrets"));

  // --dry-run: the template's dry_run_args; templates without any run nothing.
  const fs::path dry = dir / "dry";
  auto [dry_code, dry_said] =
      runCli(prod, "replay local -c " + config + " --dry-run --out " + dry.string());
  EXPECT_EQ(dry_code, 0) << dry_said;
  EXPECT_THAT(fileText(dry / "logs" / (id(ok) + ".log")), HasSubstr("ok 1 --dry-run"));
  EXPECT_THAT(dry_said, HasSubstr(failed.run_id() +
                                  "  exit  not run: the template declares no dry_run_args"));
  EXPECT_THAT(dry_said, HasSubstr(tok.run_id() + "  tok  not run"));
  EXPECT_THAT(dry_said, HasSubstr("2 command(s) replayed here (dry run), 2 ended, 2 not run"));
  EXPECT_FALSE(fs::exists(dry / "logs" / (id(failed) + ".log")));

  // --compare: the same templates behave the same; a changed one does not, and says how.
  auto [same, same_said] =
      runCli(prod, "replay local -c " + config + " --compare --out " + (dir / "same").string());
  EXPECT_EQ(same, 0) << same_said;
  EXPECT_THAT(same_said, HasSubstr("4 replayed, 4 the same, 0 different"));
  const auto changed = writeConfig("changed.yaml", R"([sh, -c, "echo fixed; exit 0"])");
  auto [diff, diff_said] =
      runCli(prod, "replay local -c " + changed + " --job-type exit --compare --out " +
                       (dir / "changed").string());
  EXPECT_EQ(diff, 1) << diff_said;
  EXPECT_THAT(diff_said, HasSubstr("DIFFERENT: state FAILED (exit 3) -> SUCCEEDED"));
  EXPECT_THAT(diff_said, HasSubstr("1 replayed, 0 the same, 1 different"));

  // To other topics; never to production's unless told.
  auto [into_prod, into_prod_said] =
      runCli(prod, "replay local -c " + config + " --emit-prefix " + prod.prefix + " 2>&1");
  EXPECT_EQ(into_prod, 2) << into_prod_said;
  EXPECT_THAT(into_prod_said, HasSubstr("--allow-same-topic"));
  auto staging = createTopics("replay-local-staging", 1);
  auto [emitted, emitted_said] = runCli(
      prod, "replay local -c " + config + " --emit-prefix " + staging.prefix + " --job-type ok");
  EXPECT_EQ(emitted, 0) << emitted_said;
  TopicReader staged(staging.events);
  ASSERT_TRUE(staged.readUntil([&](const auto& r) { return terminalByRun(r).contains(id(ok)); }));

  // Nothing production-facing was written or committed.
  EXPECT_TRUE(production(prod, group) == before) << "production topics or offsets moved";
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// `replay local` interrupted while a run is resolving its secrets from a store that answers slowly
// (a fake Vault on loopback): the replay stops the runs and exits 1, and nothing in it outlives
// what it calls into. It used to destroy its dispatcher before the secret resolver, whose fetch
// in flight then called back into it: a use after free that the sanitizer pass of scripts/test
// (OUTPOST_BINARY set to the ASan build's outpost) reports.
TEST(Replay, LocalInterruptedWhileASecretIsBeingFetchedStopsCleanly) {
  namespace fs = std::filesystem;
  std::atomic<int> reads{0};
  httplib::Server vault;
  vault.Get("/v1/auth/token/lookup-self", [](const httplib::Request&, httplib::Response& r) {
    r.set_content(R"({"data":{"id":"t","ttl":0,"renewable":false,"policies":["default"]}})",
                  "application/json");
  });
  vault.Get(R"(/v1/kv/data/(.+))", [&](const httplib::Request&, httplib::Response& r) {
    ++reads;
    std::this_thread::sleep_for(std::chrono::seconds(3));  // a slow store
    r.set_content(R"({"data":{"data":{"token":"v"},"metadata":{"version":1}}})",
                  "application/json");
  });
  const int port = vault.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { vault.listen_after_bind(); });

  const fs::path dir = fs::temp_directory_path() / uniqueName("outpost-replay-interrupt");
  fs::create_directories(dir);
  std::ofstream(dir / "token") << "t\n";
  auto prod = createTopics("replay-interrupt", 1);
  std::ofstream(dir / "local.yaml")
      << "worker:\n  slots: 2\n" << "topics:\n  prefix: " << prod.prefix << "\n"
      << "secrets:\n  vault:\n    address: http://127.0.0.1:" << port
      << "\n    token_file: " << (dir / "token").string() << "\n    timeout: 10s\n"
      << "templates:\n  vaulted:\n    argv: [sh, -c, 'echo token=$TOKEN']\n    allow_shell: true\n"
      << "    env: {TOKEN: \"${vault:kv/app#token}\"}\n    secrets: [\"vault:kv/app\"]\n"
      << "    recipe: none\n";
  submit(prod, makeCommand("vaulted"));
  submit(prod, makeCommand("vaulted"));

  test_support::OutpostProcess replay({.binary = outpostBinary(),
                                       .args = {"replay", "local", "-c",
                                                (dir / "local.yaml").string(), "--out",
                                                (dir / "out").string(), "--bootstrap", bootstrap()},
                                       .log_path = (dir / "replay.log").string(),
                                       .wrapper = {}});
  for (int i = 0; i < 600 && reads == 0 && replay.running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(reads, 0) << "the replay never asked the store: " << replay.log();
  replay.signal(SIGINT);
  const int status = replay.waitExit(std::chrono::seconds(60));
  vault.stop();
  serving.join();
  const auto log = replay.log();
  EXPECT_EQ(status, 1) << log;
  EXPECT_THAT(log, HasSubstr("stopping"));
  EXPECT_THAT(log, Not(HasSubstr("Sanitizer"))) << log;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace outpost::test
