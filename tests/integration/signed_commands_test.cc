// Signed commands against the real broker: a worker with security.commands: require runs only
// what a trusted key signed for its topic, pool, value and content type, within its lifetime and
// its key's policy; every other command is dead-lettered and REJECTED naming the check that
// failed, and counted by reason. `warn` runs them and counts them. Keys rotate by rewriting the
// JWKS file while the worker runs. The tokens are made here with the security library (so that
// each claim can be got wrong on purpose) and by `outpost submit --sign-key`.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"
#include "outpost/security/command_token.h"
#include "outpost/security/keys.h"
#include "outpost/v1/control.pb.h"
#include "scrape.h"

namespace outpost::test {
namespace {

using security::SigningKey;
using ::testing::HasSubstr;

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;
using std::chrono::minutes;
using std::chrono::seconds;

// A directory with a JWKS file for the worker and the signers' keys.
class KeyDir {
 public:
  KeyDir() : dir_(fs::temp_directory_path() / uniqueName("outpost-keys")) {
    fs::create_directories(dir_);
  }
  ~KeyDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes the JWKS of `kids` (whole, by renaming a new file over it, as a Secret update does).
  void trust(const std::map<std::string, const SigningKey*>& kids) const {
    std::string jwks;
    for (const auto& [kid, key] : kids) jwks = *security::addToJwks(jwks, key->publicJwk(kid));
    const auto tmp = path("jwks.json.new");
    std::ofstream(tmp) << jwks;
    fs::rename(tmp, path("jwks.json"));
  }

 private:
  fs::path dir_;
};

std::string signingYaml(const KeyDir& keys, const std::string& mode,
                        const std::string& policies = "") {
  return "security:\n  commands: " + mode + "\n  trusted_keys: " + keys.path("jwks.json") + "\n" +
         policies;
}

WorkerProcess::Options workerOptions(const std::string& pool, const std::string& extra_yaml) {
  WorkerProcess::Options o;
  o.pool = pool;
  o.extra_yaml = extra_yaml;
  return o;
}

// The claims of a good token for `value` on `topics.jobs`, for pool `pool`.
security::CommandClaims goodClaims(const std::string& value, const Topics& topics,
                                   const std::string& pool, const std::string& run_id) {
  return security::claimsFor(value, topics.jobs, {pool}, security::CommandKind::kJob, run_id,
                             "protobuf", "test-scheduler", Clock::now(), minutes(5));
}

void produceSigned(const Topics& topics, const std::string& value, const std::string& token,
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
  if (!token.empty()) headers.emplace_back("outpost-signature", token);
  produce(topics.jobs, "signed", value, headers);
}

std::string terminalMessage(const std::map<std::string, std::vector<v1::RunEvent>>& ends,
                            const std::string& run_id, v1::RunState* state) {
  auto it = ends.find(run_id);
  if (it == ends.end() || it->second.empty()) return "(no terminal event)";
  *state = it->second.back().state();
  return it->second.back().message();
}

TEST(SignedCommands, RequireRunsOnlyWhatATrustedKeySignedAndNamesEachRefusedCheck) {
  auto topics = createTopics("signed", 1);
  KeyDir keys;
  auto k1 = SigningKey::generateEd25519();
  auto k2 = SigningKey::generateEd25519();  // policy: runs template ok only
  auto stranger = SigningKey::generateEd25519();
  keys.trust({{"k1", &k1}, {"k2", &k2}});
  const std::string pool = uniqueName("pool");
  WorkerProcess worker(topics, workerOptions(pool, signingYaml(keys, "require",
                                                               "  keys:\n    k2:\n      "
                                                               "templates: [ok]\n      actions: "
                                                               "[run]\n")));
  ASSERT_TRUE(worker.waitUntilReady());

  struct Case {
    std::string name;
    std::string run_id;
    std::string expect;  // in the REJECTED event's message; empty: SUCCEEDED
    std::string reason;  // outpost_rejected_total's label
  };
  std::vector<Case> cases;
  auto send = [&](const std::string& name, v1::JobCommand c, const std::string& expect,
                  const std::string& reason,
                  const std::function<std::string(const std::string& value)>& token,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    c.set_pool(pool);
    const std::string value = c.SerializeAsString();
    produceSigned(topics, value, token(value), std::move(headers));
    cases.push_back({name, c.run_id(), expect, reason});
  };
  auto by = [&](const SigningKey& key, const std::string& kid,
                const std::function<void(security::CommandClaims&)>& change = {}) {
    return [&, kid, change](const std::string& value) {
      // The run id is the one in the value: the test decodes it back.
      v1::JobCommand c;
      c.ParseFromString(value);
      auto claims = goodClaims(value, topics, pool, c.run_id());
      if (change) change(claims);
      return security::signCommandToken(key, kid, claims);
    };
  };
  const auto now = Clock::to_time_t(Clock::now());

  send("signed by k1", makeCommand("ok", {{"n", "1"}}), "", "", by(k1, "k1"));
  send("signed by k2 within its policy", makeCommand("ok", {{"n", "2"}}), "", "", by(k2, "k2"));
  send("unsigned", makeCommand("ok"), "signature: unsigned", "signature_missing",
       [](const std::string&) { return std::string(); });
  send("forged (a stranger's key, named k1)", makeCommand("ok"), "signature:", "signature_invalid",
       by(stranger, "k1"));
  send("unknown key", makeCommand("ok"), "unknown key", "signature_unknown_key",
       by(stranger, "k9"));
  send("signed for another pool", makeCommand("ok"), "this is pool " + pool, "signature_wrong_pool",
       by(k1, "k1", [](auto& c) { c.aud = {"outpost:etl"}; }));
  send("signed for another topic", makeCommand("ok"), "topic", "signature_wrong_topic",
       by(k1, "k1", [](auto& c) { c.topic = "outpost.jobs.elsewhere"; }));
  send("signed as JSON", makeCommand("ok"), "signed as json", "signature_wrong_content_type",
       by(k1, "k1", [](auto& c) { c.cty = "json"; }));
  // Protobuf bytes said to be JSON: refused before they are decoded; read as JSON they do not
  // decode, so there is no run id to key a REJECTED event by (a dead letter, as for any
  // undecodable command).
  auto retyped = makeCommand("ok");
  retyped.set_pool(pool);
  const auto retyped_value = retyped.SerializeAsString();
  produceSigned(topics, retyped_value,
                security::signCommandToken(
                    k1, "k1", goodClaims(retyped_value, topics, pool, retyped.run_id())),
                {{"content-type", "application/json"}});
  {
    auto signed_command = makeCommand("ok", {{"n", "1"}});
    signed_command.set_pool(pool);
    const auto signed_value = signed_command.SerializeAsString();
    auto changed = signed_command;
    (*changed.mutable_args())["n"] = "9";
    send("value changed after signing", changed, "not the one signed", "signature_value_changed",
         [&](const std::string&) {
           return security::signCommandToken(
               k1, "k1", goodClaims(signed_value, topics, pool, changed.run_id()));
         });
  }
  send("expired", makeCommand("ok"), "expired", "signature_expired", by(k1, "k1", [&](auto& c) {
         c.iat = now - 20 * 60;
         c.exp = now - 5 * 60;
       }));
  send("not yet valid", makeCommand("ok"), "not valid for another", "signature_not_yet_valid",
       by(k1, "k1", [&](auto& c) { c.nbf = now + 10 * 60; }));
  send("lifetime too long", makeCommand("ok"), "lifetime", "signature_lifetime",
       by(k1, "k1", [&](auto& c) { c.exp = c.iat + 2 * 3600; }));
  send("key policy refuses the template", makeCommand("exit", {{"code", "0"}}),
       "key k2 may not run template exit", "signature_policy", by(k2, "k2"));
  send("signed for another run id", makeCommand("ok"), "signed for id", "signature_wrong_id",
       by(k1, "k1", [](auto& c) { c.jti = "0190f5c2-0000-7000-8000-000000000000"; }));

  TopicReader events(topics.events);
  std::map<std::string, std::vector<v1::RunEvent>> ends;
  ASSERT_TRUE(events.readUntil(
      [&](const std::vector<Record>& records) {
        ends = terminalByRun(records);
        return std::all_of(cases.begin(), cases.end(),
                           [&](const Case& c) { return ends.contains(c.run_id); });
      },
      seconds(90)))
      << "not every command ended";
  std::map<std::string, int> refused_by_reason;
  for (const auto& c : cases) {
    v1::RunState state = v1::RUN_STATE_UNSPECIFIED;
    const auto message = terminalMessage(ends, c.run_id, &state);
    EXPECT_EQ(ends[c.run_id].size(), 1u) << c.name;
    if (c.expect.empty()) {
      EXPECT_EQ(state, v1::SUCCEEDED) << c.name << ": " << message;
    } else {
      EXPECT_EQ(state, v1::REJECTED) << c.name << ": " << message;
      EXPECT_THAT(message, HasSubstr(c.expect)) << c.name;
      ++refused_by_reason[c.reason];
    }
  }
  // Each refusal is a dead letter, and counted by its check.
  TopicReader dlq(topics.dlq);
  std::size_t refused = cases.size() - 2 + 1;  // and the retyped one
  EXPECT_TRUE(dlq.readUntil([&](const auto& r) { return r.size() >= refused; }, seconds(30)));
  EXPECT_EQ(dlq.records().size(), refused);
  EXPECT_FALSE(ends.contains(retyped.run_id()));
  ++refused_by_reason["signature_wrong_content_type"];
  for (const auto& [reason, n] : refused_by_reason) {
    waitForSample(worker.httpPort(), "outpost_rejected_total{reason=\"" + reason + "\"}", n);
  }
}

TEST(SignedCommands, WarnRunsWhatRequireWouldRefuseAndCountsIt) {
  auto topics = createTopics("signed-warn", 1);
  KeyDir keys;
  auto k1 = SigningKey::generateEd25519();
  keys.trust({{"k1", &k1}});
  WorkerProcess worker(topics, workerOptions("", signingYaml(keys, "warn")));
  ASSERT_TRUE(worker.waitUntilReady());
  auto c = makeCommand("ok");
  submit(topics, c);  // unsigned
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, c.run_id(), v1::SUCCEEDED));
  waitForSample(worker.httpPort(), "outpost_signature_warnings_total{reason=\"signature_missing\"}",
                1);
  EXPECT_TRUE(worker.waitForLog("would be refused when security.commands is require"));
}

TEST(SignedCommands, KeysRotateByRewritingTheJwksWhileTheWorkerRuns) {
  auto topics = createTopics("signed-rotate", 1);
  KeyDir keys;
  auto old_key = SigningKey::generateEd25519();
  auto new_key = SigningKey::generateEd25519();
  keys.trust({{"old", &old_key}});
  const std::string pool = uniqueName("pool");
  WorkerProcess worker(topics, workerOptions(pool, signingYaml(keys, "require")));
  ASSERT_TRUE(worker.waitUntilReady());
  TopicReader events(topics.events);
  auto run = [&](const SigningKey& key, const std::string& kid) {
    auto c = makeCommand("ok");
    c.set_pool(pool);
    const auto value = c.SerializeAsString();
    produceSigned(
        topics, value,
        security::signCommandToken(key, kid, goodClaims(value, topics, pool, c.run_id())));
    EXPECT_TRUE(waitUntil([&] {
      events.readFor(std::chrono::milliseconds(200));
      return !terminalByRun(events.records())[c.run_id()].empty();
    })) << "no end for the command signed by "
        << kid;
    return terminalByRun(events.records())[c.run_id()].back();
  };

  EXPECT_EQ(run(new_key, "new").state(), v1::REJECTED) << "the new key is not trusted yet";
  // Step 1: both keys trusted; the signer switches to the new one.
  keys.trust({{"old", &old_key}, {"new", &new_key}});
  ASSERT_TRUE(worker.waitForLog("2 trusted key(s)"));
  EXPECT_EQ(run(new_key, "new").state(), v1::SUCCEEDED);
  EXPECT_EQ(run(old_key, "old").state(), v1::SUCCEEDED) << "commands signed before the switch";
  // Step 2: the old key goes.
  keys.trust({{"new", &new_key}});
  ASSERT_TRUE(worker.waitForLog("1 trusted key(s) from " + keys.path("jwks.json") + " (new)"));
  auto refused = run(old_key, "old");
  EXPECT_EQ(refused.state(), v1::REJECTED);
  EXPECT_THAT(refused.message(), HasSubstr("unknown key old"));
  EXPECT_EQ(run(new_key, "new").state(), v1::SUCCEEDED);
  EXPECT_TRUE(worker.running());
}

TEST(SignedCommands, KeygenAndSubmitSignAsTheWorkerRequires) {
  auto topics = createTopics("signed-cli", 1);
  KeyDir keys;
  const std::string pool = uniqueName("pool");
  const std::string keygen = "'" + outpostBinary() + "' keygen --kid cli-key --private-key '" +
                             keys.path("cli.pem") + "' --jwks '" + keys.path("jwks.json") + "'";
  const int status = std::system(keygen.c_str());
  ASSERT_EQ(status, 0);
  EXPECT_EQ(fs::status(keys.path("cli.pem")).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  WorkerProcess worker(topics, workerOptions(pool, signingYaml(keys, "require")));
  ASSERT_TRUE(worker.waitUntilReady());
  auto [signed_status, signed_out] =
      runCli(topics, "submit -t ok --pool " + pool + " --sign-key " + keys.path("cli.pem") +
                         " --kid cli-key --wait --wait-timeout 60s");
  EXPECT_EQ(signed_status, 0) << signed_out;
  auto [unsigned_status, unsigned_out] =
      runCli(topics, "submit -t ok --pool " + pool + " --wait --wait-timeout 60s");
  EXPECT_EQ(unsigned_status, 5) << "REJECTED: " << unsigned_out;
  // A signed cancel (its pool from --sign-pool: the client's configuration names none).
  auto [sleep_status, sleep_out] =
      runCli(topics, "submit -t sleep -a secs=300 --pool " + pool + " --sign-key " +
                         keys.path("cli.pem") + " --kid cli-key");
  ASSERT_EQ(sleep_status, 0);
  const std::string run_id = sleep_out.substr(0, sleep_out.find('\n'));
  TopicReader events(topics.events);
  ASSERT_TRUE(waitForState(events, run_id, v1::STARTED));
  auto [cancel_status, cancel_out] =
      runCli(topics, "cancel --run " + run_id + " --sign-key " + keys.path("cli.pem") +
                         " --kid cli-key --sign-pool " + pool + " --wait --wait-timeout 60s");
  EXPECT_EQ(cancel_status, 0) << "CANCELLED: " << cancel_out;
}

}  // namespace
}  // namespace outpost::test

namespace outpost::test {
namespace {

// A control command (cancel, drain) signed here with `change` applied to its claims; returns the
// value and the token.
std::pair<std::string, std::string> signedControl(
    const SigningKey& key, const std::string& kid, v1::ControlCommand c, const Topics& topics,
    const std::string& pool, const std::function<void(security::CommandClaims&)>& change = {}) {
  static int n = 0;
  c.set_command_id("0190f5c2-0000-7000-8000-" + std::to_string(100000000000 + ++n));
  const auto value = c.SerializeAsString();
  auto claims = security::claimsFor(value, topics.control, {pool}, security::CommandKind::kControl,
                                    c.command_id(), "protobuf", "test", Clock::now(), minutes(5));
  if (change) change(claims);
  return {value, security::signCommandToken(key, kid, claims)};
}

TEST(SignedCommands, ControlCommandsAreSignedForTheirActionAndUsedOnce) {
  auto topics = createTopics("signed-control", 1);
  KeyDir keys;
  auto ops = SigningKey::generateEd25519();
  auto scheduler = SigningKey::generateEd25519();  // may run and cancel, not drain
  keys.trust({{"ops", &ops}, {"scheduler", &scheduler}});
  const std::string pool = uniqueName("pool");
  WorkerProcess worker(
      topics, workerOptions(pool, signingYaml(keys, "require",
                                              "  keys:\n    scheduler:\n      actions: [run, "
                                              "cancel]\n")));
  ASSERT_TRUE(worker.waitUntilReady());
  const int port = worker.httpPort();
  TopicReader events(topics.events);
  auto c = makeCommand("sleep", {{"secs", "300"}});
  c.set_pool(pool);
  const auto value = c.SerializeAsString();
  produceSigned(topics, value,
                security::signCommandToken(scheduler, "scheduler",
                                           goodClaims(value, topics, pool, c.run_id())));
  ASSERT_TRUE(waitForState(events, c.run_id(), v1::STARTED));

  v1::ControlCommand cancel;
  cancel.mutable_cancel()->set_run_id(c.run_id());
  cancel.mutable_cancel()->set_reason("test");
  // Unsigned: refused, and the worker holding the run says so.
  {
    auto unsigned_cancel = cancel;
    unsigned_cancel.set_command_id("0190f5c2-0000-7000-8000-000000000001");
    produce(topics.control, c.run_id(), unsigned_cancel.SerializeAsString());
  }
  ASSERT_TRUE(waitUntil([&] {
    events.readFor(std::chrono::milliseconds(200));
    for (const auto& e : decodeEvents(events.records())) {
      if (e.run_id() == c.run_id() && e.state() == v1::NOTICE &&
          e.message().find("refused: signature: unsigned") != std::string::npos) {
        return true;
      }
    }
    return false;
  })) << "no NOTICE for the refused cancel";
  // A drain by the scheduler's key: its policy refuses it; the worker keeps taking commands.
  v1::ControlCommand drain;
  drain.mutable_drain()->mutable_workers()->set_pool(pool);
  auto [drain_value, drain_token] = signedControl(scheduler, "scheduler", drain, topics, pool);
  produce(topics.control, "pool:" + pool, drain_value, {{"outpost-signature", drain_token}});
  waitForSample(port, "outpost_rejected_total{reason=\"signature_policy\"}", 1);
  EXPECT_EQ(get(port, "/readyz").status, 200) << "a refused drain drains nothing";
  // A cancel for another pool: refused.
  auto [moved_value, moved_token] = signedControl(ops, "ops", cancel, topics, "etl");
  produce(topics.control, c.run_id(), moved_value, {{"outpost-signature", moved_token}});
  waitForSample(port, "outpost_rejected_total{reason=\"signature_wrong_pool\"}", 1);
  EXPECT_EQ(countState(events.records(), c.run_id(), v1::CANCELLED), 0u);

  // A good cancel, written twice: the first cancels, the copy is replayed.
  auto [cancel_value, cancel_token] = signedControl(ops, "ops", cancel, topics, pool);
  produce(topics.control, c.run_id(), cancel_value, {{"outpost-signature", cancel_token}});
  ASSERT_TRUE(waitForState(events, c.run_id(), v1::CANCELLED));
  produce(topics.control, c.run_id(), cancel_value, {{"outpost-signature", cancel_token}});
  waitForSample(port, "outpost_rejected_total{reason=\"replayed\"}", 1);
  waitForSample(port, "outpost_rejected_total{reason=\"signature_missing\"}", 1);
}

}  // namespace
}  // namespace outpost::test

namespace outpost::test {
namespace {

// A signed command runs once: a copy written again at another offset, or on another partition
// (read by another worker of the pool), while the first runs or after it ended, is refused as
// replayed; the first use is recorded on the runs topic.
TEST(SignedCommands, ACopyOfASignedCommandIsRefusedAsReplayedOnAnyWorkerOfThePool) {
  auto topics = createTopics("signed-replay", 2);
  KeyDir keys;
  auto k1 = SigningKey::generateEd25519();
  keys.trust({{"k1", &k1}});
  const std::string pool = uniqueName("pool");
  WorkerProcess a(topics, workerOptions(pool, signingYaml(keys, "require")));
  WorkerProcess b(topics, workerOptions(pool, signingYaml(keys, "require")));
  ASSERT_TRUE(a.waitUntilReady());
  ASSERT_TRUE(b.waitUntilReady());
  ASSERT_TRUE(waitUntil([&] { return groupState(a.group()).second == 2; }));
  ASSERT_TRUE(a.waitUntilReady() && b.waitUntilReady());

  auto c = makeCommand("sleep", {{"secs", "3"}});
  c.set_pool(pool);
  const auto value = c.SerializeAsString();
  const std::vector<std::pair<std::string, std::string>> signature = {
      {"outpost-signature",
       security::signCommandToken(k1, "k1", goodClaims(value, topics, pool, c.run_id()))}};
  TopicReader events(topics.events);
  produce(topics.jobs, "k", value, signature, 0);
  ASSERT_TRUE(waitForState(events, c.run_id(), v1::STARTED));
  // While it runs: a copy on the same partition, and one on the other (the other worker's).
  produce(topics.jobs, "k", value, signature, 0);
  produce(topics.jobs, "k", value, signature, 1);
  ASSERT_TRUE(waitForState(events, c.run_id(), v1::SUCCEEDED));
  // After it ended: copies again on both.
  produce(topics.jobs, "k", value, signature, 0);
  produce(topics.jobs, "k", value, signature, 1);

  TopicReader dlq(topics.dlq);
  ASSERT_TRUE(dlq.readUntil([](const auto& r) { return r.size() >= 4; }, seconds(60)))
      << "every copy is dead-lettered";
  for (const auto& r : dlq.records()) {
    EXPECT_THAT(r.headers.at("outpost.dlq.reason"), HasSubstr("replayed")) << r.offset;
  }
  events.readFor(std::chrono::seconds(1));
  EXPECT_EQ(countState(events.records(), c.run_id(), v1::STARTED), 1u) << "it ran once";
  EXPECT_EQ(terminalByRun(events.records())[c.run_id()].size(), 1u);
  // Each worker holds one partition: each refused the two copies written to it.
  for (auto* w : {&a, &b}) {
    EXPECT_EQ(
        sample(get(w->httpPort(), "/metrics").body, "outpost_rejected_total{reason=\"replayed\"}"),
        2)
        << w->id();
  }
}

}  // namespace
}  // namespace outpost::test
