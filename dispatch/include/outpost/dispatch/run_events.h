// Every RunEvent a worker writes is built here: the fields each one carries (event id, run, job,
// attempt, sequence, time, worker, pool, source position, labels), the terminal event a process's
// outcome becomes, and the messages of cancels. Owning thread only (the id generator).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "outpost/common/clock.h"
#include "outpost/common/topic_partition.h"
#include "outpost/lineage/openlineage.h"
#include "outpost/runner/supervisor.h"
#include "outpost/v1/event.pb.h"
#include "outpost/v1/job.pb.h"

namespace outpost::dispatch {

// The command an event is about, where it was read, and which attempt of it this is.
struct EventSubject {
  const v1::JobCommand* command = nullptr;
  TopicPartition tp;
  std::int64_t offset = -1;
  std::uint32_t attempt = 1;
  bool redelivered = false;  // a rerun after a lost worker
};

// What a finished process means for its run: the terminal state, the lineage record that ends
// it, and the message (not masked yet).
struct Ending {
  v1::RunState state = v1::FAILED;
  lineage::LineageEventType lineage = lineage::LineageEventType::kFail;
  std::string message;
};
Ending endingOf(const runner::RunOutcome& outcome);

// The message of a CANCELLED event when a control-topic cancel ended the run; `when` says at which
// point ("" while running, " before it started", " while queued").
std::string cancelMessage(std::string_view requested_by, std::string_view reason,
                          std::string_view when);

class RunEvents {
 public:
  RunEvents(std::string worker_id, std::string pool, const Clock& clock);

  // An event about `subject` with the given sequence number (the caller counts per attempt).
  v1::RunEvent about(const EventSubject& subject, std::uint64_t sequence, v1::RunState state);
  // A NOTICE about a run this worker holds nothing of (no command, no source position).
  v1::RunEvent notice(const std::string& run_id, std::uint32_t attempt, std::uint64_t sequence,
                      std::string message);
  // Fills a terminal event from the process's outcome (exit code, signal, times, output).
  static void describeOutcome(v1::RunEvent& event, const runner::RunOutcome& outcome);

 private:
  std::string worker_id_, pool_;
  const Clock& clock_;
  UuidGenerator uuids_;
};

}  // namespace outpost::dispatch
