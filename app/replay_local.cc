#include "replay_local.h"

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "json_lines.h"
#include "ledger.h"
#include "outpost/common/clock.h"
#include "outpost/common/failure.h"
#include "outpost/dispatch/dispatcher.h"
#include "outpost/dispatch/owner_loop.h"
#include "outpost/events/producer.h"
#include "outpost/runner/supervisor.h"
#include "outpost/secrets/async_resolver.h"
#include "outpost/secrets/resolver.h"
#include "adapters.h"

namespace outpost::app {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Once stopped: how long the stopped runs may take to end before the replay gives up on them.
constexpr std::chrono::seconds kStopBound{10};

// Commands are handed in, not consumed: nothing to pause at the broker, nothing to commit.
class HandedCommands final : public dispatch::CommandSource {
 public:
  explicit HandedCommands(std::string topic) : assignment_{{std::move(topic), 0}} {}
  void setPaused(bool paused) override { paused_ = paused; }
  bool paused() const override { return paused_; }
  void commit(const std::map<TopicPartition, std::int64_t>&, consumer::CommitMode) override {}
  const std::vector<TopicPartition>& assignment() const override { return assignment_; }
  std::shared_ptr<const events::GroupMetadata> groupMetadata() override { return nullptr; }
  void refreshGroupMetadata() override {}

 private:
  std::vector<TopicPartition> assignment_;
  bool paused_ = false;
};

// Each replayed command is a new run id seen once: every one is a first start. Nothing is kept
// and the run records are not written anywhere (see LocalOutput).
class FirstAttempts final : public dispatch::AttemptStore {
 public:
  explicit FirstAttempts(std::string runs_topic) : runs_topic_(std::move(runs_topic)) {}
  consumer::AttemptDecision decide(const v1::JobCommand& command, unsigned,
                                   bool) const override {
    consumer::AttemptDecision a;
    a.attempt = std::max(1u, command.attempt());
    return a;
  }
  events::OutRecord recordStart(const v1::JobCommand& command, const consumer::AttemptDecision&,
                                const TopicPartition&, std::int64_t) override {
    return {runs_topic_, -1, command.run_id(), {}, {}};
  }
  events::OutRecord recordEnd(const v1::JobCommand& command, std::uint32_t, v1::RunState,
                              const TopicPartition&, std::int64_t, std::uint32_t,
                              bool) override {
    return {runs_topic_, -1, command.run_id(), {}, {}};
  }
  const v1::RunRecord* find(const std::string&) const override { return nullptr; }
  std::vector<consumer::Claim> claims() const override { return {}; }
  void forgetCommitted(std::int32_t, std::int64_t) override {}
  bool restore(const std::vector<std::int32_t>&,
               const std::map<std::int32_t, std::int64_t>&) override {
    return true;
  }
  events::OutRecord barrier(std::int32_t partition) override {
    return {runs_topic_, partition, "barrier", {}, {}};
  }
  void forget(const std::vector<std::int32_t>&) override {}

 private:
  std::string runs_topic_;
};

// Where the runs' records go: the run records are dropped; events, lineage and dead letters are
// written to a file each under --out (with each run's output lines in logs/<run id>.log), or to
// the --emit-prefix topics. Terminal events and lineage are read on the way for the outcomes.
class LocalOutput final : public dispatch::RecordSink {
 public:
  LocalOutput(const Config& config, const LocalReplayOptions& o,
              std::function<void(const std::string&, const RecordedOutcome&)> ended)
      : topics_(config.topics), out_dir_(o.out_dir), ended_(std::move(ended)) {
    if (!o.emit_prefix.empty()) {
      producer_ = std::make_unique<events::KafkaProducer>(
          config.kafka, std::map<std::string, std::string>{{"client.id", "outpost-replay"}});
      return;
    }
    std::error_code ec;
    fs::create_directories(fs::path(out_dir_) / "logs", ec);
    if (ec) throw IoFailure("--out " + out_dir_ + ": " + ec.message());
    for (const auto& topic : {topics_.events, topics_.lineage, topics_.dlq}) {
      auto& file = files_[topic];
      file.open(fs::path(out_dir_) / (topic + ".jsonl"), std::ios::app);
      if (!file) throw IoFailure("--out " + out_dir_ + ": cannot write " + topic + ".jsonl");
    }
  }

  void produce(const events::OutRecord& record, events::DeliveryCallback done) override {
    if (record.topic == topics_.runs) return done({});
    v1::RunEvent event;
    const bool is_event = record.topic == topics_.events && event.ParseFromString(record.value);
    if (is_event) observe(event);
    if (record.topic == topics_.lineage) book_.addLineage(record.value);
    if (producer_) return producer_->produce(record, std::move(done));
    json line = {{"topic", record.topic}, {"key", record.key}};
    if (is_event) {
      line["value"] = json::parse(runEventJson(event));
    } else if (record.topic == topics_.lineage) {
      auto doc = json::parse(record.value, nullptr, false);
      line["value"] = doc.is_discarded() ? json(record.value) : doc;  // as outpost tail writes it
    } else {
      json headers = json::object();
      for (const auto& h : record.headers) headers[h.name] = h.value;
      line["headers"] = headers;
      line["value_bytes"] = record.value.size();
    }
    writeJsonLine(files_[record.topic], line);
    done({});
  }

  // Stops the --emit-prefix producer's reports (the owner loop's quiesce).
  void close() {
    if (producer_) producer_->close();
  }

  // Everything written out; false when a file or the producer failed.
  bool finish() {
    bool ok = true;
    if (producer_ && !producer_->flush(std::chrono::seconds(30))) {
      spdlog::error("{} record(s) not delivered to the --emit-prefix topics",
                    producer_->outstanding());
      ok = false;
    }
    for (auto& [topic, file] : files_) {
      file.flush();
      ok = ok && file.good();
    }
    for (auto& [run, file] : logs_) {
      file.flush();
      ok = ok && file.good();
    }
    return ok;
  }

  const std::map<std::string, RecordedOutcome>& outcomes() const { return book_.runs; }

 private:
  void observe(const v1::RunEvent& e) {
    if (!out_dir_.empty() && e.log_lines_size() > 0) {
      auto& log = logs_[e.run_id()];
      if (!log.is_open()) log.open(fs::path(out_dir_) / "logs" / (e.run_id() + ".log"));
      for (const auto& l : e.log_lines()) log << l << '\n';
    }
    if (book_.addEvent(e)) ended_(e.run_id(), book_.runs.at(e.run_id()));
  }

  const TopicsConfig topics_;
  const std::string out_dir_;
  std::function<void(const std::string&, const RecordedOutcome&)> ended_;
  std::unique_ptr<events::KafkaProducer> producer_;
  std::map<std::string, std::ofstream> files_;
  std::map<std::string, std::ofstream> logs_;
  OutcomeBook book_;
};

// The replay's steps in the owner loop: commands handed in as a consumer would, while the
// dispatcher's queue has room, until they are all in or the replay is stopped.
class HandingIn final : public dispatch::OwnerLoop::Steps {
 public:
  HandingIn(const std::vector<v1::JobCommand>& commands, const std::string& jobs_topic,
            HandedCommands& source, dispatch::Dispatcher& dispatcher, dispatch::Inbox& inbox,
            const Clock& clock)
      : commands_(commands),
        jobs_topic_(jobs_topic),
        source_(source),
        dispatcher_(dispatcher),
        inbox_(inbox),
        clock_(clock) {}

  void take(std::chrono::milliseconds wait) override {
    while (!stopping_ && next_ < commands_.size() && !source_.paused()) {
      const auto& c = commands_[next_];
      dispatcher_.onMessage(consumer::ConsumedMessage{.tp = {jobs_topic_, 0},
                                                      .offset = static_cast<std::int64_t>(next_),
                                                      .key = c.job_id(),
                                                      .value = c.SerializeAsString(),
                                                      .headers = {},
                                                      .timestamp = clock_.now()});
      ++next_;
    }
    inbox_.wait(wait);
  }
  bool finished() const override { return next_ == commands_.size(); }
  void draining() override {
    stopping_ = true;
    spdlog::warn("stopping: {} run(s) running are stopped, {} command(s) not started",
                 dispatcher_.running(), commands_.size() - next_ + dispatcher_.queued());
  }

 private:
  const std::vector<v1::JobCommand>& commands_;
  const std::string& jobs_topic_;
  HandedCommands& source_;
  dispatch::Dispatcher& dispatcher_;
  dispatch::Inbox& inbox_;
  const Clock& clock_;
  std::size_t next_ = 0;
  bool stopping_ = false;
};

}  // namespace

Config localReplayConfig(Config c, const LocalReplayOptions& o, const std::string& work_dir) {
  c.worker.id = "replay-" + c.worker.id;
  c.worker.work_dir = work_dir;
  c.worker.delivery = "at-least-once";
  c.lineage.transport = LineageTransport::kKafka;
  const std::string prefix = o.emit_prefix;  // "": the --out files' names
  c.topics.prefix = prefix;
  c.topics.jobs = prefix + "jobs";
  c.topics.control = prefix + "control";
  c.topics.events = prefix + "events";
  c.topics.lineage = prefix + "lineage";
  c.topics.dlq = prefix + "dlq";
  c.topics.workers = prefix + "workers";
  c.topics.runs = prefix + "runs";
  if (o.dry_run) {
    std::erase_if(c.templates, [](const auto& t) { return t.second.dry_run_args.empty(); });
    for (auto& [name, t] : c.templates) {
      t.argv.insert(t.argv.end(), t.dry_run_args.begin(), t.dry_run_args.end());
    }
  }
  return c;
}

std::map<std::string, RecordedOutcome> runLocally(
    const Config& config, const std::vector<v1::JobCommand>& commands, const LocalReplayOptions& o,
    const std::atomic<bool>& stop,
    const std::function<void(const std::string& run_id, const RecordedOutcome&)>& ended) {
  SystemClock clock;
  const auto worker_env = processEnvironment();
  // The inbox, and every thread that posts to it, stopped by quiesce() before anything goes.
  dispatch::OwnerLoop loop(clock);
  HandedCommands source(config.topics.jobs);
  FirstAttempts attempts(config.topics.runs);
  LocalOutput output(config, o, ended);
  loop.addSource("--emit-prefix producer", [&output] { output.close(); });
  RunsAndSecrets runs(config, worker_env, clock, loop,
                      o.no_secrets ? RunsAndSecrets::Secrets::kRefused
                                   : RunsAndSecrets::Secrets::kResolved);
  dispatch::Observer observer;
  dispatch::Dispatcher dispatcher(
      config, worker_env,
      dispatch::Ports{loop.inbox(), source, output, output, nullptr, runs.executor(), attempts,
                      nullptr, runs.secrets(), nullptr, clock, observer});
  HandingIn steps(commands, config.topics.jobs, source, dispatcher, loop.inbox(), clock);
  // Declared last, so that on any way out the threads stop before what they call into goes.
  struct QuiesceFirst {
    dispatch::OwnerLoop& loop;
    ~QuiesceFirst() { loop.quiesce(); }
  } quiesce_first{loop};
  // Interrupted: the runs are stopped at once and get kStopBound to end.
  loop.run(dispatcher, steps, stop,
           dispatch::DrainPolicy{.drain_timeout = std::chrono::milliseconds(0),
                                 .stop_bound = kStopBound,
                                 .stop_reason = "the replay was interrupted"});
  dispatcher.close();
  const bool written = output.finish();
  loop.quiesce();
  if (!written) throw IoFailure("the replay's records were not all written out");
  return output.outcomes();
}

}  // namespace outpost::app
