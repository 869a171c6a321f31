// Fakes of the dispatcher's ports (dispatch/ports.h), and a harness that wires them to a real
// Dispatcher: no broker, no processes, no secret store. Everything happens on the test's thread
// when the test says so: records are acknowledged, transactions committed or aborted, processes
// started and ended, secrets resolved, and posted closures run.
#pragma once

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "outpost/common/config.h"
#include "outpost/dispatch/dispatcher.h"
#include "outpost/dispatch/ports.h"
#include "outpost/dispatch/run_events.h"
#include "outpost/v1/event.pb.h"
#include "outpost/v1/run_record.pb.h"
#include "outpost/v1/run_state.h"

namespace outpost::dispatch::test {

class ManualClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override { return now_; }
  std::chrono::steady_clock::time_point steadyNow() const override { return steady_; }
  void advance(std::chrono::milliseconds d) {
    now_ += d;
    steady_ += d;
  }

 private:
  std::chrono::system_clock::time_point now_{std::chrono::milliseconds(1'795'255'200'000)};
  std::chrono::steady_clock::time_point steady_{std::chrono::hours(1000)};
};

class FakePoster final : public Poster {
 public:
  void post(std::function<void()> fn) override { queue_.push_back(std::move(fn)); }
  // Runs what was posted, and what that posts, until nothing is left.
  void runAll() {
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
    }
  }
  std::size_t pending() const { return queue_.size(); }

 private:
  std::deque<std::function<void()>> queue_;
};

class FakeSource final : public CommandSource {
 public:
  void setPaused(bool paused) override {
    if (paused != paused_) ++pause_changes;
    paused_ = paused;
  }
  bool paused() const override { return paused_; }
  void commit(const std::map<TopicPartition, std::int64_t>& offsets,
              consumer::CommitMode mode) override {
    for (const auto& [tp, o] : offsets) committed[tp] = o;
    sync_commits += mode == consumer::CommitMode::kAwait;
  }
  const std::vector<TopicPartition>& assignment() const override { return assigned; }
  std::shared_ptr<const events::GroupMetadata> groupMetadata() override { return nullptr; }
  void refreshGroupMetadata() override { ++refreshes; }

  std::vector<TopicPartition> assigned;
  std::map<TopicPartition, std::int64_t> committed;
  int sync_commits = 0;
  int refreshes = 0;
  int pause_changes = 0;

 private:
  bool paused_ = false;
};

// Records kept until the test acknowledges them (or at once, with auto_ack).
class FakeSink final : public RecordSink {
 public:
  void produce(const events::OutRecord& record, events::DeliveryCallback done) override {
    all.push_back(record);
    if (auto_ack) {
      done(events::DeliveryReport{std::nullopt, 0, static_cast<std::int64_t>(all.size())});
    } else {
      unacked.push_back(std::move(done));
    }
  }
  void ackAll(bool ok = true) {
    auto pending = std::move(unacked);
    unacked.clear();
    for (auto& d : pending) {
      d(ok ? events::DeliveryReport{std::nullopt, 0, 0}
           : events::DeliveryReport{
                 events::KafkaError(events::KafkaError::Kind::kPermanent, 10, "broker says no"), -1,
                 -1});
    }
  }
  bool auto_ack = true;
  std::vector<events::OutRecord> all;
  std::vector<events::DeliveryCallback> unacked;
};

class FakeTxn final : public TransactionSink {
 public:
  void submit(events::TxnUnit unit) override { units.push_back(std::move(unit)); }
  // Reports the oldest pending unit with `status`; returns its records.
  std::vector<events::OutRecord> finishOne(events::TxnOutcome::Status status) {
    auto unit = std::move(units.front());
    units.pop_front();
    if (status == events::TxnOutcome::Status::kCommitted) {
      committed.insert(committed.end(), unit.records.begin(), unit.records.end());
      for (const auto& [tp, o] : unit.offsets) offsets[tp] = o;
    }
    unit.done(events::TxnOutcome{
        status, status == events::TxnOutcome::Status::kCommitted ? "" : "test says so"});
    return unit.records;
  }
  void commitAll() {
    while (!units.empty()) finishOne(events::TxnOutcome::Status::kCommitted);
  }
  std::deque<events::TxnUnit> units;
  std::vector<events::OutRecord> committed;
  std::map<TopicPartition, std::int64_t> offsets;
};

class FakeExecutor final : public RunExecutor {
 public:
  struct Launched {
    runner::LaunchPlan plan;
    runner::RunCallbacks callbacks;
    bool started = false;
    bool finished = false;
  };
  void launch(runner::LaunchPlan plan, runner::RunCallbacks callbacks,
              std::unique_ptr<StreamRedactor>) override {
    launched.push_back({std::move(plan), std::move(callbacks)});
  }
  void stop(const std::string& run_id, runner::StopCause cause, std::string reason) override {
    stops.push_back({run_id, std::move(reason)});
    causes.push_back(cause);
  }
  void stopAll(runner::StopCause cause, std::string reason) override {
    stops.push_back({"*", std::move(reason)});
    causes.push_back(cause);
  }

  Launched* find(const std::string& run_id) {
    for (auto& l : launched) {
      if (l.plan.run_id == run_id && !l.finished) return &l;
    }
    return nullptr;
  }
  // The process of `run_id` starts, or ends with `outcome`.
  void start(const std::string& run_id) {
    auto* l = find(run_id);
    ASSERT_NE(l, nullptr) << run_id << " was not launched";
    l->started = true;
    l->callbacks.on_started(4242, std::chrono::system_clock::time_point{});
  }
  // A run ended kCancelled after a stop carries the first stop's cause, as the supervisor's does.
  void finish(const std::string& run_id, runner::RunOutcome outcome) {
    auto* l = find(run_id);
    ASSERT_NE(l, nullptr) << run_id << " was not launched";
    l->finished = true;
    if (outcome.ending == runner::RunOutcome::Ending::kCancelled) {
      for (std::size_t i = 0; i < stops.size(); ++i) {
        if (stops[i].first == run_id || stops[i].first == "*") {
          outcome.stop_cause = causes[i];
          break;
        }
      }
    }
    l->callbacks.on_finished(std::move(outcome));
  }
  std::size_t live() const {
    return std::ranges::count_if(launched, [](const Launched& l) { return !l.finished; });
  }

  std::vector<Launched> launched;
  std::vector<std::pair<std::string, std::string>> stops;
  std::vector<runner::StopCause> causes;  // of each stop
};

// The runs topic in memory: decideAttempt over the last record per run_id.
class FakeAttempts final : public AttemptStore {
 public:
  consumer::AttemptDecision decide(const v1::JobCommand& command, unsigned max_attempts,
                                   bool holder_lost) const override {
    auto it = records.find(command.run_id());
    return consumer::decideAttempt(command, it == records.end() ? nullptr : &it->second,
                                   max_attempts, holder_lost);
  }
  const v1::RunRecord* find(const std::string& run_id) const override {
    auto it = records.find(run_id);
    return it == records.end() ? nullptr : &it->second;
  }
  // This worker's own claims say w-test, incarnation "self".
  std::vector<consumer::Claim> claims() const override {
    std::vector<consumer::Claim> out;
    for (const auto& [id, r] : records) {
      if ((r.state() != v1::STARTED && !r.released()) || r.command().empty()) continue;
      if (r.worker_id() == "w-test" && r.incarnation() == "self") continue;
      out.push_back({id, r.worker_id(), r.incarnation(), r.source().partition()});
    }
    return out;
  }
  // A claim another worker holds, as the runs topic would show it.
  void claimedBy(const std::string& worker, const std::string& incarnation, const v1::JobCommand& c,
                 std::int32_t partition, std::int64_t offset, std::uint32_t starts = 1) {
    consumer::AttemptDecision a;
    a.starts = starts;
    auto r = consumer::RunStore::startRecord(c, a, {"test.jobs", partition}, offset, worker, {});
    r.set_incarnation(incarnation);
    records[c.run_id()] = std::move(r);
  }
  events::OutRecord recordStart(const v1::JobCommand& command,
                                const consumer::AttemptDecision& admission,
                                const TopicPartition& source, std::int64_t offset) override {
    auto r = consumer::RunStore::startRecord(command, admission, source, offset, "w-test", {});
    r.set_incarnation("self");
    return keep(std::move(r));
  }
  events::OutRecord recordEnd(const v1::JobCommand& command, std::uint32_t starts,
                              v1::RunState terminal, const TopicPartition& source,
                              std::int64_t offset, std::uint32_t releases, bool released) override {
    auto r = consumer::RunStore::endRecord(command, starts, terminal, source, offset, "w-test", {},
                                           releases, released);
    r.set_incarnation("self");
    return keep(std::move(r));
  }
  void forgetCommitted(std::int32_t, std::int64_t) override {}
  bool restore(const std::vector<std::int32_t>& partitions,
               const std::map<std::int32_t, std::int64_t>& read_past) override {
    restored.insert(restored.end(), partitions.begin(), partitions.end());
    last_read_past = read_past;
    if (fail_restores > 0) {
      --fail_restores;
      for (auto p : partitions) {
        std::erase_if(records, [&](const auto& kv) { return kv.second.source().partition() == p; });
      }
      return false;
    }
    // What the lost worker committed before it was fenced shows up now.
    for (auto& [id, r] : on_restore) records[id] = r;
    on_restore.clear();
    return true;
  }
  events::OutRecord barrier(std::int32_t partition) override {
    return {"test.runs", partition, "barrier:" + std::to_string(++barriers), {}, {}};
  }
  int fail_restores = 0;  // the next N restores fail (forgetting their partitions)
  int barriers = 0;
  std::map<std::int32_t, std::int64_t> last_read_past;
  void forget(const std::vector<std::int32_t>& partitions) override {
    forgotten.insert(forgotten.end(), partitions.begin(), partitions.end());
    for (auto p : partitions) {
      std::erase_if(records, [&](const auto& kv) { return kv.second.source().partition() == p; });
    }
  }
  std::map<std::string, v1::RunRecord> records;
  std::map<std::string, v1::RunRecord> on_restore;  // records the next restore() reads
  std::vector<std::int32_t> restored, forgotten;

 private:
  events::OutRecord keep(v1::RunRecord r) {
    events::OutRecord out{
        "test.runs", r.source().partition(), r.run_id(), r.SerializeAsString(), {}};
    records[r.run_id()] = std::move(r);
    return out;
  }
};

// Leases decided by the test: every holder is there unless `lapsed` names it (by worker id). Fences
// wait until the test answers them.
class FakeLeases final : public Leases {
 public:
  LeaseVerdict lease(const std::string& worker_id, const std::string&) const override {
    auto it = lapsed.find(worker_id);
    if (it == lapsed.end()) return {};
    return {true, it->second, true, stopped.contains(worker_id)};
  }
  void fence(const std::string& worker_id, const std::string&, const std::string&,
             std::function<void(std::string)> done) override {
    fences.push_back(worker_id);
    pending.push_back(std::move(done));
  }
  void answerAll(const std::string& error = "") {
    auto now = std::move(pending);
    pending.clear();
    for (auto& d : now) d(error);
  }
  std::map<std::string, std::string> lapsed;  // worker id -> why
  std::set<std::string> stopped;              // of those, the ones that stopped cleanly
  std::vector<std::string> fences;
  std::vector<std::function<void(std::string)>> pending;
};

class FakeSecrets final : public SecretSource {
 public:
  void resolve(std::vector<secrets::SecretRef> refs,
               std::function<void(ResolvedSecrets)> done) override {
    pending.push_back({std::move(refs), std::move(done)});
  }
  // Answers every pending request from `values`, or fails the ones naming a missing value.
  void answerAll() {
    auto now = std::move(pending);
    pending.clear();
    for (auto& [refs, done] : now) {
      std::map<std::string, secrets::SecretValue> out;
      for (const auto& r : refs) {
        auto it = values.find(r.text);
        if (it == values.end()) {
          return done(std::unexpected(
              secrets::SecretError{secrets::SecretError::Kind::kNotFound, "no secret " + r.text}));
        }
        out.emplace(r.text, secrets::SecretValue(it->second));
      }
      done(std::move(out));
    }
  }
  std::string mask(std::string_view text) const override {
    std::string out(text);
    for (const auto& [ref, value] : values) {
      for (auto at = out.find(value); at != std::string::npos; at = out.find(value)) {
        out.replace(at, value.size(), "*****");
      }
    }
    return out;
  }
  std::unique_ptr<StreamRedactor> outputRedactor() const override {
    return std::make_unique<PassThroughRedactor>();
  }
  std::map<std::string, std::string> values;  // by reference text
  std::vector<std::pair<std::vector<secrets::SecretRef>, std::function<void(ResolvedSecrets)>>>
      pending;
};

// What the dispatcher reported, one line per call: "started 1500", "ended ok SUCCEEDED 3000"
// ("-" when it never ran), "skipped other_pool", "rejected duplicate", "dead letter".
class RecordingObserver final : public Observer {
 public:
  void runStarted(std::chrono::milliseconds schedule_to_start) override {
    calls.push_back("started " + std::to_string(schedule_to_start.count()));
  }
  void runEnded(const std::string& job_type, v1::RunState state,
                std::optional<std::chrono::milliseconds> ran) override {
    calls.push_back("ended " + job_type + " " + v1::RunState_Name(state) + " " +
                    (ran ? std::to_string(ran->count()) : "-"));
  }
  void commandSkipped(std::string_view reason) override {
    calls.push_back("skipped " + std::string(reason));
  }
  void commandRejected(std::string_view reason) override {
    calls.push_back("rejected " + std::string(reason));
  }
  void deadLettered() override { calls.push_back("dead letter"); }
  void signatureWarning(std::string_view reason) override {
    calls.push_back("signature warning " + std::string(reason));
  }
  std::vector<std::string> calls;
};

// A dispatcher on fakes, with a configuration from YAML (templates `ok`, `sleep`, `one`
// (concurrency 1), `secret` (may use ${DB_*})).
// Real parts in place of fakes, for the tests of the owner loop and of callbacks' lifetimes.
struct HarnessParts {
  Poster* poster = nullptr;  // e.g. an OwnerLoop's inbox; settle() then runs nothing of it
  SecretSource* secrets = nullptr;
  LineageEndpoint* lineage_http = nullptr;
};

struct Harness {
  using Parts = HarnessParts;
  static std::string yaml(const std::string& extra_worker, const std::string& delivery) {
    return "worker:\n  id: w-test\n  pool: main\n  work_dir: /tmp/outpost-dispatch-test\n"
           "  delivery: " +
           delivery + "\n" + extra_worker +
           "topics:\n  prefix: test.\n"
           "templates:\n"
           "  ok: {argv: [true], recipe: none}\n"
           "  sleep: {argv: [sleep, '{secs}'], params: {secs: {pattern: '[0-9]+'}}, recipe: none}\n"
           "  one: {argv: [true], recipe: none, concurrency: 1}\n"
           "  secret:\n"
           "    argv: [true]\n"
           "    recipe: file\n"
           "    accept_env: [DB_*]\n"
           "    secrets: ['DB_*']\n";
  }

  explicit Harness(const std::string& extra_worker = "",
                   const std::string& delivery = "at-least-once", Parts parts = {})
      : config(parseConfig(yaml(extra_worker, delivery), {}, "test")),
        exactly_once(delivery == "exactly-once") {
    source.assigned = {jobs(0), jobs(1)};
    dispatcher = std::make_unique<Dispatcher>(
        config, Environment{{"PATH", "/usr/bin:/bin"}},
        Ports{parts.poster ? *parts.poster : poster, source, records, starts,
              exactly_once ? &txn : nullptr, executor, attempts, &leases,
              parts.secrets ? *parts.secrets : secrets, parts.lineage_http, clock, observer});
  }

  TopicPartition jobs(std::int32_t p) const { return {config.topics.jobs, p}; }

  // A command as the jobs topic delivers it; returns its offset.
  std::int64_t send(const v1::JobCommand& c, std::int32_t partition = 0) {
    return sendBytes(c.SerializeAsString(), partition);
  }
  std::int64_t sendBytes(std::string bytes, std::int32_t partition = 0,
                         std::vector<events::Header> headers = {}) {
    consumer::ConsumedMessage m;
    m.tp = jobs(partition);
    m.offset = next_offset[partition]++;
    m.key = "k";
    m.value = std::move(bytes);
    m.headers = std::move(headers);
    m.timestamp = record_time;
    dispatcher->onMessage(std::move(m));
    settle();
    return next_offset[partition] - 1;
  }
  // Runs what was posted (acknowledgements with auto_ack, run callbacks) until quiet.
  void settle() {
    for (int i = 0; i < 100; ++i) {
      poster.runAll();
      if (exactly_once && auto_commit && !txn.units.empty()) {
        txn.commitAll();
        continue;
      }
      if (poster.pending() == 0) break;
    }
    dispatcher->tick();
    poster.runAll();
  }
  void started(const std::string& run_id) {
    executor.start(run_id);
    settle();
  }
  void finished(const std::string& run_id, runner::RunOutcome::Ending ending, int exit_code = 0,
                std::string message = "") {
    runner::RunOutcome o;
    o.ending = ending;
    o.exit_code = exit_code;
    o.message = std::move(message);
    if (ending == runner::RunOutcome::Ending::kSignaled) o.signal = exit_code;
    executor.finish(run_id, std::move(o));
    settle();
  }
  void succeed(const std::string& run_id) {
    started(run_id);
    finished(run_id, runner::RunOutcome::Ending::kExited, 0);
  }

  // Every RunEvent written so far (outside transactions and in committed ones), in order.
  std::vector<v1::RunEvent> events() const {
    std::vector<v1::RunEvent> out;
    auto take = [&](const std::vector<events::OutRecord>& rs) {
      for (const auto& r : rs) {
        if (r.topic != config.topics.events) continue;
        v1::RunEvent e;
        EXPECT_TRUE(e.ParseFromString(r.value));
        out.push_back(std::move(e));
      }
    };
    take(records.all);
    take(txn.committed);
    return out;
  }
  std::vector<v1::RunEvent> eventsOf(const std::string& run_id) const {
    std::vector<v1::RunEvent> out;
    for (auto& e : events()) {
      if (e.run_id() == run_id) out.push_back(std::move(e));
    }
    return out;
  }
  std::vector<v1::RunState> statesOf(const std::string& run_id) const {
    std::vector<v1::RunState> out;
    for (const auto& e : eventsOf(run_id)) out.push_back(e.state());
    return out;
  }
  std::vector<v1::RunEvent> terminalsOf(const std::string& run_id) const {
    std::vector<v1::RunEvent> out;
    for (auto& e : eventsOf(run_id)) {
      if (v1::isTerminal(e.state())) out.push_back(std::move(e));
    }
    return out;
  }
  std::size_t deadLetters() const {
    auto count = [&](const std::vector<events::OutRecord>& rs) {
      return std::ranges::count_if(
          rs, [&](const events::OutRecord& r) { return r.topic == config.topics.dlq; });
    };
    return static_cast<std::size_t>(count(records.all) + count(txn.committed));
  }
  // The offset done for jobs partition p: committed by the source (at-least-once, after a
  // tick's commit) or by a transaction.
  std::int64_t doneOffset(std::int32_t p = 0) {
    clock.advance(std::chrono::seconds(6));  // past the periodic commit's intervals
    settle();
    auto& m = exactly_once ? txn.offsets : source.committed;
    auto it = m.find(jobs(p));
    return it == m.end() ? -1 : it->second;
  }

  Config config;
  bool exactly_once;
  bool auto_commit = true;
  ManualClock clock;
  FakePoster poster;
  FakeSource source;
  FakeSink records, starts;
  FakeTxn txn;
  FakeExecutor executor;
  FakeAttempts attempts;
  FakeLeases leases;
  FakeSecrets secrets;
  RecordingObserver observer;
  std::unique_ptr<Dispatcher> dispatcher;
  std::map<std::int32_t, std::int64_t> next_offset;
  // The record timestamp of the commands send() delivers (none by default).
  std::optional<std::chrono::system_clock::time_point> record_time;
};

inline v1::JobCommand command(const std::string& job_type,
                              const std::map<std::string, std::string>& args = {}) {
  static int n = 0;
  v1::JobCommand c;
  char id[40];
  std::snprintf(id, sizeof id, "0190a5d2-7c3e-7abc-8def-%012d", ++n);
  c.set_run_id(id);
  c.set_job_id("job-" + std::to_string(n));
  c.set_job_type(job_type);
  for (const auto& [k, v] : args) (*c.mutable_args())[k] = v;
  return c;
}

}  // namespace outpost::dispatch::test
