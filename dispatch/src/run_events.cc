#include "outpost/dispatch/run_events.h"

#include <fmt/format.h>

namespace outpost::dispatch {

Ending endingOf(const runner::RunOutcome& o) {
  Ending e;
  e.message = o.message;
  switch (o.ending) {
    case runner::RunOutcome::Ending::kExited:
      if (o.exit_code == 0) {
        e.state = v1::SUCCEEDED;
        e.lineage = lineage::LineageEventType::kComplete;
      } else {
        e.message = runner::describeFailure(o);
      }
      break;
    case runner::RunOutcome::Ending::kSignaled:
      e.message = runner::describeFailure(o);
      break;
    case runner::RunOutcome::Ending::kTimedOut:
      e.state = v1::TIMED_OUT;
      e.lineage = lineage::LineageEventType::kAbort;
      break;
    case runner::RunOutcome::Ending::kCancelled:
      e.state = v1::CANCELLED;
      e.lineage = lineage::LineageEventType::kAbort;
      break;
    case runner::RunOutcome::Ending::kSpawnFailed:
      break;
  }
  return e;
}

std::string cancelMessage(std::string_view requested_by, std::string_view reason,
                          std::string_view when) {
  return fmt::format("cancelled by {}{}: {}", requested_by, when, reason);
}

RunEvents::RunEvents(std::string worker_id, std::string pool, const Clock& clock)
    : worker_id_(std::move(worker_id)), pool_(std::move(pool)), clock_(clock), uuids_(clock) {}

v1::RunEvent RunEvents::about(const EventSubject& s, std::uint64_t sequence, v1::RunState state) {
  const auto& c = *s.command;
  v1::RunEvent e;
  e.set_event_id(uuids_.next());
  e.set_run_id(c.run_id());
  e.set_job_id(c.job_id());
  e.set_job_type(c.job_type());
  e.set_attempt(s.attempt);
  e.set_redelivered(s.redelivered);
  e.set_sequence(sequence);
  e.set_state(state);
  e.set_event_time_ms(toUnixMillis(clock_.now()));
  e.set_worker_id(worker_id_);
  e.set_pool(pool_);
  e.set_exit_code(-1);
  e.mutable_source()->set_topic(s.tp.topic);
  e.mutable_source()->set_partition(s.tp.partition);
  e.mutable_source()->set_offset(s.offset);
  e.mutable_labels()->insert(c.labels().begin(), c.labels().end());
  return e;
}

v1::RunEvent RunEvents::notice(const std::string& run_id, std::uint32_t attempt,
                               std::uint64_t sequence, std::string message) {
  v1::RunEvent e;
  e.set_event_id(uuids_.next());
  e.set_run_id(run_id);
  e.set_attempt(attempt);
  e.set_sequence(sequence);
  e.set_state(v1::NOTICE);
  e.set_event_time_ms(toUnixMillis(clock_.now()));
  e.set_worker_id(worker_id_);
  e.set_pool(pool_);
  e.set_exit_code(-1);
  e.set_message(std::move(message));
  return e;
}

void RunEvents::describeOutcome(v1::RunEvent& e, const runner::RunOutcome& o) {
  e.set_exit_code(o.ending == runner::RunOutcome::Ending::kExited ? o.exit_code : -1);
  e.set_signal(o.signal);
  if (o.ending != runner::RunOutcome::Ending::kSpawnFailed) {
    e.set_started_at_ms(toUnixMillis(o.started_at));
    e.set_duration_ms(o.duration.count());
  }
  e.set_log_tail(o.tail);
  e.set_log_dropped_bytes(o.dropped_bytes);
  e.set_output_bytes(o.output_bytes);
  e.set_cpu_time_ms(o.cpu_time_ms);
  e.set_log_dropped_lines(o.log_dropped_lines);
}

}  // namespace outpost::dispatch
