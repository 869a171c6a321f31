// Completion: how a run's records reach Kafka and when its command's offset counts as done. Two
// strategies, chosen once at start; no other code asks which mode is on.
// - at-least-once: every record is produced and acknowledged; then the run's end record; then
//   the offset is done, and committed periodically.
// - exactly-once: from the terminal event on, the run's records (terminal event, final lineage,
//   dead letter) wait and are committed with its end record and its offset in one transaction.
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
  // Its start record is written; or, for a rerun whose transaction did not commit, it is not
  // (`why`), and the run does not start here.
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
  // Writes the run's start record (and, for a rerun, the FAILED event of the lost attempt), then
  // calls host.startWritten.
  virtual void recordStart(Run& run, events::OutRecord start,
                           std::optional<events::OutRecord> lost) = 0;
  // The run is finished and nothing it produced awaits acknowledgement: writes what this mode
  // still owes (end record, transaction) and returns true once the run may be forgotten.
  virtual bool settle(Run& run) = 0;
  // Periodic: commits the offsets that are done (at-least-once).
  virtual void tick() = 0;
  // Partitions are going away, after their runs had revoke_timeout: commits what is done.
  virtual void revoked(const std::vector<TopicPartition>& partitions,
                       consumer::Revocation how) = 0;
  // Whether a run still live on a revoked partition is stopped and handed over (its end could
  // not be committed with its offset any more) rather than left to go on.
  virtual bool handsOver() const = 0;
  // Shutdown: the last commit.
  virtual void close() = 0;
};

std::unique_ptr<Completion> makeAtLeastOnce(CompletionHost& host, Ports& ports,
                                            consumer::OffsetTracker& offsets);
std::unique_ptr<Completion> makeExactlyOnce(CompletionHost& host, Ports& ports,
                                            consumer::OffsetTracker& offsets, TransactionSink& txn);

}  // namespace outpost::dispatch
