#include "outpost/consumer/job_consumer.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "message_headers.h"
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

  // On the poll thread, for every commit of either mode (the configuration's offset_commit_cb).
  static void onCommit(rd_kafka_t*, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t* offsets, void* opaque) {
    auto* owner = static_cast<Impl*>(opaque)->owner;
    // A request-level error, else the first partition's: each is one failed commit.
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; offsets && i < offsets->cnt && !err; ++i) err = offsets->elems[i].err;
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
    const auto failure = commitFailureOf(err);
    ++owner->commit_failures_[failure];
    spdlog::warn("offset commit failed ({}): {}; it is committed again with the next commit",
                 commitFailureName(failure), rd_kafka_err2str(err));
  }

  static CommitFailure commitFailureOf(rd_kafka_resp_err_t err) {
    switch (err) {
      case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
      case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
      case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
      case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
      case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
      case RD_KAFKA_RESP_ERR__STATE:
        return CommitFailure::kRebalance;
      case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
      case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
      case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
      case RD_KAFKA_RESP_ERR__WAIT_COORD:
        return CommitFailure::kCoordinator;
      case RD_KAFKA_RESP_ERR__TIMED_OUT:
      case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      case RD_KAFKA_RESP_ERR__TRANSPORT:
      case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        return CommitFailure::kTimeout;
      default:
        return CommitFailure::kOther;
    }
  }

  void rebalance(rd_kafka_t* handle, rd_kafka_resp_err_t err,
                 rd_kafka_topic_partition_list_t* parts) {
    auto tps = toVector(parts);
    // Every rebalance may bring a new generation (or member id): ask librdkafka again.
    owner->group_metadata_fresh_ = false;
    if (owner->closing_) return whileClosing(handle, err, tps);
    // Known only once the group has chosen its assignor (before the first join it says NONE).
    const char* protocol = rd_kafka_rebalance_protocol(handle);
    owner->cooperative_ = protocol && std::string_view(protocol) == "COOPERATIVE";
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (owner->cooperative_) {
        events::kafka::ErrorPtr e(rd_kafka_incremental_assign(handle, parts));
        if (e) spdlog::error("incremental assign failed: {}", rd_kafka_error_string(e.get()));
      } else {
        rd_kafka_assign(handle, parts);
      }
      spdlog::info("partitions assigned: {}", describe(tps));
      for (const auto& tp : tps) owner->assignment_.push_back(tp);
      // librdkafka 2.0.2 workaround: it forgets a partition's pause across a rebalance.
      if (owner->paused_) rd_kafka_pause_partitions(handle, parts);
      owner->listener_.onAssigned(tps);
      return;
    }
    revoke(revocationOf(handle, err), tps);
    if (owner->cooperative_) {
      events::kafka::ErrorPtr e(rd_kafka_incremental_unassign(handle, parts));
      if (e) spdlog::error("incremental unassign failed: {}", rd_kafka_error_string(e.get()));
    } else {
      rd_kafka_assign(handle, nullptr);
    }
  }

  // Inside close(): the group terminates, and whatever the callback brings (an assignment from a
  // join that was under way, or the final revocation) is answered with an unassign, which
  // librdkafka accepts for either protocol while terminating. An assignment is not taken and the
  // listener never hears of it; a revocation of what it was told of is passed on.
  void whileClosing(rd_kafka_t* handle, rd_kafka_resp_err_t err,
                    const std::vector<TopicPartition>& tps) {
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      spdlog::debug("partitions assigned while closing, not taken: {}", describe(tps));
    } else {
      revoke(revocationOf(handle, err), tps);
    }
    rd_kafka_assign(handle, nullptr);
  }

  // Tells the listener of the partitions going away that it was told of, and forgets them.
  static Revocation revocationOf(rd_kafka_t* handle, rd_kafka_resp_err_t err) {
    return err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(handle)
               ? Revocation::kLost
               : Revocation::kRevoked;
  }

  void revoke(Revocation how, const std::vector<TopicPartition>& tps) {
    std::vector<TopicPartition> told;
    std::ranges::copy_if(tps, std::back_inserter(told), [&](const TopicPartition& tp) {
      return std::ranges::find(owner->assignment_, tp) != owner->assignment_.end();
    });
    if (!told.empty()) {
      spdlog::info("partitions {}: {}", how == Revocation::kLost ? "lost" : "revoked",
                   describe(told));
      ++owner->revocations_;
      owner->listener_.onRevoked(told, how);
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
  rd_kafka_conf_set_offset_commit_cb(conf.get(), &Impl::onCommit);
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

JobConsumer::~JobConsumer() {
  impl_->queue.reset();
  if (close_given_up_) {
    // rd_kafka_destroy() would wait for the same stuck group that close() gave up on (its main
    // thread never ends): the handle is left to the process's exit instead.
    static_cast<void>(impl_->rk.release());
    return;
  }
  // Closed, or given up on: no close-time callbacks from here (an owner that never called close()
  // leaves the group by its session timeout, and nothing calls into its listener any more).
  rd_kafka_destroy_flags(impl_->rk.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

std::string_view commitFailureName(CommitFailure failure) {
  switch (failure) {
    case CommitFailure::kRebalance:
      return "rebalance";
    case CommitFailure::kCoordinator:
      return "coordinator";
    case CommitFailure::kTimeout:
      return "timeout";
    case CommitFailure::kOther:
      return "other";
  }
  return "other";
}

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
  forEachHeader(m.get(), [&](std::string name, std::string value) {
    out.headers.push_back({std::move(name), std::move(value)});
  });
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

void JobConsumer::commit(const std::map<TopicPartition, std::int64_t>& offsets, CommitMode mode) {
  if (offsets.empty()) return;
  events::kafka::PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [tp, off] : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = off;
  }
  // Inside close() the group terminates only once this callback returns, and a commit waited
  // for there is never answered (that wait, without a bound, kept stopping workers from exiting):
  // it is sent, and the close waits for commits in flight before it leaves the group.
  if (mode == CommitMode::kAsync || closing_) {
    // Failures reach onCommit at a later poll.
    if (auto err = rd_kafka_commit(impl_->rk.get(), list.get(), 1);
        err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      spdlog::warn("offset commit not sent: {}", rd_kafka_err2str(err));
    }
    return;
  }
  // rd_kafka_commit(sync) would wait without bound: the answer comes to a queue of its own,
  // waited for up to kAwaitCommit (onCommit also sees it and counts a failure).
  events::kafka::QueuePtr answer(rd_kafka_queue_new(impl_->rk.get()));
  if (auto err = rd_kafka_commit_queue(impl_->rk.get(), list.get(), answer.get(), nullptr, nullptr);
      err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    spdlog::warn("offset commit not sent: {}", rd_kafka_err2str(err));
    return;
  }
  rd_kafka_event_t* event = rd_kafka_queue_poll(
      answer.get(), static_cast<int>(std::chrono::milliseconds(kAwaitCommit).count()));
  if (!event) {
    spdlog::warn(
        "offset commit not answered within {} s; it is committed again with the next commit",
        kAwaitCommit.count());
    return;
  }
  rd_kafka_event_destroy(event);
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

bool JobConsumer::close(std::chrono::milliseconds timeout) {
  if (std::exchange(closing_, true)) return false;
  // librdkafka's rd_kafka_consumer_close() waits for the group to terminate without a bound; the
  // same close on a queue of our own is served here, with one.
  events::kafka::QueuePtr events(rd_kafka_queue_new(impl_->rk.get()));
  if (events::kafka::ErrorPtr e(rd_kafka_consumer_close_queue(impl_->rk.get(), events.get())); e) {
    spdlog::warn("consumer close: {}", rd_kafka_error_string(e.get()));
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  rd_kafka_t* rk = impl_->rk.get();
  while (!rd_kafka_consumer_closed(rk)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::error(
          "the consumer did not leave the group within {} ms; given up (the group notices when "
          "this member's session times out)",
          timeout.count());
      close_given_up_ = true;
      return false;
    }
    // librdkafka 2.0.2 workaround: as events, not callbacks. The queue also holds fetched
    // messages and other ops that no callback serves (rd_kafka_queue_poll_callback() asserts on
    // those: librdkafka 2.0.2's rd_kafka_q_serve "res != RD_KAFKA_OP_RES_PASS" aborted a closing
    // worker).
    rd_kafka_event_t* event = rd_kafka_queue_poll(events.get(), 100);
    if (!event) continue;
    switch (rd_kafka_event_type(event)) {
      case RD_KAFKA_EVENT_REBALANCE:
        impl_->rebalance(rk, rd_kafka_event_error(event),
                         rd_kafka_event_topic_partition_list(event));
        break;
      case RD_KAFKA_EVENT_OFFSET_COMMIT:
        Impl::onCommit(rk, rd_kafka_event_error(event), rd_kafka_event_topic_partition_list(event),
                       impl_.get());
        break;
      default:  // fetched messages, statistics, errors: nothing is taken while closing
        break;
    }
    rd_kafka_event_destroy(event);
  }
  return true;
}

}  // namespace outpost::consumer
