#include "outpost/consumer/control_listener.h"

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include "message_headers.h"
#include "outpost/common/thread_name.h"
#include "outpost/events/kafka.h"

namespace outpost::consumer {
namespace {

// How often the discovery thread looks at the topic's metadata: soon while the topic is missing
// (a control plane may create it after the workers start) or a partition could not be read yet
// (e.g. its leader is not elected), less often for partitions added later.
constexpr std::chrono::seconds kRefreshWhileMissing{2};
constexpr std::chrono::seconds kRetry{1};
constexpr std::chrono::seconds kRefresh{5};
// Bound on each blocking broker request of the discovery thread, and so on how long the
// destructor may wait for it.
constexpr int kRequestTimeoutMs = 3000;

}  // namespace

std::expected<v1::ControlCommand, std::string> decodeControlCommand(std::string_view bytes) {
  if (bytes.empty()) return std::unexpected("empty message: not a ControlCommand");
  v1::ControlCommand c;
  if (!c.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return std::unexpected("undecodable: not a protobuf outpost.v1.ControlCommand");
  }
  // Protobuf is lenient: random bytes can parse as unknown fields, and a command added to the
  // oneof after this worker was built parses as none. Neither is something to act on.
  if (c.command_case() == v1::ControlCommand::COMMAND_NOT_SET) {
    return std::unexpected("no command this worker knows (undecodable, or newer than the worker)");
  }
  if (c.has_drain() || c.has_resume()) {
    const auto& w = c.has_drain() ? c.drain().workers() : c.resume().workers();
    if (w.worker_id().empty() && w.pool().empty()) {
      return std::unexpected(std::string(c.has_drain() ? "drain" : "resume") +
                             " without a worker_id or pool");
    }
  }
  if (c.has_cancel()) {
    const auto& run_id = c.cancel().run_id();
    if (run_id.empty()) return std::unexpected("cancel without a run_id");
    if (!isUuid(run_id)) {
      return std::unexpected("cancel for run_id '" + run_id.substr(0, 64) + "', not a UUID");
    }
  }
  return c;
}

bool selects(const v1::WorkerSelector& workers, const std::string& worker_id,
             const std::string& pool) {
  switch (workers.target_case()) {
    case v1::WorkerSelector::kWorkerId:
      return workers.worker_id() == worker_id;
    case v1::WorkerSelector::kPool:
      return workers.pool() == pool;
    default:
      return false;
  }
}

// A topic the listener follows: every partition, from `memory` back (control) or from the start
// (workers: compacted, one status per worker).
struct FollowedTopic {
  FollowedTopic(std::string n, bool start) : name(std::move(n)), from_start(start) {}
  std::string name;
  bool from_start = false;
  // Discovery thread only.
  std::set<std::int32_t> assigned;
  bool reported_missing = false;
};

struct ControlListener::Impl {
  const Clock& clock;
  Millis memory;
  std::chrono::system_clock::time_point started_at;
  events::kafka::HandlePtr rk;
  std::vector<FollowedTopic> topics;  // the control topic first

  std::mutex mutex;  // guards stopping and replay_end (poll thread and discovery thread)
  std::condition_variable cv;
  bool stopping = false;
  // Per control partition: the high watermark when it was assigned. Messages below it were
  // written before the listener read the partition.
  std::map<std::int32_t, std::int64_t> replay_end;

  // Discovery thread only.
  bool failing = false;  // a broker request failed since the last complete refresh
  std::thread discovery;

  Impl(const Clock& c, Millis m) : clock(c), memory(m), started_at(c.now()) {}

  const std::string& controlTopic() const { return topics.front().name; }

  enum class Found { kMissing, kIncomplete, kAll };

  void discover() {
    std::unique_lock lock(mutex);
    while (!stopping) {
      lock.unlock();
      auto found = Found::kAll;
      for (auto& t : topics) found = std::min(found, refresh(t));
      if (found == Found::kAll && failing) {
        spdlog::info("control: reading every partition of {} again", controlTopic());
        failing = false;
      }
      lock.lock();
      Millis wait = found == Found::kAll       ? Millis(kRefresh)
                    : found == Found::kMissing ? Millis(kRefreshWhileMissing)
                                               : Millis(kRetry);
      cv.wait_for(lock, wait, [this] { return stopping; });
    }
  }

  // Warns once per spell of failures (the discovery thread retries every second meanwhile).
  void reportFailure(const std::string& what) {
    if (failing) {
      spdlog::debug("control: {}; trying again", what);
    } else {
      spdlog::warn("control: {}; trying again every {} s", what, kRetry.count());
      failing = true;
    }
  }

  bool stopRequested() {
    std::lock_guard lock(mutex);
    return stopping;
  }

  // Looks the topic up and assigns partitions not assigned yet.
  Found refresh(FollowedTopic& t) {
    std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> rkt(
        rd_kafka_topic_new(rk.get(), t.name.c_str(), nullptr), &rd_kafka_topic_destroy);
    if (!rkt) return Found::kIncomplete;
    const rd_kafka_metadata_t* raw = nullptr;
    // Only this topic; consumers do not auto-create topics (allow.auto.create.topics=false).
    auto err = rd_kafka_metadata(rk.get(), 0, rkt.get(), &raw, kRequestTimeoutMs);
    std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)> md(
        raw, &rd_kafka_metadata_destroy);
    if (err) {
      reportFailure(fmt::format("cannot read metadata of {}: {}", t.name, rd_kafka_err2str(err)));
      return Found::kIncomplete;
    }
    if (md->topic_cnt < 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
      if (!t.reported_missing && t.assigned.empty()) {
        spdlog::info("control: topic {} does not exist yet; looking for it every {} s", t.name,
                     kRefreshWhileMissing.count());
        t.reported_missing = true;
      }
      return t.assigned.empty() ? Found::kMissing : Found::kIncomplete;
    }
    std::vector<std::int32_t> added;
    for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
      auto p = md->topics[0].partitions[i].id;
      if (!t.assigned.contains(p)) added.push_back(p);
    }
    if (added.empty()) return Found::kAll;
    auto n = t.from_start ? assignFromStart(t, added) : assign(t, added);
    return n == added.size() ? Found::kAll : Found::kIncomplete;
  }

  // Starts reading `partitions` at the first message not older than `memory`. Partitions whose
  // offsets cannot be read now are left for the next refresh. Returns how many it assigned.
  std::size_t assign(FollowedTopic& t, const std::vector<std::int32_t>& partitions) {
    const std::string& topic = t.name;
    // The high watermark first: where a partition has no message recent enough, reading starts
    // there rather than at OFFSET_END, which would be resolved later and could skip a cancel
    // written in between.
    std::map<std::int32_t, std::int64_t> high;
    for (auto p : partitions) {
      if (stopRequested()) return 0;
      std::int64_t lo = -1, hi = -1;
      auto err =
          rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &lo, &hi, kRequestTimeoutMs);
      if (err) {
        reportFailure(
            fmt::format("cannot read the offsets of {}[{}]: {}", topic, p, rd_kafka_err2str(err)));
        continue;
      }
      high[p] = hi;
    }
    if (high.empty() || stopRequested()) return 0;
    auto since = toUnixMillis(clock.now() - memory);
    events::kafka::PartitionListPtr list(
        rd_kafka_topic_partition_list_new(static_cast<int>(high.size())));
    for (const auto& [p, hi] : high)
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = since;
    if (auto err = rd_kafka_offsets_for_times(rk.get(), list.get(), kRequestTimeoutMs)) {
      reportFailure(
          fmt::format("cannot look up offsets by time in {}: {}", topic, rd_kafka_err2str(err)));
      return 0;
    }
    events::kafka::PartitionListPtr ready(rd_kafka_topic_partition_list_new(list->cnt));
    for (int i = 0; i < list->cnt; ++i) {
      const auto& e = list->elems[i];
      if (e.err) {
        reportFailure(fmt::format("cannot look up offsets by time in {}[{}]: {}", topic,
                                  e.partition, rd_kafka_err2str(e.err)));
        continue;
      }
      // -1: no message at or after `since`.
      rd_kafka_topic_partition_list_add(ready.get(), topic.c_str(), e.partition)->offset =
          e.offset >= 0 ? e.offset : high.at(e.partition);
    }
    if (ready->cnt == 0) return 0;
    {
      std::lock_guard lock(mutex);
      for (int i = 0; i < ready->cnt; ++i)
        replay_end[ready->elems[i].partition] = high.at(ready->elems[i].partition);
    }
    if (!incrementalAssign(t, ready.get())) return 0;
    for (int i = 0; i < ready->cnt; ++i) {
      spdlog::info("control: reading {}[{}] from offset {} (cancels of the last {} s)", topic,
                   ready->elems[i].partition, ready->elems[i].offset,
                   std::chrono::duration_cast<std::chrono::seconds>(memory).count());
    }
    return static_cast<std::size_t>(ready->cnt);
  }

  // Starts reading `partitions` at their first message.
  std::size_t assignFromStart(FollowedTopic& t, const std::vector<std::int32_t>& partitions) {
    events::kafka::PartitionListPtr ready(
        rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
    for (auto p : partitions) {
      rd_kafka_topic_partition_list_add(ready.get(), t.name.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    if (!incrementalAssign(t, ready.get())) return 0;
    spdlog::info("control: reading {} ({} partition(s)) from the start", t.name, ready->cnt);
    return partitions.size();
  }

  bool incrementalAssign(FollowedTopic& t, const rd_kafka_topic_partition_list_t* list) {
    // librdkafka serves assignment requests on its own thread, so this is safe beside poll().
    events::kafka::ErrorPtr e(rd_kafka_incremental_assign(rk.get(), list));
    if (e) {
      reportFailure(fmt::format("cannot assign {}: {}", t.name, rd_kafka_error_string(e.get())));
      return false;
    }
    for (int i = 0; i < list->cnt; ++i) t.assigned.insert(list->elems[i].partition);
    return true;
  }

  bool isReplay(std::int32_t partition, std::int64_t offset,
                std::chrono::system_clock::time_point timestamp) {
    std::lock_guard lock(mutex);
    auto it = replay_end.find(partition);
    // Both: below the watermark seen at assignment, and older than the listener (a partition
    // created after the start has nothing to replay, whatever its watermark).
    return it != replay_end.end() && offset < it->second && timestamp < started_at;
  }
};

ControlListener::ControlListener(const KafkaConfig& config, const std::string& topic,
                                 const std::string& group_id, const std::string& client_id,
                                 Millis memory, const Clock& clock,
                                 const std::string& workers_topic)
    : impl_(std::make_unique<Impl>(clock, memory)) {
  impl_->topics.emplace_back(topic, /*start=*/false);
  if (!workers_topic.empty()) impl_->topics.emplace_back(workers_topic, /*start=*/true);
  // No group membership and nothing committed: every worker reads everything, and where to start
  // is decided by time each time the worker starts.
  const events::kafka::Properties defaults = {
      {"bootstrap.servers", config.bootstrap_servers},
      {"group.id", group_id},
      {"client.id", client_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "false"},
      // Only when an offset is out of range (retention removed it): nothing older is wanted.
      {"auto.offset.reset", "latest"},
  };
  auto conf = events::kafka::makeConf({&defaults, &config.properties, &config.consumer_properties},
                                      "kafka.properties / kafka.consumer_properties");
  impl_->rk = events::kafka::makeHandle(events::kafka::ClientType::kConsumer, std::move(conf));
  rd_kafka_poll_set_consumer(impl_->rk.get());
  impl_->discovery = std::thread([impl = impl_.get()] {
    nameThisThread("op-ctl-discover");
    impl->discover();
  });
}

ControlListener::~ControlListener() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->discovery.join();
  if (auto err = rd_kafka_consumer_close(impl_->rk.get())) {
    spdlog::warn("control consumer close: {}", rd_kafka_err2str(err));
  }
}

std::optional<Followed> ControlListener::poll() {
  for (;;) {
    events::kafka::MessagePtr m(rd_kafka_consumer_poll(impl_->rk.get(), 0));
    if (!m) return std::nullopt;
    if (m->err) {
      spdlog::warn("control consumer: {}", rd_kafka_message_errstr(m.get()));
      continue;
    }
    TopicPartition tp{rd_kafka_topic_name(m->rkt), m->partition};
    std::string_view value(m->payload ? static_cast<const char*>(m->payload) : "", m->len);
    if (tp.topic != impl_->controlTopic()) {
      StatusMessage out;
      if (m->key) out.worker_id.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload) {
        out.status.emplace();
        if (!out.status->ParseFromArray(value.data(), static_cast<int>(value.size())) ||
            out.status->worker_id() != out.worker_id) {
          spdlog::debug("control: skipped {}[{}]@{}: not a WorkerStatus of its key", tp.topic,
                        tp.partition, m->offset);
          continue;
        }
      }
      return out;
    }
    ControlMessage out;
    out.tp = std::move(tp);
    out.offset = m->offset;
    rd_kafka_timestamp_type_t type;
    auto ts = rd_kafka_message_timestamp(m.get(), &type);
    out.timestamp = ts >= 0 ? std::chrono::system_clock::time_point(std::chrono::milliseconds(ts))
                            : impl_->clock.now();
    out.replayed = impl_->isReplay(m->partition, m->offset, out.timestamp);
    // Kept for the signature check, which covers these exact bytes.
    out.value.assign(value);
    forEachHeader(m.get(), [&](std::string name, std::string header_value) {
      out.headers.push_back({std::move(name), std::move(header_value)});
    });
    auto decoded = decodeControlCommand(value);
    if (!decoded) {
      // Not a job: nothing to run and no run to report on, so no dead-letter copy and no event.
      // The message stays in the control topic for whoever wants to look at it.
      spdlog::warn("control: skipped {}[{}]@{}: {}", out.tp.topic, out.tp.partition, out.offset,
                   decoded.error());
      continue;
    }
    out.command = std::move(*decoded);
    return out;
  }
}

}  // namespace outpost::consumer
