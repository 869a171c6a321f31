// The jobs-topic consumer: one member of the group outpost.<pool>. It is owned by one thread (the
// poll thread), which must call poll() at least every max.poll.interval.ms; every method but
// wake() belongs to that thread. Pause state is tracked here and re-applied after every
// assignment, since librdkafka 2.0.2 forgets it across rebalances.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/consumer/offset_tracker.h"
#include "outpost/events/producer.h"

namespace outpost::events {
class GroupMetadata;  // outpost/events/transactional_publisher.h
}  // namespace outpost::events

namespace outpost::consumer {

struct ConsumedMessage {
  TopicPartition tp;
  std::int64_t offset = -1;
  std::string key;
  std::string value;
  std::vector<events::Header> headers;
  // The record's timestamp (when it was produced, or appended under LogAppendTime); unset when
  // the record has none.
  std::optional<std::chrono::system_clock::time_point> timestamp;
};

// How partitions go away: revoked by a rebalance (what is done of them may still be committed),
// or lost (the member's session ended: nothing of them can be committed any more).
enum class Revocation { kRevoked, kLost };

// Called on the poll thread from inside poll(), while the group rebalances.
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  virtual void onAssigned(const std::vector<TopicPartition>& partitions) = 0;
  // The partitions are going away: finish or hand over their work, then commit (commitSync) what
  // is done before returning.
  virtual void onRevoked(const std::vector<TopicPartition>& partitions, Revocation how) = 0;
};

// How a commit goes: sent and left to the offset-commit callback (kAsync), or waited for, bounded
// (kAwait: a revocation commits what is done before the partitions go).
enum class CommitMode { kAsync, kAwait };

// Why an offset commit failed, as a fixed word for metrics and logs: the group moved on without
// this member (rebalance in progress, an old generation, an unknown or fenced member), the group
// coordinator was unavailable or moved, the request timed out or its connection went, or another
// error.
enum class CommitFailure { kRebalance, kCoordinator, kTimeout, kOther };
inline constexpr std::array<CommitFailure, 4> kCommitFailures = {
    CommitFailure::kRebalance, CommitFailure::kCoordinator, CommitFailure::kTimeout,
    CommitFailure::kOther};
std::string_view commitFailureName(CommitFailure failure);

class JobConsumer {
 public:
  // Throws ConfigError when the configuration is refused.
  // `extra` (e.g. group.instance.id) goes under the configuration's own properties.
  JobConsumer(const KafkaConfig& config, const std::string& group_id, const std::string& topic,
              RebalanceListener& listener, const std::map<std::string, std::string>& extra = {});
  ~JobConsumer();
  JobConsumer(const JobConsumer&) = delete;
  JobConsumer& operator=(const JobConsumer&) = delete;

  // Waits up to `timeout` for the next message. Serves rebalances. Errors are logged.
  std::optional<ConsumedMessage> poll(std::chrono::milliseconds timeout);
  // Any thread: makes a poll() in progress return early.
  void wake();

  void setPaused(bool paused);
  bool paused() const { return paused_; }

  // Commits, per partition, the next offset to read. Every outcome, of either mode, reaches the
  // offset-commit callback on the poll thread, which counts failures (commitFailures()). kAwait
  // waits at most kAwaitCommit for the broker's answer, except inside close() (a revocation's
  // commit), where it is sent without waiting: close() waits for commits in flight.
  void commit(const std::map<TopicPartition, std::int64_t>& offsets, CommitMode mode);
  static constexpr std::chrono::seconds kAwaitCommit{10};
  static_assert(kAwaitCommit <= kLongestUnannouncedWait, "http.live_timeout is checked against it");
  // Commits that failed since start, by why.
  const std::map<CommitFailure, std::uint64_t>& commitFailures() const { return commit_failures_; }
  // Leaves the group (unsubscribes): the next poll() serves the revocation, and the rest of the
  // group takes the partitions. rejoin() subscribes again.
  void leave();
  void rejoin();
  bool left() const { return left_; }
  // Leaves the group (serving the final revocation); poll() must not be called afterwards.
  // Bounded: a close that has not finished after `timeout` is given up (logged, false), and the
  // handle is then left undestroyed (destroying it would wait for the same stuck group), so a
  // rebalance that arrives while closing can never keep the process from exiting. A rebalance callback during the close only
  // unassigns: nothing is taken, the listener is told of nothing new.
  // librdkafka 2.0.2 workaround (fixed in 2.4.0, issue #4527): with the cooperative assignor, an assignment
  // that arrives while the consumer closes leaves the group stuck in WAIT_ASSIGN_CALL, and the
  // close never ends; this bound is what ends it then.
  static constexpr std::chrono::seconds kCloseTimeout{5};
  bool close(std::chrono::milliseconds timeout = kCloseTimeout);

  const std::vector<TopicPartition>& assignment() const { return assignment_; }
  // From librdkafka's statistics (statistics.interval.ms, default 5 s), for each assigned
  // partition it has seen: the end offset (the last stable offset, since commands are read
  // read_committed) and the committed offset (-1 when none). A paused partition is not fetched,
  // so its end offset is the one seen before the pause.
  struct PartitionOffsets {
    std::int64_t end = -1;
    std::int64_t committed = -1;
  };
  const std::map<std::int32_t, PartitionOffsets>& partitionOffsets() const { return offsets_; }
  // How many times partitions were revoked or lost since start.
  std::uint64_t revocations() const { return revocations_; }

  // This member's identity in the group now (generation, member id), for the offsets of a
  // transaction. The same pointer for as long as they stay the same, a new one after a rebalance
  // that changed them; so a unit made before that rebalance carries the old one, and the broker
  // refuses its offsets. Read from librdkafka again after every rebalance callback and after
  // refreshGroupMetadata().
  std::shared_ptr<const events::GroupMetadata> groupMetadata();
  // After a transaction aborted: its offsets may have been refused for a generation that changed
  // without a callback (a cooperative rebalance that moved none of this member's partitions).
  void refreshGroupMetadata() { group_metadata_fresh_ = false; }

 private:
  std::optional<std::string> subscribe();  // librdkafka's reason when refused

  struct Impl;
  std::unique_ptr<Impl> impl_;
  RebalanceListener& listener_;
  std::string topic_;
  bool paused_ = false;
  bool closing_ = false;  // close() has begun: assignments are no longer taken
  bool close_given_up_ = false;  // close() ran out of time: the handle is not destroyed
  // The rebalance protocol of the last callback before the close. librdkafka 2.0.2 workaround: it
  // may block in
  // rd_kafka_rebalance_protocol() once the consumer closes (librdkafka issue #4041).
  bool cooperative_ = false;
  std::map<CommitFailure, std::uint64_t> commit_failures_;
  bool left_ = false;
  std::vector<TopicPartition> assignment_;
  std::uint64_t revocations_ = 0;
  std::map<std::int32_t, PartitionOffsets> offsets_;
  std::shared_ptr<const events::GroupMetadata> group_metadata_;
  bool group_metadata_fresh_ = false;  // group_metadata_ is this generation's
  friend struct Impl;
};

}  // namespace outpost::consumer
