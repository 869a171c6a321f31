// One taken command, from the moment it is read until its offset counts as done: what the
// dispatcher and the completion strategies share. Owning thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outpost/common/log.h"
#include "outpost/common/topic_partition.h"
#include "outpost/consumer/run_store.h"
#include "outpost/dispatch/admission.h"
#include "outpost/dispatch/run_events.h"
#include "outpost/events/out_record.h"
#include "outpost/lineage/child_events.h"
#include "outpost/v1/event.pb.h"
#include "outpost/v1/job.pb.h"

namespace outpost::dispatch {

// Where a run is in its life. Each moves only forward.
enum class Phase {
  kCheckingUse,  // signed: whether this is its command's first use is being recorded and read back
  kResolving,    // admitted; its secret references are being fetched
  kQueued,       // waiting for a slot
  kStarting,     // holds a slot; its start record is being written
  kRunning,      // its process was handed to the executor
  kFinished,     // ended (or never to run): what it wrote is being acknowledged and committed
};

// A cancel from the control topic, as remembered until cancel_memory passes.
struct CancelRequest {
  std::string command_id;
  std::string requested_by;
  std::string reason;
  std::uint64_t notices = 0;  // NOTICE events written about the run while it was unknown here
};

struct Run {
  std::uint64_t id = 0;
  TopicPartition tp;
  std::int64_t offset = -1;
  v1::JobCommand command;
  std::size_t bytes = 0;  // its record's value: what it holds while it waits
  // Refused: the bytes of its dead letter (the original record), held until it is acknowledged.
  std::size_t dead_letter_bytes = 0;
  consumer::AttemptDecision attempts;  // what the runs topic said: attempt, starts, verdict
  std::optional<Admitted> admitted;    // template and plan, once admission passed
  // The templates it was admitted under, kept alive for it when a reload replaces them.
  std::shared_ptr<const std::map<std::string, TemplateConfig>> templates;
  Phase phase = Phase::kQueued;
  // kCheckingUse: its record, kept for the dead letter a replay gets.
  std::optional<consumer::ConsumedMessage> held;
  // Its command's offset waits for it in the offset tracker: taken from its partition, and
  // neither claimed nor ended yet (a lost worker's run taken again from its claim has none).
  bool tracked = false;
  // Its claim (start record) is durable: the run is this worker's, whoever owns its partition.
  bool claimed = false;
  // Its partition went elsewhere before it was claimed: it does not start here, and what it ended
  // with is the next owner's to write.
  bool revoked = false;
  // Taken again from a lost worker's claim: why that worker counts as lost.
  std::string lost_why;
  // Stopped at shutdown (the drain timeout passed) and let go: its end record says so, and the
  // owner of its partition runs it again at once.
  bool released = false;
  std::uint64_t sequence = 0;                         // of the last event of this attempt
  v1::RunState terminal = v1::RUN_STATE_UNSPECIFIED;  // once its terminal event is written
  std::optional<CancelRequest> cancel;                // a control-topic cancel is stopping it
  std::optional<std::chrono::system_clock::time_point> started_at;   // of its process
  std::optional<std::chrono::system_clock::time_point> record_time;  // its command's timestamp
  std::unique_ptr<lineage::ChildLineageProcessor> child_lineage;  // when it has a lineage channel

  // Completion's bookkeeping (completion.h): records not yet acknowledged; exactly-once, what
  // goes into its transaction and how far that went; at-least-once, whether its end record went.
  int pending_acks = 0;
  std::vector<events::OutRecord> finals;
  bool submitted = false;
  bool committed = false;
  bool end_recorded = false;

  const TemplateConfig* tmpl() const { return admitted ? admitted->tmpl : nullptr; }
  // Whether what it ends with is written here.
  bool ours() const { return claimed || !revoked; }
  EventSubject subject() const {
    return {&command, tp, offset, attempts.attempt,
            attempts.verdict == consumer::AttemptDecision::Verdict::kRerun};
  }
};

// The fields of a log line about the run a command or event is for (common/log.h).
inline RunLogFields fieldsOf(const v1::JobCommand& c) {
  return {c.run_id(), c.job_id(), c.job_type()};
}
inline RunLogFields fieldsOf(const v1::RunEvent& e) {
  return {e.run_id(), e.job_id(), e.job_type()};
}

}  // namespace outpost::dispatch
