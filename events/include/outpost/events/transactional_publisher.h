// Exactly-once delivery: a completion's records and its consumer offsets committed in one Kafka
// transaction, completions that finish close together sharing one (group commit).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/common/topic_partition.h"
#include "outpost/events/out_record.h"

// librdkafka's group metadata, opaque here so that this header does not need rdkafka.h.
struct rd_kafka_consumer_group_metadata_s;

namespace outpost::events {

// A consumer group member as the broker knows it at one generation (group id, generation, member
// id). The broker accepts a transaction's offsets only from the member that currently owns them,
// so a unit carries the metadata of the consumer it read its command from. Made by
// JobConsumer::groupMetadata(); immutable and shared, so any thread may read it.
class GroupMetadata {
 public:
  // Takes ownership of a handle from rd_kafka_consumer_group_metadata(). Throws
  // std::invalid_argument when it is null (a client that is not a consumer with a group.id).
  explicit GroupMetadata(rd_kafka_consumer_group_metadata_s* handle);
  ~GroupMetadata();
  GroupMetadata(const GroupMetadata&) = delete;
  GroupMetadata& operator=(const GroupMetadata&) = delete;

  const rd_kafka_consumer_group_metadata_s* handle() const { return handle_.get(); }
  // librdkafka's serialised form: equal for the same group, generation and member.
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  struct Deleter {
    void operator()(rd_kafka_consumer_group_metadata_s* p) const;
  };
  std::unique_ptr<rd_kafka_consumer_group_metadata_s, Deleter> handle_;
  std::string fingerprint_;
};

struct TxnOutcome {
  enum class Status {
    // The records are visible to read_committed readers and the offsets are committed, together.
    kCommitted,
    // Nothing of the unit was committed. The owner may submit it again: see TxnUnit.
    kAborted,
    // Nothing of the unit was committed and it never will be as it is: a record of it is refused
    // (larger than message.max.bytes, unknown topic or partition, not authorised), or the unit
    // is malformed (offsets without group metadata). Submitting it unchanged fails again.
    kRejected,
  };
  Status status = Status::kAborted;
  std::string reason;  // empty when committed
  bool committed() const { return status == Status::kCommitted; }
};

// One completion that must be atomic: e.g. a run's terminal event and its final lineage record,
// together with the offset of the command that started the run.
//
// Contract with the owner (the worker's poll thread):
// - `done` is called exactly once, on the publisher's thread; keep it short and never throw (post
//   to the owner's own queue). It may call submit().
// - kAborted means the transaction failed for a reason outside the unit (the member's generation
//   is stale after a rebalance, the producer was fenced and recreated, the broker was unreachable
//   for longer than transaction.timeout.ms, close() ran out of time). The owner rewinds
//   to the committed offsets and resubmits the unit with offsets and group metadata taken afresh
//   from its consumer, or drops it when it no longer owns the unit's partitions (the next owner
//   redoes that work). Resubmitting with the same stale metadata fails the same way.
// - When a transaction aborts, the units still waiting behind it are reported kAborted too (their
//   offsets may count the aborted units as done), so the owner resubmits all of them in order.
// - Units with different `group` pointers never share a transaction. JobConsumer::groupMetadata()
//   returns the same pointer for as long as the generation and member stay the same.
struct TxnUnit {
  // Written in this order; in the same transaction as the offsets.
  std::vector<OutRecord> records;
  // Per partition of the consumed topic, the next offset to read (last processed + 1). Within a
  // transaction, the latest unit's offset wins for each partition.
  std::map<TopicPartition, std::int64_t> offsets;
  // Required when `offsets` is not empty.
  std::shared_ptr<const GroupMetadata> group;
  std::function<void(const TxnOutcome&)> done;
};

struct TransactionalPublisherOptions {
  // One transaction takes the pending units in order while these bounds hold (a single unit
  // larger than them goes alone).
  std::size_t max_batch_records = 1000;
  std::size_t max_batch_bytes = 8 * 1024 * 1024;
  // The least time from the start of one transaction to the start of the next, after a batch of
  // batch_target units or more. Each transaction costs the broker markers and log writes whatever
  // its size: under load this keeps them about 12 a second. After a smaller batch (light load)
  // the interval shrinks in proportion, down to a quarter of it, so that a unit that comes just
  // after a transaction began waits little for the next (completion latency). A unit that comes
  // when none was begun for the interval starts one at once.
  std::chrono::milliseconds min_interval{80};
  std::size_t batch_target = 64;
  // How long one librdkafka transactional call may block before it is retried.
  std::chrono::milliseconds call_timeout{5000};
  // Retries of retriable errors (broker or coordinator unavailable) back off from min to max.
  std::chrono::milliseconds retry_backoff_min{100};
  std::chrono::milliseconds retry_backoff_max{5000};
  // What the destructor gives close() when the owner did not call it.
  std::chrono::milliseconds close_timeout{10000};
  // librdkafka producer properties applied last (e.g. client.id).
  std::map<std::string, std::string> producer_properties;
  // Set: a producer fenced by another with the same transactional.id (a worker found lost whose
  // runs another worker runs again) is not recreated. on_fenced is called once, on the
  // publisher's thread, with why; from then on every unit, those waiting and those submitted
  // later, is rejected with that reason, so nothing of this publisher commits any more. Unset:
  // the producer is recreated (and fences the other in turn).
  std::function<void(const std::string& why)> on_fenced;
};

struct TransactionalPublisherStats {
  std::uint64_t transactions_committed = 0;
  std::uint64_t units_committed = 0;
  std::uint64_t transactions_aborted = 0;  // begun and then aborted (or lost with the producer)
  std::uint64_t units_aborted = 0;
  std::uint64_t units_rejected = 0;
  // After fatal errors (fencing, fatal idempotence), and after the broker refused a record.
  std::uint64_t producer_recreations = 0;
};

// A transactional producer and the thread that drives it. A transaction is open only while the
// publisher writes a batch, never while it waits for units, so a long job never holds one open.
//
// Errors: retriable ones (broker down, coordinator moving) are retried with backoff for as long
// as it takes, logged at most every few seconds; the units wait, nothing is dropped. Abortable
// ones abort the transaction and report its units kAborted. Fatal ones (fenced by another
// producer with the same transactional.id (unless options.on_fenced), fatal idempotence errors)
// destroy the producer, report kAborted and make a new producer, which initialises its
// transactions (with retries) before the next batch. A record refused by the client or the broker makes its unit kRejected; the other
// units of that transaction are retried in a new one.
//
// Threads: submit(), stats() and pending() are safe from any thread; close() and the destructor
// from any thread but the publisher's own (i.e. not from `done`).
class TransactionalPublisher {
 public:
  // `transactional_id` must be stable for one worker across restarts (so that a restarted worker
  // fences its predecessor) and unique among live workers. Throws ConfigError when librdkafka
  // refuses the configuration; never waits for the broker.
  TransactionalPublisher(const KafkaConfig& config, std::string transactional_id,
                         TransactionalPublisherOptions options = {});
  // close(options.close_timeout) unless already closed.
  ~TransactionalPublisher();
  TransactionalPublisher(const TransactionalPublisher&) = delete;
  TransactionalPublisher& operator=(const TransactionalPublisher&) = delete;

  // Queues the unit for the next transaction and returns at once. After close() the unit is
  // reported kAborted at once, on the calling thread.
  void submit(TxnUnit unit);

  // Publishes what is pending, then stops the thread. Units still pending at `timeout` are
  // reported kAborted. A commit cut short by the timeout (broker down) is reported kAborted too,
  // though the broker may still have committed it; that can only happen here.
  void close(std::chrono::milliseconds timeout);

  // Waits until the producer has initialised its transactions once (which fences a predecessor
  // with the same transactional.id and aborts what it left open, so that read_committed readers
  // see past it); false on timeout or once closed.
  bool waitReady(std::chrono::milliseconds timeout);

  TransactionalPublisherStats stats() const;
  // Units submitted and not yet reported.
  std::size_t pending() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::events
