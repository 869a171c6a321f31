// A flood of malformed commands through a real worker on the real broker, and everything it wrote
// read back the way a platform in another language reads it: strictly, with Debian's
// python3-protobuf (tests/tools/decode_strict.py). Nothing may be lost and nothing unreadable.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  return out;
}

std::string randomBytes(std::mt19937& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

// A random (version 4) UUID from `rng`: the same flood, byte for byte, every run.
std::string uuidFrom(std::mt19937& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string u;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) u += '-';
    u += i == 12 ? '4' : i == 16 ? kHex[8 + rng() % 4] : kHex[rng() % 16];
  }
  return u;
}

// A command every worker runs, on a fresh run_id, with fields of every kind for mutations to hit.
v1::JobCommand base(std::mt19937& rng, const std::string& type) {
  auto c = makeCommand(type);
  c.set_run_id(uuidFrom(rng));
  c.set_requested_at_ms(1'795'000'000'000);
  c.set_job_id("malformed-job");
  c.set_requested_by("flood");
  (*c.mutable_labels())["team"] = "data";
  c.mutable_lineage()->set_job_name("flood");
  return c;
}

struct Sent {
  std::string key;     // unique per message: the dead letter keeps it
  std::string bytes;   // as produced
  bool valid = false;  // a command that must succeed
};

TEST(Malformed, AFloodOfBadCommandsLosesNothingAndEveryRecordDecodesInPython) {
  auto topics = createTopics("malformed", 2);
  WorkerProcess worker(topics, {});
  std::mt19937 rng(20261203);  // fixed: the same flood every run
  std::vector<Sent> sent;
  auto add = [&](std::string bytes, bool valid = false) {
    sent.push_back({"m" + std::to_string(sent.size()), std::move(bytes), valid});
  };
  auto serialized = [](const v1::JobCommand& c) { return c.SerializeAsString(); };
  for (int i = 0; i < 15; ++i) {  // random bytes
    add(randomBytes(rng, 1 + rng() % 300));
  }
  for (int i = 0; i < 15; ++i) {  // truncated commands
    auto c = base(rng, "recipe");
    c.set_recipe("source: {type: postgres}\n");
    auto bytes = serialized(c);
    add(bytes.substr(0, 1 + rng() % (bytes.size() - 1)));
  }
  for (int i = 0; i < 25; ++i) {  // bit-flipped commands
    auto c = base(rng, "ok");
    (*c.mutable_args())["n"] = "42";
    auto bytes = serialized(c);
    for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips) {
      bytes[rng() % bytes.size()] ^= static_cast<char>(1u << (rng() % 8));
    }
    add(bytes);
  }
  for (int i = 0; i < 20; ++i) {  // recipes of random bytes, some with broken secret references
    auto c = base(rng, "recipe");
    std::string recipe = randomBytes(rng, 1 + rng() % 200);
    if (i % 2 == 0) recipe = "user: x\npassword: ${" + recipe;
    if (i % 4 == 1) recipe += "${aws-sm:" + randomBytes(rng, 20) + "}";
    c.set_recipe(recipe);
    add(serialized(c));
  }
  const std::vector<std::pair<std::string, std::string>> injected = {
      {"n", "1; rm -rf /"},
      {"n", "$(id)"},
      {"n", "1\n2"},
      {"n", std::string(200 * 1024, '9')},  // oversized, but what the pattern allows
      {"n", "{run_dir}"},
      {std::string(3000, 'x'), "1"},
      {"n\xC3", "1"},
      {"--flag", "1"},
  };
  for (const auto& [name, value] : injected) {  // injected and oversized arguments
    auto c = base(rng, "ok");
    (*c.mutable_args())[name] = value;
    add(serialized(c));
  }
  {
    auto c = base(rng, "ok");
    (*c.mutable_env())["LD_PRELOAD"] = "/tmp/evil.so";
    add(serialized(c));
  }
  for (int i = 0; i < 12; ++i) {  // good commands among them
    auto c = base(rng, "ok");
    (*c.mutable_args())["n"] = std::to_string(i);
    add(serialized(c), true);
  }
  std::shuffle(sent.begin(), sent.end(), rng);
  for (const auto& s : sent) produce(topics.jobs, s.key, s.bytes);

  // Everything is done once every offset is committed (with exactly-once, in the same
  // transactions as the terminal events and dead letters).
  ASSERT_EQ(waitForCommitted(worker.group(), topics.jobs, 2, static_cast<std::int64_t>(sent.size()),
                             std::chrono::seconds(120)),
            static_cast<std::int64_t>(sent.size()));
  EXPECT_TRUE(worker.running()) << "the worker went down under the flood";

  std::map<std::string, std::vector<Record>> by_topic;
  for (const auto& [role, name] :
       std::vector<std::pair<std::string, std::string>>{{"events", topics.events},
                                                        {"dlq", topics.dlq},
                                                        {"lineage", topics.lineage},
                                                        {"runs", topics.runs},
                                                        {"workers", topics.workers}}) {
    TopicReader reader(name);
    reader.readFor(std::chrono::milliseconds(1500));
    by_topic[role] = reader.records();
  }
  EXPECT_EQ(worker.terminate(), 0);

  // Read it all strictly, in Python.
  const auto file = ::testing::TempDir() + uniqueName("malformed") + ".jsonl";
  {
    std::ofstream out(file);
    for (const auto& [role, records] : by_topic) {
      for (const auto& r : records) {
        nlohmann::json line{{"topic", role}, {"value", hex(r.value)}};
        nlohmann::json headers = nlohmann::json::object();
        for (const auto& [k, v] : r.headers) headers[k] = hex(v);
        line["headers"] = headers;
        out << line.dump() << "\n";
      }
    }
  }
  const std::string cmd = "/usr/bin/python3 " + std::string(OUTPOST_SOURCE_DIR) +
                          "/tests/tools/decode_strict.py --proto-python " +
                          OUTPOST_PROTO_PYTHON_DIR + " " + file;  // its stderr: the test's
  std::string output;
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) output += buf;
  ASSERT_EQ(pclose(p), 0) << output;
  std::remove(file.c_str());
  auto decoded = nlohmann::json::parse(output, nullptr, false);
  ASSERT_FALSE(decoded.is_discarded()) << output;
  EXPECT_TRUE(decoded["undecodable"].empty()) << decoded["undecodable"].dump(2);
  EXPECT_EQ(decoded["read"]["events"].get<std::size_t>(), by_topic["events"].size());

  // What happened to each message: a dead letter (by its key), or a terminal event for the run
  // id it carries. Nothing may be neither.
  std::set<std::string> dead;
  for (const auto& r : by_topic["dlq"]) dead.insert(r.key);
  std::map<std::string, std::vector<std::string>> terminal;  // run_id -> terminal states
  for (const auto& e : decoded["events"]) {
    const auto state = e["state"].get<std::string>();
    if (v1::isTerminal(v1::RunState(v1::RunState_descriptor()->FindValueByName(state)->number()))) {
      terminal[e["run_id"]].push_back(state);
    }
    // An error quotes no more than a short excerpt of what it refused.
    EXPECT_LE(e["message"].get<std::string>().size(), 600u) << e.dump();
  }
  // As the worker reads a run id (isUuid): any case.
  static const std::regex kUuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                                std::regex::icase);
  std::size_t readable = 0, rejected = 0;
  for (const auto& s : sent) {
    v1::JobCommand c;
    const bool parses = c.ParseFromString(s.bytes);
    const bool has_run_id = parses && std::regex_match(c.run_id(), kUuid);
    if (parses && !c.pool().empty()) continue;  // a flip made it another pool's: skipped
    auto t = has_run_id ? terminal.find(c.run_id()) : terminal.end();
    const bool ended = t != terminal.end();
    if (has_run_id) {
      ++readable;
      EXPECT_TRUE(ended) << s.key << ": run " << c.run_id() << " has no terminal event";
      if (ended) {
        EXPECT_EQ(t->second.size(), 1u) << s.key << ": more than one terminal event";
      }
    }
    const bool was_rejected = ended && std::ranges::find(t->second, "REJECTED") != t->second.end();
    rejected += was_rejected;
    if (was_rejected || !has_run_id) {
      EXPECT_TRUE(dead.contains(s.key)) << s.key << ": refused without a dead letter";
    }
    EXPECT_TRUE(dead.contains(s.key) || ended) << s.key << ": neither a dead letter nor an end";
    if (s.valid) {
      EXPECT_EQ(ended ? t->second.front() : "", "SUCCEEDED") << s.key;
      EXPECT_FALSE(dead.contains(s.key)) << s.key;
    }
  }
  std::cout << "[ FIGURES  ] " << sent.size() << " messages, " << readable << " with a readable "
            << "run id, " << rejected << " rejected, " << dead.size() << " dead letters, "
            << by_topic["events"].size() << " events, read by python3-protobuf ("
            << decoded["protobuf_implementation"].get<std::string>() << ")\n";
  EXPECT_GT(rejected, 20u) << "the flood was meant to be mostly refused";
}

}  // namespace
}  // namespace outpost::test
