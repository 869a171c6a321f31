// Completion: how a run's records reach Kafka and when its command's offset counts as done. Two
// strategies, chosen once at start; no other code asks which mode is on.
// A run that starts is claimed first: its start record (the claim) is written, and once it is
// durable the command's offset is done, whatever the run does next. A command that ends without
// starting (refused, expired, skipped) is done once its end is written.
// - at-least-once: the claim is produced and acknowledged, then the offset is done; every other
//   record is produced and acknowledged; after the terminal event, the run's end record. Done
//   offsets are committed periodically.
// - exactly-once: the claim and the offset commit in one transaction (with the lost attempt's
//   FAILED event, for a rerun). From the terminal event on, the run's records (terminal event,
//   final lineage, dead letter) wait and are committed with its end record in a later transaction,
//   with the offset only when the command never started.
// Owning thread only; acknowledgements come back through the Poster.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "outpost/consumer/offset_tracker.h"
#include "outpost/dispatch/ports.h"
#include "run.h"

namespace outpost::dispatch {

// What a strategy calls back, on the owning thread.
class CompletionHost {
 public:
  virtual ~CompletionHost() = default;
  // The live run with this id, or nullptr once it is gone.
  virtual Run* findRun(std::uint64_t id) = 0;
  // Something the run was waiting for arrived: retire it if nothing is left.
  virtual void maybeRetire(Run& run) = 0;
  // Its claim is durable (run.claimed); or it never will be: its partition went elsewhere first
  // (the next owner takes the command), or the broker refused it (`why`).
  virtual void startWritten(Run& run) = 0;
  virtual void startNotWritten(Run& run, const std::string& why) = 0;
};

// What a record about a run belongs to: its progress (STARTED, LOG, heartbeats, lineage START), or
// its end (the terminal event and what comes with it, a dead letter), which exactly-once delivery
// commits in one transaction with the run's offset.
enum class RecordPart { kProgress, kEnd };

class Completion {
 public:
  virtual ~Completion() = default;
  // A record about the run (an event, a Kafka lineage record, a dead letter).
  virtual void publish(Run& run, events::OutRecord record, RecordPart part) = 0;
  // Writes the run's claim (and, for a rerun, the FAILED event of the lost attempt), then calls
  // host.startWritten, or host.startNotWritten.
  virtual void recordStart(Run& run, events::OutRecord start,
                           std::optional<events::OutRecord> lost) = 0;
  // The run is finished and nothing it produced awaits acknowledgement: writes what this mode
  // still owes (end record, transaction) and returns true once the run may be forgotten.
  virtual bool settle(Run& run) = 0;
  // Periodic: commits the offsets that are done (at-least-once).
  virtual void tick() = 0;
  // Partitions are going away, after their claims in flight had revoke_timeout to settle: commits
  // what is done.
  virtual void revoked(const std::vector<TopicPartition>& partitions,
                       consumer::Revocation how) = 0;
  // Shutdown: the last commit.
  virtual void close() = 0;
};

std::unique_ptr<Completion> makeAtLeastOnce(CompletionHost& host, Ports& ports,
                                            consumer::OffsetTracker& offsets);
std::unique_ptr<Completion> makeExactlyOnce(CompletionHost& host, Ports& ports,
                                            consumer::OffsetTracker& offsets, TransactionSink& txn);

}  // namespace outpost::dispatch
