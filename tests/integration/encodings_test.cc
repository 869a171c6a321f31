// The encodings a worker reads on the jobs topic (docs/messages-and-topics.md, "Encodings on the
// jobs topic"), through a
// real worker: JSON with and without its content-type (Airflow's ProduceToTopicOperator sets no
// headers), Confluent Schema Registry framing, CloudEvents in binary and structured mode; and a
// JSON command with a misspelled field goes to the dead-letter topic with the reason and a
// REJECTED event.
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;

std::string jsonOf(const v1::JobCommand& c) {
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(c, &json).ok());
  return json;
}

TEST(Encodings, AWorkerRunsCommandsInEveryEncodingAndDeadLettersWhatItCannotRead) {
  auto topics = createTopics("encodings", 1);
  WorkerProcess worker(topics, {});
  ASSERT_TRUE(worker.waitUntilReady());

  std::vector<v1::JobCommand> sent;
  auto next = [&](int n) {
    sent.push_back(makeCommand("ok", {{"n", std::to_string(n)}}));
    return sent.back();
  };
  auto c = next(1);
  produce(topics.jobs, c.job_id(), jsonOf(c));  // JSON, no headers
  c = next(2);
  produce(topics.jobs, c.job_id(), jsonOf(c), {{"content-type", "application/json"}});
  c = next(3);
  produce(topics.jobs, c.job_id(),
          std::string("\x00\x00\x00\x00\x07\x00", 6) + c.SerializeAsString());  // SR framing
  c = next(4);
  produce(topics.jobs, c.job_id(), c.SerializeAsString(),
          {{"ce_specversion", "1.0"},
           {"ce_id", "evt-binary"},
           {"ce_source", "//test"},
           {"ce_type", "dev.outpost.job"},
           {"content-type", "application/protobuf"}});
  c = next(5);
  nlohmann::json event = {{"specversion", "1.0"},
                          {"id", "evt-structured"},
                          {"source", "//test"},
                          {"type", "dev.outpost.job"},
                          {"data", nlohmann::json::parse(jsonOf(c))}};
  produce(topics.jobs, c.job_id(), event.dump(),
          {{"content-type", "application/cloudevents+json"}});
  // Misspelled: "timout_ms".
  auto bad = makeCommand("ok");
  auto bad_json = nlohmann::json::parse(jsonOf(bad));
  bad_json["timout_ms"] = 5;
  produce(topics.jobs, bad.job_id(), bad_json.dump());

  TopicReader events(topics.events);
  ASSERT_TRUE(events.readUntil([&](const auto& r) {
    auto ended = terminalByRun(r);
    for (const auto& s : sent) {
      if (!ended.contains(s.run_id())) return false;
    }
    return ended.contains(bad.run_id());
  }));
  auto ended = terminalByRun(events.records());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const auto end = ended[sent[i].run_id()].front();
    EXPECT_EQ(end.state(), v1::SUCCEEDED) << "command " << i + 1 << ": " << end.message();
    EXPECT_THAT(end.log_tail(), HasSubstr("ok " + std::to_string(i + 1)));
  }
  EXPECT_EQ(ended[sent[3].run_id()].front().labels().at("ce_id"), "evt-binary");
  EXPECT_EQ(ended[sent[4].run_id()].front().labels().at("ce_id"), "evt-structured");
  const auto rejected = ended[bad.run_id()].front();
  EXPECT_EQ(rejected.state(), v1::REJECTED);
  EXPECT_THAT(rejected.message(), HasSubstr("timout_ms"));

  TopicReader dlq(topics.dlq);
  ASSERT_TRUE(dlq.readUntil([](const auto& r) { return !r.empty(); }));
  ASSERT_EQ(dlq.records().size(), 1u);
  EXPECT_THAT(dlq.records()[0].headers.at("outpost.dlq.reason"), HasSubstr("JSON mapping"));
  EXPECT_EQ(dlq.records()[0].value, bad_json.dump()) << "the original bytes";
  EXPECT_EQ(worker.terminate(), 0);
}

}  // namespace
}  // namespace outpost::test
