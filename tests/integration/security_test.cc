// Kafka security against the test broker's secured listeners (scripts/kafka start --security
// tls,sasl-scram,sasl-plain, as scripts/test starts it): a worker runs a job through each with
// the documented kafka.properties; a wrong password, an untrusted CA or a missing client
// certificate stops it at start with an error naming the settings, not a hang; and a password
// may come from a secret store, masked like any secret.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

// The listener's client settings that scripts/kafka wrote: bootstrap.servers and the rest.
struct Listener {
  std::string bootstrap;
  std::map<std::string, std::string> properties;
};

Listener listener(const std::string& mode) {
  const char* dir = std::getenv("OUTPOST_KAFKA_DIR");
  const fs::path file = fs::path(dir ? dir : "") / "security" / (mode + ".properties");
  Listener l;
  std::ifstream in(file);
  if (!in) {
    ADD_FAILURE() << "no " << file
                  << ": the test broker has no secured listeners; start it with scripts/kafka "
                     "start --security tls,sasl-scram,sasl-plain (scripts/test does)";
    return l;
  }
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    auto key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "bootstrap.servers") {
      l.bootstrap = value;
    } else {
      l.properties[key] = value;
    }
  }
  return l;
}

WorkerProcess::Options secured(const Listener& l) {
  WorkerProcess::Options o;
  o.slots = 2;
  o.bootstrap = l.bootstrap;
  o.kafka_properties = l.properties;
  o.templates =
      standardTemplates() +
      "  say:\n    argv: [echo, \"{msg}\"]\n    params: {msg: {pattern: \"[a-z0-9-]+\"}}\n"
      "    recipe: none\n";
  return o;
}

// Submits `cmd` and returns its terminal event (an empty one, the test failed, if none came).
v1::RunEvent runToEnd(const Topics& topics, const v1::JobCommand& cmd, TopicReader& events) {
  submit(topics, cmd);
  if (!events.readUntil([&](const auto& r) { return terminalByRun(r).contains(cmd.run_id()); })) {
    ADD_FAILURE() << "no terminal event for " << cmd.run_id();
    return {};
  }
  return terminalByRun(events.records())[cmd.run_id()].front();
}

class SecuredListener : public ::testing::TestWithParam<std::string> {};

// Exactly-once (the default): the transactional producer, the group and the runs topic all go
// through the secured listener.
TEST_P(SecuredListener, AWorkerRunsAJobThroughIt) {
  auto l = listener(GetParam());
  ASSERT_FALSE(l.bootstrap.empty());
  auto topics = createTopics("security-" + GetParam(), 1);
  WorkerProcess worker(topics, secured(l));
  ASSERT_TRUE(worker.waitUntilReady());
  TopicReader events(topics.events);
  const auto end = runToEnd(topics, makeCommand("say", {{"msg", "over-" + GetParam()}}), events);
  EXPECT_EQ(end.state(), v1::SUCCEEDED) << end.message();
  EXPECT_THAT(end.log_tail(), HasSubstr("over-" + GetParam()));
  EXPECT_EQ(worker.terminate(), 0);
}

INSTANTIATE_TEST_SUITE_P(Kafka, SecuredListener,
                         ::testing::Values("tls", "sasl-scram", "sasl-plain"),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::erase(name, '-');
                           return name;
                         });

// Starts a worker that must refuse to start; returns its exit status and log.
std::pair<int, std::string> refusedStart(const WorkerProcess::Options& o) {
  auto topics = createTopics("security-refused", 1);
  WorkerProcess worker(topics, o);
  EXPECT_TRUE(worker.waitForExit()) << "it did not stop by itself:\n" << worker.log();
  int status = worker.terminate();
  return {status, worker.log()};
}

TEST(KafkaSecurity, AWrongPasswordStopsTheStartNamingTheSettings) {
  for (const std::string mode : {"sasl-scram", "sasl-plain"}) {
    auto l = listener(mode);
    ASSERT_FALSE(l.bootstrap.empty());
    const auto right = l.properties["sasl.password"];
    l.properties["sasl.password"] = "not-the-password-" + mode;
    auto [status, log] = refusedStart(secured(l));
    EXPECT_EQ(status, 2) << mode << ": a configuration error\n" << log;
    EXPECT_THAT(log, HasSubstr("refused the client's credentials")) << mode;
    EXPECT_THAT(log, HasSubstr("sasl.password")) << mode;
    EXPECT_THAT(log, Not(HasSubstr("not-the-password-"))) << "never the value";
    EXPECT_THAT(log, Not(HasSubstr(right)));
  }
}

TEST(KafkaSecurity, AnUntrustedCaOrAMissingClientCertificateStopsTheStart) {
  auto l = listener("sasl-scram");
  ASSERT_FALSE(l.bootstrap.empty());
  // Debian's public CAs: the broker's certificate is signed by none of them.
  l.properties["ssl.ca.location"] = "/etc/ssl/certs/ca-certificates.crt";
  auto [status, log] = refusedStart(secured(l));
  EXPECT_EQ(status, 2) << log;
  EXPECT_THAT(log, HasSubstr("the TLS connection failed"));
  EXPECT_THAT(log, HasSubstr("ssl.ca.location"));

  auto t = listener("tls");
  ASSERT_FALSE(t.bootstrap.empty());
  t.properties.erase("ssl.certificate.location");
  t.properties.erase("ssl.key.location");
  t.properties.erase("ssl.key.password");
  auto [no_cert, no_cert_log] = refusedStart(secured(t));
  EXPECT_EQ(no_cert, 2) << no_cert_log;
  EXPECT_THAT(no_cert_log, HasSubstr("ssl.certificate.location"));
}

// The SASL password and the client key's passphrase from the secret stores: resolved at start,
// and masked in what runs print like any resolved secret.
TEST(KafkaSecurity, CredentialsMayComeFromASecretStoreAndAreMasked) {
  auto scram = listener("sasl-scram");
  ASSERT_FALSE(scram.bootstrap.empty());
  const auto password = scram.properties["sasl.password"];
  const auto dir = fs::temp_directory_path() / uniqueName("security-secrets");
  fs::create_directories(dir);
  { std::ofstream(dir / "kafka-password") << password << "\n"; }
  scram.properties["sasl.password"] = "${file:kafka-password}";
  auto o = secured(scram);
  o.extra_yaml = "secrets:\n  file_dir: " + dir.string() + "\n";
  auto topics = createTopics("security-secrets", 1);
  WorkerProcess worker(topics, o);
  ASSERT_TRUE(worker.waitUntilReady());
  // A job that prints the password (given as a plain argument): the worker masks it.
  TopicReader events(topics.events);
  const auto end = runToEnd(topics, makeCommand("say", {{"msg", password}}), events);
  EXPECT_EQ(end.state(), v1::SUCCEEDED) << end.message();
  EXPECT_THAT(end.log_tail(), HasSubstr("***"));
  EXPECT_EQ(worker.terminate(), 0);
  EXPECT_THAT(worker.log(), Not(HasSubstr(password)));
  for (const auto& r : events.records()) EXPECT_THAT(r.value, Not(HasSubstr(password)));

  auto tls = listener("tls");
  ASSERT_FALSE(tls.bootstrap.empty());
  { std::ofstream(dir / "key-passphrase") << tls.properties["ssl.key.password"] << "\n"; }
  tls.properties["ssl.key.password"] = "${file:key-passphrase}";
  auto t = secured(tls);
  t.extra_yaml = o.extra_yaml;
  WorkerProcess tls_worker(topics, t);
  EXPECT_TRUE(tls_worker.waitUntilReady());
  EXPECT_EQ(tls_worker.terminate(), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace outpost::test
