// What the run lifecycle talks to, as small interfaces: the jobs topic's consumer
// (CommandSource), where records go (RecordSink, TransactionSink), who runs processes
// (RunExecutor), what the runs topic knows of attempts and claims (AttemptStore), whether a
// claim's worker still holds it (Leases), the secret stores (SecretSource), the lineage HTTP
// endpoint (LineageEndpoint), and the owning thread's queue (Poster). app/ binds them to Kafka,
// the supervisor and the resolver; tests/dispatch to fakes.
//
// Threads: the Dispatcher lives on one thread, the owner (the worker's poll thread). It calls
// every port from there. Callbacks a port takes (delivery reports, run callbacks, resolved
// secrets) may run on any thread; the Dispatcher posts them back through the Poster.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/clock.h"
#include "outpost/common/redaction.h"
#include "outpost/common/topic_partition.h"
#include "outpost/consumer/job_consumer.h"
#include "outpost/consumer/run_store.h"
#include "outpost/consumer/use_ledger.h"
#include "outpost/dispatch/admission.h"
#include "outpost/dispatch/leases.h"
#include "outpost/events/out_record.h"
#include "outpost/events/producer.h"
#include "outpost/events/transactional_publisher.h"
#include "outpost/lineage/http_transport.h"
#include "outpost/runner/supervisor.h"
#include "outpost/secrets/provider.h"
#include "outpost/secrets/reference.h"
#include "outpost/secrets/secret_value.h"
#include "outpost/v1/event.pb.h"
#include "outpost/v1/job.pb.h"

namespace outpost::dispatch {

// Runs closures on the owning thread, in the order posted. Any thread (Envoy's Dispatcher::post).
// A Poster outlives every source of callbacks that posts to it (OwnerLoop's contract), and drops
// what is posted once its owner has stopped those sources.
class Poster {
 public:
  virtual ~Poster() = default;
  virtual void post(std::function<void()> fn) = 0;
};

// The callback a port runs on its own thread: it touches nothing but `poster`, and posts `f` with
// the callback's arguments (taken by value, moved into the closure) to run on the owner. Every
// hand-off from another thread goes through one of these, so that a callback in flight never
// dereferences an object its thread does not own, whatever has been destroyed meanwhile.
template <typename F>
auto onOwner(Poster& poster, F f) {
  return [&poster, f = std::move(f)](auto... args) {
    poster.post([f, ... a = std::move(args)]() mutable { f(std::move(a)...); });
  };
}

// The jobs topic's consumer, as far as the lifecycle steers it. Owning thread only.
class CommandSource {
 public:
  virtual ~CommandSource() = default;
  virtual void setPaused(bool paused) = 0;
  virtual bool paused() const = 0;
  // Commits, per partition, the next offset to read; kAwait waits (bounded) for the answer.
  virtual void commit(const std::map<TopicPartition, std::int64_t>& offsets,
                      consumer::CommitMode mode) = 0;
  virtual const std::vector<TopicPartition>& assignment() const = 0;
  // This member's identity in the group now, for a transaction's offsets (exactly-once).
  virtual std::shared_ptr<const events::GroupMetadata> groupMetadata() = 0;
  // After an aborted transaction: read the identity afresh.
  virtual void refreshGroupMetadata() = 0;
};

// Records written one by one, outside transactions. Owning thread; `done` runs on another thread.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void produce(const events::OutRecord& record, events::DeliveryCallback done) = 0;
};

// Records and offsets committed together (exactly-once): see TransactionalPublisher's contract.
class TransactionSink {
 public:
  virtual ~TransactionSink() = default;
  virtual void submit(events::TxnUnit unit) = 0;
};

// Starts and stops runs' processes (runner's Supervisor). Callbacks run on its thread.
class RunExecutor {
 public:
  virtual ~RunExecutor() = default;
  // `redactor` sees every output byte first.
  virtual void launch(runner::LaunchPlan plan, runner::RunCallbacks callbacks,
                      std::unique_ptr<StreamRedactor> redactor) = 0;
  // Stops the run with this run_id (TERM, grace, KILL); it ends kCancelled with `reason`, and
  // `cause` as its outcome's stop_cause.
  virtual void stop(const std::string& run_id, runner::StopCause cause, std::string reason) = 0;
  virtual void stopAll(runner::StopCause cause, std::string reason) = 0;
};

// What the runs topic knows of attempts and claims (consumer's RunStore): the verdict for a
// command, the records that keep it true, and the runs other workers hold on the partitions this
// one owns. Owning thread only.
class AttemptStore {
 public:
  virtual ~AttemptStore() = default;
  // `holder_lost`: the worker holding the run's claim was found lost (see decideAttempt).
  virtual consumer::AttemptDecision decide(const v1::JobCommand& command, unsigned max_attempts,
                                           bool holder_lost) const = 0;
  // The last record known for `run_id`, or nullptr. Valid until the next non-const call.
  virtual const v1::RunRecord* find(const std::string& run_id) const = 0;
  // The claims other workers (or this worker's earlier incarnations) hold on the partitions held.
  virtual std::vector<consumer::Claim> claims() const = 0;
  // The start record of a run about to start (kRun or kRerun), its claim (carrying `command`,
  // recipe included), remembered as its latest.
  virtual events::OutRecord recordStart(const v1::JobCommand& command,
                                        const consumer::AttemptDecision& admission,
                                        const TopicPartition& source, std::int64_t offset) = 0;
  // The end record of a run that reached `terminal` after `starts` starts (`releases` of them
  // released before), remembered likewise. `released`: its worker let it go as it stopped (the
  // record carries `command`, recipe included, to be run again from).
  virtual events::OutRecord recordEnd(const v1::JobCommand& command, std::uint32_t starts,
                                      v1::RunState terminal, const TopicPartition& source,
                                      std::int64_t offset, std::uint32_t releases,
                                      bool released) = 0;
  // The group committed `offset` on jobs partition `partition`: older records are not needed.
  virtual void forgetCommitted(std::int32_t partition, std::int64_t offset) = 0;
  // Rebalance, or before running a lost worker's runs again: read what is known of `partitions`
  // afresh (blocks, bounded; logs what it found); false when it could not (nothing is known of
  // them then). `read_past`: per partition, the offset of a barrier to read beyond (see
  // consumer::RunStore::restore). Or forget partitions that went away.
  virtual bool restore(const std::vector<std::int32_t>& partitions,
                       const std::map<std::int32_t, std::int64_t>& read_past) = 0;
  // A barrier record for runs partition `partition` (consumer::RunStore::barrier).
  virtual events::OutRecord barrier(std::int32_t partition) = 0;
  virtual void forget(const std::vector<std::int32_t>& partitions) = 0;
};

// The leases of claimed runs (leases.h), and the fence a lost worker gets before its runs run
// again. Owning thread, except `done`.
class Leases {
 public:
  virtual ~Leases() = default;
  // Whether `worker_id`'s incarnation `incarnation` still holds the runs it claimed.
  virtual LeaseVerdict lease(const std::string& worker_id,
                             const std::string& incarnation) const = 0;
  // Fences `worker_id` (incarnation `incarnation`, lost because `why`): exactly-once its
  // transactional producer, so that nothing it has open or sends later commits, off the owning
  // thread; then, in both modes, a LOST status for it on the workers topic, which tells it to stop
  // if it comes back. `done` gets an empty string, or why it could not be fenced, once, on any
  // thread.
  virtual void fence(const std::string& worker_id, const std::string& incarnation,
                     const std::string& why, std::function<void(std::string)> done) = 0;
};

// Every value by reference text, or why one could not be had, with its kind (not found, denied,
// unavailable, invalid).
using ResolvedSecrets =
    std::expected<std::map<std::string, secrets::SecretValue>, secrets::SecretError>;

// The secret stores, behind the resolver's cache. Owning thread, except `done`.
class SecretSource {
 public:
  virtual ~SecretSource() = default;
  // Resolves `refs` off the owning thread; `done` is called once, on any thread, with every
  // value by reference text or why one could not be had.
  virtual void resolve(std::vector<secrets::SecretRef> refs,
                       std::function<void(ResolvedSecrets)> done) = 0;
  // `text` with every secret value resolved so far masked. Any thread.
  virtual std::string mask(std::string_view text) const = 0;
  // A redactor for a run's output stream, masking the same values.
  virtual std::unique_ptr<StreamRedactor> outputRedactor() const = 0;
};

// The lineage HTTP transport (when configured). Owning thread; `done` on another thread.
class LineageEndpoint {
 public:
  virtual ~LineageEndpoint() = default;
  virtual void send(std::string json,
                    std::function<void(const lineage::LineageDelivery&)> done) = 0;
};

// Why a command was refused (REJECTED, dead letter) or not run: fixed words, for metrics labels
// (admit()'s own are Refusal's).
namespace reason {
inline constexpr std::string_view kUndecodable = "undecodable";     // not a valid JobCommand
inline constexpr std::string_view kDuplicate = "duplicate";         // its run_id is here already
inline constexpr std::string_view kOtherPool = "other_pool";        // skipped: another pool's
inline constexpr std::string_view kAlreadyEnded = "already_ended";  // skipped: it ended before
inline constexpr std::string_view kClaimed = "claimed";  // skipped: another worker holds its run
// Every word a skip or a refusal may carry (so that metrics can show each at zero).
inline constexpr std::array<std::string_view, 3> kSkips = {kOtherPool, kAlreadyEnded, kClaimed};
inline constexpr std::array<std::string_view, 7> kRefusals = {kUndecodable,
                                                              kDuplicate,
                                                              Refusal::kUnknownTemplate,
                                                              Refusal::kSecretInArguments,
                                                              Refusal::kInvalidArguments,
                                                              Refusal::kBadSecretReference,
                                                              Refusal::kSecretNotAllowed};
}  // namespace reason

// What the lifecycle reports as it goes, for metrics. Called on the owning thread; every method
// does nothing unless overridden.
class Observer {
 public:
  virtual ~Observer() = default;
  // A run's process started, `schedule_to_start` after its command's record timestamp.
  virtual void runStarted(std::chrono::milliseconds /*schedule_to_start*/) {}
  // A run's terminal event was written. `job_type` is the command's (a template name, or not);
  // `ran` is how long its process ran, unset when it never started.
  virtual void runEnded(const std::string& /*job_type*/, v1::RunState /*state*/,
                        std::optional<std::chrono::milliseconds> /*ran*/) {}
  virtual void commandSkipped(std::string_view /*reason*/) {}
  virtual void commandRejected(std::string_view /*reason*/) {}
  // security.commands is warn and a command `require` would refuse runs (`reason`: as for
  // commandRejected).
  virtual void signatureWarning(std::string_view /*reason*/) {}
  virtual void deadLettered() {}
  // The lineage HTTP transport gave up on a record.
  virtual void lineageHttpFailed() {}
};

// Single use of signed commands (consumer/use_ledger.h): where each signed run id was first read,
// across the pool.
class UseRecords {
 public:
  virtual ~UseRecords() = default;
  // Where the first use of `run_id` was read, when one is known now.
  virtual std::optional<consumer::ReadAt> firstUse(const std::string& run_id) const = 0;
  // Records that `run_id` is used at `at`; `done` (any thread) gets the first use known once the
  // record was read back (`at` when this one came first), or why that could not be told.
  virtual void recordUse(
      const std::string& run_id, const consumer::ReadAt& at,
      std::function<void(std::expected<consumer::ReadAt, std::string>)> done) = 0;
};

// Everything the dispatcher talks to. References outlive it.
struct Ports {
  Poster& poster;
  CommandSource& source;
  RecordSink& records;            // events, lineage (Kafka transport), dead letters, notices
  RecordSink& start_records;      // the runs topic's start records: a launch waits for them
  TransactionSink* transactions;  // exactly-once delivery; nullptr for at-least-once
  RunExecutor& executor;
  AttemptStore& attempts;
  Leases* leases;  // nullptr: claims are never found lost (the local replay)
  SecretSource& secrets;
  LineageEndpoint* lineage_http;  // nullptr without the HTTP transport
  const Clock& clock;
  Observer& observer;
};

}  // namespace outpost::dispatch
