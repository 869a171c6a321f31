// Single use of signed commands across a pool: where each signed run id was first read, as the
// pool's workers record it on the runs topic. A worker about to run a signed command writes a use
// record (key "use:<run_id>", in the runs partition its run id hashes to) and reads that partition
// back up to its own record: the first use recorded there is the one that runs; a copy of the
// command read anywhere else (another offset, another partition, by any worker) is a replay.
// Partition order decides, so two copies read at the same moment by two workers cannot both win.
//
// Uses are kept for `window` (a token's longest life and the clock leeway on either side), after
// which a copy's token is refused as expired anyway. Every runs partition is read from `window`
// ago, so the ledger also reads the claims and ends there (and skips them): its cost grows with
// the runs written in a window.
//
// Threads: the worker's poll thread calls every method. start() blocks (metadata, offsets for
// times) for at most its timeout; poll() never waits.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/common/topic_partition.h"
#include "outpost/consumer/topic_reader.h"
#include "outpost/events/out_record.h"

namespace outpost::consumer {

// Where a command was read.
struct ReadAt {
  TopicPartition tp;
  std::int64_t offset = -1;
  bool operator==(const ReadAt&) const = default;
};

// The key prefix of use records on the runs topic (RunStore skips them).
inline constexpr std::string_view kUseKeyPrefix = "use:";

class UseLedger {
 public:
  UseLedger(const KafkaConfig& kafka, std::string runs_topic, const std::string& client_id,
            Millis window, const Clock& clock);
  ~UseLedger();
  UseLedger(const UseLedger&) = delete;
  UseLedger& operator=(const UseLedger&) = delete;

  // Reads every partition of the runs topic from `window` ago on. The error names the topic.
  std::expected<void, std::string> start(std::chrono::milliseconds timeout);

  // Takes what has arrived (up to a bound per call), without waiting; forgets uses older than the
  // window.
  void poll();

  // The record saying that `run_id` is used at `at` by `worker_id`.
  events::OutRecord useRecord(const std::string& run_id, const ReadAt& at,
                              const std::string& worker_id) const;
  // Whether the record at `offset` of runs partition `partition` has been read (poll()).
  bool readUpTo(std::int32_t partition, std::int64_t offset) const;
  // Where the first recorded use of `run_id` was read, when one is known.
  std::optional<ReadAt> firstUse(const std::string& run_id) const;
  std::size_t size() const { return first_.size(); }

  // The verdict on a use record written at `offset` of runs partition `partition` (useRecord()
  // for `run_id` read at `at`): once poll() has read that far, `done` gets the first use of
  // `run_id` then known (`at` itself when this one came first); when `deadline` passes first, why
  // it could not be told.
  using Verdict = std::function<void(std::expected<ReadAt, std::string>)>;
  void awaitVerdict(const std::string& run_id, const ReadAt& at, std::int32_t partition,
                    std::int64_t offset, std::chrono::steady_clock::time_point deadline,
                    Verdict done);

 private:
  std::string runs_topic_;
  Millis window_;
  const Clock& clock_;
  TopicReader reader_;
  std::int32_t partitions_ = 0;
  std::map<std::int32_t, std::int64_t> last_read_;  // by runs partition
  std::unordered_map<std::string, ReadAt> first_;
  std::multimap<std::int64_t, std::string> by_time_;  // record timestamp (ms) -> run_id
  struct Waiter {
    std::string run_id;
    ReadAt at;
    std::int32_t partition = 0;
    std::int64_t offset = -1;
    std::chrono::steady_clock::time_point deadline;
    Verdict done;
  };
  std::vector<Waiter> waiters_;
};

}  // namespace outpost::consumer
