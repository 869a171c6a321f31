#include "completion.h"

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

// A start record: a launch waits for it. Not delivered (a fatal producer error): counting the
// run's attempts is the lesser loss, so it runs anyway.
void produceStart(CompletionHost& host, Ports& ports, Run& run, const events::OutRecord& start) {
  ++run.pending_acks;
  ports.start_records.produce(
      start, onOwner(ports.poster, [&host, id = run.id](events::DeliveryReport r) {
        if (!r.ok()) spdlog::error("start record not delivered: {}", r.why());
        if (Run* written = host.findRun(id)) {
          --written->pending_acks;
          host.startWritten(*written);
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

  void recordStart(Run& run, events::OutRecord start,
                   std::optional<events::OutRecord> lost) override {
    if (lost) {
      ports_.records.produce(*lost, [](const events::DeliveryReport& r) {
        if (!r.ok())
          spdlog::error("the lost attempt's FAILED event was not delivered: {}", r.why());
      });
    }
    produceStart(host_, ports_, run, start);
  }

  bool settle(Run& run) override {
    if (!run.end_recorded && run.terminal != v1::RUN_STATE_UNSPECIFIED) {
      // The runs topic learns the end once the terminal event is acknowledged.
      run.end_recorded = true;
      auto end = ports_.attempts.recordEnd(run.command, run.attempts.starts, run.terminal, run.tp,
                                           run.offset);
      produceCounted(host_, ports_, run, end, ports_.records);
      return false;
    }
    if (run.ours()) offsets_.complete(run.tp, run.offset);
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

  bool handsOver() const override { return false; }
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

  // A rerun's start record goes with the lost attempt's FAILED event, in one transaction.
  void recordStart(Run& run, events::OutRecord start,
                   std::optional<events::OutRecord> lost) override {
    if (!lost) return produceStart(host_, ports_, run, start);
    events::TxnUnit unit;
    unit.records = {std::move(*lost), std::move(start)};
    submitStart(run, std::move(unit));
  }

  bool settle(Run& run) override {
    if (!run.committed && !run.submitted) submit(run);
    return run.committed;
  }

  void tick() override {}
  void revoked(const std::vector<TopicPartition>&, consumer::Revocation) override {}
  bool handsOver() const override { return true; }
  void close() override {}

 private:
  void submitStart(Run& run, events::TxnUnit unit) {
    ++run.pending_acks;
    auto again = unit.records;  // kept in case the transaction aborts
    unit.done = onOwner(ports_.poster, [this, id = run.id, again](events::TxnOutcome o) {
      Run* r = host_.findRun(id);
      if (!r) return;
      --r->pending_acks;
      if (o.status == events::TxnOutcome::Status::kAborted && r->ours()) {
        // Aborted for a reason outside it (e.g. a transaction before it): write it again.
        events::TxnUnit retry;
        retry.records = again;
        return submitStart(*r, std::move(retry));
      }
      if (o.committed()) {
        host_.startWritten(*r);
      } else {
        host_.startNotWritten(*r, o.reason);
      }
    });
    txn_.submit(std::move(unit));
  }

  void submit(Run& run) {
    run.submitted = true;
    if (!run.ours()) {
      // Its partition went to another worker, which runs the command again: its end is not
      // published here (the transaction's offsets would be refused anyway).
      if (run.terminal != v1::RUN_STATE_UNSPECIFIED) {
        logRun(spdlog::level::warn, fieldsOf(run.command),
               "run {} ended {} after its partition was handed over; not published here",
               run.command.run_id(), v1::RunState_Name(run.terminal));
      }
      run.committed = true;
      return;
    }
    events::TxnUnit unit;
    unit.records = run.finals;  // kept in case the transaction aborts and is written again
    if (run.terminal != v1::RUN_STATE_UNSPECIFIED) {
      unit.records.push_back(ports_.attempts.recordEnd(run.command, run.attempts.starts,
                                                       run.terminal, run.tp, run.offset));
    }
    offsets_.complete(run.tp, run.offset);
    const auto watermark = offsets_.watermark(run.tp);
    unit.offsets[run.tp] = watermark;
    unit.group = ports_.source.groupMetadata();
    unit.done = onOwner(ports_.poster, [this, id = run.id, partition = run.tp.partition,
                                        watermark](events::TxnOutcome outcome) {
      Run* r = host_.findRun(id);
      if (!r) return;
      if (outcome.committed()) ports_.attempts.forgetCommitted(partition, watermark);
      committed(*r, outcome);
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
          // E.g. the producer was fenced or the broker was away too long: write it again, with
          // the offsets and group generation of now. Until then its offset is not done again, so
          // that no other run's transaction commits past it.
          logRun(spdlog::level::warn, fieldsOf(run.command),
                 "run {}: its end was not committed ({}); writing it again", run.command.run_id(),
                 outcome.reason);
          ports_.source.refreshGroupMetadata();
          offsets_.begin(run.tp, run.offset);
          run.submitted = false;
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
