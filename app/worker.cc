#include "worker.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "outpost/consumer/dead_letter.h"

namespace outpost {
namespace {

constexpr std::chrono::milliseconds kPollInterval{100};
constexpr std::chrono::milliseconds kCommitInterval{200};

std::string describeSignal(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::string hostName() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

}  // namespace

Worker::Worker(Config config, const Clock& clock)
    : config_(std::move(config)),
      clock_(clock),
      uuids_(clock),
      worker_env_(processEnvironment()),
      lineage_(config_.lineage.job_namespace),
      started_at_(clock.now()) {
  producer_ = std::make_unique<KafkaProducer>(
      config_.kafka, std::map<std::string, std::string>{{"client.id", config_.worker.id}});
  consumer_ = std::make_unique<JobConsumer>(config_.kafka, "outpost." + config_.worker.pool,
                                            config_.topics.jobs, *this);
  supervisor_ = std::make_unique<Supervisor>(clock_, launcher_, config_.output.tail_bytes);
}

Worker::~Worker() {
  // Stop the threads that post into the inbox before the inbox goes.
  supervisor_.reset();
  producer_.reset();
}

void Worker::post(std::function<void()> fn) {
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_.push_back(std::move(fn));
  }
  inbox_cv_.notify_one();
  consumer_->wake();
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
  spdlog::info("worker {} (pool {}, {} slots) consuming {} as group outpost.{}", config_.worker.id,
               config_.worker.pool, config_.worker.slots, config_.topics.jobs, config_.worker.pool);
  publishStatus(v1::RUNNING);
  auto last_commit = clock_.steadyNow();
  auto last_status = clock_.steadyNow();
  auto housekeeping = [&] {
    drainInbox();
    auto now = clock_.steadyNow();
    if (now - last_commit >= kCommitInterval) {
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
  for (auto id : queue_) runs_.erase(id);
  queue_.clear();
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
  commit(true);
  publishStatus(v1::STOPPED);
  if (!producer_->flush(std::chrono::seconds(10))) {
    spdlog::error("{} message(s) not delivered at exit", producer_->outstanding());
  }
  consumer_->close();
  spdlog::info("worker {} stopped", config_.worker.id);
  return 0;
}

void Worker::handleMessage(ConsumedMessage message) {
  if (draining_) return;  // fetched before the pause; not taken, so not committed
  // Our own command handed back to us by a rebalance while it still runs: adopt it again.
  for (auto& [id, r] : runs_) {
    if (!r.tracked && r.tp == message.tp && r.offset == message.offset) {
      spdlog::info("run {}: partition came back while it runs; tracking it again",
                   r.command.run_id());
      r.tracked = true;
      offsets_.begin(r.tp, r.offset);
      return;
    }
  }
  Run& run = runs_[next_id_];
  run.id = next_id_++;
  run.tp = message.tp;
  run.offset = message.offset;
  offsets_.begin(run.tp, run.offset);

  auto decoded = decodeCommand(message.value);
  if (!decoded) {
    run.command = std::move(decoded.error().partial);
    return reject(run, message, decoded.error().reason);
  }
  run.command = std::move(*decoded);
  auto admitted = admitCommand(run.command, config_.templates, config_.worker.pool);
  if (!admitted) return reject(run, message, admitted.error().reason);
  run.tmpl = *admitted;
  // The same run_id twice at once (a duplicate, or a redelivery while the first still runs):
  // refuse the second without a REJECTED event, which would be a second terminal event for it.
  bool duplicate = std::ranges::any_of(runs_, [&](const auto& kv) {
    return kv.first != run.id && kv.second.phase != Phase::kFinished &&
           kv.second.command.run_id() == run.command.run_id();
  });
  if (duplicate) {
    return reject(run, message,
                  "run_id " + run.command.run_id() + " is already queued or running on this worker",
                  /*publish_event=*/false);
  }

  RunRequest req;
  req.run_id = run.command.run_id();
  req.job_id = run.command.job_id();
  req.attempt = run.command.attempt();
  req.args = {run.command.args().begin(), run.command.args().end()};
  req.env = {run.command.env().begin(), run.command.env().end()};
  req.recipe = run.command.recipe();
  req.timeout = Millis(run.command.timeout_ms());
  auto plan = planRun(*run.tmpl, req, worker_env_, config_.worker.work_dir);
  if (!plan) return reject(run, message, plan.error());
  run.plan = std::move(*plan);

  queue_.push_back(run.id);
  dispatch();
  updatePause();
}

void Worker::reject(Run& run, const ConsumedMessage& message, const std::string& reason,
                    bool publish_event) {
  spdlog::warn("rejected {}[{}]@{} (run {}): {}", message.tp.topic, message.tp.partition,
               message.offset, run.command.run_id().empty() ? "unknown" : run.command.run_id(),
               reason);
  run.phase = Phase::kFinished;
  ++run.pending_acks;
  sendToDeadLetter(*producer_, config_.topics.dlq, message, reason, config_.worker.id,
                   [this, id = run.id](const DeliveryReport& r) {
                     if (!r.ok) spdlog::error("dead-letter write failed: {}", r.error);
                     post([this, id] { acknowledged(id); });
                   });
  if (publish_event && !run.command.run_id().empty()) {
    auto e = newEvent(run, v1::REJECTED);
    e.set_message(reason);
    publishEvent(run, e);
  }
}

void Worker::dispatch() {
  for (auto it = queue_.begin(); it != queue_.end() && running_ < config_.worker.slots;) {
    Run& run = runs_.at(*it);
    unsigned limit = run.tmpl->concurrency;
    if (limit != 0 && running_per_template_[run.tmpl->name] >= limit) {
      ++it;  // this template is at its limit; later commands of other templates may go first
      continue;
    }
    it = queue_.erase(it);
    start(run);
  }
}

void Worker::start(Run& run) {
  const auto& c = run.command;
  if (c.not_after_ms() > 0 && toUnixMillis(clock_.now()) > c.not_after_ms()) {
    run.phase = Phase::kFinished;
    auto e = newEvent(run, v1::EXPIRED);
    e.set_message("not started before its deadline (not_after)");
    publishEvent(run, e);
    return;
  }
  run.phase = Phase::kRunning;
  ++running_;
  ++running_per_template_[run.tmpl->name];
  spdlog::info("run {} ({}) starting: {}", c.run_id(), run.tmpl->name, run.plan.argv.front());
  RunCallbacks callbacks;
  callbacks.on_started = [this, id = run.id](pid_t, std::chrono::system_clock::time_point at) {
    post([this, id, at] { onStarted(id, at); });
  };
  callbacks.on_finished = [this, id = run.id](RunOutcome outcome) {
    post([this, id, o = std::move(outcome)]() mutable { onFinished(id, std::move(o)); });
  };
  supervisor_->launch(run.plan, std::move(callbacks));
}

void Worker::onStarted(std::uint64_t id, std::chrono::system_clock::time_point started_at) {
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  auto e = newEvent(it->second, v1::STARTED);
  e.set_started_at_ms(toUnixMillis(started_at));
  publishEvent(it->second, e);
  publishLineage(it->second, LineageEventType::kStart);
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
        message = "exited with status " + std::to_string(o.exit_code);
        if (o.exit_code == 137)
          message += " (128+SIGKILL: likely killed for using too much memory)";
      }
      break;
    case RunOutcome::Ending::kSignaled:
      message = "killed by " + describeSignal(o.signal);
      if (o.signal == SIGKILL) message += ", which Outpost did not send: likely out of memory";
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
  auto e = newEvent(run, state);
  bool started = o.ending != RunOutcome::Ending::kSpawnFailed;
  e.set_exit_code(o.ending == RunOutcome::Ending::kExited ? o.exit_code : -1);
  e.set_signal(o.signal);
  e.set_message(message);
  if (started) {
    e.set_started_at_ms(toUnixMillis(o.started_at));
    e.set_duration_ms(o.duration.count());
  }
  e.set_log_tail(o.tail);
  e.set_log_dropped_bytes(o.dropped_bytes);
  e.set_output_bytes(o.output_bytes);
  spdlog::info("run {} {} ({} ms){}{}", run.command.run_id(), v1::RunState_Name(state),
               o.duration.count(), message.empty() ? "" : ": ", message);
  publishEvent(run, e);

  LineageOutcome lo;
  if (o.ending == RunOutcome::Ending::kExited) lo.exit_code = o.exit_code;
  if (o.signal) lo.signal = o.signal;
  lo.message = message;
  lo.output_tail = o.tail;
  publishLineage(run, lineage, lo);

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
  e.set_attempt(run.command.attempt() == 0 ? 1 : run.command.attempt());
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
  ++run.pending_acks;
  producer_->produce(config_.topics.events, event.run_id(), event.SerializeAsString(), {},
                     [this, id = run.id, state = event.state()](const DeliveryReport& r) {
                       if (!r.ok) {
                         spdlog::error("run event {} not delivered: {}", v1::RunState_Name(state),
                                       r.error);
                       }
                       post([this, id] { acknowledged(id); });
                     });
}

void Worker::publishLineage(Run& run, LineageEventType type, const LineageOutcome& outcome) {
  if (!config_.lineage.enabled) return;
  ++run.pending_acks;
  auto doc = lineage_.build(type, run.command, clock_.now(), outcome);
  producer_->produce(config_.topics.lineage, lineage_.kafkaKey(run.command), doc.dump(), {},
                     [this, id = run.id](const DeliveryReport& r) {
                       if (!r.ok) spdlog::error("lineage record not delivered: {}", r.error);
                       post([this, id] { acknowledged(id); });
                     });
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
  if (run.tracked) offsets_.complete(run.tp, run.offset);
  runs_.erase(run.id);
}

void Worker::updatePause() {
  bool full = running_ + queue_.size() >= config_.worker.slots;
  consumer_->setPaused(draining_ || full);
}

void Worker::commit(bool sync) {
  auto offsets = offsets_.takeCommittable();
  if (!offsets.empty()) consumer_->commit(offsets, sync);
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
  producer_->produce(config_.topics.workers, config_.worker.id, s.SerializeAsString(), {},
                     [](const DeliveryReport& r) {
                       if (!r.ok) spdlog::warn("worker status not delivered: {}", r.error);
                     });
}

void Worker::onAssigned(const std::vector<TopicPartition>&) {
  updatePause();
}

void Worker::onRevoked(const std::vector<TopicPartition>& partitions, bool lost) {
  auto revoked = [&](const Run& r) {
    return std::ranges::find(partitions, r.tp) != partitions.end();
  };
  // Commands not started yet belong to the next owner.
  std::erase_if(queue_, [&](std::uint64_t id) { return revoked(runs_.at(id)); });
  std::erase_if(runs_, [&](const auto& kv) {
    return kv.second.phase == Phase::kQueued && revoked(kv.second);
  });
  if (!lost) {
    // Give running jobs on these partitions revoke_timeout to finish and be acknowledged, so the
    // next owner does not run them again.
    auto deadline = clock_.steadyNow() + config_.worker.revoke_timeout;
    auto busy = [&] {
      return std::ranges::any_of(runs_, [&](const auto& kv) { return revoked(kv.second); });
    };
    while (busy() && clock_.steadyNow() < deadline) {
      waitInbox(kPollInterval);
      drainInbox();
    }
    std::map<TopicPartition, std::int64_t> done;
    for (const auto& tp : partitions) {
      if (auto w = offsets_.watermark(tp); w >= 0) done[tp] = w;
    }
    consumer_->commit(done, true);
  }
  for (auto& [id, r] : runs_) {
    if (revoked(r)) {
      spdlog::warn("run {} continues after its partition was {}; the next owner may run it again",
                   r.command.run_id(), lost ? "lost" : "revoked");
      r.tracked = false;
    }
  }
  for (const auto& tp : partitions) offsets_.forget(tp);
  updatePause();
}

}  // namespace outpost
