#include "outpost/consumer/job_consumer.h"

#include <algorithm>
#include <utility>

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "outpost/events/kafka.h"
#include "outpost/events/transactional_publisher.h"

namespace outpost::consumer {
namespace {

std::vector<TopicPartition> toVector(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  for (int i = 0; list && i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

events::kafka::PartitionListPtr toList(const std::vector<TopicPartition>& tps) {
  events::kafka::PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(tps.size())));
  for (const auto& tp : tps)
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  return list;
}

std::string describe(const std::vector<TopicPartition>& tps) {
  std::string s;
  for (const auto& tp : tps)
    s += (s.empty() ? "" : ",") + tp.topic + "[" + std::to_string(tp.partition) + "]";
  return s.empty() ? "none" : s;
}

}  // namespace

struct JobConsumer::Impl {
  events::kafka::HandlePtr rk;
  events::kafka::QueuePtr queue;  // the consumer queue, for wake()
  JobConsumer* owner = nullptr;

  // Trampoline: librdkafka calls this on the poll thread inside rd_kafka_consumer_poll().
  static void onRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* parts, void* opaque) {
    static_cast<Impl*>(opaque)->rebalance(rk, err, parts);
  }

  // librdkafka calls this on the poll thread too (statistics go through the consumer queue).
  static int onStats(rd_kafka_t*, char* json, size_t len, void* opaque) {
    static_cast<Impl*>(opaque)->stats(std::string_view(json, len));
    return 0;  // librdkafka frees the document
  }

  void stats(std::string_view json) {
    auto doc = nlohmann::json::parse(json, nullptr, false);
    if (doc.is_discarded()) return;
    std::map<std::int32_t, PartitionOffsets> out;
    const auto topics = doc.find("topics");
    if (topics == doc.end() || !topics->is_object()) return;
    const auto topic = topics->find(owner->topic_);
    if (topic == topics->end() || !topic->is_object()) return;
    const auto partitions = topic->find("partitions");
    if (partitions == topic->end() || !partitions->is_object()) return;
    for (const auto& p : *partitions) {
      if (!p.is_object()) continue;
      const auto partition = p.value("partition", -1);
      // -1 is librdkafka's internal unassigned partition; others it only knows of.
      const TopicPartition tp{owner->topic_, partition};
      if (partition < 0 || std::ranges::find(owner->assignment_, tp) == owner->assignment_.end())
        continue;
      auto end = p.value("ls_offset", std::int64_t{-1});
      if (end < 0) end = p.value("hi_offset", std::int64_t{-1});
      out[partition] = {end, p.value("committed_offset", std::int64_t{-1})};
    }
    owner->offsets_ = std::move(out);
  }

  void rebalance(rd_kafka_t* handle, rd_kafka_resp_err_t err,
                 rd_kafka_topic_partition_list_t* parts) {
    auto tps = toVector(parts);
    // Every rebalance may bring a new generation (or member id): ask librdkafka again.
    owner->group_metadata_fresh_ = false;
    // Known only once the group has chosen its assignor (before the first join it says NONE);
    // NULL once the group is terminating (inside rd_kafka_consumer_close()).
    const char* protocol = rd_kafka_rebalance_protocol(handle);
    const bool cooperative = protocol && std::string_view(protocol) == "COOPERATIVE";
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (cooperative) {
        events::kafka::ErrorPtr e(rd_kafka_incremental_assign(handle, parts));
        if (e) spdlog::error("incremental assign failed: {}", rd_kafka_error_string(e.get()));
      } else {
        rd_kafka_assign(handle, parts);
      }
      if (owner->closing_) {
        // The first join finished while the consumer closes (a stop right after the start):
        // nothing will be read from these partitions, and the listener is never told of them.
        spdlog::debug("partitions assigned while closing, not taken: {}", describe(tps));
        return;
      }
      spdlog::info("partitions assigned: {}", describe(tps));
      for (const auto& tp : tps) owner->assignment_.push_back(tp);
      if (owner->paused_) rd_kafka_pause_partitions(handle, parts);
      owner->listener_.onAssigned(tps);
      return;
    }
    bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(handle);
    // Only what the listener was told of (see the assignment above).
    std::vector<TopicPartition> told;
    std::ranges::copy_if(tps, std::back_inserter(told), [&](const TopicPartition& tp) {
      return std::ranges::find(owner->assignment_, tp) != owner->assignment_.end();
    });
    if (!told.empty()) {
      spdlog::info("partitions {}: {}", lost ? "lost" : "revoked", describe(told));
      ++owner->revocations_;
      owner->listener_.onRevoked(told, lost);
    }
    if (cooperative) {
      events::kafka::ErrorPtr e(rd_kafka_incremental_unassign(handle, parts));
      if (e) spdlog::error("incremental unassign failed: {}", rd_kafka_error_string(e.get()));
    } else {
      rd_kafka_assign(handle, nullptr);
    }
    std::erase_if(owner->assignment_, [&](const TopicPartition& tp) {
      return std::ranges::find(tps, tp) != tps.end();
    });
    for (const auto& tp : tps) owner->offsets_.erase(tp.partition);
  }
};

JobConsumer::JobConsumer(const KafkaConfig& config, const std::string& group_id,
                         const std::string& topic, RebalanceListener& listener,
                         const std::map<std::string, std::string>& extra)
    : impl_(std::make_unique<Impl>()), listener_(listener), topic_(topic) {
  impl_->owner = this;
  // Offsets are stored and committed by hand: only once a command's terminal event is acked.
  const events::kafka::Properties defaults = {
      {"bootstrap.servers", config.bootstrap_servers},
      {"group.id", group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"enable.partition.eof", "false"},
      // For partitionOffsets() (the lag); a document for a few partitions is parsed in ~0.1 ms.
      {"statistics.interval.ms", "5000"},
      // The prefetch, sized to what the worker can use: the dispatcher takes commands up to
      // worker.max_queued_bytes (8 MiB) ahead of its slots, so more prefetched is only memory
      // (librdkafka's defaults hold up to 64 MiB, and fetch 50 MiB at once: commands of up to a
      // megabyte each made a flooded worker's RSS reach 480 MB). A command larger than a fetch
      // still comes, alone.
      {"queued.max.messages.kbytes", "4096"},
      {"fetch.max.bytes", "4194304"},
  };
  auto conf =
      events::kafka::makeConf({&defaults, &extra, &config.properties, &config.consumer_properties},
                              "kafka.properties / kafka.consumer_properties");
  rd_kafka_conf_set_rebalance_cb(conf.get(), &Impl::onRebalance);
  rd_kafka_conf_set_stats_cb(conf.get(), &Impl::onStats);
  rd_kafka_conf_set_opaque(conf.get(), impl_.get());
  impl_->rk = events::kafka::makeHandle(events::kafka::ClientType::kConsumer, std::move(conf));
  rd_kafka_poll_set_consumer(impl_->rk.get());
  impl_->queue.reset(rd_kafka_queue_get_consumer(impl_->rk.get()));

  if (auto err = subscribe()) throw ConfigError("cannot subscribe to '" + topic + "': " + *err);
}

std::optional<std::string> JobConsumer::subscribe() {
  events::kafka::PartitionListPtr topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), topic_.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto err = rd_kafka_subscribe(impl_->rk.get(), topics.get())) return rd_kafka_err2str(err);
  return std::nullopt;
}

void JobConsumer::leave() {
  if (std::exchange(left_, true)) return;
  if (auto err = rd_kafka_unsubscribe(impl_->rk.get())) {
    spdlog::warn("cannot leave the group: {}", rd_kafka_err2str(err));
  }
}

void JobConsumer::rejoin() {
  if (!std::exchange(left_, false)) return;
  if (auto err = subscribe()) spdlog::error("cannot subscribe to '{}' again: {}", topic_, *err);
}

JobConsumer::~JobConsumer() = default;

std::optional<ConsumedMessage> JobConsumer::poll(std::chrono::milliseconds timeout) {
  events::kafka::MessagePtr m(
      rd_kafka_consumer_poll(impl_->rk.get(), static_cast<int>(timeout.count())));
  if (!m) return std::nullopt;
  if (m->err) {
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      spdlog::warn("consumer: {}", rd_kafka_message_errstr(m.get()));
    }
    return std::nullopt;
  }
  ConsumedMessage out;
  out.tp = {rd_kafka_topic_name(m->rkt), m->partition};
  out.offset = m->offset;
  rd_kafka_timestamp_type_t type;
  if (auto ts = rd_kafka_message_timestamp(m.get(), &type); ts >= 0) {
    out.timestamp = std::chrono::system_clock::time_point(std::chrono::milliseconds(ts));
  }
  if (m->key) out.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload) out.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m.get(), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == 0; ++i) {
      out.headers.push_back(
          {name, value ? std::string(static_cast<const char*>(value), size) : ""});
    }
  }
  return out;
}

void JobConsumer::wake() {
  rd_kafka_queue_yield(impl_->queue.get());
}

void JobConsumer::setPaused(bool paused) {
  if (paused == paused_) return;
  paused_ = paused;
  if (assignment_.empty()) return;
  auto list = toList(assignment_);
  auto err = paused ? rd_kafka_pause_partitions(impl_->rk.get(), list.get())
                    : rd_kafka_resume_partitions(impl_->rk.get(), list.get());
  if (err)
    spdlog::warn("cannot {} partitions: {}", paused ? "pause" : "resume", rd_kafka_err2str(err));
  spdlog::debug("partitions {}", paused ? "paused" : "resumed");
}

void JobConsumer::commit(const std::map<TopicPartition, std::int64_t>& offsets, bool sync) {
  if (offsets.empty()) return;
  events::kafka::PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [tp, off] : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = off;
  }
  auto err = rd_kafka_commit(impl_->rk.get(), list.get(), sync ? 0 : 1);
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    spdlog::warn("offset commit failed: {}", rd_kafka_err2str(err));
  }
}

std::shared_ptr<const events::GroupMetadata> JobConsumer::groupMetadata() {
  if (group_metadata_fresh_) return group_metadata_;
  // librdkafka makes a copy of the current generation and member id (under the group's lock):
  // once per rebalance, not once per run. Compared with the one handed out last so that units of
  // one generation share a pointer.
  auto now = std::make_shared<const events::GroupMetadata>(
      rd_kafka_consumer_group_metadata(impl_->rk.get()));
  if (!group_metadata_ || group_metadata_->fingerprint() != now->fingerprint()) {
    group_metadata_ = std::move(now);
  }
  group_metadata_fresh_ = true;
  return group_metadata_;
}

void JobConsumer::close() {
  closing_ = true;
  if (auto err = rd_kafka_consumer_close(impl_->rk.get())) {
    spdlog::warn("consumer close: {}", rd_kafka_err2str(err));
  }
}

}  // namespace outpost::consumer
