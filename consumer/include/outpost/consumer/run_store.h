// Run state on Kafka, so that attempts carry across workers: what a worker newly assigned a jobs
// partition knows about the runs its commands started elsewhere, and what it decides for a
// command from that (run it, run it again, skip it, or give it up after too many lost attempts).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/common/topic_partition.h"
#include "outpost/events/out_record.h"
#include "outpost/v1/job.pb.h"
#include "outpost/v1/run_record.pb.h"

namespace outpost::consumer {

struct RunStoreOptions {
  // The runs topic (topics.runs): RunRecords keyed by run_id, compacted, with at least as many
  // partitions as the jobs topic. The record of a command read from jobs partition p goes to runs
  // partition p, so a worker assigned jobs partition p reads only runs partition p.
  std::string runs_topic;
  // The jobs topic and its consumer group (outpost.<pool>). The group's committed offsets say
  // which commands can still be delivered: records of commands below them are not kept. The group
  // is never joined and nothing is committed under it.
  std::string jobs_topic;
  std::string group_id;
  std::string client_id;
};

// What restore() did.
struct RestoreStats {
  std::size_t partitions = 0;   // runs partitions read
  std::size_t records = 0;      // records read from them (tombstones included)
  std::size_t kept = 0;         // runs now known for these partitions
  std::size_t committed = 0;    // records left out: their command is below the committed offset
  std::size_t undecodable = 0;  // records that are not a RunRecord with a run_id (logged)
};

// What to do with a command, given what the runs topic says about its run_id.
struct AttemptDecision {
  enum class Verdict {
    // No worker started this run (this attempt of it) yet: run it; its record says starts 1.
    kRun,
    // A worker started it and was lost before it ended (its record still says STARTED): run it
    // again as the next attempt; its events say it is a redelivery (`reason`).
    kRerun,
    // A worker claimed it (its start record says STARTED and carries the command) and, as far as
    // the caller knows, still holds it: do not run it and publish nothing; its holder ends it, or
    // the owner of its partition runs it again once the holder's lease lapses.
    kClaimed,
    // It already ended (its terminal event was published then), or a later attempt of it exists:
    // do not run it and publish nothing; only its offset is done.
    kSkip,
    // Workers were lost while running it `starts` times, max_attempts or more: do not run it; end
    // it FAILED with `reason` ("worker lost N times") and write an end record.
    kGiveUp,
  };
  Verdict verdict = Verdict::kRun;
  // The attempt number the run's events carry: the command's attempt (1 when it says 0) plus the
  // starts that were lost before this one; for kGiveUp that of the last lost start; for kSkip that
  // of the recorded run.
  std::uint32_t attempt = 1;
  // For kRun and kRerun: the `starts` the start record says (1, 2, ...). For kGiveUp and kSkip:
  // the starts recorded so far.
  std::uint32_t starts = 1;
  // kSkip: the recorded state (terminal, or STARTED for a later attempt). kGiveUp: FAILED.
  // Otherwise STARTED, the state the start record says.
  v1::RunState state = v1::STARTED;
  // kRerun, kGiveUp: the worker whose start was lost, or that let it go (from the record).
  std::string lost_worker;
  // kRerun: the previous attempt was let go by its worker at shutdown (RunRecord.released) and
  // already ended; no lost attempt's event is written for it.
  bool after_release = false;
  // How many starts so far ended released (RunRecord.releases): the start record carries it on.
  std::uint32_t releases = 0;
  // Why, in words, for the log and the events' message; empty for kRun. E.g. "redelivery:
  // attempt 2 after worker w-1 was lost", "worker lost 3 times", "already SUCCEEDED (worker w-1)".
  std::string reason;
};

// What to do with `command` when the runs topic's last record for its run_id is `recorded`
// (nullptr: none). `max_attempts` is the worker's default (worker.max_attempts); the command's own
// max_attempts wins when it sets one. A STARTED record that carries its command is a claim: it is
// kClaimed unless `holder_lost` (the caller found the holder's lease lapsed), then kRerun or
// kGiveUp. A STARTED record without its command (written before claims existed) counts as lost.
// Pure: it does not know what runs on this worker now, so the caller first checks its own queued
// and running runs.
AttemptDecision decideAttempt(const v1::JobCommand& command, const v1::RunRecord* recorded,
                              unsigned max_attempts, bool holder_lost = false);

// Whether a run's last record holds it: a claim (STARTED) or a release, carrying its command to
// be run again from. What the lost-run watch and `outpost ledger` count as held.
bool holdsRun(const v1::RunRecord& record);

// A run held by a worker on a partition this one holds: its start record (STARTED, with its
// command) is the last record of its run_id.
struct Claim {
  std::string run_id;
  std::string worker_id;
  std::string incarnation;
  std::int32_t partition = 0;
};

// The state known for runs of the jobs partitions this worker holds: restored from the runs topic
// when partitions are assigned, kept up to date with the records the worker writes (remember),
// and forgotten when they go away.
//
// A STARTED record is a claim: whether its holder is still there is the lease's question
// (dispatch/leases.h), not the store's.
//
// Memory: every claim of its partitions is kept (as many as runs are running on them); of the
// other records only those of commands that can still be delivered, at or above the group's
// committed offset when restored; forgetCommitted() drops the rest as the worker commits. So a
// partition holds about as many records as it has running runs and uncommitted commands. Reading
// a partition takes as long as the topic is long: compaction keeps one record per run_id, and a
// retention (cleanup.policy=compact,delete, retention.ms longer than the longest run and than a
// command may wait uncommitted) keeps the number of run_ids down.
//
// Threads: all of it belongs to the worker's poll thread. restore() blocks (broker requests and
// reading) for at most its timeout; it is meant to be called from the rebalance callback.
class RunStore {
 public:
  // Throws ConfigError when the configuration is refused. Does not wait for the broker (librdkafka
  // connects in the background).
  RunStore(const KafkaConfig& config, RunStoreOptions options);
  // Closes the reading consumer.
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  // At startup: checks that the runs topic exists with at least as many partitions as the jobs
  // topic (when that exists yet). A runs topic not seen yet is looked for until `timeout`. The
  // error names the topics and the fix.
  std::expected<void, std::string> checkTopics(std::chrono::milliseconds timeout);

  // Reads runs `partitions` (the numbers of the jobs partitions just assigned) from their start up
  // to their end as of the call (the last stable offset: records are read read_committed, so
  // records of aborted or still open transactions are not seen), replacing what was known for
  // them; for each run_id the last record read wins. Blocks for at most `timeout`, retrying what
  // a moment cures (a leader or coordinator being elected, a topic just created). On an error
  // (timeout, missing partition, broker error) nothing is known for any of `partitions`.
  // `read_past`: per partition, an offset (a barrier this worker wrote, see barrier()) to read
  // beyond: the read waits until every transaction open before it has ended, so that what any
  // worker committed before the barrier is read.
  std::expected<RestoreStats, std::string> restore(
      const std::vector<std::int32_t>& partitions, std::chrono::milliseconds timeout,
      const std::map<std::int32_t, std::int64_t>& read_past = {});

  // Forgets the runs of these jobs partitions (revoked or lost).
  void forget(const std::vector<std::int32_t>& partitions);
  // The group committed `offset` for jobs partition `partition`: records of commands below it are
  // no longer needed (their commands are not delivered again).
  void forgetCommitted(std::int32_t partition, std::int64_t offset);

  // The last record known for `run_id`, or nullptr. Valid until the next non-const call.
  const v1::RunRecord* find(std::string_view run_id) const;
  // Keeps a record the worker wrote (or is writing) to the runs topic, unless its partition was
  // forgotten and not restored since: the end of a run that went on after its partition went
  // elsewhere is the next owner's to read.
  void remember(v1::RunRecord record);
  // The claims known on the partitions held, but those of `worker_id`'s incarnation
  // `incarnation` (this worker's own).
  std::vector<Claim> claims(std::string_view worker_id, std::string_view incarnation) const;
  // Runs known, over all partitions.
  std::size_t size() const { return runs_.size(); }

  // decideAttempt() with the record known for the command's run_id.
  AttemptDecision decide(const v1::JobCommand& command, unsigned max_attempts,
                         bool holder_lost = false) const {
    return decideAttempt(command, find(command.run_id()), max_attempts, holder_lost);
  }

  // The record to write before the run's process starts (its claim): state STARTED, starts and
  // the command's attempt from `admission` (kRun or kRerun), and the command itself.
  static v1::RunRecord startRecord(const v1::JobCommand& command, const AttemptDecision& admission,
                                   const TopicPartition& source, std::int64_t offset,
                                   std::string_view worker_id,
                                   std::chrono::system_clock::time_point now);
  // The record to write when the run ended in `terminal` state, or when the command ended without
  // starting (rejected, expired, given up): `starts` is how many times it was started.
  // `releases`: the starts that ended released so far; `released`: this one did (the record then
  // carries the command, recipe included, to be run again from).
  static v1::RunRecord endRecord(const v1::JobCommand& command, std::uint32_t starts,
                                 v1::RunState terminal, const TopicPartition& source,
                                 std::int64_t offset, std::string_view worker_id,
                                 std::chrono::system_clock::time_point now,
                                 std::uint32_t releases = 0, bool released = false);
  // `record` as a message of the runs topic: key run_id, partition the command's jobs partition.
  events::OutRecord toOutRecord(const v1::RunRecord& record) const;
  // A barrier for runs partition `partition`: an empty record keyed "barrier:<id>" (readers skip
  // it), written without a transaction; its offset is a restore's read_past.
  events::OutRecord barrier(std::int32_t partition, std::string_view id) const;

  const std::string& topic() const { return options_.runs_topic; }

 private:
  struct Reader;
  RunStoreOptions options_;
  std::unique_ptr<Reader> reader_;
  std::unordered_map<std::string, v1::RunRecord> runs_;
  std::set<std::int32_t> forgotten_;  // partitions forgotten and not restored since
};

}  // namespace outpost::consumer
