#include "outpost/consumer/topic_reader.h"

#include <algorithm>
#include <climits>
#include <random>

#include <librdkafka/rdkafka.h>

#include "message_headers.h"
#include "outpost/events/kafka.h"
#include "retry.h"

namespace outpost::consumer {
namespace {

int toMs(std::chrono::milliseconds d) {
  return static_cast<int>(std::clamp<std::int64_t>(d.count(), 1, INT32_MAX));
}

events::kafka::HandlePtr consumerHandle(const KafkaConfig& kafka, const std::string& bootstrap,
                                        const events::kafka::Properties& own) {
  // Later layers win: `own` decides how the reading is done.
  events::kafka::Properties servers = {
      {"bootstrap.servers", bootstrap.empty() ? kafka.bootstrap_servers : bootstrap}};
  return events::kafka::makeHandle(
      events::kafka::ClientType::kConsumer,
      events::kafka::makeConf({&servers, &kafka.properties, &kafka.consumer_properties, &own},
                              "kafka.properties"));
}

}  // namespace

struct TopicReader::Impl {
  events::kafka::HandlePtr rk;
  ~Impl() {
    if (rk) rd_kafka_consumer_close(rk.get());
  }
};

TopicReader::TopicReader(const KafkaConfig& kafka, const std::string& bootstrap,
                         const std::string& name)
    : impl_(std::make_unique<Impl>()) {
  // librdkafka's assign() needs a group id; the group is never joined and nothing is committed.
  std::random_device random;
  impl_->rk = consumerHandle(kafka, bootstrap,
                             {{"group.id", name + "-" + std::to_string(random())},
                              {"client.id", name},
                              {"enable.auto.commit", "false"},
                              {"enable.partition.eof", "true"},
                              {"isolation.level", "read_committed"}});
}

TopicReader::~TopicReader() = default;

std::expected<std::map<std::string, std::vector<std::int32_t>>, std::string>
TopicReader::partitions(std::chrono::milliseconds timeout) {
  // Every call below retries what a moment cures (a topic just created, a leader being elected)
  // within its timeout: a client started right after `outpost topics` or a broker's restart.
  const auto deadline = retry::Steady::now() + timeout;
  std::map<std::string, std::vector<std::int32_t>> found;
  auto err = retry::retrying(deadline, [&](int ms) {
    const rd_kafka_metadata_t* md = nullptr;
    if (auto e = rd_kafka_metadata(impl_->rk.get(), 1, nullptr, &md, ms)) return e;
    std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)> owned(
        md, &rd_kafka_metadata_destroy);
    found.clear();
    rd_kafka_resp_err_t transient = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; i < md->topic_cnt; ++i) {
      const auto& t = md->topics[i];
      if (t.err) {
        // A topic being created: asked again. Another error: that topic is left out.
        if (retry::isTransient(t.err)) transient = t.err;
        continue;
      }
      auto& ids = found[t.topic];
      for (int p = 0; p < t.partition_cnt; ++p) ids.push_back(t.partitions[p].id);
    }
    return transient;
  });
  // What a topic that stays unsettled past the deadline leaves out is left out.
  if (err && !retry::isTransient(err)) return std::unexpected(std::string(rd_kafka_err2str(err)));
  if (err && found.empty()) return std::unexpected(std::string(rd_kafka_err2str(err)));
  return found;
}

std::expected<std::pair<std::int64_t, std::int64_t>, std::string> TopicReader::watermarks(
    const TopicPartition& tp, std::chrono::milliseconds timeout) {
  std::int64_t low = -1, high = -1;
  auto err = retry::retrying(retry::Steady::now() + timeout, [&](int ms) {
    return rd_kafka_query_watermark_offsets(impl_->rk.get(), tp.topic.c_str(), tp.partition, &low,
                                            &high, ms);
  });
  if (err) return std::unexpected(std::string(rd_kafka_err2str(err)));
  return std::pair{low, high};
}

std::expected<std::int64_t, std::string> TopicReader::offsetForTime(
    const TopicPartition& tp, std::int64_t unix_ms, std::chrono::milliseconds timeout) {
  // The end first: when no record is that recent, the answer is the end as it was before the
  // query, so that a record written in between is not skipped.
  const auto deadline = retry::Steady::now() + timeout;
  auto marks = watermarks(tp, timeout);
  if (!marks) return std::unexpected(marks.error());
  std::int64_t offset = -1;
  auto err = retry::retrying(deadline, [&](int ms) {
    events::kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = unix_ms;
    if (auto e = rd_kafka_offsets_for_times(impl_->rk.get(), list.get(), ms)) return e;
    offset = list->elems[0].offset;
    return list->elems[0].err;
  });
  if (err) return std::unexpected(std::string(rd_kafka_err2str(err)));
  return offset >= 0 ? offset : marks->second;
}

std::expected<void, std::string> TopicReader::readFromBeginning(
    const std::vector<TopicPartition>& tps) {
  std::vector<std::pair<TopicPartition, std::int64_t>> from;
  for (const auto& tp : tps) from.emplace_back(tp, RD_KAFKA_OFFSET_BEGINNING);
  return readFrom(from);
}

std::expected<void, std::string> TopicReader::readFrom(
    const std::vector<std::pair<TopicPartition, std::int64_t>>& from) {
  if (from.empty()) return {};
  events::kafka::PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(from.size())));
  for (const auto& [tp, offset] : from) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
  }
  if (events::kafka::ErrorPtr e{rd_kafka_incremental_assign(impl_->rk.get(), list.get())}) {
    return std::unexpected(std::string(rd_kafka_error_string(e.get())));
  }
  return {};
}

ReadResult TopicReader::poll(std::chrono::milliseconds timeout) {
  ReadResult r;
  events::kafka::MessagePtr m(rd_kafka_consumer_poll(impl_->rk.get(), toMs(timeout)));
  if (!m) return r;
  if (m->rkt) r.record.tp.topic = rd_kafka_topic_name(m->rkt);
  r.record.tp.partition = m->partition;
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    r.kind = ReadResult::Kind::kEnd;
    return r;
  }
  if (m->err) {
    r.kind = ReadResult::Kind::kError;
    r.error = rd_kafka_message_errstr(m.get());
    return r;
  }
  r.kind = ReadResult::Kind::kRecord;
  r.record.offset = m->offset;
  r.record.timestamp_ms = rd_kafka_message_timestamp(m.get(), nullptr);
  if (m->key) r.record.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload) r.record.value.assign(static_cast<const char*>(m->payload), m->len);
  forEachHeader(m.get(), [&](std::string name, std::string value) {
    r.record.headers.emplace_back(std::move(name), std::move(value));
  });
  return r;
}

std::expected<std::map<TopicPartition, std::int64_t>, std::string> committedOffsets(
    const KafkaConfig& kafka, const std::string& bootstrap, const std::string& group,
    const std::vector<TopicPartition>& tps, std::chrono::milliseconds timeout) {
  std::map<TopicPartition, std::int64_t> out;
  if (tps.empty()) return out;
  auto rk =
      consumerHandle(kafka, bootstrap, {{"group.id", group}, {"enable.auto.commit", "false"}});
  events::kafka::PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(tps.size())));
  for (const auto& tp : tps) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  }
  auto err = retry::retrying(retry::Steady::now() + timeout, [&](int ms) {
    auto e = rd_kafka_committed(rk.get(), list.get(), ms);
    for (int i = 0; !e && i < list->cnt; ++i) e = list->elems[i].err;
    return e;
  });
  rd_kafka_consumer_close(rk.get());
  if (err) return std::unexpected(std::string(rd_kafka_err2str(err)));
  for (int i = 0; i < list->cnt; ++i) {
    const auto& e = list->elems[i];
    out[TopicPartition{e.topic, e.partition}] = e.offset < 0 ? -1 : e.offset;
  }
  return out;
}

}  // namespace outpost::consumer
