#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include "kafka_testing.h"
#include "lineage_validator.h"
#include "scrape.h"

namespace outpost::test {
namespace {

namespace fs = std::filesystem;

using kafka_testing::Deleter;
using Handle = kafka_testing::HandlePtr;
using PartitionList = kafka_testing::PartitionListPtr;

Handle client(rd_kafka_type_t type, std::map<std::string, std::string> props) {
  return kafka_testing::makeClient(type, bootstrap(), std::move(props));
}

std::string sourceDir() {
  return OUTPOST_SOURCE_DIR;
}

}  // namespace

std::string outpostBinary() {
  const char* given = std::getenv("OUTPOST_BINARY");
  return given && *given ? given : OUTPOST_BINARY;
}

std::string bootstrap() {
  const char* b = std::getenv("OUTPOST_TEST_BOOTSTRAP");
  if (!b || !*b) {
    ADD_FAILURE() << "OUTPOST_TEST_BOOTSTRAP is not set: run the tests through scripts/test, which "
                     "starts the Kafka broker they need";
    std::abort();
  }
  return b;
}

std::string uniqueName(const std::string& stem) {
  static std::mt19937_64 rng(std::random_device{}());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return stem + "-" + std::string(buf).substr(0, 10);
}

Topics topicNames(const std::string& stem) {
  Topics t;
  t.prefix = uniqueName("it-" + stem) + ".";
  t.jobs = t.prefix + "jobs";
  t.control = t.prefix + "control";
  t.events = t.prefix + "events";
  t.lineage = t.prefix + "lineage";
  t.dlq = t.prefix + "dlq";
  t.workers = t.prefix + "workers";
  t.runs = t.prefix + "runs";
  return t;
}

namespace {

// With the broker's default replication factor: 1 on the single test broker, 3 on a cluster
// (tests/robustness/on_cluster runs tests against one).
void createAll(std::vector<kafka_testing::NewTopicSpec> wanted) {
  for (auto& spec : wanted) spec.replication_factor = -1;
  kafka_testing::createTopics(bootstrap(), wanted);
}

}  // namespace

void createTopic(const std::string& name, int partitions,
                 const std::map<std::string, std::string>& configs) {
  createAll({{name, partitions, configs}});
}

Topics createTopics(const std::string& stem, int job_partitions) {
  Topics t = topicNames(stem);
  std::vector<kafka_testing::NewTopicSpec> wanted;
  for (const auto& name : {t.jobs, t.control, t.events, t.lineage, t.dlq, t.workers}) {
    wanted.push_back({name, name == t.jobs ? job_partitions : 1, {}});
  }
  // Run state of a command from jobs partition p lives in runs partition p.
  wanted.push_back({t.runs, job_partitions, {{"cleanup.policy", "compact"}}});
  createAll(wanted);
  return t;
}

void produce(const std::string& topic, const std::string& key, const std::string& value,
             const std::vector<std::pair<std::string, std::string>>& headers,
             std::int32_t partition) {
  static Handle producer = client(RD_KAFKA_PRODUCER, {{"linger.ms", "0"}});
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());  // owned by the message
  for (const auto& [name, v] : headers) {
    rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), v.data(),
                        static_cast<ssize_t>(v.size()));
  }
  auto err = rd_kafka_producev(
      producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
      RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
      RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_HEADERS(hdrs),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  if (err) rd_kafka_headers_destroy(hdrs);
  ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
  // Up to two minutes: a request in flight to a broker that hangs (a cluster's node paused,
  // tests/robustness/cluster_faults_test.cc) waits out request.timeout.ms (30 s) before the
  // record goes to the partition's new leader.
  ASSERT_EQ(rd_kafka_flush(producer.get(), 120000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

v1::JobCommand makeCommand(const std::string& job_type,
                           const std::map<std::string, std::string>& args) {
  static std::mt19937_64 rng(std::random_device{}());
  v1::JobCommand c;
  std::uint64_t a = rng(), b = rng();
  char id[40];
  std::snprintf(id, sizeof id, "%08x-%04x-4%03x-8%03x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>(a & 0xffff), static_cast<unsigned>((a >> 16) & 0xfff),
                static_cast<unsigned>(b & 0xfff),
                static_cast<unsigned long long>((b >> 12) & 0xffffffffffffULL));
  c.set_run_id(id);
  c.set_job_id(job_type + "-" + std::string(id).substr(0, 8));
  c.set_job_type(job_type);
  c.set_attempt(1);
  for (const auto& [k, v] : args) (*c.mutable_args())[k] = v;
  return c;
}

void submit(const Topics& topics, const v1::JobCommand& command) {
  produce(topics.jobs, command.job_id(), command.SerializeAsString());
}

std::vector<v1::RunEvent> decodeEvents(const std::vector<Record>& records) {
  std::vector<v1::RunEvent> out;
  for (const auto& r : records) {
    v1::RunEvent e;
    EXPECT_TRUE(e.ParseFromString(r.value)) << "undecodable RunEvent at offset " << r.offset;
    EXPECT_EQ(r.key, e.run_id()) << "events are keyed by run_id";
    out.push_back(std::move(e));
  }
  return out;
}

std::map<std::string, std::vector<v1::RunEvent>> terminalByRun(const std::vector<Record>& records) {
  std::map<std::string, std::vector<v1::RunEvent>> out;
  for (auto& e : decodeEvents(records)) {
    if (v1::isTerminal(e.state())) out[e.run_id()].push_back(e);
  }
  return out;
}

std::size_t countState(const std::vector<Record>& records, const std::string& run_id,
                       v1::RunState state) {
  std::size_t n = 0;
  for (const auto& e : decodeEvents(records)) n += e.run_id() == run_id && e.state() == state;
  return n;
}

bool waitForState(TopicReader& events, const std::string& run_id, v1::RunState state,
                  std::size_t count, std::chrono::seconds timeout) {
  return events.readUntil(
      [&](const std::vector<Record>& r) { return countState(r, run_id, state) >= count; }, timeout);
}

bool waitForOutput(TopicReader& events, const std::string& run_id, const std::string& line,
                   std::chrono::seconds timeout) {
  return events.readUntil(
      [&](const std::vector<Record>& records) {
        return std::ranges::any_of(decodeEvents(records), [&](const v1::RunEvent& e) {
          return e.run_id() == run_id && e.state() == v1::LOG &&
                 std::ranges::find(e.log_lines(), line) != e.log_lines().end();
        });
      },
      timeout);
}

std::map<std::int32_t, std::int64_t> committedOffsets(const std::string& group,
                                                      const std::string& topic, int partitions) {
  auto rk = client(RD_KAFKA_CONSUMER, {{"group.id", group}, {"enable.auto.commit", "false"}});
  PartitionList list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  std::map<std::int32_t, std::int64_t> out;
  if (rd_kafka_committed(rk.get(), list.get(), 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < list->cnt; ++i) out[list->elems[i].partition] = list->elems[i].offset;
  }
  rd_kafka_consumer_close(rk.get());
  return out;
}

std::map<std::int32_t, std::int64_t> endOffsets(const std::string& topic, int partitions) {
  auto rk = client(RD_KAFKA_CONSUMER, {{"group.id", "outpost-test-end-offsets"}});
  std::map<std::int32_t, std::int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    std::int64_t low = -1, high = -1;
    EXPECT_EQ(rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high, 10000),
              RD_KAFKA_RESP_ERR_NO_ERROR)
        << topic << "[" << p << "]";
    out[p] = high;
  }
  rd_kafka_consumer_close(rk.get());
  return out;
}

std::int64_t waitForCommitted(const std::string& group, const std::string& topic, int partitions,
                              std::int64_t total, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::int64_t sum = 0;
  for (;;) {
    sum = 0;
    for (auto [p, off] : committedOffsets(group, topic, partitions))
      sum += std::max<std::int64_t>(off, 0);
    if (sum >= total || std::chrono::steady_clock::now() > deadline) return sum;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::pair<std::string, int> groupState(const std::string& group) {
  auto rk = client(RD_KAFKA_PRODUCER, {});
  const rd_kafka_group_list* list = nullptr;
  std::pair<std::string, int> out{"unknown", -1};
  if (rd_kafka_list_groups(rk.get(), group.c_str(), &list, 10000) == 0 && list) {
    if (list->group_cnt > 0) out = {list->groups[0].state, list->groups[0].member_cnt};
    rd_kafka_group_list_destroy(list);
  }
  return out;
}

bool waitUntil(const std::function<bool()>& done, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

Validation validateLineage(const std::vector<Record>& records) {
  std::vector<std::string> events;
  for (const auto& r : records) events.push_back(r.value);
  auto v = lineage_test::validateLineageEvents(events);
  return Validation{v.ok, std::move(v.output)};
}

// Runs `scripts/kafka <args>` for the broker of OUTPOST_KAFKA_DIR; returns its stdout, trimmed.
std::string kafkaScript(const std::string& args) {
  const char* dir = std::getenv("OUTPOST_KAFKA_DIR");
  if (!dir || !*dir) {
    ADD_FAILURE() << "OUTPOST_KAFKA_DIR is not set: a test that stops the broker needs the state "
                     "directory scripts/kafka started it with (scripts/test exports it)";
    return "";
  }
  std::string cmd = sourceDir() + "/scripts/kafka " + args;  // its notes go to our stderr
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 512> buf;
  while (p && fgets(buf.data(), buf.size(), p)) out += buf.data();
  int status = p ? pclose(p) : -1;
  EXPECT_EQ(status, 0) << "scripts/kafka " << args << " failed";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

void stopBroker() {
  kafkaScript("stop");
}

void startBroker() {
  auto address = kafkaScript("start");
  EXPECT_EQ(address, bootstrap()) << "the broker came back on another address";
}

std::pair<int, std::string> runCli(const Topics& topics, const std::string& args) {
  std::string cmd = "OUTPOST_TOPICS__PREFIX='" + topics.prefix + "' '" + outpostBinary() + "' " +
                    args + " --bootstrap '" + bootstrap() + "'";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, ""};
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string standardTemplates() {
  return R"(templates:
  ok:
    argv: [sh, -c, "echo ok {n}"]
    allow_shell: true
    params: {n: {pattern: "[0-9]+", default: "0"}}
    recipe: none
  exit:
    argv: [sh, -c, "echo about to fail; exit {code}"]
    allow_shell: true
    params: {code: {pattern: "[0-9]+"}}
    recipe: none
  signal:
    argv: [sh, -c, "ulimit -c 0; echo dying; kill -SEGV $$"]
    allow_shell: true
    recipe: none
  flood:
    argv: [sh, -c, "head -c {bytes} /dev/zero | tr '\\000' x; echo; echo END-OF-FLOOD"]
    allow_shell: true
    params: {bytes: {pattern: "[0-9]+"}}
    recipe: none
  sleep:
    argv: [sh, -c, "echo sleeping {secs}; sleep {secs}; echo woke"]
    allow_shell: true
    params: {secs: {pattern: "[0-9.]+"}}
    recipe: none
  stubborn:
    argv: [sh, -c, "trap '' TERM; echo ready; while true; do sleep 1; done"]
    allow_shell: true
    kill_grace: 1s
    recipe: none
  recipe:
    argv: [cat, "{recipe_file}"]
)";
}

WorkerProcess::WorkerProcess(const Topics& topics, Options o) {
  pool_ = o.pool.empty() ? uniqueName("pool") : o.pool;
  id_ = o.id.empty() ? uniqueName("worker") : o.id;
  dir_ = (fs::temp_directory_path() / uniqueName("outpost-it")).string();
  fs::create_directories(dir_);
  std::ofstream cfg(dir_ + "/outpost.yaml");
  cfg << "worker:\n"
      << (o.static_member ? "  id: " + id_ + "\n" : "") << "  pool: " << pool_
      << "\n  slots: " << o.slots << "\n  work_dir: " << dir_
      << "/runs\n  drain_timeout: " << o.drain_timeout << "\n  revoke_timeout: " << o.revoke_timeout
      << "\n"
      << o.worker_yaml
      << "kafka:\n  bootstrap_servers: " << (o.bootstrap.empty() ? bootstrap() : o.bootstrap)
      << "\n";
  if (!o.kafka_properties.empty()) cfg << "  properties:\n";
  for (const auto& [k, v] : o.kafka_properties) cfg << "    " << k << ": \"" << v << "\"\n";
  cfg << "  consumer_properties:\n"
      << "    topic.metadata.refresh.interval.ms: \"2000\"\n";
  for (const auto& [k, v] : o.consumer_properties) cfg << "    " << k << ": \"" << v << "\"\n";
  cfg << "topics:\n  prefix: " << topics.prefix << "\n";
  // A workers topic of its own (a worker whose statuses the pool does not see).
  if (topics.workers != topics.prefix + "workers") cfg << "  workers: " << topics.workers << "\n";
  cfg << "output:\n  tail_bytes: 4096\n"
      << o.output_yaml << (o.cgroup.empty() ? "" : "runner:\n  cgroup: " + o.cgroup + "\n")
      << "http:\n  listen: \"" << o.http_listen << "\"\n"
      << "log:\n  format: " << o.log_format << "\n"
      << (o.templates.empty() ? standardTemplates() : o.templates) << o.extra_yaml;
  cfg.close();
  process_ = std::make_unique<test_support::OutpostProcess>(test_support::OutpostProcess::Options{
      .binary = outpostBinary(),
      .args = {"run", "-c", dir_ + "/outpost.yaml"},
      .log_path = dir_ + "/worker.log",
      .wrapper = {},
  });
}

WorkerProcess::~WorkerProcess() {
  process_->crash();  // if it still runs
  if (::testing::Test::HasFailure()) {
    std::cerr << "---- log of worker " << id_ << " ----\n" << log() << "---- end ----\n";
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

int WorkerProcess::httpPort() const {
  const std::string said = "/metrics on ";
  if (!waitForLog(said)) {
    ADD_FAILURE() << "the worker did not say where its HTTP endpoint listens";
    return -1;
  }
  auto text = log();
  auto at = text.find(said) + said.size();
  auto colon = text.find_first_of(":\n", at);
  auto end = text.find('\n', at);
  if (colon == std::string::npos || text[colon] != ':') return -1;
  return std::stoi(text.substr(colon + 1, end - colon - 1));
}

bool WorkerProcess::waitUntilReady(std::chrono::seconds timeout) const {
  const int port = httpPort();
  return port > 0 && waitFor(port, "/readyz", 200, timeout).status == 200;
}

bool WorkerProcess::waitForExit(std::chrono::seconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

int WorkerProcess::terminate(std::chrono::seconds timeout) {
  int status = process_->terminate(timeout);
  if (status == test_support::OutpostProcess::kDidNotExit) {
    ADD_FAILURE() << "worker did not exit within " << timeout.count() << " s of SIGTERM";
  }
  return status;
}

}  // namespace outpost::test
