#include "completion.h"

#include <functional>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace outpost::dispatch {
namespace {

// at-least-once: how often the done offsets are committed, and how often every watermark is
// committed again, moved or not (an async commit that failed, e.g. during a broker outage, is
// not retried by the consumer).
constexpr std::chrono::milliseconds kCommitInterval{200};
constexpr std::chrono::seconds kRecommitInterval{5};

// Both strategies: a record produced now, the run waiting for its acknowledgement.
void produceCounted(CompletionHost& host, Ports& ports, Run& run, const events::OutRecord& record,
                    RecordSink& sink) {
  ++run.pending_acks;
  sink.produce(record, onOwner(ports.poster, [&host, id = run.id, topic = record.topic](
                                                 events::DeliveryReport r) {
                 if (!r.ok()) spdlog::error("record for {} not delivered: {}", topic, r.why());
                 if (Run* acked = host.findRun(id)) {
                   --acked->pending_acks;
                   host.maybeRetire(*acked);
                 }
               }));
}


class AtLeastOnce final : public Completion {
 public:
  AtLeastOnce(CompletionHost& host, Ports& ports, consumer::OffsetTracker& offsets)
      : host_(host), ports_(ports), offsets_(offsets) {
    last_commit_ = last_recommit_ = ports_.clock.steadyNow();
  }

  void publish(Run& run, events::OutRecord record, RecordPart) override {
    produceCounted(host_, ports_, run, record, ports_.records);
  }

  // The claim: a launch waits for it, and the command's offset is done once it is acknowledged.
  // Not delivered (a fatal producer error): counting the run's attempts is the lesser loss, so it
  // runs anyway, and its offset is done all the same (else the command would run again beside it).
  void recordStart(Run& run, events::OutRecord start,
                   std::optional<events::OutRecord> lost) override {
    if (lost) {
      ports_.records.produce(*lost, [](const events::DeliveryReport& r) {
        if (!r.ok())
          spdlog::error("the lost attempt's FAILED event was not delivered: {}", r.why());
      });
    }
    ++run.pending_acks;
    ports_.start_records.produce(
        start, onOwner(ports_.poster, [this, id = run.id](events::DeliveryReport r) {
          if (!r.ok()) spdlog::error("claim (start record) not delivered: {}", r.why());
          Run* written = host_.findRun(id);
          if (!written) return;
          --written->pending_acks;
          written->claimed = true;
          if (std::exchange(written->tracked, false)) {
            offsets_.complete(written->tp, written->offset);
          }
          host_.startWritten(*written);
        }));
  }

  bool settle(Run& run) override {
    if (!run.end_recorded && run.terminal != v1::RUN_STATE_UNSPECIFIED && run.ours()) {
      // The runs topic learns the end once the terminal event is acknowledged.
      run.end_recorded = true;
      auto end = ports_.attempts.recordEnd(run.command, run.attempts.starts, run.terminal, run.tp,
                                           run.offset, run.attempts.releases, run.released);
      produceCounted(host_, ports_, run, end, ports_.records);
      return false;
    }
    if (std::exchange(run.tracked, false)) offsets_.complete(run.tp, run.offset);
    return true;
  }

  void tick() override {
    auto now = ports_.clock.steadyNow();
    if (now - last_recommit_ >= kRecommitInterval) {
      if (auto all = offsets_.watermarks(); !all.empty()) ports_.source.commit(all, consumer::CommitMode::kAsync);
      last_recommit_ = last_commit_ = now;
    } else if (now - last_commit_ >= kCommitInterval) {
      commit(consumer::CommitMode::kAsync);
      last_commit_ = now;
    }
  }

  void revoked(const std::vector<TopicPartition>& partitions, consumer::Revocation how) override {
    if (how == consumer::Revocation::kLost) return;  // nothing of them can be committed any more
    std::map<TopicPartition, std::int64_t> done;
    for (const auto& tp : partitions) {
      if (auto w = offsets_.watermark(tp); w >= 0) done[tp] = w;
    }
    ports_.source.commit(done, consumer::CommitMode::kAwait);
  }

  // Sent, not waited for: a rebalance may be waiting for the owner's next poll, and the
  // consumer's close waits for commits in flight before it leaves the group.
  void close() override { commit(consumer::CommitMode::kAsync); }

 private:
  void commit(consumer::CommitMode mode) {
    auto offsets = offsets_.takeCommittable();
    if (offsets.empty()) return;
    ports_.source.commit(offsets, mode);
    // The runs topic holds these runs' ends; a redelivery below the offsets (after a rebalance)
    // finds them through the restore, so memory need not keep them.
    for (const auto& [tp, offset] : offsets) ports_.attempts.forgetCommitted(tp.partition, offset);
  }

  CompletionHost& host_;
  Ports& ports_;
  consumer::OffsetTracker& offsets_;
  std::chrono::steady_clock::time_point last_commit_, last_recommit_;
};

class ExactlyOnce final : public Completion {
 public:
  ExactlyOnce(CompletionHost& host, Ports& ports, consumer::OffsetTracker& offsets,
              TransactionSink& txn)
      : host_(host), ports_(ports), offsets_(offsets), txn_(txn) {}

  void publish(Run& run, events::OutRecord record, RecordPart part) override {
    // From the terminal event on, everything goes in the run's transaction (a NOTICE once that is
    // on its way goes alone).
    if (part == RecordPart::kEnd && !run.submitted) {
      run.finals.push_back(std::move(record));
    } else {
      produceCounted(host_, ports_, run, record, ports_.records);
    }
  }

  // The claim commits with the command's offset (when it has one: a lost worker's run taken
  // again from its claim has none) and, for a rerun, with the lost attempt's FAILED event.
  void recordStart(Run& run, events::OutRecord start,
                   std::optional<events::OutRecord> lost) override {
    std::vector<events::OutRecord> records;
    if (lost) records.push_back(std::move(*lost));
    records.push_back(std::move(start));
    submitClaim(run, std::move(records));
  }

  bool settle(Run& run) override {
    if (!run.committed && !run.submitted) submit(run);
    return run.committed;
  }

  void tick() override {}
  void revoked(const std::vector<TopicPartition>&, consumer::Revocation) override {}
  void close() override {}

 private:
  // Offsets after an abort. A unit's offsets count every run whose unit was submitted before it
  // as done; when a transaction aborts, the publisher reports the units behind it aborted too, one
  // callback each. Resubmitting one of them (or submitting a new unit with offsets) before every
  // such report has come back would count as done a run whose abort has not been seen yet, and
  // if that run then never commits (its partition goes away), its command would be committed
  // without it. So after an abort, units with offsets are held until none is in flight, and then
  // go again in order, each with offsets taken afresh.
  //
  // Whether `run`'s unit must wait; if so `again` submits it later.
  bool held(const Run& run, std::function<void()> again) {
    if (!run.tracked || !rewinding_) return false;
    held_.push_back(std::move(again));
    return true;
  }
  void release() {
    if (!rewinding_ || offset_units_ > 0) return;
    rewinding_ = false;
    auto again = std::move(held_);
    held_.clear();
    for (auto& f : again) f();
  }

  // With the run's offset, while it has one: the watermark it commits (`unit` gets it and the
  // group's identity), else nothing.
  std::optional<std::int64_t> withOffset(Run& run, events::TxnUnit& unit) {
    if (!run.tracked) return std::nullopt;
    offsets_.complete(run.tp, run.offset);
    const auto watermark = offsets_.watermark(run.tp);
    unit.offsets[run.tp] = watermark;
    unit.group = ports_.source.groupMetadata();
    ++offset_units_;
    return watermark;
  }

  // After an aborted transaction that carried the run's offset: its offset is not done again
  // until it is written again, with the group's identity of now, so that no other run's
  // transaction commits past it.
  void rewind(Run& run) {
    if (!run.tracked) return;
    rewinding_ = true;
    ports_.source.refreshGroupMetadata();
    offsets_.begin(run.tp, run.offset);
  }

  // The offset committed: the tracker and the run store no longer need what is below it.
  void committedOffset(Run& run, std::optional<std::int64_t> watermark) {
    if (!watermark || !std::exchange(run.tracked, false)) return;
    ports_.attempts.forgetCommitted(run.tp.partition, *watermark);
  }

  void submitClaim(Run& run, std::vector<events::OutRecord> records) {
    if (held(run, [this, id = run.id, records] {
          if (Run* r = host_.findRun(id)) {
            if (r->revoked) return host_.startNotWritten(*r, "its partition went elsewhere");
            submitClaim(*r, records);
          }
        })) {
      return;
    }
    events::TxnUnit unit;
    unit.records = records;  // kept in case the transaction aborts
    auto watermark = withOffset(run, unit);
    unit.done = onOwner(ports_.poster, [this, id = run.id, records = std::move(records),
                                        watermark](events::TxnOutcome o) mutable {
      if (watermark) --offset_units_;
      if (Run* r = host_.findRun(id)) claimed(*r, o, watermark, std::move(records));
      release();
    });
    ++run.pending_acks;
    txn_.submit(std::move(unit));
  }

  void claimed(Run& run, const events::TxnOutcome& o, std::optional<std::int64_t> watermark,
               std::vector<events::OutRecord> records) {
    --run.pending_acks;
    switch (o.status) {
      case events::TxnOutcome::Status::kCommitted:
        committedOffset(run, watermark);
        run.claimed = true;
        return host_.startWritten(run);
      case events::TxnOutcome::Status::kAborted:
        if (run.revoked) return host_.startNotWritten(run, o.reason);
        // Aborted for a reason outside it (a transaction before it, a rebalance that moved
        // other partitions): write it again.
        rewind(run);
        return submitClaim(run, std::move(records));
      case events::TxnOutcome::Status::kRejected:
        if (run.tracked) offsets_.begin(run.tp, run.offset);
        return host_.startNotWritten(run, o.reason);
    }
  }

  void submit(Run& run) {
    run.submitted = true;
    if (held(run, [this, id = run.id] {
          if (Run* r = host_.findRun(id)) {
            r->submitted = false;
            host_.maybeRetire(*r);  // which submits it
          }
        })) {
      return;
    }
    if (!run.ours()) {
      // Its partition went to another worker before it was claimed: the next owner takes the
      // command, and its end is not published here (its offset would be refused anyway).
      if (run.terminal != v1::RUN_STATE_UNSPECIFIED) {
        logRun(spdlog::level::warn, fieldsOf(run.command),
               "run {} ended {} after its partition went elsewhere; not published here",
               run.command.run_id(), v1::RunState_Name(run.terminal));
      }
      run.committed = true;
      return;
    }
    events::TxnUnit unit;
    unit.records = run.finals;  // kept in case the transaction aborts and is written again
    if (run.terminal != v1::RUN_STATE_UNSPECIFIED) {
      unit.records.push_back(ports_.attempts.recordEnd(run.command, run.attempts.starts,
                                                       run.terminal, run.tp, run.offset,
                                                       run.attempts.releases, run.released));
    }
    auto watermark = withOffset(run, unit);
    unit.done = onOwner(ports_.poster, [this, id = run.id, watermark](events::TxnOutcome outcome) {
      if (watermark) --offset_units_;
      if (Run* r = host_.findRun(id)) {
        if (outcome.committed()) committedOffset(*r, watermark);
        committed(*r, outcome);
      }
      release();
    });
    ++run.pending_acks;
    txn_.submit(std::move(unit));
  }

  void committed(Run& run, const events::TxnOutcome& outcome) {
    --run.pending_acks;
    switch (outcome.status) {
      case events::TxnOutcome::Status::kCommitted:
        run.committed = true;
        break;
      case events::TxnOutcome::Status::kAborted:
        if (run.ours()) {
          // E.g. the broker was away too long: write it again (with the offsets and group
          // generation of now, when it carries its offset).
          logRun(spdlog::level::warn, fieldsOf(run.command),
                 "run {}: its end was not committed ({}); writing it again", run.command.run_id(),
                 outcome.reason);
          rewind(run);
          run.submitted = false;  // submitted again by maybeRetire below, or once released
        } else {
          logRun(spdlog::level::warn, fieldsOf(run.command),
                 "run {}: its end was not committed ({}) and its partition went elsewhere",
                 run.command.run_id(), outcome.reason);
          run.committed = true;
        }
        break;
      case events::TxnOutcome::Status::kRejected:
        logRun(spdlog::level::err, fieldsOf(run.command), "run {}: its end cannot be written: {}",
               run.command.run_id(), outcome.reason);
        run.committed = true;
        break;
    }
    host_.maybeRetire(run);
  }

  CompletionHost& host_;
  Ports& ports_;
  consumer::OffsetTracker& offsets_;
  TransactionSink& txn_;
  int offset_units_ = 0;     // units with offsets submitted and not reported yet
  bool rewinding_ = false;   // an abort came back: units with offsets wait (held)
  std::vector<std::function<void()>> held_;
};

}  // namespace

std::unique_ptr<Completion> makeAtLeastOnce(CompletionHost& host, Ports& ports,
                                            consumer::OffsetTracker& offsets) {
  return std::make_unique<AtLeastOnce>(host, ports, offsets);
}

std::unique_ptr<Completion> makeExactlyOnce(CompletionHost& host, Ports& ports,
                                            consumer::OffsetTracker& offsets,
                                            TransactionSink& txn) {
  return std::make_unique<ExactlyOnce>(host, ports, offsets, txn);
}

}  // namespace outpost::dispatch
