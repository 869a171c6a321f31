// The Dispatcher (dispatcher.h). About 800 lines, on purpose: one state machine, read top to
// bottom in the order a run meets it (intake, slots and starts, a running run, writing, retiring,
// cancels, rebalance and drain). What is not the state machine lives beside it: admission.cc (may
// this command run), completion.cc (how its records reach Kafka), run_events.cc (its events).
#include "outpost/dispatch/dispatcher.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "completion.h"
#include "outpost/consumer/dead_letter.h"
#include "outpost/consumer/intake.h"
#include "outpost/consumer/offset_tracker.h"
#include "outpost/consumer/run_memory.h"
#include "outpost/dispatch/admission.h"
#include "outpost/dispatch/run_events.h"
#include "outpost/dispatch/signatures.h"
#include "outpost/events/wire.h"
#include "outpost/lineage/openlineage.h"
#include "outpost/v1/run_state.h"
#include "run.h"

namespace outpost::dispatch {
namespace {

// Most runs and cancels remembered (each also expires after cancel_memory), so that a flood of
// cancels cannot exhaust memory.
constexpr std::size_t kRememberedRuns = 100'000;

// How often the claims of the partitions held are checked for lost workers.
constexpr std::chrono::seconds kLostWatchInterval{1};

// "10m", "90s", "1500ms": how the configuration writes durations.
std::string describeDuration(Millis d) {
  auto ms = d.count();
  if (ms > 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms > 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms > 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms > 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// A run that ended here, remembered for cancel_memory to answer late cancels.
struct EndedRun {
  v1::RunState state = v1::RUN_STATE_UNSPECIFIED;
  std::string job_id, job_type;
  std::uint32_t attempt = 1;
  std::uint64_t sequence = 0;  // of the last event written about it
};

}  // namespace

struct Dispatcher::Impl final : CompletionHost {
  const Config& config;
  Environment worker_env;
  Ports ports;
  // The templates commands are admitted under now (setTemplates replaces them; a run keeps those
  // it was admitted under).
  std::shared_ptr<const std::map<std::string, TemplateConfig>> templates;
  AdmissionPolicy policy;
  SignatureSettings signatures;  // setSignatures
  SingleUse control_uses;        // signed control commands acted on (admitControl)
  UseRecords* uses = nullptr;    // single use of signed job commands (setUseRecords)
  RunEvents events;
  lineage::LineageBuilder lineage;
  consumer::OffsetTracker offsets;
  std::unique_ptr<Completion> completion;

  std::map<std::uint64_t, Run> runs;
  // runs by their command's run_id (a duplicate or a hand-over may share one), so that taking a
  // message does not look through every queued run.
  std::unordered_multimap<std::string, std::uint64_t> by_run_id;
  std::deque<std::uint64_t> queue;    // admitted, waiting for a slot, in arrival order
  std::size_t queued_bytes = 0;       // the bytes of the commands in `queue`
  std::size_t dead_letter_bytes = 0;  // of dead letters not yet acknowledged (Run's)
  std::map<std::string, unsigned> running_per_template;
  std::size_t running = 0;  // runs holding a slot (starting or running)
  std::uint64_t alone = 0;  // the rerun that runs alone (see dispatch), while it runs
  bool retired = false;     // a run retired since tick() last dispatched
  std::uint64_t next_id = 1;
  bool draining = false;
  bool abandoned = false;  // see Dispatcher::abandon
  bool held = false;       // see Dispatcher::hold
  std::uint64_t skipped_other_pool = 0;
  consumer::RunMemory<EndedRun> ended{kRememberedRuns};         // runs that ended here, by run_id
  consumer::RunMemory<CancelRequest> cancels{kRememberedRuns};  // cancels received, by run_id
  std::set<std::string> recovering;  // lost workers being fenced and read again (watchLost)
  // Why a worker whose lease lapsed is not counted lost yet (it is still in the group, or its
  // fence failed), as last logged: the watch tries again every second and logs only a change.
  std::map<std::string, std::string> not_lost_yet;
  std::chrono::steady_clock::time_point last_lost_watch{};

  Impl(const Config& c, Environment env, Ports p)
      : config(c),
        worker_env(std::move(env)),
        ports(p),
        templates(std::make_shared<const std::map<std::string, TemplateConfig>>(c.templates)),
        policy{templates.get(), &worker_env, config.worker.work_dir},
        events(config.worker.id, config.worker.pool, ports.clock),
        lineage(config.lineage.job_namespace, {config.worker.id, config.worker.pool}) {
    completion = ports.transactions ? makeExactlyOnce(*this, ports, offsets, *ports.transactions)
                                    : makeAtLeastOnce(*this, ports, offsets);
  }

  // ---------------------------------------------------------------------------------------------
  // Intake

  void onMessage(consumer::ConsumedMessage message) {
    if (draining) return;  // fetched before the pause; not taken, so not committed
    // The signature is checked before the value is decoded. What is decoded of a command that
    // fails the check serves only to skip another pool's command and to name the run in its
    // REJECTED event: nothing of it runs.
    std::optional<security::SignatureRefusal> unsigned_why;
    std::optional<security::VerifiedCommand> signed_by;
    if (signatures.mode != CommandSigning::kOff) {
      const auto encoding = consumer::encodingOf(message.value, message.headers);
      auto verified = checkSignature(SignedRecord{.value = message.value,
                                                  .headers = &message.headers,
                                                  .topic = message.tp.topic,
                                                  .kind = security::CommandKind::kJob,
                                                  .cty = consumer::contentTypeOf(encoding)},
                                     config.worker.pool, signatures, ports.clock.now());
      if (verified) {
        signed_by = std::move(*verified);
      } else {
        unsigned_why = std::move(verified.error());
      }
    }
    auto decoded = consumer::decodeCommand(message.value, message.headers);
    Run& run = newRun(message.tp, message.offset,
                      decoded ? std::move(*decoded) : std::move(decoded.error().partial));
    run.record_time = message.timestamp;
    run.bytes = message.value.size();
    run.tracked = true;
    offsets.begin(run.tp, run.offset);
    if (decoded && consumer::isForAnotherPool(run.command, config.worker.pool)) {
      // Pools sharing a jobs topic each read every command: another pool's is not bad input.
      ++skipped_other_pool;
      logRun(spdlog::level::debug, fieldsOf(run.command),
             "run {}: for pool '{}', not '{}': skipped ({} so far)", run.command.run_id(),
             run.command.pool(), config.worker.pool, skipped_other_pool);
      return skip(run, reason::kOtherPool);
    }
    if (signed_by && decoded) {
      unsigned_why = checkSignedId(*signed_by, run.command.run_id());
      if (!unsigned_why) {
        unsigned_why = checkKeyPolicy(*signed_by, "run", run.command.job_type(), config.worker.pool,
                                      signatures);
      }
    }
    if (unsigned_why && !refusedUnsigned(run, message, *unsigned_why)) return;
    if (!decoded) return reject(run, message, reason::kUndecodable, decoded.error().reason);
    if (signed_by && !unsigned_why) {
      logRun(spdlog::level::debug, fieldsOf(run.command), "run {}: signed by key {}{}",
             run.command.run_id(), signed_by->kid,
             signed_by->claims.iss.empty() ? "" : " (" + signed_by->claims.iss + ")");
    }
    // The same command again while its run is here (a redelivery after a rebalance that gave the
    // partition back, or a commit that did not reach the broker): the run is this one's.
    if (const Run* first = sameCommandHere(run)) {
      logRun(spdlog::level::info, fieldsOf(run.command),
             "run {}: its command came again while it is here (taken at {}[{}]@{}); skipped",
             run.command.run_id(), first->tp.topic, first->tp.partition, first->offset);
      return skip(run, reason::kClaimed);
    }
    // The same run_id twice at once (a duplicate command): refuse the second without a REJECTED
    // event, which would be a second terminal event for it.
    auto [same, end] = by_run_id.equal_range(run.command.run_id());
    bool duplicate = std::any_of(same, end, [&](const auto& kv) {
      const Run& other = runs.at(kv.second);
      return other.id != run.id && other.ours() && other.phase != Phase::kFinished;
    });
    if (duplicate) {
      // A copy of a signed command is a replay, whatever else it is.
      const bool replay = signed_by && !unsigned_why;
      return reject(
          run, message,
          replay ? security::reasonOf(security::SignatureCheck::kReplayed) : reason::kDuplicate,
          std::string(replay ? "replayed: " : "") + "run_id " + run.command.run_id() +
              " is already queued or running on this worker",
          /*publish_event=*/false);
    }
    if (pastDeadline(run.command)) {
      return endWithoutRunning(run, v1::EXPIRED,
                               "already past its deadline (not_after) when taken");
    }
    if (signed_by && !unsigned_why && uses && !firstUseHere(run, message)) return;
    decideAndConsider(run, message);
  }

  // What the runs topic knows: claimed by a worker, started on one that was lost (before claims),
  // or already ended.
  void decideAndConsider(Run& run, const consumer::ConsumedMessage& message) {
    run.attempts = ports.attempts.decide(run.command, config.worker.max_attempts, false);
    consider(run, message);
  }

  // Single use of a signed command: true when this record is known to be its first use (or is
  // that record read again); false when it is refused as a replay, or while the verdict is awaited
  // (the run waits in kCheckingUse, holding its record for a dead letter; onUseVerdict goes on).
  bool firstUseHere(Run& run, const consumer::ConsumedMessage& message) {
    const consumer::ReadAt here{run.tp, run.offset};
    if (auto first = uses->firstUse(run.command.run_id())) {
      if (*first == here) return true;
      replayed(run, message, *first);
      return false;
    }
    run.phase = Phase::kCheckingUse;
    run.held = message;
    uses->recordUse(run.command.run_id(), here,
                    onOwner(ports.poster, [this, id = run.id, here](
                                              std::expected<consumer::ReadAt, std::string> first) {
                      onUseVerdict(id, here, std::move(first));
                    }));
    return false;
  }

  void onUseVerdict(std::uint64_t id, const consumer::ReadAt& here,
                    std::expected<consumer::ReadAt, std::string> first) {
    Run* run = findRun(id);
    if (!run || run->phase != Phase::kCheckingUse || !run->held) return;  // dropped meanwhile
    auto message = std::move(*run->held);
    run->held.reset();
    run->phase = Phase::kQueued;
    if (!first) {
      return endWithoutRunning(
          *run, v1::FAILED,
          "cannot tell whether its signed command was used before: " + first.error());
    }
    if (*first != here) return replayed(*run, message, *first);
    decideAndConsider(*run, message);
  }

  // A copy of a signed command whose first use was read elsewhere: dead-lettered and counted (or,
  // under warn, run and counted). No REJECTED event: the run id's events are the first use's.
  void replayed(Run& run, const consumer::ConsumedMessage& message, const consumer::ReadAt& first) {
    const auto why = fmt::format(
        "replayed: run {} was signed for one use, first read at {}[{}]@{}; this copy is {}[{}]@{}",
        run.command.run_id(), first.tp.topic, first.tp.partition, first.offset, message.tp.topic,
        message.tp.partition, message.offset);
    if (signatures.mode == CommandSigning::kWarn) {
      refusedUnsigned(run, message, {security::SignatureCheck::kReplayed, why});
      return decideAndConsider(run, message);
    }
    reject(run, message, security::reasonOf(security::SignatureCheck::kReplayed), why,
           /*publish_event=*/false);
  }

  // A command whose signature `require` would refuse: refused under require (false: the caller
  // stops), counted and logged under warn (true: it goes on).
  bool refusedUnsigned(Run& run, const consumer::ConsumedMessage& message,
                       const security::SignatureRefusal& why) {
    if (signatures.mode == CommandSigning::kRequire) {
      reject(run, message, security::reasonOf(why.check), why.message);
      return false;
    }
    ports.observer.signatureWarning(security::reasonOf(why.check));
    logRun(spdlog::level::warn, fieldsOf(run.command),
           "run {} ({}[{}]@{}) would be refused when security.commands is require: {}",
           run.command.run_id().empty() ? "unknown" : run.command.run_id(), message.tp.topic,
           message.tp.partition, message.offset, why.message);
    return true;
  }

  Run& newRun(const TopicPartition& tp, std::int64_t offset, v1::JobCommand command) {
    Run& run = runs[next_id];
    run.id = next_id++;
    run.tp = tp;
    run.offset = offset;
    run.command = std::move(command);
    by_run_id.emplace(run.command.run_id(), run.id);
    run.attempts.attempt = std::max(1u, run.command.attempt());
    return run;
  }

  // Another run here taken from the same command (partition and offset) that is still this
  // worker's: not one whose partition went away before it was claimed (that one does not start
  // here, and the command, delivered again, is taken again).
  const Run* sameCommandHere(const Run& run) const {
    auto [same, end] = by_run_id.equal_range(run.command.run_id());
    for (; same != end; ++same) {
      const Run& other = runs.at(same->second);
      if (other.id != run.id && other.ours() && other.tp == run.tp && other.offset == run.offset) {
        return &other;
      }
    }
    return nullptr;
  }

  // Not run here, nothing published (`why`, a reason:: word): only its offset is left to be done.
  void skip(Run& run, std::string_view why) {
    ports.observer.commandSkipped(why);
    run.phase = Phase::kFinished;
    maybeRetire(run);
  }

  // Runs, skips or ends the run as its attempt decision says (`message` is its command's record,
  // for a dead letter).
  void consider(Run& run, const consumer::ConsumedMessage& message) {
    switch (run.attempts.verdict) {
      case consumer::AttemptDecision::Verdict::kRun:
        break;
      case consumer::AttemptDecision::Verdict::kRerun:
        logRun(spdlog::level::warn, fieldsOf(run.command), "run {}: {}", run.command.run_id(),
               run.attempts.reason);
        break;
      case consumer::AttemptDecision::Verdict::kSkip:
        // Its terminal event was published before: only its offset is left to commit.
        logRun(spdlog::level::info, fieldsOf(run.command), "run {}: not run again: {}",
               run.command.run_id(), run.attempts.reason);
        return skip(run, reason::kAlreadyEnded);
      case consumer::AttemptDecision::Verdict::kClaimed:
        // Its holder ends it; if the holder is lost, the lost-run watch here runs it again.
        logRun(spdlog::level::info, fieldsOf(run.command), "run {}: not run here: {}",
               run.command.run_id(), run.attempts.reason);
        return skip(run, reason::kClaimed);
      case consumer::AttemptDecision::Verdict::kGiveUp:
        logRun(spdlog::level::warn, fieldsOf(run.command), "run {}: not run again: {}",
               run.command.run_id(), run.attempts.reason);
        return endWithoutRunning(run, v1::FAILED, run.attempts.reason, /*lineage_fail=*/true);
    }
    auto admitted = admit(run.command, run.attempts.attempt, policy);
    if (!admitted) return reject(run, message, admitted.error().reason, admitted.error().message);
    run.admitted = std::move(*admitted);
    run.templates = templates;
    // The command keeps its recipe: its claim carries it, and so does its end record if it is
    // released at shutdown. The recipe (up to a megabyte) is held twice, in the command and in the
    // plan, for as long as the run is here.
    if (!run.admitted->secrets.empty()) return resolveSecrets(run);
    enqueue(run);
  }

  void resolveSecrets(Run& run) {
    run.phase = Phase::kResolving;
    ports.secrets.resolve(run.admitted->secrets,
                          onOwner(ports.poster, [this, id = run.id](ResolvedSecrets values) {
                            onResolved(id, std::move(values));
                          }));
  }

  void onResolved(std::uint64_t id, ResolvedSecrets values) {
    Run* run = findRun(id);
    if (!run || run->phase != Phase::kResolving) return;  // dropped or cancelled meanwhile
    if (!values) {
      // The command is fine; the store did not answer: FAILED (never started), not REJECTED.
      return endWithoutRunning(*run, v1::FAILED,
                               "cannot resolve a secret: " + values.error().message);
    }
    resolveInto(*run->admitted, run->command, *values);
    enqueue(*run);
  }

  void enqueue(Run& run) {
    run.phase = Phase::kQueued;
    // A cancel for this run came first (from the control topic, within cancel_memory).
    if (auto* cancel = cancels.find(run.command.run_id(), ports.clock.now())) {
      if (run.command.attempt() == 1) run.sequence = cancel->notices;  // after its NOTICEs
      return endCancelled(run, *cancel, " before it started");
    }
    queue.push_back(run.id);
    queued_bytes += run.bytes;
    dispatch();
    if (run.phase == Phase::kQueued) {
      logRun(spdlog::level::info, fieldsOf(run.command),
             "run {} ({}) queued: {} running, {} queued", run.command.run_id(), run.tmpl()->name,
             running, queue.size());
    }
    updatePause();
  }

  // `why` is a fixed word for metrics (reason:: or Refusal::), `reason` the text for people.
  void reject(Run& run, const consumer::ConsumedMessage& message, std::string_view why,
              const std::string& reason, bool publish_event = true) {
    ports.observer.commandRejected(why);
    ports.observer.deadLettered();
    logRun(spdlog::level::warn, fieldsOf(run.command), "rejected {}[{}]@{} (run {}): {}",
           message.tp.topic, message.tp.partition, message.offset,
           run.command.run_id().empty() ? "unknown" : run.command.run_id(), reason);
    run.phase = Phase::kFinished;
    // Held until acknowledged, and counted with the waiting commands (updatePause).
    run.dead_letter_bytes = message.value.size();
    dead_letter_bytes += run.dead_letter_bytes;
    // With the REJECTED event and the offset (one transaction, exactly-once).
    completion->publish(
        run, consumer::deadLetterRecord(config.topics.dlq, message, reason, config.worker.id),
        RecordPart::kEnd);
    if (publish_event && !run.command.run_id().empty()) {
      auto e = newEvent(run, v1::REJECTED);
      e.set_message(reason);
      publishEvent(run, e);
    }
    maybeRetire(run);
    updatePause();
  }

  bool pastDeadline(const v1::JobCommand& c) const {
    return c.not_after_ms() > 0 && toUnixMillis(ports.clock.now()) > c.not_after_ms();
  }

  // Ends a run (never started, or lost elsewhere) with a terminal event here.
  void endWithoutRunning(Run& run, v1::RunState state, const std::string& message,
                         bool lineage_fail = false) {
    run.phase = Phase::kFinished;
    auto e = newEvent(run, state);
    e.set_message(message);
    logRun(spdlog::level::warn, fieldsOf(run.command), "run {} {}: {}", run.command.run_id(),
           v1::RunState_Name(state), message);
    publishEvent(run, e);
    if (lineage_fail) {
      // The lost worker wrote the attempt's START; this ends it.
      lineage::LineageOutcome lo;
      lo.message = message;
      publishLineage(run, lineage::LineageEventType::kFail, std::move(lo));
    }
    maybeRetire(run);
  }

  // ---------------------------------------------------------------------------------------------
  // Slots and starts

  // A rerun (its worker was lost while running it) runs alone: if it is what kills workers, it
  // takes no other run with it. It waits until the runs started before it have ended and their
  // ends are written (a run lost after it ended would count as lost too), and the runs after it
  // wait until its own end is written.
  void dispatch() {
    auto settled = [this] {
      return std::ranges::none_of(runs, [](const auto& kv) {
        auto p = kv.second.phase;
        return p == Phase::kStarting || p == Phase::kRunning || p == Phase::kFinished;
      });
    };
    if (held) return;
    for (auto it = queue.begin(); it != queue.end() && running < config.worker.slots;) {
      if (runs.contains(alone)) return;
      Run& run = runs.at(*it);
      if (run.attempts.verdict == consumer::AttemptDecision::Verdict::kRerun) {
        if (!settled()) return;
        alone = run.id;
      }
      unsigned limit = run.tmpl()->concurrency;
      if (limit != 0 && running_per_template[run.tmpl()->name] >= limit) {
        ++it;  // this template is at its limit; later commands of other templates may go first
        continue;
      }
      it = queue.erase(it);
      queued_bytes -= run.bytes;
      start(run);
    }
  }

  void start(Run& run) {
    if (pastDeadline(run.command)) {
      return endWithoutRunning(run, v1::EXPIRED, "not started before its deadline (not_after)");
    }
    run.phase = Phase::kStarting;
    ++running;
    ++running_per_template[run.tmpl()->name];
    recordStart(run);
  }

  void releaseSlot(Run& run) {
    --running;
    --running_per_template[run.tmpl()->name];
  }

  // The start record is written before the process starts, so that a worker lost while running
  // it is counted against max_attempts by the next owner (a job that kills its worker every time
  // included). A redelivery also ends the lost attempt (with it, in one transaction when
  // exactly-once).
  void recordStart(Run& run) {
    auto start = ports.attempts.recordStart(run.command, run.attempts, run.tp, run.offset);
    std::optional<events::OutRecord> lost;
    // After a release the previous attempt already ended (its worker wrote that).
    if (run.attempts.verdict == consumer::AttemptDecision::Verdict::kRerun &&
        !run.attempts.after_release) {
      auto e = newEvent(run, v1::FAILED);
      e.set_attempt(run.attempts.attempt - 1);
      e.set_redelivered(false);
      e.set_retrying(true);
      e.set_message(run.lost_why.empty() ? fmt::format("worker {} was lost while running it",
                                                       run.attempts.lost_worker)
                                         : fmt::format("worker {} was lost while running it: {}",
                                                       run.attempts.lost_worker, run.lost_why));
      run.sequence = 0;  // the sequence counts the events of this attempt
      lost = events::OutRecord{config.topics.events, -1, e.run_id(), events::toWire(e), {}};
    }
    completion->recordStart(run, std::move(start), std::move(lost));
  }

  void startWritten(Run& run) override { launch(run); }

  void startNotWritten(Run& run, const std::string& why) override {
    if (run.phase != Phase::kStarting) return;
    releaseSlot(run);
    if (run.revoked) {
      // Its partition went elsewhere first: the next owner takes the command.
      logRun(spdlog::level::info, fieldsOf(run.command),
             "run {}: not claimed before its partition went elsewhere ({}); not running it",
             run.command.run_id(), why);
      run.phase = Phase::kFinished;
      maybeRetire(run);
    } else {
      endWithoutRunning(run, v1::FAILED, "its claim (start record) was refused: " + why);
    }
    dispatch();
    updatePause();
  }

  void launch(Run& run) {
    if (run.phase != Phase::kStarting) return;
    if (run.cancel) {
      // Cancelled while its claim was being written.
      releaseSlot(run);
      endCancelled(run, *run.cancel, " before it started");
      dispatch();
      return updatePause();
    }
    run.phase = Phase::kRunning;
    const auto& c = run.command;
    auto& plan = run.admitted->plan;
    logRun(spdlog::level::info, fieldsOf(c), "run {} ({}) starting: {}", c.run_id(),
           run.tmpl()->name, plan.argv.front());
    auto& poster = ports.poster;
    runner::RunCallbacks callbacks;
    callbacks.on_started =
        onOwner(poster, [this, id = run.id](pid_t, std::chrono::system_clock::time_point at) {
          onStarted(id, at);
        });
    callbacks.on_log = onOwner(
        poster, [this, id = run.id](runner::LogBatch batch) { onLog(id, std::move(batch)); });
    callbacks.on_heartbeat =
        onOwner(poster, [this, id = run.id](runner::Heartbeat hb) { onHeartbeat(id, hb); });
    if (config.lineage.enabled && run.tmpl()->child_lineage) {
      runner::addLineageChannel(plan);
      run.child_lineage = std::make_unique<lineage::ChildLineageProcessor>(
          lineage::ChildLineageRun::of(lineage, c),
          [&secrets = ports.secrets](std::string_view text) { return secrets.mask(text); });
      callbacks.on_lineage =
          onOwner(poster, [this, id = run.id](std::string bytes, bool truncated) {
            onLineage(id, std::move(bytes), truncated);
          });
    }
    callbacks.on_finished = onOwner(poster, [this, id = run.id](runner::RunOutcome outcome) {
      onFinished(id, std::move(outcome));
    });
    ports.executor.launch(plan, std::move(callbacks), ports.secrets.outputRedactor());
  }

  // ---------------------------------------------------------------------------------------------
  // A running run

  void onStarted(std::uint64_t id, std::chrono::system_clock::time_point started_at) {
    Run* run = findRun(id);
    if (!run) return;
    auto e = newEvent(*run, v1::STARTED);
    e.set_started_at_ms(toUnixMillis(started_at));
    publishEvent(*run, e);
    run->started_at = started_at;
    if (run->record_time) {
      ports.observer.runStarted(
          std::chrono::duration_cast<std::chrono::milliseconds>(started_at - *run->record_time));
    }
    lineage::LineageOutcome lineage_start;
    lineage_start.started_at = started_at;
    publishLineage(*run, lineage::LineageEventType::kStart, std::move(lineage_start));
  }

  void onLog(std::uint64_t id, runner::LogBatch batch) {
    Run* run = findRun(id);
    if (!run) return;
    auto e = newEvent(*run, v1::LOG);
    e.set_log_dropped_lines(batch.dropped_lines);
    auto wire = events::toWire(e);
    events::appendRepeatedString(wire, v1::RunEvent::kLogLinesFieldNumber, batch.lines.views());
    publishEvent(*run, e, std::move(wire));
  }

  void onLineage(std::uint64_t id, std::string bytes, bool truncated) {
    Run* run = findRun(id);
    if (!run || !run->child_lineage) return;
    handleChildLineage(*run, run->child_lineage->feed(bytes));
    if (truncated) {
      auto n = newEvent(*run, v1::NOTICE);
      n.set_message(fmt::format("lineage channel: output past {} bytes was dropped",
                                runner::SupervisorOptions{}.lineage_max_bytes));
      publishEvent(*run, n);
    }
  }

  // Forwards or reports what the run's lineage processor made of the job's lines.
  void handleChildLineage(Run& run, std::vector<lineage::ChildLineageResult> results) {
    for (auto& r : results) {
      if (r.record) {
        sendLineage(run, r.record->kafka_key, std::move(r.record->json));
      } else if (!r.error.empty()) {
        auto n = newEvent(run, v1::NOTICE);
        n.set_message(std::move(r.error));
        publishEvent(run, n);
      }
    }
  }

  void onHeartbeat(std::uint64_t id, const runner::Heartbeat& hb) {
    Run* run = findRun(id);
    if (!run) return;
    auto e = newEvent(*run, v1::HEARTBEAT);
    e.set_output_bytes(hb.output_bytes);
    e.set_cpu_time_ms(hb.cpu_time_ms);
    e.set_rss_bytes(hb.rss_bytes);
    e.set_log_dropped_lines(hb.log_dropped_lines);
    publishEvent(*run, e);
    if (config.lineage.running_events) {
      lineage::LineageOutcome progress;
      progress.started_at = run->started_at;
      publishLineage(*run, lineage::LineageEventType::kRunning, std::move(progress));
    }
  }

  void onFinished(std::uint64_t id, runner::RunOutcome o) {
    Run* found = findRun(id);
    if (!found) return;
    Run& run = *found;
    run.phase = Phase::kFinished;
    releaseSlot(run);
    auto ending = endingOf(o);
    // Stopped by a control-topic cancel (not by a timeout or a drain that came first)?
    bool cancelled_here = run.cancel && o.ending == runner::RunOutcome::Ending::kCancelled &&
                          o.stop_cause == runner::StopCause::kCancel;
    // Claimed here and stopped at shutdown (the drain timeout passed): released. This attempt
    // ends FAILED, retrying, and the owner of its partition runs it again at once.
    if (ports.leases && draining && run.claimed && !cancelled_here &&
        o.ending == runner::RunOutcome::Ending::kCancelled &&
        o.stop_cause == runner::StopCause::kShutdown) {
      run.released = true;
      ending.state = v1::FAILED;
      ending.message = fmt::format(
          "released: worker {} stopped it as the drain timeout passed; attempt {} runs on "
          "another worker",
          config.worker.id, run.attempts.attempt + 1);
    }
    const std::string message = ports.secrets.mask(ending.message);
    auto e = newEvent(run, ending.state);
    RunEvents::describeOutcome(e, o);
    e.set_message(message);
    if (run.released) e.set_retrying(true);
    if (cancelled_here) e.set_cancelled_by(run.cancel->requested_by);
    logRun(spdlog::level::info, fieldsOf(run.command), "run {} {} ({} ms){}{}",
           run.command.run_id(), v1::RunState_Name(ending.state), o.duration.count(),
           message.empty() ? "" : ": ", message);
    publishEvent(run, e);
    if (run.cancel && !cancelled_here) {
      auto n = newEvent(run, v1::NOTICE);
      n.set_message(fmt::format("cancel by {} not applied: the run was already ending {}{}{}",
                                run.cancel->requested_by, v1::RunState_Name(ending.state),
                                message.empty() ? "" : ": ", message));
      publishEvent(run, n);
    }

    lineage::LineageOutcome lo;
    if (run.child_lineage) {
      // The job's own records come before Outpost's terminal one.
      handleChildLineage(run, run.child_lineage->finish());
      lo.child_events_forwarded = run.child_lineage->forwarded();
      lo.child_events_rejected = run.child_lineage->rejected();
    }
    if (o.ending == runner::RunOutcome::Ending::kExited) lo.exit_code = o.exit_code;
    if (o.signal) lo.signal = o.signal;
    lo.message = message;
    lo.output_tail = o.tail;
    if (o.ending != runner::RunOutcome::Ending::kSpawnFailed) {
      lo.started_at = o.started_at;
      lo.run_duration = o.duration;
    }
    publishLineage(run, ending.lineage, std::move(lo));

    dispatch();
    updatePause();
    maybeRetire(run);
  }

  // ---------------------------------------------------------------------------------------------
  // Writing

  v1::RunEvent newEvent(Run& run, v1::RunState state) {
    return events.about(run.subject(), ++run.sequence, state);
  }

  void publishEvent(Run& run, const v1::RunEvent& event) {
    publishEvent(run, event, events::toWire(event));
  }

  // `wire`: the event's toWire, perhaps with more fields appended.
  void publishEvent(Run& run, const v1::RunEvent& event, std::string wire) {
    if (abandoned) return;
    if (v1::isTerminal(event.state())) {
      run.terminal = event.state();
      std::optional<std::chrono::milliseconds> ran;
      if (run.started_at) ran = std::chrono::milliseconds(event.duration_ms());
      ports.observer.runEnded(run.command.job_type(), run.terminal, ran);
    }
    completion->publish(
        run, events::OutRecord{config.topics.events, -1, event.run_id(), std::move(wire), {}},
        partOf(run));
  }

  // Once its terminal event is written, what follows belongs to the run's end.
  static RecordPart partOf(const Run& run) {
    return run.terminal != v1::RUN_STATE_UNSPECIFIED ? RecordPart::kEnd : RecordPart::kProgress;
  }

  void publishLineage(Run& run, lineage::LineageEventType type, lineage::LineageOutcome outcome) {
    if (!config.lineage.enabled) return;
    outcome.attempt = run.attempts.attempt;
    auto doc = lineage.build(type, run.command, ports.clock.now(), outcome);
    sendLineage(run, lineage.kafkaKey(run.command), lineage::lineageRecordText(doc));
  }

  // One lineage record to every configured transport (Kafka, HTTP), acknowledged per transport.
  void sendLineage(Run& run, const std::string& key, std::string json) {
    if (abandoned) return;
    if (ports.lineage_http) {
      ++run.pending_acks;
      ports.lineage_http->send(
          json, onOwner(ports.poster, [this, id = run.id](lineage::LineageDelivery d) {
            if (!d.ok) {
              spdlog::error("lineage record not delivered: {}", d.error);
              ports.observer.lineageHttpFailed();
            }
            if (Run* r = findRun(id)) {
              --r->pending_acks;
              maybeRetire(*r);
            }
          }));
    }
    if (config.lineage.toKafka()) {
      completion->publish(
          run, events::OutRecord{config.topics.lineage, -1, key, std::move(json), {}}, partOf(run));
    }
  }

  // A NOTICE about a run this worker holds no Run for: not a change of the run's state and tied
  // to no command offset, so nothing waits for its acknowledgement.
  void publishNotice(const v1::RunEvent& event) {
    logRun(spdlog::level::info, fieldsOf(event), "run {} NOTICE: {}", event.run_id(),
           event.message());
    ports.records.produce(
        events::OutRecord{config.topics.events, -1, event.run_id(), events::toWire(event), {}},
        [](const events::DeliveryReport& r) {
          if (!r.ok()) spdlog::warn("NOTICE event not delivered: {}", r.why());
        });
  }

  // ---------------------------------------------------------------------------------------------
  // Retiring

  Run* findRun(std::uint64_t id) override {
    auto it = runs.find(id);
    return it == runs.end() ? nullptr : &it->second;
  }

  // A run's offset counts as done once it has finished and everything it published is acked.
  void maybeRetire(Run& run) override {
    if (run.phase != Phase::kFinished) return;
    if (abandoned) {
      eraseRun(run.id);
      return;
    }
    if (run.pending_acks > 0) return;
    if (!completion->settle(run)) return;
    if (run.terminal != v1::RUN_STATE_UNSPECIFIED) {
      ended.put(run.command.run_id(),
                {run.terminal, run.command.job_id(), run.command.job_type(), run.attempts.attempt,
                 run.sequence},
                ports.clock.now() + config.worker.cancel_memory);
    }
    eraseRun(run.id);
    retired = true;
  }

  void eraseRun(std::uint64_t id) {
    auto it = runs.find(id);
    if (it == runs.end()) return;
    dead_letter_bytes -= it->second.dead_letter_bytes;
    auto [same, end] = by_run_id.equal_range(it->second.command.run_id());
    for (; same != end; ++same) {
      if (same->second == id) {
        by_run_id.erase(same);
        break;
      }
    }
    runs.erase(it);
  }

  template <typename Pred>
  void eraseRunsIf(Pred pred) {
    std::vector<std::uint64_t> gone;
    for (const auto& [id, r] : runs) {
      if (pred(r)) gone.push_back(id);
    }
    for (auto id : gone) eraseRun(id);
  }

  // Admitted commands wait in the queue for a slot; the partitions pause only once max_queued of
  // them (or max_queued_bytes of them) wait, and resume when both are back to half. Every
  // pause/resume makes librdkafka drop what it had prefetched and (2.0.2) wait fetch.wait.max.ms
  // before fetching again: pausing whenever the slots filled cost ~0.5 s per `slots` jobs (66
  // jobs/s with 16 slots, measured by bench/run). Commands waiting here are not committed, so a
  // crash loses none of them.
  void updatePause() {
    const std::size_t backlog = queue.size();
    const std::size_t limit = std::max(1u, config.worker.max_queued);
    const std::size_t byte_limit = std::max<std::size_t>(1, config.worker.max_queued_bytes);
    const std::size_t bytes = queued_bytes + dead_letter_bytes;
    bool pause = ports.source.paused() ? backlog > limit / 2 || bytes > byte_limit / 2
                                       : backlog >= limit || bytes >= byte_limit;
    ports.source.setPaused(draining || held || pause);
  }

  void tick() {
    // A rerun waiting to run alone can start once the others retired (see dispatch).
    if (std::exchange(retired, false)) {
      if (!queue.empty()) dispatch();
      updatePause();  // a retired dead letter may resume the partitions
    }
    if (auto steady = ports.clock.steadyNow(); steady - last_lost_watch >= kLostWatchInterval) {
      last_lost_watch = steady;
      watchLost();
    }
    auto now = ports.clock.now();
    ended.expire(now);
    cancels.expire(now);
    completion->tick();
  }

  // ---------------------------------------------------------------------------------------------
  // Cancels

  // A live run first; else one that ended and still waits for its acknowledgements (not a
  // duplicate command that was dead-lettered without an event: it is not the run): the first
  // taken live one, else the last taken ended one.
  Run* findRun(const std::string& run_id) {
    Run* live = nullptr;
    Run* done = nullptr;
    auto [same, end] = by_run_id.equal_range(run_id);
    for (; same != end; ++same) {
      Run& r = runs.at(same->second);
      if (r.phase != Phase::kFinished) {
        if (!live || r.id < live->id) live = &r;
      } else if (r.terminal != v1::RUN_STATE_UNSPECIFIED && (!done || r.id > done->id)) {
        done = &r;
      }
    }
    return live ? live : done;
  }

  bool answersForPool() const {
    const auto& assigned = ports.source.assignment();
    return std::ranges::find(assigned, TopicPartition{config.topics.jobs, 0}) != assigned.end();
  }

  // The signature check of a control command (cancel, drain, resume), under warn or require: the
  // token, the command_id inside it, the key's policy for the action, and single use on this
  // worker within the token's lifetime. A refused one is logged and counted on every worker (each
  // reads every control command; none is dead-lettered, as none is for an undecodable one), and a
  // refused cancel is answered with a NOTICE by the worker holding its run.
  bool admitControl(const consumer::ControlMessage& m) {
    if (signatures.mode == CommandSigning::kOff) return true;
    const auto& c = m.command;
    const std::string_view action = c.has_cancel() ? "cancel" : c.has_drain() ? "drain" : "resume";
    const auto now = ports.clock.now();
    auto refusal = [&]() -> std::optional<security::SignatureRefusal> {
      auto verified = checkSignature(SignedRecord{.value = m.value,
                                                  .headers = &m.headers,
                                                  .topic = m.tp.topic,
                                                  .kind = security::CommandKind::kControl,
                                                  .cty = "protobuf"},
                                     config.worker.pool, signatures, now);
      if (!verified) return std::move(verified.error());
      if (auto wrong = checkSignedId(*verified, c.command_id())) return wrong;
      if (auto refused = checkKeyPolicy(*verified, action, "", config.worker.pool, signatures)) {
        return refused;
      }
      const auto until =
          std::chrono::system_clock::time_point(std::chrono::seconds(verified->claims.exp)) +
          signatures.limits.leeway;
      const auto where = fmt::format("{}[{}]@{}", m.tp.topic, m.tp.partition, m.offset);
      if (!control_uses.use(c.command_id(), where, until, now)) {
        return security::SignatureRefusal{
            security::SignatureCheck::kReplayed,
            "replayed: control command " + c.command_id() + " was already used here"};
      }
      return std::nullopt;
    }();
    if (!refusal) return true;
    const auto reason = security::reasonOf(refusal->check);
    if (signatures.mode == CommandSigning::kWarn) {
      ports.observer.signatureWarning(reason);
      spdlog::warn("control {}[{}]@{}: {} would be refused when security.commands is require: {}",
                   m.tp.topic, m.tp.partition, m.offset, action, refusal->message);
      return true;
    }
    ports.observer.commandRejected(reason);
    spdlog::warn("control {}[{}]@{}: {} {} refused: {}", m.tp.topic, m.tp.partition, m.offset,
                 action, c.command_id(), refusal->message);
    if (c.has_cancel() && !m.replayed) {
      if (Run* run = findRun(c.cancel().run_id());
          run && run->ours() && run->phase != Phase::kFinished) {
        auto e = newEvent(*run, v1::NOTICE);
        e.set_message("cancel " + c.command_id() + " refused: " + refusal->message);
        publishEvent(*run, e);
      }
    }
    return false;
  }

  void onControl(const consumer::ControlMessage& m) {
    if (!m.command.has_cancel()) return;
    const auto& c = m.command.cancel();
    const std::string& run_id = c.run_id();
    CancelRequest cancel{m.command.command_id(),
                         c.requested_by().empty() ? "unknown" : c.requested_by(),
                         c.reason().empty() ? "no reason given" : c.reason()};
    spdlog::info("control {}[{}]@{}: cancel {} of run {} by {}: {}{}", m.tp.topic, m.tp.partition,
                 m.offset, cancel.command_id, run_id, cancel.requested_by, cancel.reason,
                 m.replayed ? " (from before this worker started)" : "");
    auto now = ports.clock.now();
    // Remembered from the message's time, so cancels read again at start expire when they would
    // have anyway; never later than cancel_memory from now (a producer's clock may run ahead).
    auto expires = std::min(m.timestamp, now) + config.worker.cancel_memory;
    Run* run = findRun(run_id);

    if (run && run->phase == Phase::kFinished) {
      auto e = newEvent(*run, v1::NOTICE);
      e.set_message("cancel ignored: run already ended " + v1::RunState_Name(run->terminal));
      publishEvent(*run, e);
      return;
    }
    if (!run) {
      if (auto* done = ended.find(run_id, now)) {
        auto e =
            events.notice(run_id, done->attempt, ++done->sequence,
                          "cancel ignored: run already ended " + v1::RunState_Name(done->state));
        e.set_job_id(done->job_id);
        e.set_job_type(done->job_type);
        publishNotice(e);
        return;
      }
    }
    // Live here, or unknown: remember it, so that a command for this run arriving later (a
    // redelivery after a rebalance or a crash, a duplicate, or the command itself when the cancel
    // overtook it) ends CANCELLED instead of running.
    if (auto* known = cancels.find(run_id, now)) cancel.notices = known->notices;
    if (!run) {
      // Every worker reads every cancel; one answer per pool is enough: the member holding
      // partition 0 of the jobs topic answers (none does in the moment of a rebalance). The words
      // stay true whether or not another worker holds the run. A cancel read again at start was
      // answered when it was new.
      if (!m.replayed && answersForPool()) {
        publishNotice(events.notice(
            run_id, 1, ++cancel.notices,
            fmt::format("cancel for run {} received; worker {} (answering for pool {}) does not "
                        "hold it: the worker holding it cancels it, otherwise it is cancelled if "
                        "its command arrives within {}",
                        run_id, config.worker.id, config.worker.pool,
                        describeDuration(config.worker.cancel_memory))));
      }
      cancels.put(run_id, std::move(cancel), expires);
      return;
    }
    cancels.put(run_id, cancel, expires);
    // Not admitted yet: remembered, it ends the run CANCELLED when it is queued (enqueue).
    if (run->phase == Phase::kCheckingUse) return;
    if (run->phase == Phase::kQueued || run->phase == Phase::kResolving) {
      // A resolving run's late result finds it finished, dropped.
      if (std::erase(queue, run->id) > 0) queued_bytes -= run->bytes;
      endCancelled(*run, cancel, " while queued");
      updatePause();  // room in the queue again
      return;
    }
    // Starting or running: the executor stops its process (SIGTERM, grace, SIGKILL); onFinished
    // publishes CANCELLED with this message. (A run still starting ends CANCELLED once its start
    // record is written, without starting: see launch.)
    if (run->cancel) {
      logRun(spdlog::level::info, fieldsOf(run->command), "run {}: already being cancelled",
             run_id);
      return;
    }
    run->cancel = cancel;
    ports.executor.stop(run_id, runner::StopCause::kCancel,
                        cancelMessage(cancel.requested_by, cancel.reason, ""));
  }

  // Ends a run that never started: CANCELLED without STARTED (and without lineage, as EXPIRED: no
  // START was ever written for it). Its offset counts as done once the event is acknowledged.
  void endCancelled(Run& run, const CancelRequest& cancel, const std::string& when) {
    run.phase = Phase::kFinished;
    auto e = newEvent(run, v1::CANCELLED);
    e.set_message(cancelMessage(cancel.requested_by, cancel.reason, when));
    e.set_cancelled_by(cancel.requested_by);
    logRun(spdlog::level::info, fieldsOf(run.command), "run {} CANCELLED: {}", run.command.run_id(),
           e.message());
    publishEvent(run, e);
    maybeRetire(run);
  }

  // ---------------------------------------------------------------------------------------------
  // Rebalance and drain

  void onRevoked(const std::vector<TopicPartition>& partitions, consumer::Revocation how,
                 const std::function<void()>& serve) {
    auto revoked = [&](const Run& r) {
      return std::ranges::find(partitions, r.tp) != partitions.end();
    };
    // Commands not claimed yet belong to the next owner.
    std::erase_if(queue, [&](std::uint64_t id) {
      const Run& r = runs.at(id);
      if (!revoked(r)) return false;
      queued_bytes -= r.bytes;
      return true;
    });
    eraseRunsIf([&](const Run& r) {
      return (r.phase == Phase::kQueued || r.phase == Phase::kResolving ||
              r.phase == Phase::kCheckingUse) &&
             revoked(r);
    });
    if (how == consumer::Revocation::kRevoked) {
      // Claims on their way, and ends of commands that never started, get revoke_timeout to be
      // written (and, exactly-once, committed with their offsets), so that each command of these
      // partitions is either this worker's or the next owner's, not both.
      auto deadline = ports.clock.steadyNow() + config.worker.revoke_timeout;
      auto settling = [&] {
        return std::ranges::any_of(runs, [&](const auto& kv) {
          const Run& r = kv.second;
          return revoked(r) && r.tracked &&
                 (r.phase == Phase::kStarting || r.phase == Phase::kFinished);
        });
      };
      while (settling() && ports.clock.steadyNow() < deadline) serve();
    }
    completion->revoked(partitions, how);
    std::size_t going_on = 0;
    for (auto& [id, r] : runs) {
      if (!revoked(r)) continue;
      if (r.claimed) {
        going_on += r.phase != Phase::kFinished;
        continue;
      }
      r.tracked = false;
      r.revoked = true;
    }
    if (going_on > 0) {
      spdlog::info("{} claimed run(s) of the partition(s) going away go on here to their end",
                   going_on);
    }
    std::vector<std::int32_t> numbers;
    for (const auto& tp : partitions) {
      offsets.forget(tp);
      numbers.push_back(tp.partition);
    }
    ports.attempts.forget(numbers);
    updatePause();
  }

  // ---------------------------------------------------------------------------------------------
  // Lost runs
  //
  // A run claimed by a worker whose lease lapsed (leases.h) is run again by the owner of its
  // partition, from its claim. The worker is fenced (unless it restarted: its new producer fenced
  // it) and written LOST, so that it can commit nothing any more and what it left open is aborted;
  // then a barrier is written to each of the runs partitions and they are read again up to it, so
  // that what any worker committed before is read (the lost worker's last ends included). What is
  // still claimed by it then runs as the next attempt (or is given up after max_attempts). A
  // worker that stopped cleanly left nothing open and has ended what it claimed: it is read first,
  // and fenced only if it still holds runs.

  struct LostWorker {
    std::string why;
    std::string incarnation;                  // the latest that claimed runs
    bool fence = false;                       // it must be fenced before its runs run again
    bool fenced = false;                      // it was
    bool stopped = false;                     // it stopped cleanly
    std::map<std::string, std::string> runs;  // run_id -> the incarnation that claimed it
    std::set<std::int32_t> partitions;
    std::map<std::int32_t, std::int64_t> barriers;  // runs partition -> its barrier's offset
  };
  // Lost workers whose runs partitions could not be read again yet.
  std::vector<std::pair<std::string, LostWorker>> unread;

  void watchLost() {
    if (!ports.leases || draining || held) return;
    // Fenced, but their partitions could not be read again: again now.
    for (auto& [worker, w] : std::exchange(unread, {})) readAgain(worker, std::move(w));
    std::map<std::string, LostWorker> lost;
    for (const auto& c : ports.attempts.claims()) {
      if (recovering.contains(c.worker_id) || by_run_id.contains(c.run_id)) continue;
      auto verdict = ports.leases->lease(c.worker_id, c.incarnation);
      if (!verdict.lapsed) continue;
      LostWorker& w = lost[c.worker_id];
      if (w.why.empty()) w.why = verdict.why;
      if (verdict.fence) w.incarnation = c.incarnation;
      w.fence = w.fence || verdict.fence;
      w.stopped = verdict.stopped;
      w.runs[c.run_id] = c.incarnation;
      w.partitions.insert(c.partition);
    }
    for (auto& [worker, w] : lost) {
      recovering.insert(worker);
      if (w.fence && !w.stopped) {
        const auto held_runs = w.runs.size();
        fence(worker, std::move(w), held_runs);
      } else {
        readAgain(worker, std::move(w));
      }
    }
  }

  void fence(const std::string& worker, LostWorker w, std::size_t held_runs) {
    // Logged once it counts as lost (fenced): until then the watch may try every second.
    spdlog::debug(
        "worker {}'s lease lapsed ({}): fencing it, unless it is still in the group; "
        "then the {} run(s) it held on partition(s) {} run again here",
        worker, w.why, held_runs, fmt::join(w.partitions, ","));
    w.fenced = true;
    auto incarnation = w.incarnation, why = w.why;
    ports.leases->fence(worker, incarnation, why,
                        onOwner(ports.poster, [this, worker, w = std::move(w)](std::string error) {
                          fenced(worker, w, error);
                        }));
  }

  // The fence is done (or failed).
  void fenced(const std::string& worker, LostWorker w, const std::string& error) {
    if (draining) return (void)recovering.erase(worker);
    if (!error.empty()) {
      recovering.erase(worker);
      if (auto& last = not_lost_yet[worker]; last != error) {
        spdlog::warn("worker {} is not counted lost yet: {}; its runs run again once it is", worker,
                     error);
        last = error;
      }
      return;
    }
    not_lost_yet.erase(worker);
    spdlog::warn(
        "worker {} counts as lost ({}): the runs it held on partition(s) {} run again "
        "here",
        worker, w.why, fmt::join(w.partitions, ","));
    readAgain(worker, std::move(w));
  }

  bool assigned(std::int32_t partition) const {
    const auto& a = ports.source.assignment();
    return std::ranges::find(a, TopicPartition{config.topics.jobs, partition}) != a.end();
  }

  // Writes a barrier to each of the lost worker's runs partitions still held, then reads them.
  void readAgain(const std::string& worker, LostWorker w) {
    std::erase_if(w.partitions, [&](std::int32_t p) { return !assigned(p); });
    w.barriers.clear();
    if (w.partitions.empty()) return (void)recovering.erase(worker);
    auto lost = std::make_shared<LostWorker>(std::move(w));
    for (auto p : lost->partitions) {
      ports.records.produce(
          ports.attempts.barrier(p),
          onOwner(ports.poster, [this, worker, lost, p](events::DeliveryReport r) {
            if (!r.ok()) {
              spdlog::warn("barrier on runs partition {} not written ({}); trying again", p,
                           r.why());
              lost->barriers[p] = -1;
            } else {
              lost->barriers[p] = r.offset;
            }
            if (lost->barriers.size() == lost->partitions.size()) rerunWhatIsLost(worker, *lost);
          }));
    }
  }

  void rerunWhatIsLost(const std::string& worker, LostWorker& w) {
    if (draining) return (void)recovering.erase(worker);
    std::vector<std::int32_t> partitions;
    for (auto p : w.partitions) {
      if (assigned(p)) partitions.push_back(p);
    }
    const bool barriers_written =
        std::ranges::none_of(w.barriers, [](const auto& kv) { return kv.second < 0; });
    if (partitions.empty()) return (void)recovering.erase(worker);
    if (!barriers_written || !ports.attempts.restore(partitions, w.barriers)) {
      unread.emplace_back(worker, std::move(w));  // the next watch tries again
      return;
    }
    std::vector<std::string> still;  // claimed by it yet, or released by it
    bool holds = false;              // some still claimed: it must be fenced first
    for (const auto& [run_id, incarnation] : w.runs) {
      const v1::RunRecord* r = ports.attempts.find(run_id);
      const bool claimed = r && r->state() == v1::STARTED;
      if (r && consumer::holdsRun(*r) && r->worker_id() == worker &&
          r->incarnation() == incarnation && !by_run_id.contains(run_id) &&
          std::ranges::find(partitions, r->source().partition()) != partitions.end()) {
        still.push_back(run_id);
        holds = holds || claimed;
      }
    }
    if (holds && w.fence && !w.fenced) {
      return fence(worker, std::move(w), still.size());
    }
    recovering.erase(worker);
    if (!still.empty() && !w.fenced) {
      spdlog::warn(
          "worker {} counts as lost ({}): the {} run(s) it held on partition(s) {} run "
          "again here",
          worker, w.why, still.size(), fmt::join(partitions, ","));
    }
    for (const auto& run_id : still) rerunLost(*ports.attempts.find(run_id), w.why);
    updatePause();
  }

  void rerunLost(const v1::RunRecord& claim, const std::string& why) {
    consumer::ConsumedMessage m;  // its command, as a dead letter would carry it
    m.tp = {config.topics.jobs, claim.source().partition()};
    m.offset = claim.source().offset();
    m.key = claim.run_id();
    m.value = claim.command();
    v1::JobCommand command;
    if (!command.ParseFromString(m.value) || command.run_id() != claim.run_id()) {
      spdlog::error("run {}: its claim does not carry its command; it is not run again",
                    claim.run_id());
      return;
    }
    // Not tracked: its offset was done with its claim.
    Run& run = newRun(m.tp, m.offset, std::move(command));
    run.bytes = m.value.size();
    run.lost_why = why;
    run.attempts = ports.attempts.decide(run.command, config.worker.max_attempts, true);
    consider(run, m);
  }

  void beginDrain() {
    draining = true;
    // Queued commands never started: their offsets stay uncommitted, so another worker runs them.
    for (auto id : queue) eraseRun(id);
    queue.clear();
    queued_bytes = 0;
    eraseRunsIf([](const Run& r) {
      return r.phase == Phase::kResolving || r.phase == Phase::kCheckingUse;
    });
    updatePause();
  }
};

Dispatcher::Dispatcher(const Config& config, Environment worker_env, Ports ports)
    : impl_(std::make_unique<Impl>(config, std::move(worker_env), ports)) {}

Dispatcher::~Dispatcher() = default;

void Dispatcher::setUseRecords(UseRecords* uses) {
  impl_->uses = uses;
}

bool Dispatcher::admitControl(const consumer::ControlMessage& message) {
  return impl_->admitControl(message);
}

void Dispatcher::setSignatures(SignatureSettings settings) {
  impl_->signatures = std::move(settings);
}

void Dispatcher::setTemplates(std::map<std::string, TemplateConfig> templates) {
  impl_->templates =
      std::make_shared<const std::map<std::string, TemplateConfig>>(std::move(templates));
  impl_->policy.templates = impl_->templates.get();
}

void Dispatcher::holdStarts() {
  if (std::exchange(impl_->held, true)) return;
  impl_->updatePause();
}

void Dispatcher::releaseStarts() {
  if (!std::exchange(impl_->held, false)) return;
  impl_->dispatch();
  impl_->updatePause();
}

void Dispatcher::onMessage(consumer::ConsumedMessage message) {
  impl_->onMessage(std::move(message));
}
void Dispatcher::onControl(const consumer::ControlMessage& message) {
  impl_->onControl(message);
}
void Dispatcher::tick() {
  impl_->tick();
}
void Dispatcher::onAssigned(const std::vector<TopicPartition>& partitions) {
  std::vector<std::int32_t> numbers;
  for (const auto& tp : partitions) numbers.push_back(tp.partition);
  impl_->ports.attempts.restore(numbers, {});
  impl_->updatePause();
}
void Dispatcher::onRevoked(const std::vector<TopicPartition>& partitions, consumer::Revocation how,
                           const std::function<void()>& serve) {
  impl_->onRevoked(partitions, how, serve);
}
void Dispatcher::beginDrain() {
  impl_->beginDrain();
}
void Dispatcher::abandon(const std::string& reason) {
  auto& i = *impl_;
  i.beginDrain();
  i.abandoned = true;
  i.ports.executor.stopAll(runner::StopCause::kShutdown, reason);
  // What finished and only waited for its records to be written is gone with them.
  i.eraseRunsIf([](const Run& r) { return r.phase == Phase::kFinished; });
}

void Dispatcher::stopAll(const std::string& reason) {
  impl_->ports.executor.stopAll(runner::StopCause::kShutdown, reason);
}
void Dispatcher::close() {
  impl_->completion->close();
}
bool Dispatcher::idle() const {
  return impl_->runs.empty();
}
std::size_t Dispatcher::unsettled() const {
  return impl_->runs.size();
}
std::size_t Dispatcher::running() const {
  return impl_->running;
}
std::size_t Dispatcher::queued() const {
  return impl_->queue.size();
}
std::map<TopicPartition, std::int64_t> Dispatcher::unfinishedFrom() const {
  return impl_->offsets.watermarks();
}
std::uint64_t Dispatcher::skippedForOtherPools() const {
  return impl_->skipped_other_pool;
}

}  // namespace outpost::dispatch
