#include "worker.h"

#include <unistd.h>

#include <set>

#include <spdlog/spdlog.h>

#include "outpost/common/log.h"
#include "outpost/events/connection.h"
#include "outpost/events/kafka.h"
#include "outpost/events/wire.h"

namespace outpost::app {
namespace {

constexpr std::chrono::milliseconds kPollInterval{100};
// Checking at start that the runs topic exists with enough partitions.
constexpr std::chrono::seconds kTopicCheckTimeout{30};
// On shutdown, how long the last transactions may take.
constexpr std::chrono::seconds kCloseTimeout{10};
// The exit status of a worker that was fenced (Worker::onFenced).
constexpr int kFencedExit = 3;
// How often the gauges are refreshed from the poll loop (a scrape sees values this old at most).
constexpr std::chrono::milliseconds kMetricsInterval{250};
// How often the trusted keys' file is looked at for a change (a stat).
constexpr std::chrono::seconds kTrustedKeysLook{2};
// Most control messages handled per loop iteration, so a burst of cancels cannot starve the jobs
// consumer (the rest wait for the next iteration).
constexpr int kControlBatch = 100;

// The events producer's linger.ms (kafka.producer_properties can change it): nothing waits for
// these records but the platform, and batching them keeps the broker's CPU per job low (with
// 2 ms, no-op jobs on 16 slots took ~0.7 produce requests each).
constexpr const char* kEventsLinger = "10";
// The start producer: a launch waits for its record, so it does not linger.
// librdkafka 2.0.2 workaround: its broker thread polls with timeouts rounded down to
// milliseconds, so it spins (poll with timeout 0) through the last millisecond of every linger:
// with linger 1 ms that thread took 20-35% of a core at ~900 jobs/s. With linger 0 alone it was no
// better (36% in one run; likely spinning while its 5 idempotent requests in flight were all out);
// with neither, 4%. A start record needs no idempotence: a run starts only after its delivery
// report, so a retried copy lands before the launch and long before the run's end record, and a
// copy is the same record (the runs topic keeps the last per run). At most two requests in flight:
// otherwise every start record went out in a request of its own (0.6-0.8 produce requests per no-op
// job at 16 slots); records produced while two requests are out wait and go together in the next
// one. That batches under load only: with one run starting at a time nothing waits.
const std::map<std::string, std::string> kStartProducer = {
    {"linger.ms", "0"}, {"enable.idempotence", "false"}, {"max.in.flight", "2"}};

ops::Metrics::Known knownLabels(const Config& c) {
  ops::Metrics::Known known;
  for (const auto& [name, t] : c.templates) known.templates.insert(name);
  known.skips.assign(dispatch::reason::kSkips.begin(), dispatch::reason::kSkips.end());
  known.refusals.assign(dispatch::reason::kRefusals.begin(), dispatch::reason::kRefusals.end());
  for (auto check : security::kSignatureChecks) {
    known.signature_checks.push_back(security::reasonOf(check));
  }
  for (auto f : consumer::kCommitFailures)
    known.commit_failures.push_back(consumer::commitFailureName(f));
  return known;
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
      started_at_(clock.now()),
      incarnation_(UuidGenerator(clock).next()),
      leases_({config_.worker.id, incarnation_, config_.worker.lease_timeout,
               config_.worker.status_interval}),
      metrics_(knownLabels(config_)),
      loop_(clock) {
  // First, so that a port in use stops the worker before it touches Kafka or the runs.
  if (config_.http.enabled()) {
    http_ = std::make_unique<ops::HttpEndpoint>(config_.http.host, config_.http.port, health_,
                                                metrics_, config_.http.live_timeout);
  }
  const auto worker_env = processEnvironment();
  runs_ = std::make_unique<RunsAndSecrets>(config_, worker_env, clock_, loop_);
  resolver_ = runs_->resolver();
  spdlog::info("descendants of runs are tracked with {}",
               runs_->supervisor().usesCgroups()
                   ? runs_->supervisor().cgroupNote()
                   : "their process group and a /proc scan for OUTPOST_RUN_ID (" +
                         runs_->supervisor().cgroupNote() + ")");
  // Kafka's own credentials may be secret references: resolved once, here, and masked like any.
  kafka_ = secrets::resolveKafkaSettings(*resolver_, config_.kafka);
  const KafkaConfig& kafka = kafka_;
  // Before any client: a refused password or an untrusted CA stops the start with a clear
  // error instead of clients retrying forever.
  if (auto ok = events::checkConnection(kafka, kTopicCheckTimeout); !ok) {
    throw ConfigError(ok.error());
  }
  producer_ = std::make_unique<events::KafkaProducer>(
      kafka, std::map<std::string, std::string>{{"client.id", config_.worker.id}},
      std::map<std::string, std::string>{{"linger.ms", kEventsLinger}});
  loop_.addSource("events producer", [this] { producer_->close(); });
  if (!config_.exactlyOnce()) {
    // Exactly-once, claims go in transactions: this producer would have nothing to do.
    auto start_properties = kStartProducer;
    start_properties["client.id"] = config_.worker.id + "-start";
    start_producer_ = std::make_unique<events::KafkaProducer>(kafka, start_properties);
    loop_.addSource("start producer", [this] { start_producer_->close(); });
  }
  if (config_.lineage.enabled && config_.lineage.toHttp()) {
    auto options =
        lineage::HttpLineageTransportOptions::fromConfig(config_.lineage.http, worker_env);
    if (const auto& token = config_.lineage.http.token; !token.empty()) {
      options.token =
          lineage::BearerToken(secrets::resolveSetting(*resolver_, "lineage.http.token", token));
    }
    lineage_http_ = std::make_unique<lineage::HttpLineageTransport>(std::move(options));
    loop_.addSource("lineage HTTP transport",
                    [this] { lineage_http_->shutdown(config_.lineage.http.flush_timeout); });
  }
  const std::string group = "outpost." + config_.worker.pool;
  if (config_.exactlyOnce()) {
    // Stable for a configured worker id, so that a restarted worker fences its predecessor.
    events::TransactionalPublisherOptions txn_options;
    txn_options.producer_properties = {{"client.id", config_.worker.id + "-txn"}};
    // The publisher's thread: back to the poll thread (the publisher is a source of the loop).
    txn_options.on_fenced = [this](const std::string& why) {
      loop_.inbox().post([this, why] { onFenced(why); });
    };
    txn_ = std::make_unique<events::TransactionalPublisher>(kafka, group + "." + config_.worker.id,
                                                            std::move(txn_options));
    loop_.addSource("transactional publisher", [this] { txn_->close(kCloseTimeout); });
  }
  run_store_ = std::make_unique<consumer::RunStore>(
      kafka, consumer::RunStoreOptions{config_.topics.runs, config_.topics.jobs, group,
                                       config_.worker.id + "-runs"});
  // Before joining the group: without the runs topic, attempts could not be counted.
  if (auto ok = run_store_->checkTopics(kTopicCheckTimeout); !ok) throw ConfigError(ok.error());
  worker_leases_ = std::make_unique<WorkerLeases>(
      leases_, clock_, config_.worker.id, group, kafka, config_.exactlyOnce(),
      [this](const std::string& worker, const std::string& incarnation, const std::string& why) {
        declareLost(worker, incarnation, why);
      });
  loop_.addSource("lease fencer", [this] { worker_leases_->shutdown(); });
  // The worker's id names it among the group's members (WorkerLeases looks before counting a
  // worker lost).
  std::map<std::string, std::string> membership = {{"client.id", config_.worker.id}};
  if (config_.worker.static_id) membership["group.instance.id"] = config_.worker.id;
  consumer_ =
      std::make_unique<consumer::JobConsumer>(kafka, group, config_.topics.jobs, *this, membership);
  // Before anything posts: a closure posted while the poll thread waits in poll() wakes it.
  loop_.inbox().setWake([this] { consumer_->wake(); });
  control_ = std::make_unique<consumer::ControlListener>(
      kafka, config_.topics.control, "outpost." + config_.worker.pool + ".control",
      config_.worker.id + "-control", config_.worker.cancel_memory, clock_, config_.topics.workers);
  ports_ = std::make_unique<WorkerPorts>(
      WorkerPorts{ConsumerSource(*consumer_), ProducerSink(*producer_),
                  ProducerSink(start_producer_ ? *start_producer_ : *producer_),
                  txn_ ? std::make_unique<PublisherSink>(*txn_) : nullptr,
                  RunStoreAttempts(*run_store_, config_.worker.id, incarnation_, clock_, txn_.get(),
                                   [this](std::string_view wait, std::string what, Millis bound,
                                          const std::function<void()>& body) {
                                     announcedWait(wait, std::move(what), bound, body);
                                   }),
                  *worker_leases_,
                  lineage_http_ ? std::make_unique<HttpLineageEndpoint>(*lineage_http_) : nullptr,
                  MetricsObserver(metrics_)});
  dispatcher_ = std::make_unique<dispatch::Dispatcher>(
      config_, worker_env, ports_->ports(loop_.inbox(), *runs_, clock_));
  if (auto keys = readTrustedKeys(config_.security); !keys) {
    throw ConfigError(keys.error());
  } else if (auto ledger = ensureUseLedger(config_.security); !ledger) {
    throw ConfigError(ledger.error());
  } else {
    applySecurity(*keys);
  }
  updateMetrics();  // and the readiness: a probe or scrape from now on sees the slots
}

Worker::~Worker() {
  loop_.quiesce();
}

void Worker::take(std::chrono::milliseconds wait) {
  if (auto m = consumer_->poll(wait)) dispatcher_->onMessage(std::move(*m));
}

void Worker::chores() {
  pollControl();
  auto now = clock_.steadyNow();
  health_.beat(std::chrono::steady_clock::now());
  if (now - last_metrics_ >= kMetricsInterval) {
    updateMetrics();
    last_metrics_ = now;
  }
  auto [state, reason] = this->state();
  if (state != published_ || now - last_status_ >= config_.worker.status_interval) {
    publishStatus(state, reason);
    published_ = state;
    last_status_ = now;
  }
  if (!draining_ && reload_requested_ && reload_requested_->exchange(false)) reload(*load_);
  if (use_ledger_) use_ledger_->poll();
  if (trusted_keys_ && now - last_keys_look_ >= kTrustedKeysLook) {
    last_keys_look_ = now;
    if (trusted_keys_->changed()) {
      if (auto keys = trusted_keys_->read(); !keys) {
        spdlog::error("{} changed and is refused; the keys in use stay: {}", trusted_keys_->path(),
                      keys.error());
      } else {
        applySecurity(*keys);
      }
    }
  }
}

std::expected<std::shared_ptr<const security::KeySet>, std::string> Worker::readTrustedKeys(
    const SecurityConfig& security) {
  if (security.commands == CommandSigning::kOff) {
    trusted_keys_.reset();
    return nullptr;
  }
  if (!security.trusted_keys_env.empty()) {
    trusted_keys_.reset();
    auto keys = security::KeySet::parseJwks(
        processEnvironment()[security.trusted_keys_env]);  // empty when unset: refused
    if (!keys) {
      return std::unexpected("'security.trusted_keys_env': the variable " +
                             security.trusted_keys_env + ": " + keys.error());
    }
    return std::make_shared<const security::KeySet>(std::move(*keys));
  }
  trusted_keys_.emplace(security.trusted_keys);
  auto keys = trusted_keys_->read();
  if (!keys) return std::unexpected("'security.trusted_keys': " + keys.error());
  return keys;
}

std::expected<void, std::string> Worker::ensureUseLedger(const SecurityConfig& security) {
  if (security.commands == CommandSigning::kOff || use_ledger_) return {};
  // A token lives at most max_command_lifetime, and its times may be off by the leeway on either
  // side (and the workers' clocks by as much): a use older than that has no valid copy left.
  const Millis window = security.max_command_lifetime + 3 * security.clock_leeway;
  auto ledger = std::make_unique<consumer::UseLedger>(kafka_, config_.topics.runs,
                                                      config_.worker.id + "-uses", window, clock_);
  if (auto ok = ledger->start(kTopicCheckTimeout); !ok) {
    return std::unexpected("single use of signed commands: " + ok.error());
  }
  use_ledger_ = std::move(ledger);
  uses_ = std::make_unique<LedgerUses>(*use_ledger_, *producer_, loop_.inbox(), config_.worker.id,
                                       clock_);
  dispatcher_->setUseRecords(uses_.get());
  return {};
}

void Worker::applySecurity(std::shared_ptr<const security::KeySet> keys) {
  const auto& s = config_.security;
  if (s.commands == CommandSigning::kOff) {
    spdlog::warn(
        "security.commands is off: commands are not checked for a signature, so whoever can "
        "write to {} or {} can run any template of this worker and cancel or drain",
        config_.topics.jobs, config_.topics.control);
  } else {
    spdlog::info(
        "security.commands is {}: {} trusted key(s) from {} ({}), tokens live at most {} s",
        nameOf(s.commands), keys->size(),
        s.trusted_keys.empty() ? "$" + s.trusted_keys_env : s.trusted_keys,
        fmt::join(keys->kids(), ", "),
        std::chrono::duration_cast<std::chrono::seconds>(s.max_command_lifetime).count());
  }
  dispatcher_->setSignatures(dispatch::SignatureSettings::from(s, std::move(keys)));
}

void Worker::onFenced(const std::string& why) {
  if (std::exchange(fenced_, true)) return;
  spdlog::error(
      "{}. Another worker counted this one as lost and runs its runs again: killing the {} run(s) "
      "here without writing their ends, and stopping (exit status {}); restart it to work again",
      why, dispatcher_->running(), kFencedExit);
  dispatcher_->abandon(why);
  draining_ = true;
  updateReadiness();
}

void Worker::draining() {
  spdlog::info("stopping: draining {} running job(s) for up to {} ms", dispatcher_->running(),
               config_.worker.drain_timeout.count());
  draining_ = true;
  updateReadiness();
  chores();  // says DRAINING
}

int Worker::run(const std::atomic<bool>& stop, std::atomic<bool>& reload_requested,
                const std::function<Config()>& load) {
  spdlog::info("worker {} (pool {}, {} slots, {}) consuming {} as group outpost.{} (librdkafka {})",
               config_.worker.id, config_.worker.pool, config_.worker.slots,
               config_.worker.delivery, config_.topics.jobs, config_.worker.pool,
               events::kafka::libraryVersion());
  reload_requested_ = &reload_requested;
  load_ = &load;
  // Drain: take nothing new, give running jobs drain_timeout, then stop them; their kill grace
  // and the writing of their ends get the longest grace and 10 s more.
  Millis longest_grace{0};
  for (const auto& [name, t] : config_.templates)
    longest_grace = std::max(longest_grace, t.kill_grace);
  loop_.run(*dispatcher_, *this, stop,
            dispatch::DrainPolicy{.drain_timeout = config_.worker.drain_timeout,
                                  .stop_bound = longest_grace + std::chrono::seconds(10),
                                  .stop_reason = fmt::format(
                                      "worker {} shutting down: drain timeout of {} ms exceeded",
                                      config_.worker.id, config_.worker.drain_timeout.count())});
  reload_requested_ = nullptr;
  load_ = nullptr;
  if (txn_) {
    txn_->close(kCloseTimeout);
    auto t = txn_->stats();
    spdlog::info(
        "exactly-once: {} unit(s) committed in {} transaction(s); {} transaction(s) "
        "aborted, {} unit(s) rejected, producer recreated {} time(s)",
        t.units_committed, t.transactions_committed, t.transactions_aborted, t.units_rejected,
        t.producer_recreations);
  }
  dispatcher_->close();
  publishStatus(v1::STOPPED, "stopped");
  if (!producer_->flush(std::chrono::seconds(10))) {
    spdlog::error("{} message(s) not delivered at exit", producer_->outstanding());
  }
  if (lineage_http_) lineage_http_->shutdown(config_.lineage.http.flush_timeout);
  consumer_->close();
  loop_.quiesce();
  if (auto skipped = dispatcher_->skippedForOtherPools(); skipped > 0) {
    spdlog::info("{} command(s) for other pools skipped", skipped);
  }
  spdlog::info("worker {} stopped", config_.worker.id);
  return fenced_ ? kFencedExit : 0;
}

void Worker::reload(const std::function<Config()>& load) {
  // Everything that can be refused first: nothing changes unless all of it is accepted.
  Config next;
  secrets::ResolverSettings secret_settings;
  try {
    next = load();
    secret_settings =
        secrets::SecretResolver::settingsFrom(next.secrets, processEnvironment(), clock_);
    setLogLevel(next.worker.log_level);  // the last that can throw
  } catch (const ConfigError& e) {
    spdlog::error("reload refused, the configuration in use stays: {}", e.what());
    return;
  }
  auto keys = readTrustedKeys(next.security);
  auto ledger = keys ? ensureUseLedger(next.security) : std::expected<void, std::string>();
  if (!keys || !ledger) {
    spdlog::error("reload refused, the configuration in use stays: {}",
                  keys ? ledger.error() : keys.error());
    static_cast<void>(readTrustedKeys(config_.security));  // watch the file in use again
    return;
  }
  // What the worker was built with: a new value waits for a restart.
  const auto kept = keptUntilRestart(config_, next);
  // Applied: runs admitted before keep their templates and output limits, and the values they
  // were given stay masked.
  config_.templates = next.templates;
  config_.worker.log_level = next.worker.log_level;
  config_.secrets = next.secrets;
  config_.output = next.output;
  config_.security = next.security;
  applySecurity(*keys);
  resolver_->reconfigure(std::move(secret_settings));
  runs_->supervisor().setOutput(config_.output);
  metrics_.addTemplates(knownLabels(config_).templates);
  dispatcher_->setTemplates(next.templates);
  spdlog::info(
      "reloaded: {} template(s), secret settings (cache emptied), output limits, signature "
      "settings and keys, log level {}{}",
      config_.templates.size(), config_.worker.log_level,
      kept.empty() ? std::string()
                   : fmt::format("; changed but kept until a restart: {}", fmt::join(kept, ", ")));
}

void Worker::onAssigned(const std::vector<TopicPartition>& partitions) {
  metrics_.rebalance("assigned");
  dispatcher_->onAssigned(partitions);  // restores their run state: an announced wait
  joined_ = true;
  updateReadiness();
}

void Worker::onRevoked(const std::vector<TopicPartition>& partitions, consumer::Revocation how) {
  metrics_.rebalance(how == consumer::Revocation::kLost ? "lost" : "revoked");
  // Up to revoke_timeout for the runs of these partitions, then an awaited commit.
  announcedWait("revoke",
                fmt::format("waiting for the runs of {} revoked partition(s)", partitions.size()),
                config_.worker.revoke_timeout + consumer::JobConsumer::kAwaitCommit, [&] {
                  dispatcher_->onRevoked(partitions, how, [this] {
                    loop_.inbox().wait(kPollInterval);
                    loop_.inbox().serve();
                  });
                });
}

void Worker::announcedWait(std::string_view wait, std::string what, Millis bound,
                           const std::function<void()>& body) {
  const auto began = std::chrono::steady_clock::now();
  health_.beginWait(std::move(what), began, bound);
  body();
  const auto ended = std::chrono::steady_clock::now();
  health_.endWait(ended);
  metrics_.pollThreadWaited(wait, std::chrono::duration<double>(ended - began).count());
}

void Worker::pollControl() {
  for (int i = 0; i < kControlBatch; ++i) {
    auto followed = control_->poll();
    if (!followed) break;
    if (auto* s = std::get_if<consumer::StatusMessage>(&*followed)) {
      if (s->status) {
        const auto& st = *s->status;
        if (st.state() == v1::LOST && st.worker_id() == config_.worker.id &&
            st.incarnation() == incarnation_) {
          onFenced("another worker wrote that this one is lost (" + st.state_reason() + ")");
        }
        leases_.onStatus(st, clock_.steadyNow());
      } else {
        leases_.onRemoved(s->worker_id, clock_.steadyNow());
      }
      continue;
    }
    auto* m = std::get_if<consumer::ControlMessage>(&*followed);
    if (!dispatcher_->admitControl(*m)) continue;
    try {
      if (m->command.has_drain() || m->command.has_resume()) {
        onWorkerControl(*m);
        continue;
      }
      dispatcher_->onControl(*m);
    } catch (const std::exception& e) {
      // A cancel must never take the worker down; the run goes on as if it had not come.
      spdlog::error("control {}[{}]@{}: not handled: {}", m->tp.topic, m->tp.partition, m->offset,
                    e.what());
    }
  }
}

void Worker::onWorkerControl(const consumer::ControlMessage& m) {
  const auto& c = m.command;
  const auto& workers = c.has_drain() ? c.drain().workers() : c.resume().workers();
  // A drain lasts as long as the process it was for: a restart takes commands again.
  if (m.replayed || !consumer::selects(workers, config_.worker.id, config_.worker.pool)) return;
  const auto& by = c.has_drain() ? c.drain().requested_by() : c.resume().requested_by();
  const std::string who = by.empty() ? "unknown" : by;
  if (c.has_drain()) {
    const auto& d = c.drain();
    drained_ = "drained by " + who + ": " + (d.reason().empty() ? "no reason given" : d.reason());
    spdlog::info("control {}: {}; {} run(s) running, taking nothing new{}", c.command_id(),
                 *drained_, dispatcher_->running(),
                 d.handover() ? ", handing the partitions over" : "");
    dispatcher_->holdStarts();
    if (d.handover()) consumer_->leave();
  } else if (drained_) {
    spdlog::info("control {}: resumed by {}", c.command_id(), who);
    drained_.reset();
    consumer_->rejoin();
    dispatcher_->releaseStarts();
  }
  updateReadiness();
}

std::pair<v1::WorkerState, std::string> Worker::state() const {
  return workerState(draining_, drained_, was_ready_, health_.whyNotReady());
}

void Worker::updateMetrics() {
  updateReadiness();
  const auto running = dispatcher_->running();
  metrics_.setJobs(running, dispatcher_->queued());
  metrics_.setSlots(running, config_.worker.slots);
  metrics_.setPausedPartitions(consumer_->paused() ? consumer_->assignment().size() : 0);
  metrics_.setEventsBuffered(static_cast<std::size_t>(producer_->outstanding()) +
                             (txn_ ? txn_->pending() : 0));
  if (txn_) {
    auto t = txn_->stats();
    metrics_.setTransactions(t.transactions_committed, t.transactions_aborted);
  }
  for (const auto& [failure, n] : consumer_->commitFailures()) {
    metrics_.setOffsetCommitFailures(consumer::commitFailureName(failure), n);
  }
  metrics_.setRecordsWaitedForRoom(producer_->waitedForRoom() +
                                   (start_producer_ ? start_producer_->waitedForRoom() : 0));
  auto s = resolver_->stats();
  for (const auto& [key, n] : s.fetches) metrics_.setSecretFetches(key.first, key.second, n);
  metrics_.setSecretCacheHits(s.cache_hits);
  metrics_.setRedactions(secrets::SecretMasker::redactions());
  metrics_.setConsumerLag(consumerLag());
  updateLeases();
}

void Worker::updateLeases() {
  std::size_t held = 0;
  std::set<std::string> lapsed;
  for (const auto& w : leases_.running(config_.worker.pool, clock_.steadyNow())) {
    if (!w.lease.lapsed) {
      ++held;
      if (lapsed_.contains(w.worker_id)) {
        spdlog::info("worker {}: its statuses are back", w.worker_id);
      }
      continue;
    }
    lapsed.insert(w.worker_id);
    if (!lapsed_.contains(w.worker_id)) {
      spdlog::warn("worker {} counts as lost: {}", w.worker_id, w.lease.why);
    }
  }
  lapsed_ = std::move(lapsed);
  metrics_.setPoolWorkers(held, lapsed_.size());
}

std::map<std::int32_t, std::int64_t> Worker::consumerLag() const {
  // librdkafka's own consumer_lag counts from the offsets this consumer committed; with
  // exactly-once delivery the transaction commits them, so the dispatcher says where it is.
  const auto unfinished = dispatcher_->unfinishedFrom();
  std::map<std::int32_t, std::int64_t> lag;
  for (const auto& [partition, o] : consumer_->partitionOffsets()) {
    if (o.end < 0) continue;
    auto from = o.committed;
    if (auto it = unfinished.find({config_.topics.jobs, partition}); it != unfinished.end())
      from = std::max(from, it->second);
    if (from < 0) continue;  // nothing committed and nothing taken yet: not known
    lag[partition] = std::max<std::int64_t>(0, o.end - from);
  }
  return lag;
}

void Worker::updateReadiness() {
  auto why = whyNotReady(ReadinessInputs{
      .draining = draining_,
      .drained = drained_,
      .joined = joined_,
      .left_group = consumer_->left(),
      .producers_connected =
          producer_->connected() && (!start_producer_ || start_producer_->connected()),
      .records_waiting_for_room =
          producer_->waitingForRoom() + (start_producer_ ? start_producer_->waitingForRoom() : 0),
      .transactions_ready = !txn_ || txn_->waitReady(std::chrono::milliseconds(0)),
      .unacknowledged_for = producer_->unacknowledgedFor(),
      .unreachable_brokers = producer_->unreachableBrokers(),
      .pool = config_.worker.pool,
      .bootstrap_servers = config_.kafka.bootstrap_servers});
  if (!why) was_ready_ = true;
  health_.setNotReady(std::move(why));
}

void Worker::declareLost(const std::string& worker, const std::string& incarnation,
                         const std::string& why) {
  v1::WorkerStatus s;
  s.set_worker_id(worker);
  s.set_incarnation(incarnation);
  s.set_pool(config_.worker.pool);
  s.set_state(v1::LOST);
  s.set_state_reason(fmt::format("counted lost by worker {}: {}", config_.worker.id, why));
  s.set_last_seen_ms(toUnixMillis(clock_.now()));
  producer_->produce(config_.topics.workers, worker, events::toWire(s), {},
                     [worker](const events::DeliveryReport& r) {
                       if (!r.ok()) {
                         spdlog::warn("LOST status of worker {} not delivered: {}", worker,
                                      r.why());
                       }
                     });
}

void Worker::publishStatus(v1::WorkerState state, const std::string& reason) {
  v1::WorkerStatus s;
  s.set_worker_id(config_.worker.id);
  s.set_incarnation(incarnation_);
  s.set_pool(config_.worker.pool);
  s.set_version(OUTPOST_VERSION);
  s.set_slots_total(config_.worker.slots);
  s.set_slots_busy(static_cast<std::uint32_t>(dispatcher_->running()));
  s.set_state(state);
  s.set_state_reason(reason);
  s.set_status_interval_ms(config_.worker.status_interval.count());
  s.set_queued(static_cast<std::uint32_t>(dispatcher_->queued()));
  s.set_started_at_ms(toUnixMillis(started_at_));
  s.set_last_seen_ms(toUnixMillis(clock_.now()));
  s.set_host(hostName());
  for (const auto& [name, t] : config_.templates) s.add_templates(name);
  producer_->produce(config_.topics.workers, config_.worker.id, events::toWire(s), {},
                     [](const events::DeliveryReport& r) {
                       if (!r.ok()) spdlog::warn("worker status not delivered: {}", r.why());
                     });
}

}  // namespace outpost::app
