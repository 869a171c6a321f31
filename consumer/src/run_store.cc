#include "outpost/consumer/run_store.h"

#include <algorithm>
#include <map>
#include <thread>

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include "outpost/common/clock.h"
#include "outpost/consumer/use_ledger.h"
#include "outpost/events/kafka.h"
#include "outpost/events/wire.h"
#include "outpost/v1/run_state.h"
#include "retry.h"

namespace outpost::consumer {
namespace {

// The key prefix of barriers (RunStore::barrier).
constexpr std::string_view kBarrierKey = "barrier:";

using Steady = std::chrono::steady_clock;

// Longest wait of one consumer poll inside restore(), so the deadline is checked often enough.
constexpr std::chrono::milliseconds kPollSlice{100};

std::uint32_t commandAttempt(const v1::JobCommand& c) {
  return c.attempt() == 0 ? 1 : c.attempt();
}

std::string listOf(const std::vector<std::int32_t>& partitions) {
  std::string s;
  for (auto p : partitions) s += (s.empty() ? "" : ",") + std::to_string(p);
  return s;
}

using retry::msLeft;
using retry::retrying;

using MetadataPtr =
    std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)>;

// Sets `count` to the partition count of `topic`; UNKNOWN_TOPIC_OR_PART when it does not exist
// (or is not known yet), LEADER_NOT_AVAILABLE while a partition has no leader.
rd_kafka_resp_err_t readPartitionCount(rd_kafka_t* rk, const std::string& topic, int timeout_ms,
                                       int& count) {
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> rkt(
      rd_kafka_topic_new(rk, topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  if (!rkt) return rd_kafka_last_error();
  const rd_kafka_metadata_t* raw = nullptr;
  // Only this topic; consumers do not create topics (allow.auto.create.topics=false).
  auto err = rd_kafka_metadata(rk, 0, rkt.get(), &raw, timeout_ms);
  MetadataPtr md(raw, &rd_kafka_metadata_destroy);
  if (err) return err;
  if (md->topic_cnt < 1) return RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  const auto& t = md->topics[0];
  if (t.err) return t.err;
  if (t.partition_cnt == 0) return RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  count = t.partition_cnt;
  for (int i = 0; i < t.partition_cnt; ++i) {
    if (t.partitions[i].leader < 0) return RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
  }
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

}  // namespace

// The consumer restore() reads with: assigned partitions only, never a group member.
struct RunStore::Reader {
  events::kafka::HandlePtr rk;
};

RunStore::RunStore(const KafkaConfig& config, RunStoreOptions options)
    : options_(std::move(options)), reader_(std::make_unique<Reader>()) {
  const events::kafka::Properties defaults = {
      {"bootstrap.servers", config.bootstrap_servers},
      {"client.id", options_.client_id},
      {"auto.offset.reset", "earliest"},
  };
  // What restore() depends on, whatever kafka.properties says: records of transactions that were
  // aborted or are still open are not state; the end of a partition is seen as an event; the
  // group (the jobs group, for its committed offsets) is never written to.
  const events::kafka::Properties required = {
      {"group.id", options_.group_id},       {"isolation.level", "read_committed"},
      {"enable.partition.eof", "true"},      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
  };
  auto conf = events::kafka::makeConf(
      {&defaults, &config.properties, &config.consumer_properties, &required},
      "kafka.properties / kafka.consumer_properties");
  reader_->rk = events::kafka::makeHandle(events::kafka::ClientType::kConsumer, std::move(conf));
  rd_kafka_poll_set_consumer(reader_->rk.get());
}

RunStore::~RunStore() {
  if (auto err = rd_kafka_consumer_close(reader_->rk.get())) {
    spdlog::warn("runs reader close: {}", rd_kafka_err2str(err));
  }
}

std::expected<void, std::string> RunStore::checkTopics(std::chrono::milliseconds timeout) {
  auto deadline = Steady::now() + timeout;
  rd_kafka_t* rk = reader_->rk.get();
  const auto& runs = options_.runs_topic;
  const auto& jobs = options_.jobs_topic;
  // The jobs topic may not exist yet (the consumer waits for it): then there is nothing to
  // compare with, and restore() checks each partition when it is assigned.
  int need = 0;
  auto jobs_err = retrying(deadline, [&](int ms) {
    auto err = readPartitionCount(rk, jobs, ms, need);
    return err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? RD_KAFKA_RESP_ERR_NO_ERROR : err;
  });
  if (jobs_err) {
    return std::unexpected(
        fmt::format("cannot read the metadata of '{}': {}", jobs, rd_kafka_err2str(jobs_err)));
  }
  int have = 0;
  auto runs_err =
      retrying(deadline, [&](int ms) { return readPartitionCount(rk, runs, ms, have); });
  if (runs_err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    return std::unexpected(fmt::format(
        "the runs topic '{}' (topics.runs) does not exist: create it with cleanup.policy=compact "
        "and at least as many partitions as the jobs topic '{}'{}",
        runs, jobs, need > 0 ? fmt::format(" ({})", need) : ""));
  }
  if (runs_err) {
    return std::unexpected(
        fmt::format("cannot read the metadata of '{}': {}", runs, rd_kafka_err2str(runs_err)));
  }
  if (have < need) {
    return std::unexpected(fmt::format(
        "the runs topic '{}' (topics.runs) has {} partition(s), fewer than the {} of the jobs "
        "topic '{}': the state of a command read from jobs partition p is kept in runs partition "
        "p, so add partitions to '{}' (kafka-topics.sh --alter --topic {} --partitions {})",
        runs, have, need, jobs, runs, runs, need));
  }
  return {};
}

namespace {

using Range = std::pair<std::int64_t, std::int64_t>;  // [first offset, end offset)

// Whether the runs topic has each of `partitions` (it needs as many as the jobs topic).
std::expected<void, std::string> checkPartitions(rd_kafka_t* rk, const std::string& topic,
                                                 const std::string& jobs_topic,
                                                 const std::vector<std::int32_t>& partitions,
                                                 Steady::time_point deadline) {
  int have = 0;
  if (auto err =
          retrying(deadline, [&](int ms) { return readPartitionCount(rk, topic, ms, have); })) {
    return std::unexpected(
        fmt::format("cannot read the metadata of '{}': {}", topic, rd_kafka_err2str(err)));
  }
  for (auto p : partitions) {
    if (p >= have) {
      return std::unexpected(fmt::format(
          "the runs topic '{}' has no partition {} ({} partition(s)): it needs at least as many "
          "partitions as the jobs topic '{}'; add partitions to '{}'",
          topic, p, have, jobs_topic, topic));
    }
  }
  return {};
}

// Where each partition starts and ends now (the last stable offset, read_committed).
std::expected<std::map<std::int32_t, Range>, std::string> readRanges(
    rd_kafka_t* rk, const std::string& topic, const std::vector<std::int32_t>& partitions,
    Steady::time_point deadline) {
  std::map<std::int32_t, Range> range;
  for (auto p : partitions) {
    std::int64_t lo = -1, hi = -1;
    auto err = retrying(deadline, [&](int ms) {
      return rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, ms);
    });
    if (err) {
      return std::unexpected(
          fmt::format("cannot read the offsets of {}[{}]: {}", topic, p, rd_kafka_err2str(err)));
    }
    range[p] = {lo, hi};
  }
  return range;
}

// The jobs group's committed offsets (RD_KAFKA_OFFSET_INVALID where it committed nothing).
std::expected<std::map<std::int32_t, std::int64_t>, std::string> readCommitted(
    rd_kafka_t* rk, const std::string& jobs_topic, const std::string& group,
    const std::vector<std::int32_t>& partitions, Steady::time_point deadline) {
  events::kafka::PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (auto p : partitions) rd_kafka_topic_partition_list_add(list.get(), jobs_topic.c_str(), p);
  auto err = retrying(deadline, [&](int ms) {
    auto e = rd_kafka_committed(rk, list.get(), ms);
    for (int i = 0; !e && i < list->cnt; ++i) e = list->elems[i].err;
    return e;
  });
  if (err) {
    return std::unexpected(fmt::format("cannot read the committed offsets of group {}: {}", group,
                                       rd_kafka_err2str(err)));
  }
  std::map<std::int32_t, std::int64_t> committed;
  for (int i = 0; i < list->cnt; ++i) committed[list->elems[i].partition] = list->elems[i].offset;
  return committed;
}

// Takes one record of the runs topic into `found`: the later record of a run wins within a
// partition; a run_id in two partitions (the same run_id submitted under two job_ids) keeps the
// most recently written; a tombstone forgets the run.
void take(const rd_kafka_message_t& m, const std::string& topic,
          std::unordered_map<std::string, v1::RunRecord>& found, RestoreStats& stats) {
  std::string key = m.key ? std::string(static_cast<const char*>(m.key), m.key_len) : "";
  if (key.starts_with(kBarrierKey) || key.starts_with(kUseKeyPrefix)) return;  // not runs
  if (!m.payload) {
    found.erase(key);
    return;
  }
  v1::RunRecord r;
  if (!r.ParseFromArray(m.payload, static_cast<int>(m.len)) || r.run_id().empty()) {
    ++stats.undecodable;
    spdlog::warn("runs: skipped {}[{}]@{}: not a RunRecord with a run_id", topic, m.partition,
                 m.offset);
    return;
  }
  auto at = found.find(r.run_id());
  if (at != found.end() && at->second.source().partition() != r.source().partition() &&
      at->second.updated_ms() > r.updated_ms()) {
    return;
  }
  found.insert_or_assign(r.run_id(), std::move(r));
}

// Reads each partition of `range` that is not empty up to its end as of now.
std::expected<std::unordered_map<std::string, v1::RunRecord>, std::string> readRecords(
    rd_kafka_t* rk, const std::string& topic, const std::map<std::int32_t, Range>& range,
    Steady::time_point deadline, std::chrono::milliseconds timeout, RestoreStats& stats) {
  std::unordered_map<std::string, v1::RunRecord> found;
  std::map<std::int32_t, std::int64_t> reading;  // partition -> end offset
  events::kafka::PartitionListPtr assign(rd_kafka_topic_partition_list_new(1));
  for (const auto& [p, r] : range) {
    if (r.second <= r.first || r.second <= 0) continue;
    reading[p] = r.second;
    rd_kafka_topic_partition_list_add(assign.get(), topic.c_str(), p)->offset = r.first;
  }
  if (reading.empty()) return found;
  if (events::kafka::ErrorPtr e{rd_kafka_incremental_assign(rk, assign.get())}) {
    std::vector<std::int32_t> all;
    for (const auto& [p, end] : reading) all.push_back(p);
    return std::unexpected(fmt::format("cannot assign {}[{}]: {}", topic, listOf(all),
                                       rd_kafka_error_string(e.get())));
  }
  std::string failure;
  while (!reading.empty() && failure.empty() && Steady::now() < deadline) {
    int wait = std::min(msLeft(deadline), static_cast<int>(kPollSlice.count()));
    events::kafka::MessagePtr m(rd_kafka_consumer_poll(rk, wait));
    if (!m) continue;
    auto it = reading.find(m->partition);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (it != reading.end() && m->offset >= it->second) reading.erase(it);
      continue;
    }
    if (m->err) {
      // Transport errors are retried by librdkafka until the deadline; these are not.
      if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
          m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
          m->err == RD_KAFKA_RESP_ERR__FATAL) {
        failure = fmt::format("cannot read {}: {}", topic, rd_kafka_message_errstr(m.get()));
      } else {
        spdlog::debug("runs reader: {}", rd_kafka_message_errstr(m.get()));
      }
      continue;
    }
    if (it == reading.end() || m->offset >= it->second) continue;  // beyond the end, or stale
    ++stats.records;
    if (m->offset + 1 >= it->second) reading.erase(it);
    take(*m, topic, found, stats);
  }
  if (events::kafka::ErrorPtr e{rd_kafka_incremental_unassign(rk, assign.get())}) {
    spdlog::warn("runs reader: cannot unassign {}: {}", topic, rd_kafka_error_string(e.get()));
  }
  if (!failure.empty()) return std::unexpected(failure);
  if (!reading.empty()) {
    std::vector<std::int32_t> left;
    for (const auto& [p, end] : reading) left.push_back(p);
    return std::unexpected(
        fmt::format("reading {}[{}] to its end took longer than {} ms ({} record(s) read)", topic,
                    listOf(left), timeout.count(), stats.records));
  }
  return found;
}

}  // namespace

std::expected<RestoreStats, std::string> RunStore::restore(
    const std::vector<std::int32_t>& partitions, std::chrono::milliseconds timeout,
    const std::map<std::int32_t, std::int64_t>& read_past) {
  const auto deadline = Steady::now() + timeout;
  rd_kafka_t* rk = reader_->rk.get();
  const auto& topic = options_.runs_topic;
  // Whatever happens below, what was known for these partitions is no longer right.
  forget(partitions);
  for (auto p : partitions) forgotten_.erase(p);
  RestoreStats stats;
  if (partitions.empty()) return stats;
  if (auto ok = checkPartitions(rk, topic, options_.jobs_topic, partitions, deadline); !ok) {
    return std::unexpected(ok.error());
  }
  auto range = readRanges(rk, topic, partitions, deadline);
  if (!range) return std::unexpected(range.error());
  for (const auto& [p, offset] : read_past) {
    if (auto it = range->find(p); it != range->end()) {
      it->second.second = std::max(it->second.second, offset + 1);
    }
  }
  // Records of commands below the group's committed offsets are not needed.
  auto committed = readCommitted(rk, options_.jobs_topic, options_.group_id, partitions, deadline);
  if (!committed) return std::unexpected(committed.error());
  stats.partitions = range->size();
  auto found = readRecords(rk, topic, *range, deadline, timeout, stats);
  if (!found) return std::unexpected(found.error());
  for (auto& [run_id, r] : *found) {
    auto c = committed->find(r.source().partition());
    // A claim is kept wherever its command's offset is: its run is running, or was lost.
    if (!holdsRun(r) && c != committed->end() && c->second >= 0 &&
        r.source().offset() < c->second) {
      ++stats.committed;
      continue;
    }
    ++stats.kept;
    runs_.insert_or_assign(run_id, std::move(r));
  }
  return stats;
}

void RunStore::forget(const std::vector<std::int32_t>& partitions) {
  forgotten_.insert(partitions.begin(), partitions.end());
  std::erase_if(runs_, [&](const auto& kv) {
    return std::ranges::find(partitions, kv.second.source().partition()) != partitions.end();
  });
}

void RunStore::forgetCommitted(std::int32_t partition, std::int64_t offset) {
  std::erase_if(runs_, [&](const auto& kv) {
    return kv.second.source().partition() == partition && kv.second.source().offset() < offset &&
           !holdsRun(kv.second);
  });
}

std::vector<Claim> RunStore::claims(std::string_view worker_id,
                                    std::string_view incarnation) const {
  std::vector<Claim> out;
  for (const auto& [run_id, r] : runs_) {
    if (!holdsRun(r)) continue;
    if (r.worker_id() == worker_id && r.incarnation() == incarnation) continue;
    out.push_back({run_id, r.worker_id(), r.incarnation(), r.source().partition()});
  }
  std::ranges::sort(out, {}, &Claim::run_id);
  return out;
}

const v1::RunRecord* RunStore::find(std::string_view run_id) const {
  auto it = runs_.find(std::string(run_id));
  return it == runs_.end() ? nullptr : &it->second;
}

void RunStore::remember(v1::RunRecord record) {
  if (record.run_id().empty() || forgotten_.contains(record.source().partition())) return;
  auto id = record.run_id();
  runs_.insert_or_assign(std::move(id), std::move(record));
}

bool holdsRun(const v1::RunRecord& r) {
  return (r.state() == v1::STARTED || r.released()) && !r.command().empty();
}

AttemptDecision decideAttempt(const v1::JobCommand& command, const v1::RunRecord* r,
                              unsigned max_attempts, bool holder_lost) {
  AttemptDecision a;
  const std::uint32_t attempt = commandAttempt(command);
  a.attempt = attempt;
  // Nothing recorded, or only an earlier attempt of the run: the scheduler asked for this one.
  if (!r || r->attempt() < attempt) return a;

  const std::uint32_t starts = std::max<std::uint32_t>(r->starts(), 1);
  const std::uint32_t releases = std::min(r->releases(), starts);
  a.starts = starts;
  a.releases = releases;
  a.state = r->state();
  if (r->attempt() > attempt) {
    a.verdict = AttemptDecision::Verdict::kSkip;
    a.attempt = r->attempt() + starts - 1;
    a.reason = fmt::format("attempt {} of this run was already taken (now {})", r->attempt(),
                           v1::RunState_Name(r->state()));
    return a;
  }
  if (r->released() && !r->command().empty()) {
    // Let go by its worker as it stopped; that attempt ended. The next one, at once.
    a.verdict = AttemptDecision::Verdict::kRerun;
    a.after_release = true;
    a.lost_worker = r->worker_id();
    a.starts = starts + 1;
    a.attempt = attempt + starts;
    a.state = v1::STARTED;
    a.reason = fmt::format("attempt {} after worker {} let it go as it stopped", a.attempt,
                           r->worker_id());
    return a;
  }
  if (v1::isTerminal(r->state())) {
    a.verdict = AttemptDecision::Verdict::kSkip;
    a.attempt = attempt + starts - 1;
    a.reason = fmt::format("already {} (worker {})", v1::RunState_Name(r->state()), r->worker_id());
    return a;
  }
  if (r->state() == v1::STARTED && !r->command().empty() && !holder_lost) {
    a.verdict = AttemptDecision::Verdict::kClaimed;
    a.attempt = attempt + starts - 1;
    a.reason =
        fmt::format("claimed by worker {} (attempt {}): it runs there", r->worker_id(), a.attempt);
    return a;
  }
  // Anything else (STARTED, or a state this worker does not know) counts as a lost start.
  a.lost_worker = r->worker_id();
  const unsigned limit =
      std::max(1u, command.max_attempts() > 0 ? command.max_attempts() : max_attempts);
  // Starts that ended released were not lost: they do not count.
  if (const std::uint32_t lost = starts - releases; lost >= limit) {
    a.verdict = AttemptDecision::Verdict::kGiveUp;
    a.attempt = attempt + starts - 1;
    a.state = v1::FAILED;
    a.reason = fmt::format("worker lost {} times (last {}); max_attempts is {}", lost,
                           r->worker_id(), limit);
    return a;
  }
  a.verdict = AttemptDecision::Verdict::kRerun;
  a.starts = starts + 1;
  a.attempt = attempt + starts;
  a.state = v1::STARTED;
  a.reason =
      fmt::format("redelivery: attempt {} after worker {} was lost", a.attempt, r->worker_id());
  return a;
}

namespace {

v1::RunRecord baseRecord(const v1::JobCommand& command, std::uint32_t starts, v1::RunState state,
                         const TopicPartition& source, std::int64_t offset,
                         std::string_view worker_id, std::chrono::system_clock::time_point now) {
  v1::RunRecord r;
  r.set_run_id(command.run_id());
  r.set_job_id(command.job_id());
  r.set_attempt(commandAttempt(command));
  r.set_starts(starts);
  r.set_state(state);
  r.set_worker_id(std::string(worker_id));
  r.set_updated_ms(toUnixMillis(now));
  r.mutable_source()->set_topic(source.topic);
  r.mutable_source()->set_partition(source.partition);
  r.mutable_source()->set_offset(offset);
  return r;
}

}  // namespace

v1::RunRecord RunStore::startRecord(const v1::JobCommand& command, const AttemptDecision& admission,
                                    const TopicPartition& source, std::int64_t offset,
                                    std::string_view worker_id,
                                    std::chrono::system_clock::time_point now) {
  auto r = baseRecord(command, admission.starts, v1::STARTED, source, offset, worker_id, now);
  r.set_command(command.SerializeAsString());
  r.set_releases(admission.releases);
  return r;
}

v1::RunRecord RunStore::endRecord(const v1::JobCommand& command, std::uint32_t starts,
                                  v1::RunState terminal, const TopicPartition& source,
                                  std::int64_t offset, std::string_view worker_id,
                                  std::chrono::system_clock::time_point now, std::uint32_t releases,
                                  bool released) {
  auto r = baseRecord(command, starts, terminal, source, offset, worker_id, now);
  r.set_releases(releases + (released ? 1 : 0));
  if (released) {
    r.set_released(true);
    r.set_command(command.SerializeAsString());
  }
  return r;
}

events::OutRecord RunStore::barrier(std::int32_t partition, std::string_view id) const {
  return {options_.runs_topic, partition, std::string(kBarrierKey) + std::string(id), {}, {}};
}

events::OutRecord RunStore::toOutRecord(const v1::RunRecord& record) const {
  events::OutRecord out;
  out.topic = options_.runs_topic;
  out.partition = record.source().partition();
  out.key = record.run_id();
  out.value = events::toWire(record);
  return out;
}

}  // namespace outpost::consumer
