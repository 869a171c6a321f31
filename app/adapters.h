// Adapters: the dispatcher's ports (dispatch/ports.h) bound to what the worker runs on: the jobs
// consumer, the producers and the transactional publisher, the supervisor, the run store, the
// secret resolver and the lineage HTTP transport. Wiring only: each adapter forwards.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include "outpost/common/clock.h"
#include "outpost/consumer/job_consumer.h"
#include "outpost/consumer/run_store.h"
#include "outpost/dispatch/owner_loop.h"
#include "outpost/dispatch/ports.h"
#include "outpost/events/admin.h"
#include "outpost/events/producer.h"
#include "outpost/events/transactional_publisher.h"
#include "outpost/lineage/http_transport.h"
#include "outpost/ops/metrics.h"
#include "outpost/runner/supervisor.h"
#include "outpost/secrets/async_resolver.h"
#include "outpost/secrets/resolver.h"

namespace outpost::app {

class ConsumerSource final : public dispatch::CommandSource {
 public:
  explicit ConsumerSource(consumer::JobConsumer& c) : c_(c) {}
  void setPaused(bool paused) override { c_.setPaused(paused); }
  bool paused() const override { return c_.paused(); }
  void commit(const std::map<TopicPartition, std::int64_t>& offsets,
              consumer::CommitMode mode) override {
    c_.commit(offsets, mode);
  }
  const std::vector<TopicPartition>& assignment() const override { return c_.assignment(); }
  std::shared_ptr<const events::GroupMetadata> groupMetadata() override {
    return c_.groupMetadata();
  }
  void refreshGroupMetadata() override { c_.refreshGroupMetadata(); }

 private:
  consumer::JobConsumer& c_;
};

class ProducerSink final : public dispatch::RecordSink {
 public:
  explicit ProducerSink(events::KafkaProducer& p) : p_(p) {}
  void produce(const events::OutRecord& record, events::DeliveryCallback done) override {
    p_.produce(record, std::move(done));
  }

 private:
  events::KafkaProducer& p_;
};

class PublisherSink final : public dispatch::TransactionSink {
 public:
  explicit PublisherSink(events::TransactionalPublisher& t) : t_(t) {}
  void submit(events::TxnUnit unit) override { t_.submit(std::move(unit)); }

 private:
  events::TransactionalPublisher& t_;
};

class SupervisorExecutor final : public dispatch::RunExecutor {
 public:
  explicit SupervisorExecutor(runner::Supervisor& s) : s_(s) {}
  void launch(runner::LaunchPlan plan, runner::RunCallbacks callbacks,
              std::unique_ptr<StreamRedactor> redactor) override {
    s_.launch(std::move(plan), std::move(callbacks), std::move(redactor));
  }
  void stop(const std::string& run_id, runner::StopCause cause, std::string reason) override {
    s_.stop(run_id, std::move(reason), cause);
  }
  void stopAll(runner::StopCause cause, std::string reason) override {
    s_.stopAll(std::move(reason), cause);
  }

 private:
  runner::Supervisor& s_;
};

// The run store, with the worker's id and clock for the records it makes. restore() first waits
// for the transactional producer (exactly-once): a predecessor with its transactional.id may have
// left a transaction open on the runs topic, and read_committed reading stops there until the
// producer's initialisation aborts it.
class RunStoreAttempts final : public dispatch::AttemptStore {
 public:
  // How long restore() may take in all (its waits for the transactional producer and the runs
  // topic), on the poll thread.
  static constexpr std::chrono::seconds kRestoreTimeout{30};
  // Runs `body`, a wait of the poll thread of at most `bound`, announced to the probes and the
  // metrics as `wait` (Worker::announcedWait).
  using BoundedWait =
      std::function<void(std::string_view wait, std::string what, std::chrono::milliseconds bound,
                         const std::function<void()>& body)>;

  // Every restore() is announced through `announce`: the one after a rebalance (wait "restore")
  // and the reads of a lost worker's runs partitions past their barriers (wait "reread").
  RunStoreAttempts(consumer::RunStore& store, std::string worker_id, std::string incarnation,
                   const Clock& clock, events::TransactionalPublisher* txn, BoundedWait announce);
  consumer::AttemptDecision decide(const v1::JobCommand& command, unsigned max_attempts,
                                   bool holder_lost) const override {
    return store_.decide(command, max_attempts, holder_lost);
  }
  const v1::RunRecord* find(const std::string& run_id) const override {
    return store_.find(run_id);
  }
  std::vector<consumer::Claim> claims() const override {
    return store_.claims(worker_id_, incarnation_);
  }
  events::OutRecord recordStart(const v1::JobCommand& command,
                                const consumer::AttemptDecision& admission,
                                const TopicPartition& source, std::int64_t offset) override;
  events::OutRecord recordEnd(const v1::JobCommand& command, std::uint32_t starts,
                              v1::RunState terminal, const TopicPartition& source,
                              std::int64_t offset, std::uint32_t releases, bool released) override;
  void forgetCommitted(std::int32_t partition, std::int64_t offset) override {
    store_.forgetCommitted(partition, offset);
  }
  bool restore(const std::vector<std::int32_t>& partitions,
               const std::map<std::int32_t, std::int64_t>& read_past) override;
  events::OutRecord barrier(std::int32_t partition) override {
    return store_.barrier(partition,
                          worker_id_ + ":" + incarnation_ + ":" + std::to_string(++barriers_));
  }
  void forget(const std::vector<std::int32_t>& partitions) override { store_.forget(partitions); }

 private:
  consumer::RunStore& store_;
  std::string worker_id_;
  std::string incarnation_;
  const Clock& clock_;
  events::TransactionalPublisher* txn_;
  BoundedWait announce_;
  std::uint64_t barriers_ = 0;

  bool restoreNow(const std::vector<std::int32_t>& partitions,
                  const std::map<std::int32_t, std::int64_t>& read_past);
};

// The leases as this worker sees them on the workers topic, and the fence of a lost worker's
// transactional producer (exactly-once), done on a thread of its own: fencing waits for the
// broker's answer. A worker never fences its own id: its producer fenced its predecessors as it
// started.
class WorkerLeases final : public dispatch::Leases {
 public:
  // How long one fence may wait for the broker.
  static constexpr std::chrono::seconds kFenceTimeout{15};

  // Writes the LOST status of a worker (id, incarnation, why). Any thread.
  using DeclareLost =
      std::function<void(const std::string&, const std::string&, const std::string&)>;
  // `group`: the jobs group, the prefix of every worker's transactional id. A worker whose lease
  // lapsed is counted lost only once it is no longer a member of the group (its consumer's
  // client.id or group.instance.id is its worker id): one whose statuses stop reaching the
  // workers topic while it still consumes is left alone. Then, exactly-once
  // (`fence_producers`), its transactional producer is fenced; then its LOST status is written.
  WorkerLeases(const dispatch::LeaseView& view, const Clock& clock, std::string self_id,
               std::string group, KafkaConfig kafka, bool fence_producers,
               DeclareLost declare_lost);
  ~WorkerLeases() override;
  dispatch::LeaseVerdict lease(const std::string& worker_id,
                               const std::string& incarnation) const override {
    return view_.lease(worker_id, incarnation, clock_.steadyNow());
  }
  void fence(const std::string& worker_id, const std::string& incarnation, const std::string& why,
             std::function<void(std::string)> done) override;
  // Stops the fencing thread (a look at the group and a fence in progress end within some 10 s
  // and kFenceTimeout; its `done` is called); later fences are answered at once with an error.
  void shutdown();

 private:
  void serve(std::stop_token stop);
  // Why `worker_id` is not lost yet: it is a member of the group. Nullopt when it is not (or the
  // group cannot be described: the lease alone decides then). On the fencing thread.
  std::optional<std::string> stillAMember(const std::string& worker_id);

  const dispatch::LeaseView& view_;
  const Clock& clock_;
  std::string self_id_, group_;
  KafkaConfig kafka_;
  bool fence_producers_;
  std::unique_ptr<events::KafkaAdmin> admin_;  // made on the fencing thread at its first use
  std::mutex mu_;
  std::condition_variable_any wake_;
  struct Fence {
    std::string worker_id, incarnation, why;
    std::function<void(std::string)> done;
  };
  DeclareLost declare_lost_;
  std::deque<Fence> pending_;
  bool stopped_ = false;
  std::jthread thread_;
};

class ResolverSecrets final : public dispatch::SecretSource {
 public:
  ResolverSecrets(secrets::SecretResolver& resolver, secrets::AsyncSecretResolver& async)
      : resolver_(resolver), async_(async) {}
  void resolve(std::vector<secrets::SecretRef> refs,
               std::function<void(dispatch::ResolvedSecrets)> done) override {
    async_.resolve(std::move(refs), std::move(done));
  }
  std::string mask(std::string_view text) const override { return resolver_.masker()->mask(text); }
  std::unique_ptr<StreamRedactor> outputRedactor() const override;

 private:
  secrets::SecretResolver& resolver_;
  secrets::AsyncSecretResolver& async_;
};

class HttpLineageEndpoint final : public dispatch::LineageEndpoint {
 public:
  explicit HttpLineageEndpoint(lineage::HttpLineageTransport& t) : t_(t) {}
  void send(std::string json, std::function<void(const lineage::LineageDelivery&)> done) override {
    t_.send(std::move(json), std::move(done));
  }

 private:
  lineage::HttpLineageTransport& t_;
};

// The processes and the secret stores a lifecycle runs with, the worker's and the local replay's
// alike: the supervisor (its launcher), the secret resolver and its threads, built from the
// configuration and bound as the dispatcher's RunExecutor and SecretSource. Their threads are
// sources of the owner loop, which stops them (quiesce) before anything goes. Without secrets
// (the replay's --no-secrets) every reference is refused.
class RunsAndSecrets {
 public:
  enum class Secrets { kResolved, kRefused };
  // Throws ConfigError when the secret settings are refused.
  RunsAndSecrets(const Config& config, const Environment& env, const Clock& clock,
                 dispatch::OwnerLoop& loop, Secrets secrets = Secrets::kResolved);
  ~RunsAndSecrets();

  // The resolver (nullptr with Secrets::kRefused): Kafka's and lineage's own settings, reloads.
  secrets::SecretResolver* resolver() { return resolver_.get(); }
  runner::Supervisor& supervisor() { return *supervisor_; }
  dispatch::RunExecutor& executor() { return *executor_; }
  dispatch::SecretSource& secrets() { return *secrets_; }

 private:
  std::unique_ptr<secrets::SecretResolver> resolver_;
  std::unique_ptr<secrets::AsyncSecretResolver> async_;
  runner::PosixLauncher launcher_;
  std::unique_ptr<runner::Supervisor> supervisor_;
  std::unique_ptr<dispatch::RunExecutor> executor_;
  std::unique_ptr<dispatch::SecretSource> secrets_;
};

// What the lifecycle reports, as Prometheus metrics.
class MetricsObserver final : public dispatch::Observer {
 public:
  explicit MetricsObserver(ops::Metrics& m) : m_(m) {}
  void runStarted(std::chrono::milliseconds schedule_to_start) override;
  void runEnded(const std::string& job_type, v1::RunState state,
                std::optional<std::chrono::milliseconds> ran) override;
  void commandSkipped(std::string_view reason) override { m_.commandSkipped(reason); }
  void commandRejected(std::string_view reason) override { m_.commandRejected(reason); }
  void signatureWarning(std::string_view reason) override { m_.signatureWarning(reason); }
  void deadLettered() override { m_.deadLettered(); }
  void lineageHttpFailed() override { m_.lineageHttpFailed(); }

 private:
  ops::Metrics& m_;
};

// Every adapter of one worker, and the Ports that name them.
// Single use of signed commands over the runs topic (consumer::UseLedger), the use records
// written by the events producer. The ledger belongs to the poll thread: a delivery report comes
// back to it through the inbox.
class LedgerUses final : public dispatch::UseRecords {
 public:
  LedgerUses(consumer::UseLedger& ledger, events::KafkaProducer& producer, dispatch::Poster& inbox,
             std::string worker_id, const Clock& clock)
      : ledger_(ledger),
        producer_(producer),
        inbox_(inbox),
        worker_id_(std::move(worker_id)),
        clock_(clock) {}
  std::optional<consumer::ReadAt> firstUse(const std::string& run_id) const override {
    return ledger_.firstUse(run_id);
  }
  void recordUse(const std::string& run_id, const consumer::ReadAt& at,
                 std::function<void(std::expected<consumer::ReadAt, std::string>)> done) override;

 private:
  consumer::UseLedger& ledger_;
  events::KafkaProducer& producer_;
  dispatch::Poster& inbox_;
  std::string worker_id_;
  const Clock& clock_;
};

struct WorkerPorts {
  ConsumerSource source;
  ProducerSink records, start_records;
  std::unique_ptr<PublisherSink> transactions;
  RunStoreAttempts attempts;
  WorkerLeases& leases;
  std::unique_ptr<HttpLineageEndpoint> lineage_http;
  MetricsObserver observer;

  dispatch::Ports ports(dispatch::Poster& poster, RunsAndSecrets& runs, const Clock& clock) {
    return dispatch::Ports{poster,          source,   records, start_records,  transactions.get(),
                           runs.executor(), attempts, &leases, runs.secrets(), lineage_http.get(),
                           clock,           observer};
  }
};

}  // namespace outpost::app
