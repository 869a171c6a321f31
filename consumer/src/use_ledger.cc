#include "outpost/consumer/use_ledger.h"

#include <spdlog/spdlog.h>

#include "outpost/events/wire.h"
#include "outpost/v1/run_record.pb.h"

namespace outpost::consumer {
namespace {

// Records taken per poll(), so that a backlog never holds the poll thread for long.
constexpr int kPollBatch = 1000;

// FNV-1a: the same partition for a run id on every worker, whatever librdkafka's partitioner.
std::uint32_t hashOf(std::string_view s) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

}  // namespace

UseLedger::UseLedger(const KafkaConfig& kafka, std::string runs_topic, const std::string& client_id,
                     Millis window, const Clock& clock)
    : runs_topic_(std::move(runs_topic)),
      window_(window),
      clock_(clock),
      reader_(kafka, "", client_id) {}

UseLedger::~UseLedger() = default;

std::expected<void, std::string> UseLedger::start(std::chrono::milliseconds timeout) {
  auto found = reader_.partitions(timeout);
  if (!found) return std::unexpected("runs topic " + runs_topic_ + ": " + found.error());
  auto it = found->find(runs_topic_);
  if (it == found->end() || it->second.empty()) {
    return std::unexpected("runs topic " + runs_topic_ + " does not exist (outpost topics)");
  }
  partitions_ = static_cast<std::int32_t>(it->second.size());
  const auto since = toUnixMillis(clock_.now()) - window_.count();
  std::vector<std::pair<TopicPartition, std::int64_t>> from;
  for (auto p : it->second) {
    TopicPartition tp{runs_topic_, p};
    auto offset = reader_.offsetForTime(tp, since, timeout);
    if (!offset) return std::unexpected("runs topic " + runs_topic_ + ": " + offset.error());
    from.emplace_back(tp, *offset);
    last_read_[p] = *offset - 1;
  }
  if (auto ok = reader_.readFrom(from); !ok) {
    return std::unexpected("runs topic " + runs_topic_ + ": " + ok.error());
  }
  return {};
}

void UseLedger::poll() {
  for (int i = 0; i < kPollBatch; ++i) {
    auto r = reader_.poll(std::chrono::milliseconds(0));
    if (r.kind == ReadResult::Kind::kNothing) break;
    if (r.kind == ReadResult::Kind::kError) {
      spdlog::warn("single use: reading {}: {}", runs_topic_, r.error);
      break;
    }
    if (r.kind != ReadResult::Kind::kRecord) continue;
    const auto& rec = r.record;
    last_read_[rec.tp.partition] = std::max(last_read_[rec.tp.partition], rec.offset);
    if (!rec.key.starts_with(kUseKeyPrefix)) continue;  // claims, ends, barriers
    v1::RunRecord use;
    if (!use.ParseFromString(rec.value) || use.run_id().empty()) continue;
    // The first recorded use wins: partition order, read in order.
    if (first_
            .try_emplace(use.run_id(), ReadAt{{use.source().topic(), use.source().partition()},
                                              use.source().offset()})
            .second) {
      by_time_.emplace(rec.timestamp_ms, use.run_id());
    }
  }
  // Verdicts before forgetting: a use just read is never older than the window.
  const auto now = clock_.steadyNow();
  std::erase_if(waiters_, [&](Waiter& w) {
    if (readUpTo(w.partition, w.offset)) {
      w.done(firstUse(w.run_id).value_or(w.at));
      return true;
    }
    if (now >= w.deadline) {
      w.done(std::unexpected("the runs topic " + runs_topic_ +
                             " did not give back its use record (" + std::to_string(w.partition) +
                             "@" + std::to_string(w.offset) + ") in time"));
      return true;
    }
    return false;
  });
  const auto oldest = toUnixMillis(clock_.now()) - window_.count();
  while (!by_time_.empty() && by_time_.begin()->first < oldest) {
    first_.erase(by_time_.begin()->second);
    by_time_.erase(by_time_.begin());
  }
}

events::OutRecord UseLedger::useRecord(const std::string& run_id, const ReadAt& at,
                                       const std::string& worker_id) const {
  v1::RunRecord use;
  use.set_run_id(run_id);
  use.set_worker_id(worker_id);
  use.set_updated_ms(toUnixMillis(clock_.now()));
  use.mutable_source()->set_topic(at.tp.topic);
  use.mutable_source()->set_partition(at.tp.partition);
  use.mutable_source()->set_offset(at.offset);
  events::OutRecord out;
  out.topic = runs_topic_;
  out.partition = static_cast<std::int32_t>(hashOf(run_id) %
                                            static_cast<std::uint32_t>(std::max(partitions_, 1)));
  out.key = std::string(kUseKeyPrefix) + run_id;
  out.value = events::toWire(use);
  return out;
}

void UseLedger::awaitVerdict(const std::string& run_id, const ReadAt& at, std::int32_t partition,
                             std::int64_t offset, std::chrono::steady_clock::time_point deadline,
                             Verdict done) {
  waiters_.push_back({run_id, at, partition, offset, deadline, std::move(done)});
}

bool UseLedger::readUpTo(std::int32_t partition, std::int64_t offset) const {
  auto it = last_read_.find(partition);
  return it != last_read_.end() && it->second >= offset;
}

std::optional<ReadAt> UseLedger::firstUse(const std::string& run_id) const {
  auto it = first_.find(run_id);
  if (it == first_.end()) return std::nullopt;
  return it->second;
}

}  // namespace outpost::consumer
