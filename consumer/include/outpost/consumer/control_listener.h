// The control topic: commands about runs already submitted (cancel, keyed by run_id) and about
// workers (drain, resume). Every worker reads every partition of it, outside any consumer group,
// so that whichever worker holds a run sees its cancel. What a worker remembers about run_ids to
// answer cancels that come early or late is a RunMemory (run_memory.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/consumer/offset_tracker.h"
#include "outpost/events/producer.h"
#include "outpost/v1/control.pb.h"
#include "outpost/v1/worker.pb.h"

namespace outpost::consumer {

struct ControlMessage {
  TopicPartition tp;
  std::int64_t offset = -1;
  // The message's timestamp (its producer's clock), or when it was read if it has none.
  std::chrono::system_clock::time_point timestamp;
  // Written before this listener started and read because it looks cancel_memory back: the
  // worker acts on it and remembers it, but does not answer it (it was answered when it was new).
  bool replayed = false;
  v1::ControlCommand command;
  // The record's value and headers, as read (a signed command's token covers the value).
  std::string value;
  std::vector<events::Header> headers;
};

// A worker's status read from the workers topic, or its deletion (a tombstone: `status` unset).
struct StatusMessage {
  std::string worker_id;  // the record's key
  std::optional<v1::WorkerStatus> status;
};

// What the listener read: a control command, or a worker's status.
using Followed = std::variant<ControlMessage, StatusMessage>;

// Decodes a control-topic message: a ControlCommand with a command this worker knows, whose
// run_id is a UUID (cancel) or that names workers (drain, resume). Never throws: bad input is a
// reason, not an error.
std::expected<v1::ControlCommand, std::string> decodeControlCommand(std::string_view bytes);

// Whether a drain or resume is for the worker `worker_id` of `pool`.
bool selects(const v1::WorkerSelector& workers, const std::string& worker_id,
             const std::string& pool);

// A second librdkafka consumer, beside the jobs consumer. It assigns itself every partition of the
// control topic (no group membership, nothing committed) starting at the first message not older
// than `memory`, and picks up the topic when it is created later and partitions added to it. With
// a workers topic, it reads every partition of that one too, from the start (compacted: the last
// status of each worker), and goes on reading it: the statuses that renew runs' leases.
//
// Threads: poll() belongs to the worker's poll thread and never blocks. A discovery thread of its
// own does what blocks (metadata, offsets for times, watermarks) and assigns what it finds.
class ControlListener {
 public:
  // `group_id` is only there because librdkafka's assign() needs one; it is never joined and no
  // offset is committed under it. Throws ConfigError when the configuration is refused.
  ControlListener(const KafkaConfig& config, const std::string& topic, const std::string& group_id,
                  const std::string& client_id, Millis memory, const Clock& clock,
                  const std::string& workers_topic = {});
  // Stops the discovery thread (waiting at most for the broker request in flight) and closes.
  ~ControlListener();
  ControlListener(const ControlListener&) = delete;
  ControlListener& operator=(const ControlListener&) = delete;

  // Poll thread: the next decodable command or status already fetched, without waiting; nullopt
  // when there is none. Undecodable messages are logged and skipped.
  std::optional<Followed> poll();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::consumer
