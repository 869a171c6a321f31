// decodeCommand / admitCommand: any bytes on the jobs topic become either a command this worker
// may run or a rejection with a reason, never an exception.
#include <cstdint>
#include <random>
#include <string>

#include <gmock/gmock.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include "outpost/common/utf8.h"
#include "outpost/consumer/intake.h"

namespace outpost::consumer {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr const char* kRunId = "0190a5d2-7c3e-7abc-8def-0123456789ab";

v1::JobCommand fullCommand() {
  v1::JobCommand c;
  c.set_run_id(kRunId);
  c.set_job_id("mysql-orders");
  c.set_job_type("datahub-ingest");
  c.set_pool("etl");
  c.set_recipe(std::string("source:\n  type: mysql\n\0binary\xFF", 30));
  (*c.mutable_args())["source"] = "mysql";
  (*c.mutable_env())["DATAHUB_GMS_URL"] = "http://gms:8080";
  c.set_timeout_ms(60'000);
  c.set_not_after_ms(1'795'255'200'000);
  c.set_requested_at_ms(1'795'255'100'000);
  c.set_requested_by("scheduler");
  c.set_attempt(2);
  c.set_max_attempts(5);
  (*c.mutable_labels())["team"] = "data";
  c.mutable_lineage()->set_job_namespace("acme");
  auto* in = c.mutable_lineage()->add_inputs();
  in->set_namespace_("mysql://db:3306");
  in->set_name("shop.orders");
  return c;
}

std::string bytesOf(const v1::JobCommand& c) {
  return c.SerializeAsString();
}

Rejection decodeRejection(std::string_view bytes) {
  auto r = decodeCommand(bytes);
  EXPECT_FALSE(r.has_value());
  return r.has_value() ? Rejection{} : r.error();
}

// ---------------------------------------------------------------------------------------------
// decodeCommand

TEST(DecodeCommand, EmptyBytesAreRejected) {
  Rejection r = decodeRejection("");
  EXPECT_THAT(r.reason, HasSubstr("empty message"));
  EXPECT_TRUE(r.partial.run_id().empty());
}

TEST(DecodeCommand, TextIsRejectedWithoutARunId) {
  Rejection r = decodeRejection("hello world");
  EXPECT_FALSE(r.reason.empty());
  EXPECT_THAT(r.reason, HasSubstr("JobCommand"));
  EXPECT_TRUE(r.partial.run_id().empty());
}

TEST(DecodeCommand, RandomBytesAreRejectedWithoutARunId) {
  google::protobuf::LogSilencer quiet;  // protobuf logs each invalid UTF-8 string
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string bytes(200, '\0');
  for (auto& b : bytes) b = static_cast<char>(byte(rng));
  Rejection r = decodeRejection(bytes);
  EXPECT_THAT(r.reason, HasSubstr("JobCommand"));
  EXPECT_TRUE(r.partial.run_id().empty());
}

TEST(DecodeCommand, ManyRandomBuffersAreAllRejectedAndNoneThrows) {
  google::protobuf::LogSilencer quiet;  // protobuf logs each invalid UTF-8 string
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> len(1, 300);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(static_cast<std::size_t>(len(rng)), '\0');
    for (auto& b : bytes) b = static_cast<char>(byte(rng));
    std::expected<v1::JobCommand, Rejection> r;
    ASSERT_NO_THROW(r = decodeCommand(bytes)) << "buffer " << i;
    ASSERT_FALSE(r.has_value()) << "buffer " << i;
    ASSERT_FALSE(r.error().reason.empty());
  }
}

TEST(DecodeCommand, TruncatedValidCommandIsRejected) {
  std::string bytes = bytesOf(fullCommand());
  // Cut inside the run_id string: field 1 comes first on the wire.
  Rejection r = decodeRejection(std::string_view(bytes).substr(0, 10));
  EXPECT_THAT(r.reason, HasSubstr("JobCommand"));
}

TEST(DecodeCommand, ValidCommandRoundTrips) {
  v1::JobCommand sent = fullCommand();
  auto got = decodeCommand(bytesOf(sent));
  ASSERT_TRUE(got.has_value()) << got.error().reason;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, sent)) << got->DebugString();
  EXPECT_EQ(got->attempt(), 2u);
  EXPECT_EQ(got->recipe(), sent.recipe());
}

// ---------------------------------------------------------------------------------------------
// Encodings (docs/messages-and-topics.md, "Encodings on the jobs topic"): each is told apart per
// message and decodes to the same command.

std::string jsonOf(const v1::JobCommand& c) {
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(c, &json).ok());
  return json;
}

// `encoding` by reference: it is read after decodeCommand set it.
void expectFull(const std::expected<v1::JobCommand, Rejection>& got, const Encoding& encoding,
                Encoding expected, const std::string& ce_id = "") {
  ASSERT_TRUE(got.has_value()) << got.error().reason;
  EXPECT_EQ(nameOf(encoding), std::string(nameOf(expected)));
  v1::JobCommand want = fullCommand();
  if (!ce_id.empty()) (*want.mutable_labels())["ce_id"] = ce_id;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, want)) << got->DebugString();
}

TEST(Encodings, JsonIsReadWithOrWithoutItsContentType) {
  const std::string json = jsonOf(fullCommand());
  Encoding e{};
  expectFull(decodeCommand(json, {{"content-type", "application/json"}}, &e), e, Encoding::kJson);
  // Airflow's ProduceToTopicOperator sets no headers: a first '{' (after blanks) says JSON.
  expectFull(decodeCommand("\n  " + json, {}, &e), e, Encoding::kJson);
}

TEST(Encodings, AMisspelledJsonFieldIsRefusedNamingItAndKeepingTheRunId) {
  const std::string json =
      R"({"runId": ")" + std::string(kRunId) + R"(", "jobType": "t", "timout_ms": 5})";
  Rejection r = decodeCommand(json).error();
  EXPECT_THAT(r.reason, AllOf(HasSubstr("JSON mapping"), HasSubstr("timout_ms")));
  EXPECT_EQ(r.partial.run_id(), kRunId) << "for its REJECTED event";
  Rejection bad = decodeCommand(R"({"runId": "not-a-uuid", "x": 1})").error();
  EXPECT_TRUE(bad.partial.run_id().empty());
}

TEST(Encodings, SchemaRegistryFramingIsTakenOffWhateverItsIndexes) {
  const std::string proto = bytesOf(fullCommand());
  const std::string id("\x00\x00\x00\x01\x2a", 5);  // magic byte 0, schema id 298
  Encoding e{};
  // Message indexes [0], written as a single 0 (Confluent's short form).
  expectFull(decodeCommand(id + std::string(1, '\0') + proto, {}, &e), e,
             Encoding::kSchemaRegistry);
  // [1, 0]: count 2 and the indexes, as zigzag varints.
  expectFull(decodeCommand(id + std::string("\x04\x02\x00", 3) + proto, {}, &e), e,
             Encoding::kSchemaRegistry);
  Rejection r = decodeCommand(std::string("\x00\x00\x01", 3)).error();
  EXPECT_THAT(r.reason, AllOf(HasSubstr("Schema Registry"), HasSubstr("JobCommand")));
}

TEST(Encodings, CloudEventsInBinaryModeKeepTheirIdAsALabel) {
  std::vector<events::Header> headers = {{"ce_specversion", "1.0"},
                                         {"ce_id", "evt-42"},
                                         {"ce_source", "//airflow/dags/ingest"},
                                         {"ce_type", "dev.outpost.job.submitted"},
                                         {"content-type", "application/protobuf"}};
  Encoding e{};
  expectFull(decodeCommand(bytesOf(fullCommand()), headers, &e), e, Encoding::kCloudEventBinary,
             "evt-42");
  headers.back().value = "application/json";
  expectFull(decodeCommand(jsonOf(fullCommand()), headers, &e), e, Encoding::kCloudEventBinary,
             "evt-42");
  headers[0].value = "0.3";
  EXPECT_THAT(decodeCommand(bytesOf(fullCommand()), headers).error().reason,
              HasSubstr("specversion '0.3' is not 1.0"));
  EXPECT_THAT(decodeCommand(bytesOf(fullCommand()), {{"ce_specversion", "1.0"}}).error().reason,
              HasSubstr("no ce_id"));
}

TEST(Encodings, CloudEventsInStructuredModeWithJsonOrBase64Data) {
  nlohmann::json event = {{"specversion", "1.0"},
                          {"id", "evt-7"},
                          {"source", "//scheduler"},
                          {"type", "dev.outpost.job.submitted"},
                          {"datacontenttype", "application/json"},
                          {"data", nlohmann::json::parse(jsonOf(fullCommand()))}};
  const std::vector<events::Header> structured = {
      {"content-type", "application/cloudevents+json; charset=utf-8"}};
  Encoding e{};
  expectFull(decodeCommand(event.dump(), structured, &e), e, Encoding::kCloudEventStructured,
             "evt-7");
  // Without the header (a producer that cannot set one): told by its specversion.
  expectFull(decodeCommand(event.dump(), {}, &e), e, Encoding::kCloudEventStructured, "evt-7");
  // data_base64: Protobuf bytes.
  event.erase("data");
  event["datacontenttype"] = "application/protobuf";
  const std::string proto = bytesOf(fullCommand());
  std::string b64(4 * ((proto.size() + 2) / 3) + 1, '\0');
  b64.resize(static_cast<std::size_t>(
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                      reinterpret_cast<const unsigned char*>(proto.data()), proto.size())));
  event["data_base64"] = b64;
  expectFull(decodeCommand(event.dump(), structured, &e), e, Encoding::kCloudEventStructured,
             "evt-7");
  event.erase("id");
  EXPECT_THAT(decodeCommand(event.dump(), structured).error().reason,
              HasSubstr("no string attribute 'id'"));
}

TEST(DecodeCommand, MinimalCommandIsAccepted) {
  v1::JobCommand c;
  c.set_run_id(kRunId);
  c.set_job_type("t");
  auto got = decodeCommand(bytesOf(c));
  ASSERT_TRUE(got.has_value()) << got.error().reason;
  EXPECT_EQ(got->run_id(), kRunId);
}

TEST(DecodeCommand, UppercaseUuidIsAccepted) {
  v1::JobCommand c;
  c.set_run_id("0190A5D2-7C3E-7ABC-8DEF-0123456789AB");
  c.set_job_type("t");
  EXPECT_TRUE(decodeCommand(bytesOf(c)).has_value());
}

TEST(DecodeCommand, MissingRunIdIsRejectedKeepingWhatWasRead) {
  v1::JobCommand c = fullCommand();
  c.clear_run_id();
  Rejection r = decodeRejection(bytesOf(c));
  EXPECT_THAT(r.reason, HasSubstr("run_id is missing"));
  EXPECT_EQ(r.partial.job_type(), "datahub-ingest");
  EXPECT_EQ(r.partial.job_id(), "mysql-orders");
}

TEST(DecodeCommand, NonUuidRunIdIsRejectedAndClearedFromThePartial) {
  v1::JobCommand c = fullCommand();
  c.set_run_id("../../etc/passwd");
  Rejection r = decodeRejection(bytesOf(c));
  EXPECT_THAT(r.reason, AllOf(HasSubstr("'../../etc/passwd'"), HasSubstr("is not a UUID")));
  EXPECT_TRUE(r.partial.run_id().empty());
  EXPECT_EQ(r.partial.job_type(), "datahub-ingest");
  EXPECT_EQ(r.partial.job_id(), "mysql-orders");
}

TEST(DecodeCommand, VeryLongRunIdIsShortenedInTheReason) {
  v1::JobCommand c = fullCommand();
  c.set_run_id(std::string(10'000, 'x'));
  Rejection r = decodeRejection(bytesOf(c));
  EXPECT_THAT(r.reason, HasSubstr(std::string(40, 'x') + "..."));
  EXPECT_THAT(r.reason, ::testing::Not(HasSubstr(std::string(41, 'x'))));
  EXPECT_LT(r.reason.size(), 200u);
}

// An excerpt never cuts a character in two (the reason goes into events, which must be valid
// UTF-8), and bytes that are not printable ASCII are escaped.
TEST(DecodeCommand, ALongRunIdIsQuotedAsAnEscapedExcerpt) {
  v1::JobCommand c = fullCommand();
  c.set_run_id(std::string(39, 'x') + "\xC3\xA9" + std::string(100, 'y'));
  Rejection r = decodeRejection(bytesOf(c));
  EXPECT_THAT(r.reason, HasSubstr(std::string(39, 'x') + "\\xc3..."));
  EXPECT_TRUE(isValidUtf8(r.reason)) << r.reason;
}

TEST(DecodeCommand, MissingJobTypeIsRejectedKeepingTheRunId) {
  v1::JobCommand c = fullCommand();
  c.clear_job_type();
  Rejection r = decodeRejection(bytesOf(c));
  EXPECT_THAT(r.reason, HasSubstr("job_type is missing"));
  EXPECT_EQ(r.partial.run_id(), kRunId);
}

TEST(DecodeCommand, AttemptZeroBecomesOne) {
  v1::JobCommand c = fullCommand();
  c.set_attempt(0);
  auto got = decodeCommand(bytesOf(c));
  ASSERT_TRUE(got.has_value()) << got.error().reason;
  EXPECT_EQ(got->attempt(), 1u);
}

TEST(DecodeCommand, InvalidUtf8InAStringFieldIsRejected) {
  google::protobuf::LogSilencer quiet;  // protobuf logs each invalid UTF-8 string
  // Hand-made wire bytes: field 1 (run_id) = a UUID, field 3 (job_type) = 0xFF 0xFE.
  std::string bytes;
  bytes += '\x0A';
  bytes += static_cast<char>(36);
  bytes += kRunId;
  bytes += '\x1A';
  bytes += '\x02';
  bytes += "\xFF\xFE";
  Rejection r = decodeRejection(bytes);
  EXPECT_FALSE(r.reason.empty());
}

// ---------------------------------------------------------------------------------------------
// admitCommand

std::map<std::string, TemplateConfig> templates() {
  std::map<std::string, TemplateConfig> t;
  t["datahub-ingest"].name = "datahub-ingest";
  t["datahub-ingest"].argv = {"datahub"};
  t["report"].name = "report";
  t["report"].argv = {"report"};
  return t;
}

TEST(AdmitCommand, KnownTemplateInOurPoolIsAdmitted) {
  auto ts = templates();
  auto got = admitCommand(fullCommand(), ts);
  ASSERT_TRUE(got.has_value()) << got.error().reason;
  EXPECT_EQ(*got, &ts.at("datahub-ingest"));
}

TEST(AdmitCommand, ACommandNamingNoPoolIsForEveryPool) {
  v1::JobCommand c = fullCommand();
  c.clear_pool();
  EXPECT_FALSE(isForAnotherPool(c, "whatever"));
  EXPECT_FALSE(isForAnotherPool(c, "etl"));
}

TEST(AdmitCommand, UnknownJobTypeIsRejectedByName) {
  auto ts = templates();
  v1::JobCommand c = fullCommand();
  c.set_job_type("rm-rf");
  auto got = admitCommand(c, ts);
  ASSERT_FALSE(got.has_value());
  EXPECT_THAT(got.error().reason, HasSubstr("unknown job_type 'rm-rf'"));
  EXPECT_EQ(got.error().partial.run_id(), kRunId);
}

TEST(AdmitCommand, ACommandForAnotherPoolIsThatPoolsNotOurs) {
  v1::JobCommand c = fullCommand();
  c.set_pool("gpu");
  EXPECT_TRUE(isForAnotherPool(c, "etl"));
  EXPECT_FALSE(isForAnotherPool(c, "gpu"));
}

TEST(AdmitCommand, NoTemplatesMeansNothingIsAdmitted) {
  auto got = admitCommand(fullCommand(), {});
  ASSERT_FALSE(got.has_value());
  EXPECT_THAT(got.error().reason, HasSubstr("unknown job_type 'datahub-ingest'"));
}

}  // namespace
}  // namespace outpost::consumer

namespace outpost::consumer {
namespace {

// A signature names the encoding it covers, and the worker checks it before decoding: encodingOf
// must tell what decodeCommand then finds, for every form, and contentTypeOf names the claim.
TEST(Encodings, EncodingOfTellsWhatDecodingFindsBeforeDecoding) {
  const std::string proto = bytesOf(fullCommand());
  const std::string json = jsonOf(fullCommand());
  const nlohmann::json event = {{"specversion", "1.0"},
                                {"id", "e"},
                                {"source", "s"},
                                {"type", "t"},
                                {"data", nlohmann::json::parse(json)}};
  const std::vector<std::pair<std::string, std::vector<events::Header>>> forms = {
      {proto, {}},
      {json, {}},
      {proto, {{"content-type", "application/json"}}},  // said to be JSON: read as JSON
      {std::string("\0\0\0\0\1\0", 6) + proto, {}},
      {proto, {{"ce_specversion", "1.0"}, {"ce_id", "e"}}},
      {event.dump(), {}},
      {event.dump(), {{"content-type", "application/cloudevents+json"}}},
  };
  for (const auto& [bytes, headers] : forms) {
    Encoding found{};
    static_cast<void>(decodeCommand(bytes, headers, &found));
    EXPECT_EQ(nameOf(encodingOf(bytes, headers)), std::string(nameOf(found)));
  }
  EXPECT_EQ(contentTypeOf(Encoding::kCloudEventBinary), "cloudevents");
  EXPECT_EQ(contentTypeOf(Encoding::kCloudEventStructured), "cloudevents");
  EXPECT_EQ(contentTypeOf(Encoding::kSchemaRegistry), "schema-registry");
  EXPECT_EQ(contentTypeOf(Encoding::kProtobuf), "protobuf");
  EXPECT_EQ(contentTypeOf(Encoding::kJson), "json");
}

}  // namespace
}  // namespace outpost::consumer
