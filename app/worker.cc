#include "worker.h"

#include <fnmatch.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include "outpost/common/thread_name.h"
#include "outpost/consumer/dead_letter.h"
#include "outpost/events/wire.h"
#include "outpost/secrets/reference.h"

namespace outpost {
namespace {

constexpr std::chrono::milliseconds kPollInterval{100};
constexpr std::chrono::milliseconds kCommitInterval{200};
// at-least-once: how often every watermark is committed again, moved or not (an async commit
// that failed, e.g. during a broker outage, is not retried by the consumer).
constexpr std::chrono::seconds kRecommitInterval{5};
// Reading the runs topic for newly assigned partitions (in the rebalance callback).
constexpr std::chrono::seconds kRestoreTimeout{30};
// Checking at start that the runs topic exists with enough partitions.
constexpr std::chrono::seconds kTopicCheckTimeout{30};
// On shutdown, how long the last transactions may take.
constexpr std::chrono::seconds kCloseTimeout{10};

// Keeps the masker alive as long as the run's output stream uses it.
class MaskedOutput final : public StreamRedactor {
 public:
  explicit MaskedOutput(std::shared_ptr<const SecretMasker> m)
      : m_(std::move(m)), s_(m_->stream()) {}
  std::string feed(std::string_view chunk) override { return s_->feed(chunk); }
  std::string flush() override { return s_->flush(); }

 private:
  std::shared_ptr<const SecretMasker> m_;
  std::unique_ptr<StreamRedactor> s_;
};

constexpr std::size_t kResolverThreads = 4;

// The events producer's linger.ms (kafka.producer_properties can change it): nothing waits for
// these records but the platform, and batching them keeps the broker's CPU per job low (with
// 2 ms, no-op jobs on 16 slots took ~0.7 produce requests each).
constexpr const char* kEventsLinger = "10";
// The start producer: a launch waits for its record, so it does not linger. librdkafka 2.0.2's
// broker thread polls with timeouts rounded down to milliseconds, so it spins (poll with timeout
// 0) through the last millisecond of every linger: with linger 1 ms that thread took 20-35% of a
// core at ~900 jobs/s. With linger 0 alone it was no better (36% in one run; likely spinning
// while its 5 idempotent requests in flight were all out); with neither, 4%. A start record
// needs no idempotence: a run starts only after its delivery report, so a retried copy lands
// before the launch and long before the run's end record, and a copy is the same record (the
// runs topic keeps the last per run).
// At most two requests in flight: otherwise every start record went out in a request of its own
// (0.6-0.8 produce requests per no-op job at 16 slots); records produced while two requests are
// out wait and go together in the next one. That batches under load only: with one run starting
// at a time nothing waits.
const std::map<std::string, std::string> kStartProducer = {
    {"linger.ms", "0"}, {"enable.idempotence", "false"}, {"max.in.flight", "2"}};

std::string hostName() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// Most control messages handled per loop iteration, so a burst of cancels cannot starve the jobs
// consumer (the rest wait for the next iteration).
constexpr int kControlBatch = 100;

bool isTerminalState(v1::RunState s) {
  return s == v1::SUCCEEDED || s == v1::FAILED || s == v1::TIMED_OUT || s == v1::CANCELLED ||
         s == v1::REJECTED || s == v1::EXPIRED;
}

// The message of a run's CANCELLED event when a control-topic cancel ended it; `when` says at
// which point ("" while running).
std::string cancelMessage(const std::string& requested_by, const std::string& reason,
                          std::string_view when) {
  return fmt::format("cancelled by {}{}: {}", requested_by, when, reason);
}

// "10m", "90s", "1500ms": how the configuration writes durations.
std::string describeDuration(Millis d) {
  auto ms = d.count();
  if (ms > 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms > 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms > 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms > 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace

Worker::Worker(Config config, const Clock& clock)
    : config_(std::move(config)),
      clock_(clock),
      uuids_(clock),
      worker_env_(processEnvironment()),
      lineage_(config_.lineage.job_namespace, {config_.worker.id, config_.worker.pool}),
      started_at_(clock.now()) {
  resolver_ = SecretResolver::fromConfig(config_.secrets, worker_env_, clock_);
  producer_ = std::make_unique<KafkaProducer>(
      config_.kafka, std::map<std::string, std::string>{{"client.id", config_.worker.id}},
      std::map<std::string, std::string>{{"linger.ms", kEventsLinger}});
  auto start_properties = kStartProducer;
  start_properties["client.id"] = config_.worker.id + "-start";
  start_producer_ = std::make_unique<KafkaProducer>(config_.kafka, start_properties);
  if (config_.lineage.enabled && config_.lineage.toHttp()) {
    lineage_http_ = std::make_unique<HttpLineageTransport>(
        HttpLineageTransportOptions::fromConfig(config_.lineage.http, worker_env_));
  }
  // First: it kills what a worker that died left running, before this one joins the group
  // and takes their commands again.
  const auto& out = config_.output;
  supervisor_ = std::make_unique<Supervisor>(
      clock_, launcher_,
      SupervisorOptions{out.tail_bytes, out.line_max_bytes, out.log_batch_bytes,
                        out.log_batch_interval, out.log_rate_bytes, out.log_file_bytes,
                        config_.worker.heartbeat_interval, config_.runner.cgroup});
  spdlog::info("descendants of runs are tracked with {}",
               supervisor_->usesCgroups()
                   ? supervisor_->cgroupNote()
                   : "their process group and a /proc scan for OUTPOST_RUN_ID (" +
                         supervisor_->cgroupNote() + ")");
  const std::string group = "outpost." + config_.worker.pool;
  if (config_.exactlyOnce()) {
    // Stable for a configured worker id, so that a restarted worker fences its predecessor.
    TransactionalPublisherOptions txn_options;
    txn_options.producer_properties = {{"client.id", config_.worker.id + "-txn"}};
    txn_ = std::make_unique<TransactionalPublisher>(config_.kafka, group + "." + config_.worker.id,
                                                    std::move(txn_options));
  }
  run_store_ = std::make_unique<RunStore>(
      config_.kafka, RunStoreOptions{config_.topics.runs, config_.topics.jobs, group,
                                     config_.worker.id + "-runs"});
  // Before joining the group: without the runs topic, attempts could not be counted.
  if (auto ok = run_store_->checkTopics(kTopicCheckTimeout); !ok) throw ConfigError(ok.error());
  std::map<std::string, std::string> membership;
  if (config_.worker.static_id) membership["group.instance.id"] = config_.worker.id;
  consumer_ =
      std::make_unique<JobConsumer>(config_.kafka, group, config_.topics.jobs, *this, membership);
  control_ = std::make_unique<ControlListener>(
      config_.kafka, config_.topics.control, "outpost." + config_.worker.pool + ".control",
      config_.worker.id + "-control", config_.worker.cancel_memory, clock_);
}

Worker::~Worker() {
  // Stop the threads that post into the inbox before the inbox goes.
  {
    std::lock_guard lock(resolve_mutex_);
    resolve_stop_ = true;
  }
  resolve_cv_.notify_all();
  for (auto& t : resolve_threads_) t.join();
  supervisor_.reset();
  lineage_http_.reset();
  txn_.reset();
  start_producer_.reset();
  producer_.reset();
}

void Worker::post(std::function<void()> fn) {
  bool first;
  {
    std::lock_guard lock(inbox_mutex_);
    first = inbox_.empty();
    inbox_.push_back(std::move(fn));
  }
  // Only the first of a burst wakes the poll thread: it takes the whole inbox at once. A run posts
  // about eight times (start, log, end, and one acknowledgement per record).
  if (first) {
    inbox_cv_.notify_one();
    consumer_->wake();
  }
}

void Worker::drainInbox() {
  for (;;) {
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard lock(inbox_mutex_);
      batch.swap(inbox_);
    }
    if (batch.empty()) return;
    for (auto& fn : batch) fn();
  }
}

bool Worker::waitInbox(std::chrono::milliseconds timeout) {
  std::unique_lock lock(inbox_mutex_);
  return inbox_cv_.wait_for(lock, timeout, [this] { return !inbox_.empty(); });
}

int Worker::run(const std::atomic<bool>& stop) {
  spdlog::info("worker {} (pool {}, {} slots, {}) consuming {} as group outpost.{}",
               config_.worker.id, config_.worker.pool, config_.worker.slots,
               config_.worker.delivery, config_.topics.jobs, config_.worker.pool);
  publishStatus(v1::RUNNING);
  auto last_commit = clock_.steadyNow();
  auto last_recommit = clock_.steadyNow();
  auto last_status = clock_.steadyNow();
  auto housekeeping = [&] {
    drainInbox();
    // A rerun waiting to run alone can start once the others retired (see dispatch).
    if (std::exchange(retired_, false) && !queue_.empty()) {
      dispatch();
      updatePause();
    }
    pollControl();
    auto now = clock_.steadyNow();
    if (!txn_ && now - last_recommit >= kRecommitInterval) {
      if (auto all = offsets_.watermarks(); !all.empty()) consumer_->commit(all, false);
      last_recommit = last_commit = now;
    } else if (!txn_ && now - last_commit >= kCommitInterval) {
      commit(false);
      last_commit = now;
    }
    if (now - last_status >= config_.worker.status_interval) {
      publishStatus(draining_ ? v1::DRAINING : v1::RUNNING);
      last_status = now;
    }
  };

  while (!stop.load()) {
    if (auto m = consumer_->poll(kPollInterval)) handleMessage(std::move(*m));
    housekeeping();
  }

  // Drain: take nothing new, give running jobs drain_timeout, then stop them.
  spdlog::info("stopping: draining {} running job(s) for up to {} ms", running_,
               config_.worker.drain_timeout.count());
  draining_ = true;
  updatePause();
  // Queued commands never started: their offsets stay uncommitted, so another worker runs them.
  for (auto id : queue_) eraseRun(id);
  queue_.clear();
  eraseRunsIf([](const Run& r) { return r.phase == Phase::kResolving; });
  publishStatus(v1::DRAINING);
  auto deadline = clock_.steadyNow() + config_.worker.drain_timeout;
  bool stopped_runs = false;
  Millis longest_grace{0};
  for (const auto& [name, t] : config_.templates)
    longest_grace = std::max(longest_grace, t.kill_grace);
  auto hard_deadline = deadline + longest_grace + std::chrono::seconds(10);
  while (!runs_.empty() && clock_.steadyNow() < hard_deadline) {
    if (!stopped_runs && running_ > 0 && clock_.steadyNow() >= deadline) {
      spdlog::warn("drain timeout reached: stopping {} running job(s)", running_);
      supervisor_->stopAll(fmt::format("worker {} shutting down: drain timeout of {} ms exceeded",
                                       config_.worker.id, config_.worker.drain_timeout.count()));
      stopped_runs = true;
    }
    consumer_->poll(kPollInterval);  // keeps the membership alive; paused, so nothing arrives
    housekeeping();
  }
  if (!runs_.empty()) spdlog::error("{} run(s) still unacknowledged at exit", runs_.size());
  if (txn_) {
    txn_->close(kCloseTimeout);
    auto t = txn_->stats();
    spdlog::info(
        "exactly-once: {} unit(s) committed in {} transaction(s); {} transaction(s) "
        "aborted, {} unit(s) rejected, producer recreated {} time(s)",
        t.units_committed, t.transactions_committed, t.transactions_aborted, t.units_rejected,
        t.producer_recreations);
  } else {
    commit(true);
  }
  publishStatus(v1::STOPPED);
  if (!producer_->flush(std::chrono::seconds(10))) {
    spdlog::error("{} message(s) not delivered at exit", producer_->outstanding());
  }
  if (lineage_http_) lineage_http_->shutdown(config_.lineage.http.flush_timeout);
  consumer_->close();
  if (skipped_other_pool_ > 0) {
    spdlog::info("{} command(s) for other pools skipped", skipped_other_pool_);
  }
  spdlog::info("worker {} stopped", config_.worker.id);
  return 0;
}

void Worker::handleMessage(ConsumedMessage message) {
  if (draining_) return;  // fetched before the pause; not taken, so not committed
  auto decoded = decodeCommand(message.value);
  if (decoded) {
    // Our own command handed back to us by a rebalance while it still runs: adopt it again
    // (unless it was stopped and handed over: then it runs again, as the next attempt).
    auto [same, end] = by_run_id_.equal_range(decoded->run_id());
    for (; same != end; ++same) {
      Run& r = runs_.at(same->second);
      if (!r.tracked && !r.handed_over && r.tp == message.tp && r.offset == message.offset) {
        spdlog::info("run {}: partition came back while it runs; tracking it again",
                     r.command.run_id());
        r.tracked = true;
        offsets_.begin(r.tp, r.offset);
        return;
      }
    }
  }
  Run& run = runs_[next_id_];
  run.id = next_id_++;
  run.tp = message.tp;
  run.offset = message.offset;
  offsets_.begin(run.tp, run.offset);
  run.command = decoded ? std::move(*decoded) : std::move(decoded.error().partial);
  by_run_id_.emplace(run.command.run_id(), run.id);
  if (!decoded) {
    run.admission.attempt = std::max(1u, run.command.attempt());
    return reject(run, message, decoded.error().reason);
  }
  run.admission.attempt = std::max(1u, run.command.attempt());
  if (isForAnotherPool(run.command, config_.worker.pool)) {
    // Pools sharing a jobs topic each read every command: another pool's is not bad input.
    ++skipped_other_pool_;
    spdlog::debug("run {}: for pool '{}', not '{}': skipped ({} so far)", run.command.run_id(),
                  run.command.pool(), config_.worker.pool, skipped_other_pool_);
    run.phase = Phase::kFinished;
    return maybeRetire(run);
  }
  auto admitted = admitCommand(run.command, config_.templates);
  if (!admitted) return reject(run, message, admitted.error().reason);
  run.tmpl = *admitted;
  // The same run_id twice at once (a duplicate, or a redelivery while the first still runs):
  // refuse the second without a REJECTED event, which would be a second terminal event for it.
  auto [same, end] = by_run_id_.equal_range(run.command.run_id());
  bool duplicate = std::any_of(same, end, [&](const auto& kv) {
    const Run& other = runs_.at(kv.second);
    return other.id != run.id && other.phase != Phase::kFinished && !other.handed_over;
  });
  if (duplicate) {
    return reject(run, message,
                  "run_id " + run.command.run_id() + " is already queued or running on this worker",
                  /*publish_event=*/false);
  }
  if (pastDeadline(run.command)) {
    return endWithoutRunning(run, v1::EXPIRED, "already past its deadline (not_after) when taken");
  }
  // What the runs topic knows: started before on a worker that was lost, or already ended.
  run.admission = run_store_->decide(run.command, config_.worker.max_attempts);
  switch (run.admission.verdict) {
    case Admission::Verdict::kRun:
      break;
    case Admission::Verdict::kRerun:
      spdlog::warn("run {}: {}", run.command.run_id(), run.admission.reason);
      break;
    case Admission::Verdict::kSkip:
      // Its terminal event was published before: only its offset is left to commit.
      spdlog::info("run {}: not run again: {}", run.command.run_id(), run.admission.reason);
      run.phase = Phase::kFinished;
      return maybeRetire(run);
    case Admission::Verdict::kGiveUp:
      spdlog::warn("run {}: not run again: {}", run.command.run_id(), run.admission.reason);
      return endWithoutRunning(run, v1::FAILED, run.admission.reason, /*lineage_fail=*/true);
  }

  RunRequest req;
  req.run_id = run.command.run_id();
  req.job_id = run.command.job_id();
  req.attempt = run.admission.attempt;  // a rerun is the next attempt
  req.args = {run.command.args().begin(), run.command.args().end()};
  req.env = {run.command.env().begin(), run.command.env().end()};
  req.recipe = run.command.recipe();
  req.timeout = Millis(run.command.timeout_ms());
  // Secret references never go in arguments: those end up on a command line.
  for (const auto& [name, value] : req.args) {
    if (value.find("${") != std::string::npos || value.find("secret:/") != std::string::npos) {
      return reject(run, message,
                    "argument '" + name +
                        "' holds a secret reference; secrets never go on a command line (use env "
                        "or the recipe)");
    }
  }
  auto plan = planRun(*run.tmpl, req, worker_env_, config_.worker.work_dir);
  if (!plan) return reject(run, message, plan.error());
  run.plan = std::move(*plan);

  // Secret references: in the template's and the command's env values and in the recipe (never
  // in arguments, checked above). Each must be allowed by the template.
  std::vector<SecretRef> refs;
  auto collect = [&](const std::string& where,
                     std::string_view text) -> std::optional<std::string> {
    auto parts = parseReferences(text);
    if (!parts) return where + ": " + parts.error();
    for (auto& p : *parts) {
      if (p.is_reference) refs.push_back(std::move(p.ref));
    }
    return std::nullopt;
  };
  for (const auto& [name, value] : run.tmpl->env) {
    if (auto err = collect("template env " + name, value)) return reject(run, message, *err);
  }
  for (const auto& [name, value] : req.env) {
    if (auto err = collect("env " + name, value)) return reject(run, message, *err);
  }
  if (run.tmpl->recipe != RecipeDelivery::kNone) {
    if (auto err = collect("recipe", req.recipe)) return reject(run, message, *err);
  }
  std::string refused;
  for (const auto& ref : refs) {
    auto scope = scopeName(ref);
    bool allowed = std::ranges::any_of(run.tmpl->secrets, [&](const std::string& pattern) {
      return fnmatch(pattern.c_str(), scope.c_str(), 0) == 0;
    });
    if (!allowed && refused.find(ref.text) == std::string::npos)
      refused += (refused.empty() ? "" : ", ") + ref.text;
  }
  if (!refused.empty()) {
    return reject(run, message,
                  "template '" + run.tmpl->name + "' may not use the secret(s) " + refused +
                      " (see its secrets list)");
  }
  if (!refs.empty()) return resolveSecrets(run, std::move(refs));
  enqueue(run);
}

void Worker::enqueue(Run& run) {
  run.phase = Phase::kQueued;
  // A cancel for this run came first (from the control topic, within cancel_memory).
  if (auto* cancel = cancels_.find(run.command.run_id(), clock_.now())) {
    if (run.command.attempt() == 1) run.sequence = cancel->notices;  // after its NOTICEs
    return endCancelled(run, *cancel, " before it started");
  }
  queue_.push_back(run.id);
  dispatch();
  if (run.phase == Phase::kQueued) {
    spdlog::info("run {} ({}) queued: {} running, {} queued", run.command.run_id(), run.tmpl->name,
                 running_, queue_.size());
  }
  updatePause();
}

void Worker::resolveSecrets(Run& run, std::vector<SecretRef> refs) {
  run.phase = Phase::kResolving;
  if (resolve_threads_.empty()) {
    for (std::size_t i = 0; i < kResolverThreads; ++i) {
      resolve_threads_.emplace_back([this] {
        nameThisThread("op-resolve");
        for (;;) {
          std::function<void()> task;
          {
            std::unique_lock lock(resolve_mutex_);
            resolve_cv_.wait(lock, [this] { return resolve_stop_ || !resolve_tasks_.empty(); });
            if (resolve_stop_) return;
            task = std::move(resolve_tasks_.front());
            resolve_tasks_.pop_front();
          }
          task();
        }
      });
    }
  }
  {
    std::lock_guard lock(resolve_mutex_);
    resolve_tasks_.push_back([this, id = run.id, refs = std::move(refs)] {
      std::map<std::string, SecretValue> values;
      for (const auto& ref : refs) {
        if (values.contains(ref.text)) continue;
        auto got = resolver_->resolve(ref);
        if (!got) {
          post([this, id, msg = got.error().message] { onResolved(id, std::unexpected(msg)); });
          return;
        }
        values.emplace(ref.text, std::move(got->value));
      }
      post([this, id, v = std::move(values)]() mutable { onResolved(id, std::move(v)); });
    });
  }
  resolve_cv_.notify_one();
}

void Worker::onResolved(std::uint64_t id,
                        std::expected<std::map<std::string, SecretValue>, std::string> values) {
  auto it = runs_.find(id);
  if (it == runs_.end() || it->second.phase != Phase::kResolving) return;  // dropped or cancelled
  Run& run = it->second;
  if (!values) {
    // The command is fine; the store did not answer: FAILED (never started), not REJECTED.
    return endWithoutRunning(run, v1::FAILED, "cannot resolve a secret: " + values.error());
  }
  auto render = [&](std::string_view text) {
    std::string out;
    auto parts = parseReferences(text);  // parsed fine at admission
    for (const auto& p : *parts) {
      out += p.is_reference ? std::string(values->at(p.ref.text).reveal()) : p.literal;
    }
    return out;
  };
  std::set<std::string> names;
  for (const auto& [name, value] : run.tmpl->env) names.insert(name);
  for (const auto& [name, value] : run.command.env()) names.insert(name);
  for (auto& kv : run.plan.env) {
    auto eq = kv.find('=');
    if (names.contains(kv.substr(0, eq))) kv = kv.substr(0, eq + 1) + render(kv.substr(eq + 1));
  }
  if (run.tmpl->recipe != RecipeDelivery::kNone) run.plan.recipe = render(run.plan.recipe);
  enqueue(run);
}

void Worker::reject(Run& run, const ConsumedMessage& message, const std::string& reason,
                    bool publish_event) {
  spdlog::warn("rejected {}[{}]@{} (run {}): {}", message.tp.topic, message.tp.partition,
               message.offset, run.command.run_id().empty() ? "unknown" : run.command.run_id(),
               reason);
  run.phase = Phase::kFinished;
  auto dead = deadLetterRecord(config_.topics.dlq, message, reason, config_.worker.id);
  if (txn_) {
    run.finals.push_back(std::move(dead));  // with the REJECTED event and the offset
  } else {
    ++run.pending_acks;
    producer_->produce(dead, [this, id = run.id](const DeliveryReport& r) {
      if (!r.ok) spdlog::error("dead-letter write failed: {}", r.error);
      post([this, id] { acknowledged(id); });
    });
  }
  if (publish_event && !run.command.run_id().empty()) {
    auto e = newEvent(run, v1::REJECTED);
    e.set_message(reason);
    publishEvent(run, e);
  }
  maybeRetire(run);
}

// A rerun (its worker was lost while running it) runs alone: if it is what kills workers, it takes
// no other run with it. It waits until the runs started before it have ended and their ends are
// written (a run lost after it ended would count as lost too), and the runs after it wait until
// its own end is written.
void Worker::dispatch() {
  auto settled = [this] {
    return std::ranges::none_of(runs_, [](const auto& kv) {
      return kv.second.phase == Phase::kRunning || kv.second.phase == Phase::kFinished;
    });
  };
  for (auto it = queue_.begin(); it != queue_.end() && running_ < config_.worker.slots;) {
    if (runs_.contains(alone_)) return;
    Run& run = runs_.at(*it);
    if (run.admission.verdict == Admission::Verdict::kRerun) {
      if (!settled()) return;
      alone_ = run.id;
    }
    unsigned limit = run.tmpl->concurrency;
    if (limit != 0 && running_per_template_[run.tmpl->name] >= limit) {
      ++it;  // this template is at its limit; later commands of other templates may go first
      continue;
    }
    it = queue_.erase(it);
    start(run);
  }
}

bool Worker::pastDeadline(const v1::JobCommand& c) const {
  return c.not_after_ms() > 0 && toUnixMillis(clock_.now()) > c.not_after_ms();
}

void Worker::endWithoutRunning(Run& run, v1::RunState state, const std::string& message,
                               bool lineage_fail) {
  run.phase = Phase::kFinished;
  auto e = newEvent(run, state);
  e.set_message(message);
  spdlog::warn("run {} {}: {}", run.command.run_id(), v1::RunState_Name(state), message);
  publishEvent(run, e);
  if (lineage_fail) {
    // The lost worker wrote the attempt's START; this ends it.
    LineageOutcome lo;
    lo.message = message;
    publishLineage(run, LineageEventType::kFail, std::move(lo));
  }
  maybeRetire(run);
}

void Worker::start(Run& run) {
  if (pastDeadline(run.command)) {
    return endWithoutRunning(run, v1::EXPIRED, "not started before its deadline (not_after)");
  }
  run.phase = Phase::kRunning;
  ++running_;
  ++running_per_template_[run.tmpl->name];
  recordStart(run);
}

// The start record is written before the process starts, so that a worker lost while running it
// is counted against max_attempts by the next owner (a job that kills its worker every time
// included). A redelivery also ends the lost attempt, in the same transaction when exactly-once.
void Worker::recordStart(Run& run) {
  auto record = RunStore::startRecord(run.command, run.admission, run.tp, run.offset,
                                      config_.worker.id, clock_.now());
  auto start = run_store_->toOutRecord(record);
  run_store_->remember(std::move(record));
  std::optional<OutRecord> lost;
  if (run.admission.verdict == Admission::Verdict::kRerun) {
    auto e = newEvent(run, v1::FAILED);
    e.set_attempt(run.admission.attempt - 1);
    e.set_redelivered(false);
    e.set_retrying(true);
    e.set_message(fmt::format("worker {} was lost while running it", run.admission.lost_worker));
    run.sequence = 0;  // the sequence counts the events of this attempt
    lost = OutRecord{config_.topics.events, -1, e.run_id(), toWire(e), {}};
  }
  ++run.pending_acks;
  if (lost && txn_) {
    TxnUnit unit;
    unit.records = {std::move(*lost), std::move(start)};
    unit.done = [this, id = run.id](const TxnOutcome& o) {
      post([this, id, o] {
        auto it = runs_.find(id);
        if (it == runs_.end()) return;
        Run& r = it->second;
        if (o.status == TxnOutcome::Status::kAborted && r.tracked) {
          // Aborted for a reason outside it (e.g. a transaction before it): write it again.
          --r.pending_acks;
          return recordStart(r);
        }
        onStartRecorded(id, o.committed(), o.reason);
      });
    };
    txn_->submit(std::move(unit));
    return;
  }
  if (lost) {
    producer_->produce(*lost, [](const DeliveryReport& r) {
      if (!r.ok) spdlog::error("the lost attempt's FAILED event was not delivered: {}", r.error);
    });
  }
  start_producer_->produce(start, [this, id = run.id](const DeliveryReport& r) {
    // Not delivered (a fatal producer error): counting its attempts is the lesser loss; run it.
    if (!r.ok) spdlog::error("start record not delivered: {}", r.error);
    post([this, id] { onStartRecorded(id, true, {}); });
  });
}

void Worker::onStartRecorded(std::uint64_t id, bool written, const std::string& why) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  Run& run = it->second;
  --run.pending_acks;
  if (!written) {
    // A redelivery's transaction did not commit: its partition went elsewhere (the next owner
    // decides), or a record was refused. Either way this worker does not run it.
    spdlog::warn("run {}: the redelivery's start was not written ({}); not running it",
                 run.command.run_id(), why);
    run.handed_over = true;
    run.tracked = false;
  }
  launch(id);
}

void Worker::launch(std::uint64_t id) {
  auto it = runs_.find(id);
  if (it == runs_.end() || it->second.phase != Phase::kRunning) return;
  Run& run = it->second;
  const auto& c = run.command;
  if (run.cancel || run.handed_over) {
    // Cancelled, or its partition handed over, while its start was being written.
    --running_;
    --running_per_template_[run.tmpl->name];
    if (run.cancel) {
      endCancelled(run, *run.cancel, " before it started");
    } else {
      run.phase = Phase::kFinished;
      maybeRetire(run);
    }
    dispatch();
    return updatePause();
  }
  spdlog::info("run {} ({}) starting: {}", c.run_id(), run.tmpl->name, run.plan.argv.front());
  RunCallbacks callbacks;
  callbacks.on_started = [this, id = run.id](pid_t, std::chrono::system_clock::time_point at) {
    post([this, id, at] { onStarted(id, at); });
  };
  callbacks.on_log = [this, id = run.id](LogBatch batch) {
    post([this, id, b = std::move(batch)]() mutable { onLog(id, std::move(b)); });
  };
  callbacks.on_heartbeat = [this, id = run.id](Heartbeat hb) {
    post([this, id, hb] { onHeartbeat(id, hb); });
  };
  if (config_.lineage.enabled && run.tmpl->child_lineage) {
    addLineageChannel(run.plan);
    run.child_lineage = std::make_unique<ChildLineageProcessor>(
        ChildLineageRun::of(lineage_, c),
        [masker = resolver_->masker()](std::string_view text) { return masker->mask(text); });
    callbacks.on_lineage = [this, id = run.id](std::string bytes, bool truncated) {
      post([this, id, b = std::move(bytes), truncated]() mutable {
        onLineage(id, std::move(b), truncated);
      });
    };
  }
  callbacks.on_finished = [this, id = run.id](RunOutcome outcome) {
    post([this, id, o = std::move(outcome)]() mutable { onFinished(id, std::move(o)); });
  };
  supervisor_->launch(run.plan, std::move(callbacks),
                      std::make_unique<MaskedOutput>(resolver_->masker()));
}

void Worker::onStarted(std::uint64_t id, std::chrono::system_clock::time_point started_at) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  auto e = newEvent(it->second, v1::STARTED);
  e.set_started_at_ms(toUnixMillis(started_at));
  publishEvent(it->second, e);
  it->second.started_at = started_at;
  LineageOutcome lineage_start;
  lineage_start.started_at = started_at;
  publishLineage(it->second, LineageEventType::kStart, std::move(lineage_start));
}

void Worker::onLog(std::uint64_t id, LogBatch batch) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  auto e = newEvent(it->second, v1::LOG);
  for (auto& line : batch.lines) e.add_log_lines(std::move(line));
  e.set_log_dropped_lines(batch.dropped_lines);
  publishEvent(it->second, e);
}

void Worker::onLineage(std::uint64_t id, std::string bytes, bool truncated) {
  auto it = runs_.find(id);
  if (it == runs_.end() || !it->second.child_lineage) return;
  Run& run = it->second;
  handleChildLineage(run, run.child_lineage->feed(bytes));
  if (truncated) {
    auto n = newEvent(run, v1::NOTICE);
    n.set_message(fmt::format("lineage channel: output past {} bytes was dropped",
                              SupervisorOptions{}.lineage_max_bytes));
    publishEvent(run, n);
  }
}

void Worker::handleChildLineage(Run& run, std::vector<ChildLineageResult> results) {
  for (auto& r : results) {
    if (r.record) {
      sendLineage(run, r.record->kafka_key, std::move(r.record->json));
    } else if (!r.error.empty()) {
      auto n = newEvent(run, v1::NOTICE);
      n.set_message(std::move(r.error));
      publishEvent(run, n);
    }
  }
}

void Worker::onHeartbeat(std::uint64_t id, const Heartbeat& hb) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  auto e = newEvent(it->second, v1::HEARTBEAT);
  e.set_output_bytes(hb.output_bytes);
  e.set_cpu_time_ms(hb.cpu_time_ms);
  e.set_rss_bytes(hb.rss_bytes);
  e.set_log_dropped_lines(hb.log_dropped_lines);
  publishEvent(it->second, e);
  if (config_.lineage.running_events) {
    LineageOutcome progress;
    progress.started_at = it->second.started_at;
    publishLineage(it->second, LineageEventType::kRunning, std::move(progress));
  }
}

void Worker::onFinished(std::uint64_t id, RunOutcome o) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  Run& run = it->second;
  run.phase = Phase::kFinished;
  --running_;
  --running_per_template_[run.tmpl->name];

  v1::RunState state = v1::FAILED;
  LineageEventType lineage = LineageEventType::kFail;
  std::string message = o.message;
  switch (o.ending) {
    case RunOutcome::Ending::kExited:
      if (o.exit_code == 0) {
        state = v1::SUCCEEDED;
        lineage = LineageEventType::kComplete;
      } else {
        message = describeFailure(o);
      }
      break;
    case RunOutcome::Ending::kSignaled:
      message = describeFailure(o);
      break;
    case RunOutcome::Ending::kTimedOut:
      state = v1::TIMED_OUT;
      lineage = LineageEventType::kAbort;
      break;
    case RunOutcome::Ending::kCancelled:
      state = v1::CANCELLED;
      lineage = LineageEventType::kAbort;
      break;
    case RunOutcome::Ending::kSpawnFailed:
      break;
  }
  message = resolver_->masker()->mask(message);
  auto e = newEvent(run, state);
  bool started = o.ending != RunOutcome::Ending::kSpawnFailed;
  e.set_exit_code(o.ending == RunOutcome::Ending::kExited ? o.exit_code : -1);
  e.set_signal(o.signal);
  e.set_message(message);
  // Stopped by a control-topic cancel (not by a timeout or a drain that came first)?
  bool cancelled_here =
      run.cancel && o.ending == RunOutcome::Ending::kCancelled &&
      o.message == cancelMessage(run.cancel->requested_by, run.cancel->reason, "");
  if (cancelled_here) e.set_cancelled_by(run.cancel->requested_by);
  if (started) {
    e.set_started_at_ms(toUnixMillis(o.started_at));
    e.set_duration_ms(o.duration.count());
  }
  e.set_log_tail(o.tail);
  e.set_log_dropped_bytes(o.dropped_bytes);
  e.set_output_bytes(o.output_bytes);
  e.set_cpu_time_ms(o.cpu_time_ms);
  e.set_log_dropped_lines(o.log_dropped_lines);
  spdlog::info("run {} {} ({} ms){}{}", run.command.run_id(), v1::RunState_Name(state),
               o.duration.count(), message.empty() ? "" : ": ", message);
  publishEvent(run, e);
  if (run.cancel && !cancelled_here) {
    auto n = newEvent(run, v1::NOTICE);
    n.set_message(fmt::format("cancel by {} not applied: the run was already ending {}{}{}",
                              run.cancel->requested_by, v1::RunState_Name(state),
                              message.empty() ? "" : ": ", message));
    publishEvent(run, n);
  }

  LineageOutcome lo;
  if (run.child_lineage) {
    // The job's own records come before Outpost's terminal one.
    handleChildLineage(run, run.child_lineage->finish());
    lo.child_events_forwarded = run.child_lineage->forwarded();
    lo.child_events_rejected = run.child_lineage->rejected();
  }
  if (o.ending == RunOutcome::Ending::kExited) lo.exit_code = o.exit_code;
  if (o.signal) lo.signal = o.signal;
  lo.message = message;
  lo.output_tail = o.tail;
  if (started) {
    lo.started_at = o.started_at;
    lo.run_duration = o.duration;
  }
  publishLineage(run, lineage, std::move(lo));

  dispatch();
  updatePause();
  maybeRetire(run);
}

v1::RunEvent Worker::newEvent(Run& run, v1::RunState state) {
  v1::RunEvent e;
  e.set_event_id(uuids_.next());
  e.set_run_id(run.command.run_id());
  e.set_job_id(run.command.job_id());
  e.set_job_type(run.command.job_type());
  e.set_attempt(run.admission.attempt);
  e.set_redelivered(run.admission.verdict == Admission::Verdict::kRerun);
  e.set_sequence(++run.sequence);
  e.set_state(state);
  e.set_event_time_ms(toUnixMillis(clock_.now()));
  e.set_worker_id(config_.worker.id);
  e.set_pool(config_.worker.pool);
  e.set_exit_code(-1);
  e.mutable_source()->set_topic(run.tp.topic);
  e.mutable_source()->set_partition(run.tp.partition);
  e.mutable_source()->set_offset(run.offset);
  e.mutable_labels()->insert(run.command.labels().begin(), run.command.labels().end());
  return e;
}

void Worker::publishEvent(Run& run, const v1::RunEvent& event) {
  if (isTerminalState(event.state())) run.terminal = event.state();
  if (txn_ && run.terminal != v1::RUN_STATE_UNSPECIFIED && !run.submitted) {
    // From the terminal event on, everything goes in the run's transaction (a NOTICE once that
    // is on its way goes alone).
    run.finals.push_back({config_.topics.events, -1, event.run_id(), toWire(event), {}});
    return;
  }
  ++run.pending_acks;
  producer_->produce(config_.topics.events, event.run_id(), toWire(event), {},
                     [this, id = run.id, state = event.state()](const DeliveryReport& r) {
                       if (!r.ok) {
                         spdlog::error("run event {} not delivered: {}", v1::RunState_Name(state),
                                       r.error);
                       }
                       post([this, id] { acknowledged(id); });
                     });
}

void Worker::publishLineage(Run& run, LineageEventType type, LineageOutcome outcome) {
  if (!config_.lineage.enabled) return;
  outcome.attempt = run.admission.attempt;
  auto doc = lineage_.build(type, run.command, clock_.now(), outcome);
  sendLineage(run, lineage_.kafkaKey(run.command), lineageRecordText(doc));
}

void Worker::sendLineage(Run& run, const std::string& key, std::string json) {
  if (lineage_http_) {
    ++run.pending_acks;
    lineage_http_->send(json, [this, id = run.id](const LineageDelivery& d) {
      if (!d.ok) spdlog::error("lineage record not delivered: {}", d.error);
      post([this, id] { acknowledged(id); });
    });
  }
  if (config_.lineage.toKafka() && txn_ && run.terminal != v1::RUN_STATE_UNSPECIFIED &&
      !run.submitted) {
    run.finals.push_back({config_.topics.lineage, -1, key, std::move(json), {}});
  } else if (config_.lineage.toKafka()) {
    ++run.pending_acks;
    producer_->produce(config_.topics.lineage, key, std::move(json), {},
                       [this, id = run.id](const DeliveryReport& r) {
                         if (!r.ok) spdlog::error("lineage record not delivered: {}", r.error);
                         post([this, id] { acknowledged(id); });
                       });
  }
}

void Worker::acknowledged(std::uint64_t id) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  --it->second.pending_acks;
  maybeRetire(it->second);
}

// A run's offset counts as done once it has finished and everything it published is acked.
void Worker::maybeRetire(Run& run) {
  if (run.phase != Phase::kFinished || run.pending_acks > 0) return;
  if (txn_) {
    if (!run.committed) {
      if (!run.submitted) submitFinals(run);
      return;
    }
  } else {
    if (!run.end_recorded && run.terminal != v1::RUN_STATE_UNSPECIFIED) {
      // at-least-once: the runs topic learns the end after the terminal event is acknowledged.
      run.end_recorded = true;
      ++run.pending_acks;
      producer_->produce(endRecord(run), [this, id = run.id](const DeliveryReport& r) {
        if (!r.ok) spdlog::error("end record not delivered: {}", r.error);
        post([this, id] { acknowledged(id); });
      });
      return;
    }
    if (run.tracked) offsets_.complete(run.tp, run.offset);
  }
  if (run.terminal != v1::RUN_STATE_UNSPECIFIED) {
    ended_.put(run.command.run_id(),
               {run.terminal, run.command.job_id(), run.command.job_type(), run.admission.attempt,
                run.sequence},
               clock_.now() + config_.worker.cancel_memory);
  }
  eraseRun(run.id);
  retired_ = true;
}

// Admitted commands wait in queue_ for a slot; the partitions pause only once max_queued of them
// wait, and resume when half have left. Every pause/resume makes librdkafka drop what it had
// prefetched and (2.0.2) wait fetch.wait.max.ms before fetching again: pausing whenever the slots
// filled cost ~0.5 s per `slots` jobs (66 jobs/s with 16 slots, measured by bench/run). Commands
// waiting here are not committed, so a crash loses none of them.
void Worker::updatePause() {
  const std::size_t backlog = queue_.size();
  const std::size_t limit = std::max(1u, config_.worker.max_queued);
  bool pause = consumer_->paused() ? backlog > limit / 2 : backlog >= limit;
  consumer_->setPaused(draining_ || pause);
}

void Worker::submitFinals(Run& run) {
  run.submitted = true;
  if (!run.tracked) {
    // Its partition went to another worker, which runs the command again: its end is not
    // published here (the transaction's offsets would be refused anyway).
    if (run.terminal != v1::RUN_STATE_UNSPECIFIED) {
      spdlog::warn("run {} ended {} after its partition was handed over; not published here",
                   run.command.run_id(), v1::RunState_Name(run.terminal));
    }
    run.committed = true;
    return maybeRetire(run);
  }
  TxnUnit unit;
  unit.records = run.finals;  // kept in case the transaction aborts and is written again
  if (run.terminal != v1::RUN_STATE_UNSPECIFIED) unit.records.push_back(endRecord(run));
  offsets_.complete(run.tp, run.offset);
  const auto watermark = offsets_.watermark(run.tp);
  unit.offsets[run.tp] = watermark;
  unit.group = consumer_->groupMetadata();
  unit.done = [this, id = run.id, partition = run.tp.partition,
               watermark](const TxnOutcome& outcome) {
    post([this, id, partition, watermark, outcome] {
      auto it = runs_.find(id);
      if (it == runs_.end()) return;
      if (outcome.committed()) run_store_->forgetCommitted(partition, watermark);
      onCommitted(id, outcome);
    });
  };
  ++run.pending_acks;
  txn_->submit(std::move(unit));
}

OutRecord Worker::endRecord(const Run& run) {
  auto record = RunStore::endRecord(run.command, run.admission.starts, run.terminal, run.tp,
                                    run.offset, config_.worker.id, clock_.now());
  auto out = run_store_->toOutRecord(record);
  run_store_->remember(std::move(record));
  return out;
}

void Worker::onCommitted(std::uint64_t id, const TxnOutcome& outcome) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  Run& run = it->second;
  --run.pending_acks;
  switch (outcome.status) {
    case TxnOutcome::Status::kCommitted:
      run.committed = true;
      break;
    case TxnOutcome::Status::kAborted:
      if (run.tracked) {
        // E.g. the producer was fenced or the broker was away too long: write it again, with the
        // offsets and group generation of now. Until then its offset is not done again, so that
        // no other run's transaction commits past it.
        spdlog::warn("run {}: its end was not committed ({}); writing it again",
                     run.command.run_id(), outcome.reason);
        consumer_->refreshGroupMetadata();
        offsets_.begin(run.tp, run.offset);
        run.submitted = false;
      } else {
        spdlog::warn("run {}: its end was not committed ({}) and its partition went elsewhere",
                     run.command.run_id(), outcome.reason);
        run.committed = true;
      }
      break;
    case TxnOutcome::Status::kRejected:
      spdlog::error("run {}: its end cannot be written: {}", run.command.run_id(), outcome.reason);
      run.committed = true;
      break;
  }
  maybeRetire(run);
}

void Worker::commit(bool sync) {
  auto offsets = offsets_.takeCommittable();
  if (offsets.empty()) return;
  consumer_->commit(offsets, sync);
  // The runs topic holds these runs' ends; a redelivery below the offsets (after a rebalance)
  // finds them through the restore, so memory need not keep them.
  for (const auto& [tp, offset] : offsets) run_store_->forgetCommitted(tp.partition, offset);
}

void Worker::publishStatus(v1::WorkerState state) {
  v1::WorkerStatus s;
  s.set_worker_id(config_.worker.id);
  s.set_pool(config_.worker.pool);
  s.set_version(OUTPOST_VERSION);
  s.set_slots_total(config_.worker.slots);
  s.set_slots_busy(static_cast<std::uint32_t>(running_));
  s.set_state(state);
  s.set_started_at_ms(toUnixMillis(started_at_));
  s.set_last_seen_ms(toUnixMillis(clock_.now()));
  s.set_host(hostName());
  for (const auto& [name, t] : config_.templates) s.add_templates(name);
  producer_->produce(config_.topics.workers, config_.worker.id, toWire(s), {},
                     [](const DeliveryReport& r) {
                       if (!r.ok) spdlog::warn("worker status not delivered: {}", r.error);
                     });
}

void Worker::onAssigned(const std::vector<TopicPartition>& partitions) {
  // What the runs topic knows of these partitions' commands: runs started on a worker that was
  // lost, and runs that already ended.
  // A predecessor with our transactional.id (a restart under the same worker id) may have left a
  // transaction open on the runs topic: read_committed reading stops there until our producer's
  // initialisation aborts it.
  if (txn_ && !txn_->waitReady(kRestoreTimeout)) {
    spdlog::warn(
        "the transactional producer is not ready yet; the run state read now may miss "
        "the last records of a predecessor");
  }
  std::vector<std::int32_t> numbers;
  for (const auto& tp : partitions) numbers.push_back(tp.partition);
  if (auto restored = run_store_->restore(numbers, kRestoreTimeout)) {
    spdlog::info("run state of {} partition(s) restored: {} run(s) from {} record(s)",
                 restored->partitions, restored->kept, restored->records);
  } else {
    spdlog::error(
        "run state not restored: {}; runs lost on other workers are not counted and "
        "ended runs whose offsets were not committed may run again",
        restored.error());
  }
  updatePause();
}

void Worker::onRevoked(const std::vector<TopicPartition>& partitions, bool lost) {
  auto revoked = [&](const Run& r) {
    return std::ranges::find(partitions, r.tp) != partitions.end();
  };
  // Commands not started yet belong to the next owner.
  std::erase_if(queue_, [&](std::uint64_t id) { return revoked(runs_.at(id)); });
  eraseRunsIf([&](const Run& r) {
    return (r.phase == Phase::kQueued || r.phase == Phase::kResolving) && revoked(r);
  });
  if (!lost) {
    // Give running jobs on these partitions revoke_timeout to finish and be acknowledged (and,
    // exactly-once, committed), so the next owner does not run them again.
    auto deadline = clock_.steadyNow() + config_.worker.revoke_timeout;
    auto busy = [&] {
      return std::ranges::any_of(runs_, [&](const auto& kv) { return revoked(kv.second); });
    };
    while (busy() && clock_.steadyNow() < deadline) {
      waitInbox(kPollInterval);
      drainInbox();
    }
    if (!txn_) {
      std::map<TopicPartition, std::int64_t> done;
      for (const auto& tp : partitions) {
        if (auto w = offsets_.watermark(tp); w >= 0) done[tp] = w;
      }
      consumer_->commit(done, true);
    }
  }
  for (auto& [id, r] : runs_) {
    if (!revoked(r) || !r.tracked) continue;
    r.tracked = false;
    if (txn_ && r.phase == Phase::kRunning) {
      r.handed_over = true;
      // exactly-once: hand it over. Its end could not be committed with its offset any more, so
      // it is stopped, and the next owner runs the command again.
      auto n = newEvent(r, v1::NOTICE);
      n.set_message(
          fmt::format("partition {} went to another worker: run stopped and handed over "
                      "(the next owner runs it again)",
                      r.tp.partition));
      spdlog::warn("run {}: {}", r.command.run_id(), n.message());
      publishEvent(r, n);
      supervisor_->stop(r.command.run_id(), n.message());
    } else if (r.phase != Phase::kFinished) {
      spdlog::warn("run {} continues after its partition was {}; the next owner may run it again",
                   r.command.run_id(), lost ? "lost" : "revoked");
    }
  }
  std::vector<std::int32_t> numbers;
  for (const auto& tp : partitions) {
    offsets_.forget(tp);
    numbers.push_back(tp.partition);
  }
  run_store_->forget(numbers);
  updatePause();
}

void Worker::pollControl() {
  // Runs only on the poll thread, so nothing here can race with the run state it changes.
  for (int i = 0; i < kControlBatch; ++i) {
    auto m = control_->poll();
    if (!m) break;
    try {
      if (m->command.has_cancel()) handleCancel(*m);
    } catch (const std::exception& e) {
      // A cancel must never take the worker down; the run goes on as if it had not come.
      spdlog::error("control {}[{}]@{}: not handled: {}", m->tp.topic, m->tp.partition, m->offset,
                    e.what());
    }
  }
  auto now = clock_.now();
  ended_.expire(now);
  cancels_.expire(now);
}

Worker::Run* Worker::findRun(const std::string& run_id) {
  // A live run first; else one that ended and still waits for its acknowledgements (not a
  // duplicate command that was dead-lettered without an event: it is not the run): the first
  // taken live one, else the last taken ended one.
  Run* live = nullptr;
  Run* ended = nullptr;
  auto [same, end] = by_run_id_.equal_range(run_id);
  for (; same != end; ++same) {
    Run& r = runs_.at(same->second);
    if (r.phase != Phase::kFinished) {
      if (!live || r.id < live->id) live = &r;
    } else if (r.terminal != v1::RUN_STATE_UNSPECIFIED && (!ended || r.id > ended->id)) {
      ended = &r;
    }
  }
  return live ? live : ended;
}

void Worker::eraseRun(std::uint64_t id) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  auto [same, end] = by_run_id_.equal_range(it->second.command.run_id());
  for (; same != end; ++same) {
    if (same->second == id) {
      by_run_id_.erase(same);
      break;
    }
  }
  runs_.erase(it);
}

void Worker::eraseRunsIf(const std::function<bool(const Run&)>& pred) {
  std::vector<std::uint64_t> gone;
  for (const auto& [id, r] : runs_) {
    if (pred(r)) gone.push_back(id);
  }
  for (auto id : gone) eraseRun(id);
}

void Worker::handleCancel(const ControlMessage& m) {
  const auto& c = m.command.cancel();
  const std::string& run_id = c.run_id();
  CancelRequest cancel{m.command.command_id(),
                       c.requested_by().empty() ? "unknown" : c.requested_by(),
                       c.reason().empty() ? "no reason given" : c.reason()};
  spdlog::info("control {}[{}]@{}: cancel {} of run {} by {}: {}{}", m.tp.topic, m.tp.partition,
               m.offset, cancel.command_id, run_id, cancel.requested_by, cancel.reason,
               m.replayed ? " (from before this worker started)" : "");
  auto now = clock_.now();
  // Remembered from the message's time, so cancels read again at start expire when they would
  // have anyway; never later than cancel_memory from now (a producer's clock may run ahead).
  auto expires = std::min(m.timestamp, now) + config_.worker.cancel_memory;
  Run* run = findRun(run_id);

  if (run && run->phase == Phase::kFinished) {
    auto e = newEvent(*run, v1::NOTICE);
    e.set_message("cancel ignored: run already ended " + v1::RunState_Name(run->terminal));
    publishEvent(*run, e);
    return;
  }
  if (!run) {
    if (auto* ended = ended_.find(run_id, now)) {
      auto e = noticeEvent(run_id, ended->attempt, ++ended->sequence,
                           "cancel ignored: run already ended " + v1::RunState_Name(ended->state));
      e.set_job_id(ended->job_id);
      e.set_job_type(ended->job_type);
      publishNotice(e);
      return;
    }
  }
  // Live here, or unknown: remember it, so that a command for this run arriving later (a
  // redelivery after a rebalance or a crash, a duplicate, or the command itself when the cancel
  // overtook it) ends CANCELLED instead of running.
  if (auto* known = cancels_.find(run_id, now)) cancel.notices = known->notices;
  if (!run) {
    // Every worker reads every cancel; one answer per pool is enough: the member holding
    // partition 0 of the jobs topic answers (none does in the moment of a rebalance). The words
    // stay true whether or not another worker holds the run. A cancel read again at start was
    // answered when it was new.
    if (!m.replayed && answersForPool()) {
      publishNotice(noticeEvent(
          run_id, 1, ++cancel.notices,
          fmt::format("cancel for run {} received; worker {} (answering for pool {}) does not "
                      "hold it: the worker holding it cancels it, otherwise it is cancelled if "
                      "its command arrives within {}",
                      run_id, config_.worker.id, config_.worker.pool,
                      describeDuration(config_.worker.cancel_memory))));
    }
    cancels_.put(run_id, std::move(cancel), expires);
    return;
  }
  cancels_.put(run_id, cancel, expires);
  if (run->phase == Phase::kQueued || run->phase == Phase::kResolving) {
    std::erase(queue_, run->id);  // a resolving run's late result finds it finished and is dropped
    endCancelled(*run, cancel, " while queued");
    updatePause();  // room in the queue again
    return;
  }
  // Running: the supervisor stops its process group (SIGTERM, grace, SIGKILL); onFinished
  // publishes CANCELLED with this message.
  if (run->cancel) {
    spdlog::info("run {}: already being cancelled", run_id);
    return;
  }
  run->cancel = cancel;
  supervisor_->stop(run_id, cancelMessage(cancel.requested_by, cancel.reason, ""));
}

// Ends a run that never started: CANCELLED without STARTED (and without lineage, as EXPIRED: no
// START was ever written for it). Its offset counts as done once the event is acknowledged.
void Worker::endCancelled(Run& run, const CancelRequest& cancel, const std::string& when) {
  run.phase = Phase::kFinished;
  auto e = newEvent(run, v1::CANCELLED);
  e.set_message(cancelMessage(cancel.requested_by, cancel.reason, when));
  e.set_cancelled_by(cancel.requested_by);
  spdlog::info("run {} CANCELLED: {}", run.command.run_id(), e.message());
  publishEvent(run, e);
  maybeRetire(run);
}

bool Worker::answersForPool() const {
  return std::ranges::find(consumer_->assignment(), TopicPartition{config_.topics.jobs, 0}) !=
         consumer_->assignment().end();
}

// A NOTICE about a run this worker holds no Run for: not a change of the run's state and tied to
// no command offset, so nothing waits for its acknowledgement.
v1::RunEvent Worker::noticeEvent(const std::string& run_id, std::uint32_t attempt,
                                 std::uint64_t sequence, const std::string& message) {
  v1::RunEvent e;
  e.set_event_id(uuids_.next());
  e.set_run_id(run_id);
  e.set_attempt(attempt);
  e.set_sequence(sequence);
  e.set_state(v1::NOTICE);
  e.set_event_time_ms(toUnixMillis(clock_.now()));
  e.set_worker_id(config_.worker.id);
  e.set_pool(config_.worker.pool);
  e.set_exit_code(-1);
  e.set_message(message);
  return e;
}

void Worker::publishNotice(const v1::RunEvent& event) {
  spdlog::info("run {} NOTICE: {}", event.run_id(), event.message());
  producer_->produce(config_.topics.events, event.run_id(), toWire(event), {},
                     [](const DeliveryReport& r) {
                       if (!r.ok) spdlog::warn("NOTICE event not delivered: {}", r.error);
                     });
}

}  // namespace outpost
