// What the integration and robustness tests share: the real broker from scripts/test (through
// OUTPOST_TEST_BOOTSTRAP), unique topic names, producing and reading topics, committed offsets,
// and `outpost run` worker processes with a generated configuration.
#pragma once

#include <sys/types.h>

#include <csignal>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kafka_testing.h"
#include "outpost/v1/event.pb.h"
#include "outpost/v1/job.pb.h"
#include "outpost/v1/run_state.h"
#include "outpost_process.h"

namespace outpost::test {

// The `outpost` binary the tests run: $OUTPOST_BINARY when set (scripts/test's sanitizer pass
// points it at the ASan build's), else the one this build made.
std::string outpostBinary();

// The broker address; fails the test (and aborts it) when OUTPOST_TEST_BOOTSTRAP is missing.
std::string bootstrap();

// A name no other test or run uses.
std::string uniqueName(const std::string& stem);

// The topic names one test uses, created up front. runs is compacted and has as many partitions
// as jobs.
struct Topics {
  std::string prefix;
  std::string jobs, control, events, lineage, dlq, workers, runs;
};
// The names alone (nothing created), for tests that create topics themselves.
Topics topicNames(const std::string& stem);
// Creates one topic with topic-level `configs` (e.g. cleanup.policy); throws if it cannot
// (including when it exists).
void createTopic(const std::string& name, int partitions,
                 const std::map<std::string, std::string>& configs = {});
Topics createTopics(const std::string& stem, int job_partitions);

using kafka_testing::Record;

// Produces (with headers, in their order; to `partition`, else as the key hashes) and waits for
// the broker's acknowledgement.
void produce(const std::string& topic, const std::string& key, const std::string& value,
             const std::vector<std::pair<std::string, std::string>>& headers = {},
             std::int32_t partition = -1);

v1::JobCommand makeCommand(const std::string& job_type,
                           const std::map<std::string, std::string>& args = {});
void submit(const Topics& topics, const v1::JobCommand& command);

// Reads a topic of the test broker from the beginning (no consumer group) and keeps what it read
// (kafka_testing.h: readUntil, readFor, records).
class TopicReader : public kafka_testing::TopicReader {
 public:
  explicit TopicReader(const std::string& topic) : kafka_testing::TopicReader(bootstrap(), topic) {}
};

// The run events in a list of records (v1::isTerminal, run_state.h, tells which end a run).
std::vector<v1::RunEvent> decodeEvents(const std::vector<Record>& records);
// Terminal events keyed by run_id (all of them, to count duplicates).
std::map<std::string, std::vector<v1::RunEvent>> terminalByRun(const std::vector<Record>& records);
// How many events of run `run_id` in `records` are in `state`.
std::size_t countState(const std::vector<Record>& records, const std::string& run_id,
                       v1::RunState state);
// Reads `events` until run `run_id` has `count` events in `state` (e.g. STARTED: its process
// runs); false after `timeout`.
bool waitForState(TopicReader& events, const std::string& run_id, v1::RunState state,
                  std::size_t count = 1, std::chrono::seconds timeout = std::chrono::seconds(90));
// Reads `events` until run `run_id` has printed `line` (a LOG event carries it): how a job tells
// the test it has got somewhere (e.g. set a trap). False after `timeout`.
bool waitForOutput(TopicReader& events, const std::string& run_id, const std::string& line,
                   std::chrono::seconds timeout = std::chrono::seconds(90));

// The group's committed offset per partition of `topic` (-1 where none).
std::map<std::int32_t, std::int64_t> committedOffsets(const std::string& group,
                                                      const std::string& topic, int partitions);
// The end offset (the next offset to be written) of each partition of `topic`.
std::map<std::int32_t, std::int64_t> endOffsets(const std::string& topic, int partitions);
// Waits (safety timeout) until the committed offsets add up to `total`; returns the last reading.
std::int64_t waitForCommitted(const std::string& group, const std::string& topic, int partitions,
                              std::int64_t total,
                              std::chrono::seconds timeout = std::chrono::seconds(30));
// The group's state as the broker reports it ("Empty", "Stable", ...), and its member count.
std::pair<std::string, int> groupState(const std::string& group);

// Polls `done` (every 100 ms) until it holds; false after `timeout`.
bool waitUntil(const std::function<bool()>& done,
               std::chrono::seconds timeout = std::chrono::seconds(60));

// Validates OpenLineage JSON lines with tests/tools/validate_lineage.py against the official spec
// (tests/support/lineage_validator.h). Returns the validator's output; `ok` tells the verdict.
// Without the spec the test is marked skipped and `ok` is true (the rest of the test still runs).
struct Validation {
  bool ok = false;
  std::string output;
};
Validation validateLineage(const std::vector<Record>& lineage_records);

// The broker of OUTPOST_KAFKA_DIR (the one scripts/test starts), stopped and started again with
// scripts/kafka; it keeps its data and its address. Fails the test when OUTPOST_KAFKA_DIR is not
// set or the broker comes back on another address.
void stopBroker();
void startBroker();
// `scripts/kafka <args>` for the broker or cluster of OUTPOST_KAFKA_DIR (e.g. "node kill 2");
// its stdout, trimmed. Fails the test when it exits non-zero.
std::string kafkaScript(const std::string& args);

// Runs `outpost <args>` against the test's topics (and the test broker); returns its exit status
// and standard output (its log goes to standard error, which the test's output shows).
std::pair<int, std::string> runCli(const Topics& topics, const std::string& args);

// Test templates every worker config gets (see harness.cc for what each does).
std::string standardTemplates();

// An `outpost run` child process with its own config file and log file
// (tests/support/outpost_process.h, shared with the benchmark), which prints its log when the
// test failed.
class WorkerProcess {
 public:
  struct Options {
    std::string pool;
    unsigned slots = 4;
    std::string drain_timeout = "30s";
    // Below the consumer's max.poll.interval.ms (the configuration refuses it otherwise).
    std::string revoke_timeout = "10s";
    std::string extra_yaml;  // appended at the top level (e.g. a lineage: section)
    // kafka.bootstrap_servers (default: the test broker's plaintext listener) and
    // kafka.properties (e.g. a secured listener's settings).
    std::string bootstrap;
    std::map<std::string, std::string> kafka_properties;
    std::string templates;  // default: standardTemplates()
    std::map<std::string, std::string> consumer_properties;
    std::string id;
    // false: worker.id is left out of the configuration, so the worker makes one up and joins as
    // a dynamic member (it leaves the group when it stops, which makes the others rebalance).
    bool static_member = true;
    std::string worker_yaml;  // extra lines under worker:, each "  key: value\n"
    std::string output_yaml;  // extra lines under output:
    std::string cgroup;       // runner.cgroup; empty: the default (auto)
    // http.listen: by default a free port (workers of parallel tests must not share one).
    std::string http_listen = "127.0.0.1:0";
    // log.format: text, so that tests read the log as people do; "auto" (JSON, the log being a
    // file) or "json" where a test checks that form.
    std::string log_format = "text";
  };
  WorkerProcess(const Topics& topics, Options options);
  // Kills the worker (SIGKILL) if it is still running.
  ~WorkerProcess();

  pid_t pid() const { return process_->pid(); }
  // Its configuration file (a test may rewrite it and send SIGHUP).
  std::string configPath() const { return dir_ + "/outpost.yaml"; }
  const std::string& id() const { return id_; }
  std::string group() const { return "outpost." + pool_; }
  std::string log() const { return process_->log(); }
  // Waits until the log contains `text`; false after the safety timeout or once the worker has
  // exited without writing it. Only for what nothing else shows: the log's wording is for people
  // and may change; events, /metrics, /readyz and the worker status are what a platform reads.
  bool waitForLog(const std::string& text,
                  std::chrono::seconds timeout = std::chrono::seconds(60)) const {
    return process_->waitForLog(text, timeout);
  }
  // Waits until its /readyz answers 200: it has joined its consumer group and got its partitions,
  // and its producers are connected. False after `timeout`. Needs its HTTP endpoint.
  bool waitUntilReady(std::chrono::seconds timeout = std::chrono::seconds(60)) const;
  // Waits until it has exited by itself (a worker that refuses to start); false if it still runs
  // after `timeout`. terminate() then returns its exit status.
  bool waitForExit(std::chrono::seconds timeout = std::chrono::seconds(60)) const;
  // Sends SIGTERM and waits for the exit; returns the exit status (or -signal). Fails the test
  // when it does not exit within `timeout`.
  int terminate(std::chrono::seconds timeout = std::chrono::seconds(120));
  // SIGTERM without waiting, and the wait: to stop several workers at the same moment.
  void signalTerm() { process_->signal(SIGTERM); }
  int waitExit(std::chrono::seconds timeout) { return process_->waitExit(timeout); }
  // Sends SIGKILL (a crash: no drain, nothing flushed) and reaps it; returns -SIGKILL, or -1 when
  // it had already exited.
  int crash() { return process_->crash(); }
  bool running() const { return process_->running(); }
  // The port of its HTTP endpoint (/livez, /readyz, /metrics), from its log; fails the test and
  // returns -1 when it does not say within the safety timeout.
  int httpPort() const;

 private:
  std::string id_, pool_, dir_;
  std::unique_ptr<test_support::OutpostProcess> process_;
};

}  // namespace outpost::test
