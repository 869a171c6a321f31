// Lineage end to end through a real worker: events a job writes itself (OUTPOST_LINEAGE_FD and
// OUTPOST_LINEAGE_FILE) are checked, tied to the run, masked and forwarded in order between the
// run's own START and COMPLETE; a bad line becomes a NOTICE; the HTTP transport gets the same
// records as Kafka.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace outpost::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string kSecret = "lineage-secret-7c1e9b2d";
const std::string kChildRun = "01937f3a-5b6c-7d8e-9f01-23456789abcd";

// The job: a RUNNING event about its own run on descriptor 3 (runId and job left out), a START of
// a run of its own (a dbt model) through the file path, a line that is not JSON, and a RUNNING
// event that carries the secret in a dataset name.
std::string writeJobScript(const std::string& dir) {
  const std::string producer = R"("producer":"https://example.com/my-job")";
  const std::string schema =
      R"("schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent")";
  auto line = [&](const std::string& body) {
    return "{" + producer + "," + schema + "," + body + "}";
  };
  std::string running = line(
      R"("eventType":"RUNNING","eventTime":"2026-11-22T01:00:00.000Z","run":{},)"
      R"("inputs":[{"namespace":"postgres://db.example.com:5432","name":"shop.public.orders"}])");
  std::string child = line(R"("eventType":"START","eventTime":"2026-11-22T01:00:01.000Z",)"
                           R"("run":{"runId":")" +
                           kChildRun + R"("},"job":{"namespace":"dbt","name":"model.orders"})");
  std::string secret = line(
      R"("eventType":"RUNNING","eventTime":"2026-11-22T01:00:02.000Z","run":{},)"
      R"("outputs":[{"namespace":"postgres://db.example.com:5432","name":"shop.public.'"$TOKEN"'"}])");
  std::string path = dir + "/emit.sh";
  std::ofstream out(path);
  out << "printf '%s\\n' '" << running << "' >&3\n"
      << "printf '%s\\n' '" << child << "' >> \"$OUTPOST_LINEAGE_FILE\"\n"
      << "echo 'this is not json' >&3\n"
      << "printf '%s\\n' '" << secret << "' >&3\n"
      << "echo done\n";
  return path;
}

std::string templatesFor(const std::string& script) {
  return "templates:\n"
         "  emit:\n"
         "    argv: [sh, " +
         script +
         "]\n"
         "    allow_shell: true\n"
         "    recipe: none\n"
         "    env: {TOKEN: \"${IT_LINEAGE_TOKEN}\"}\n"
         "    secrets: [IT_LINEAGE_TOKEN]\n";
}

// The run's lineage records, in topic order, as JSON.
std::vector<json> lineageOf(const std::vector<Record>& records) {
  std::vector<json> out;
  for (const auto& r : records) out.push_back(json::parse(r.value));
  return out;
}

class ChildLineage : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("IT_LINEAGE_TOKEN", kSecret.c_str(), 1);
    dir_ = fs::temp_directory_path() / uniqueName("outpost-lineage-it");
    fs::create_directories(dir_);
    script_ = writeJobScript(dir_.string());
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string script_;
};

TEST_F(ChildLineage, IsCheckedTiedMaskedAndForwardedBetweenTheRunsOwnRecords) {
  auto topics = createTopics("lineage-child", 1);
  WorkerProcess::Options o;
  o.templates = templatesFor(script_);
  WorkerProcess worker(topics, o);
  auto cmd = makeCommand("emit");
  submit(topics, cmd);

  TopicReader events(topics.events);
  ASSERT_TRUE(
      events.readUntil([&](const auto& r) { return terminalByRun(r).contains(cmd.run_id()); }));
  TopicReader lineage(topics.lineage);
  ASSERT_TRUE(
      lineage.readUntil([](const auto& r) { return r.size() >= 5; }, std::chrono::seconds(20)))
      << lineage.records().size() << " records; events:\n"
      << [&] {
           std::string out;
           for (const auto& e : decodeEvents(events.records())) out += e.message() + "\n";
           for (const auto& r : lineage.records()) out += r.value + "\n";
           return out;
         }();
  // Nothing more of this run may come. The worker writes a run's records while it handles the
  // run, which ended with the terminal event read above; the START of a run submitted after that
  // is written later, on the same single lineage partition: once it is read, anything more of
  // this run would have been read before it.
  auto later = makeCommand("emit");
  submit(topics, later);
  auto isLaterStart = [&](const Record& r) {
    auto j = json::parse(r.value);
    return j["eventType"] == "START" && j["run"]["runId"] == later.run_id();
  };
  ASSERT_TRUE(lineage.readUntil([&](const auto& r) {
    return std::ranges::any_of(r, isLaterStart);
  })) << "the later run's START never came";
  const std::vector<Record> mine(lineage.records().begin(),
                                 std::ranges::find_if(lineage.records(), isLaterStart));

  auto recs = lineageOf(mine);
  ASSERT_EQ(recs.size(), 5u);
  std::vector<std::string> types;
  for (const auto& r : recs) types.push_back(r["eventType"]);
  EXPECT_EQ(types, (std::vector<std::string>{"START", "RUNNING", "START", "RUNNING", "COMPLETE"}));

  // The job's event about its own run: runId, job and producer as Outpost's run has them.
  EXPECT_EQ(recs[1]["run"]["runId"], cmd.run_id());
  EXPECT_EQ(recs[1]["job"]["namespace"], recs[0]["job"]["namespace"]);
  EXPECT_EQ(recs[1]["job"]["name"], recs[0]["job"]["name"]);
  EXPECT_EQ(recs[1]["producer"], "https://example.com/my-job");
  // The run of its own: parent is the Outpost run.
  EXPECT_EQ(recs[2]["run"]["runId"], kChildRun);
  EXPECT_EQ(recs[2]["run"]["facets"]["parent"]["run"]["runId"], cmd.run_id());
  EXPECT_EQ(recs[2]["run"]["facets"]["parent"]["job"]["name"], recs[0]["job"]["name"]);
  // Every record of the run shares one Kafka key, so they stay in order on one partition.
  for (const auto& r : mine) EXPECT_EQ(r.key, mine[0].key);
  // The secret in the dataset name is masked; the terminal record counts what the job wrote.
  EXPECT_EQ(recs[3]["outputs"][0]["name"], "shop.public.***");
  auto facet = recs[4]["run"]["facets"]["outpost"];
  EXPECT_EQ(facet["childEventsForwarded"], 3);
  EXPECT_EQ(facet["childEventsRejected"], 1);

  // The bad line is a NOTICE on the run's events, and the run still succeeded.
  bool notice = false;
  for (const auto& e : decodeEvents(events.records())) {
    if (e.run_id() != cmd.run_id()) continue;
    if (e.state() == v1::NOTICE && e.message().find("lineage line 3 refused") != std::string::npos)
      notice = true;
    if (v1::isTerminal(e.state())) {
      EXPECT_EQ(e.state(), v1::SUCCEEDED);
    }
  }
  EXPECT_TRUE(notice);

  auto v = validateLineage(mine);
  EXPECT_TRUE(v.ok) << v.output;
  for (const auto* topic : {&events, &lineage}) {
    for (const auto& r : topic->records()) {
      EXPECT_EQ(r.value.find(kSecret), std::string::npos);
    }
  }
  EXPECT_EQ(worker.terminate(), 0);
  EXPECT_EQ(worker.log().find(kSecret), std::string::npos);
}

TEST(Lineage, RunningRecordsFollowHeartbeatsWhenAskedFor) {
  auto topics = createTopics("lineage-running", 1);
  WorkerProcess::Options o;
  o.worker_yaml = "  heartbeat_interval: 300ms\n";
  o.extra_yaml = "lineage:\n  running_events: true\n";
  WorkerProcess worker(topics, o);
  auto cmd = makeCommand("sleep", {{"secs", "1.5"}});
  submit(topics, cmd);
  TopicReader lineage(topics.lineage);
  ASSERT_TRUE(lineage.readUntil([](const auto& r) {
    return !r.empty() && json::parse(r.back().value)["eventType"] == "COMPLETE";
  }));
  auto recs = lineageOf(lineage.records());
  ASSERT_GE(recs.size(), 4u) << "START, at least two RUNNING, COMPLETE";
  EXPECT_EQ(recs.front()["eventType"], "START");
  for (std::size_t i = 1; i + 1 < recs.size(); ++i) {
    EXPECT_EQ(recs[i]["eventType"], "RUNNING");
    EXPECT_GT(recs[i]["run"]["facets"]["outpost"]["runMs"].get<std::int64_t>(), 0);
  }
  auto v = validateLineage(lineage.records());
  EXPECT_TRUE(v.ok) << v.output;
  EXPECT_EQ(worker.terminate(), 0);
}

TEST_F(ChildLineage, TheHttpTransportGetsWhatKafkaGets) {
  httplib::Server server;
  std::mutex mu;
  std::vector<std::string> posted;
  std::vector<std::string> auth;
  server.Post("/api/v1/lineage", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    posted.push_back(req.body);
    auth.push_back(req.get_header_value("Authorization"));
    res.status = 201;
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { server.listen_after_bind(); });
  ::setenv("IT_LINEAGE_HTTP_TOKEN", "http-token-5e2a", 1);

  auto topics = createTopics("lineage-http", 1);
  WorkerProcess::Options o;
  o.templates = templatesFor(script_);
  o.extra_yaml =
      "lineage:\n  transport: both\n  http:\n    url: http://127.0.0.1:" + std::to_string(port) +
      "\n    token: \"${env:IT_LINEAGE_HTTP_TOKEN}\"\n";  // from a secret store
  WorkerProcess worker(topics, o);
  auto cmd = makeCommand("emit");
  submit(topics, cmd);

  TopicReader lineage(topics.lineage);
  ASSERT_TRUE(lineage.readUntil([](const auto& r) { return r.size() >= 5; }));
  EXPECT_EQ(worker.terminate(), 0);  // flushes the HTTP transport
  server.stop();
  serving.join();

  std::lock_guard lock(mu);
  ASSERT_EQ(posted.size(), lineage.records().size());
  for (std::size_t i = 0; i < posted.size(); ++i) {
    EXPECT_EQ(json::parse(posted[i]), json::parse(lineage.records()[i].value)) << "record " << i;
    EXPECT_EQ(auth[i], "Bearer http-token-5e2a");
  }
  EXPECT_THAT(worker.log(), ::testing::Not(::testing::HasSubstr("http-token-5e2a")));
}

}  // namespace
}  // namespace outpost::test
