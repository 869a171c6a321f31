// The worker behind `outpost run`: it builds the Kafka clients, the supervisor and the secret
// resolver, binds them to the run lifecycle (dispatch::Dispatcher, through the ports in
// app/adapters.h), and runs the poll loop. The lifecycle itself lives in dispatch/.
//
// Threads: the caller's thread owns the consumer and the dispatcher (the poll thread) and runs
// the owner loop (dispatch/owner_loop.h); the supervisor, the producers' delivery threads, the
// transactional publisher, the lineage sender and the secret-resolving threads only post closures
// to its inbox, and are stopped (quiesced) before anything they could call into goes.
#pragma once

#include <atomic>
#include <chrono>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "adapters.h"
#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/consumer/control_listener.h"
#include "outpost/consumer/job_consumer.h"
#include "outpost/consumer/run_store.h"
#include "outpost/dispatch/dispatcher.h"
#include "outpost/dispatch/leases.h"
#include "outpost/dispatch/owner_loop.h"
#include "outpost/events/producer.h"
#include "outpost/events/transactional_publisher.h"
#include "outpost/lineage/http_transport.h"
#include "outpost/ops/health.h"
#include "outpost/ops/http_endpoint.h"
#include "outpost/ops/metrics.h"
#include "outpost/runner/supervisor.h"
#include "outpost/secrets/async_resolver.h"
#include "outpost/secrets/masker.h"
#include "outpost/secrets/resolver.h"
#include "outpost/security/jwks_file.h"
#include "outpost/v1/worker.pb.h"
#include "worker_state.h"

namespace outpost::app {

class Worker final : public consumer::RebalanceListener, private dispatch::OwnerLoop::Steps {
 public:
  Worker(Config config, const Clock& clock);
  // Quiesces the owner loop (if run() did not): every thread that could call back is stopped.
  ~Worker() override;

  // Runs until `stop` becomes true, then drains and leaves the group. Returns the exit code.
  // Whenever `reload` is set (SIGHUP) it clears it and applies what `load` returns (reload()).
  int run(const std::atomic<bool>& stop, std::atomic<bool>& reload,
          const std::function<Config()>& load);

  // Applies a new configuration's templates, secret settings (emptying the secret cache),
  // output limits and log level; runs admitted before keep their templates and output limits.
  // What cannot change without a restart (Kafka, identity, topics, slots, delivery, http,
  // log.format, runner.cgroup, lineage) is logged when changed and left as it is. A
  // configuration that `load` or the secret settings refuse (ConfigError) is logged and the one
  // in use kept whole.
  void reload(const std::function<Config()>& load);

  void onAssigned(const std::vector<TopicPartition>& partitions) override;
  void onRevoked(const std::vector<TopicPartition>& partitions, consumer::Revocation how) override;

 private:
  // The owner loop's steps: a poll of the jobs consumer, then the chores: the control topic,
  // health and metrics, the worker's status on each change of state and every status_interval,
  // and a reload when one was asked for.
  void take(std::chrono::milliseconds wait) override;
  void chores() override;
  void draining() override;
  bool finished() const override { return fenced_; }
  // Another worker fenced this one's transactional producer: it counted this worker as lost and
  // runs its runs again. Kills them without writing their ends, and stops.
  void onFenced(const std::string& why);
  // Writes the LOST status of a worker this one found lost and fenced (WorkerLeases). Any thread.
  void declareLost(const std::string& worker, const std::string& incarnation,
                   const std::string& why);
  void pollControl();
  // The JWKS file of `security` (watched from now on), or nullptr when security.commands is off.
  std::expected<std::shared_ptr<const security::KeySet>, std::string> readTrustedKeys(
      const SecurityConfig& security);
  // The single-use ledger, made (and started: it reads the runs topic) the first time
  // `security` asks for signatures.
  std::expected<void, std::string> ensureUseLedger(const SecurityConfig& security);
  // config_.security with `keys`, to the dispatcher; says what it is.
  void applySecurity(std::shared_ptr<const security::KeySet> keys);
  // Runs `body`, a wait of the poll thread of at most `bound`: the probes are told `what` (see
  // ops::Health::beginWait) and outpost_poll_thread_wait_seconds_total{wait} counts its time.
  void announcedWait(std::string_view wait, std::string what, Millis bound,
                     const std::function<void()>& body);
  // A drain or resume from the control topic, if it is for this worker.
  void onWorkerControl(const consumer::ControlMessage& m);
  // The pool's other workers, by lease: logs each change (a worker lost, or back) and sets
  // outpost_pool_workers.
  void updateLeases();
  // STARTING until first ready, then READY; DRAINING when stopping or drained; and why.
  std::pair<v1::WorkerState, std::string> state() const;
  void publishStatus(v1::WorkerState state, const std::string& reason);
  // The gauges and the totals kept by other modules, copied into the metrics; and readiness.
  void updateMetrics();
  std::map<std::int32_t, std::int64_t> consumerLag() const;
  void updateReadiness();

  Config config_;
  KafkaConfig kafka_;  // config_.kafka with its secret references resolved
  const Clock& clock_;
  std::chrono::system_clock::time_point started_at_;
  // New at every start: the runs this process holds are held by this incarnation (its statuses
  // and its runs' records say it), so a restarted worker's earlier runs are known to be gone.
  std::string incarnation_;
  std::chrono::steady_clock::time_point last_status_;
  // What the workers topic says of the pool's workers (read by control_), and which of them this
  // worker has counted as lost.
  dispatch::LeaseView leases_;
  std::set<std::string> lapsed_;

  // Probes and metrics: written on the poll thread, read by the HTTP endpoint's.
  ops::Health health_;
  ops::Metrics metrics_;
  std::chrono::steady_clock::time_point last_metrics_;
  bool joined_ = false;     // a rebalance gave this worker its partitions (possibly none)
  bool draining_ = false;   // stopping
  bool fenced_ = false;     // see onFenced
  bool was_ready_ = false;  // /readyz has said ok once: STARTING is over
  std::optional<std::string> drained_;  // drained by an operator, and why
  v1::WorkerState published_ = v1::WORKER_STATE_UNSPECIFIED;

  // The inbox and the sources of callbacks into it (added as they are built below).
  dispatch::OwnerLoop loop_;
  // Set while run() runs: SIGHUP's flag and how to load the configuration again.
  std::atomic<bool>* reload_requested_ = nullptr;
  const std::function<Config()>* load_ = nullptr;

  // The supervisor and the secret stores (its resolver_ for Kafka's and lineage's own settings).
  std::unique_ptr<RunsAndSecrets> runs_;
  secrets::SecretResolver* resolver_ = nullptr;
  // Single use of signed commands (made when security.commands is first not off): destroyed after
  // the producer whose delivery reports reach them.
  std::unique_ptr<consumer::UseLedger> use_ledger_;
  std::unique_ptr<LedgerUses> uses_;
  // Events, lineage, status, dead letters: lingers to batch (kEventsLinger).
  std::unique_ptr<events::KafkaProducer> producer_;
  // The runs topic's claims (at-least-once; exactly-once they go in transactions): a launch
  // waits for one, so this one never lingers.
  std::unique_ptr<events::KafkaProducer> start_producer_;
  std::unique_ptr<events::TransactionalPublisher> txn_;  // exactly-once only
  std::unique_ptr<consumer::RunStore> run_store_;
  std::unique_ptr<WorkerLeases> worker_leases_;  // leases_ and the fence of lost workers
  // security.trusted_keys, looked at every kTrustedKeysLook for a change (unset when off).
  std::optional<security::JwksFile> trusted_keys_;
  std::chrono::steady_clock::time_point last_keys_look_;
  std::unique_ptr<lineage::HttpLineageTransport> lineage_http_;  // lineage.transport http or both
  std::unique_ptr<consumer::JobConsumer> consumer_;
  std::unique_ptr<consumer::ControlListener> control_;  // polled on the poll thread; posts nothing
  std::unique_ptr<WorkerPorts> ports_;                  // the above, as the dispatcher sees them
  std::unique_ptr<dispatch::Dispatcher> dispatcher_;
  std::unique_ptr<ops::HttpEndpoint> http_;  // last: it reads health_ and metrics_
};

}  // namespace outpost::app
