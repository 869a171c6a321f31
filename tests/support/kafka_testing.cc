#include "kafka_testing.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "outpost/common/config.h"
#include "outpost/consumer/topic_reader.h"

namespace outpost::kafka_testing {

HandlePtr makeClient(rd_kafka_type_t type, const std::string& bootstrap, Properties props) {
  props["bootstrap.servers"] = bootstrap;
  props.emplace("log_level", "3");
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  for (const auto& [name, value] : props) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("librdkafka refused " + name + "=" + value + ": " + err);
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("cannot create a Kafka client: ") + err);
  }
  return HandlePtr(rk);
}

void createTopics(const std::string& bootstrap, const std::vector<NewTopicSpec>& wanted) {
  auto admin = makeClient(RD_KAFKA_PRODUCER, bootstrap, {});
  std::vector<rd_kafka_NewTopic_t*> topics;
  char err[512];
  for (const auto& w : wanted) {
    topics.push_back(rd_kafka_NewTopic_new(w.name.c_str(), w.partitions, w.replication_factor, err,
                                            sizeof err));
    if (!topics.back()) {
      topics.pop_back();
      rd_kafka_NewTopic_destroy_array(topics.data(), topics.size());
      throw std::runtime_error("cannot create topic " + w.name + ": " + err);
    }
    for (const auto& [key, value] : w.configs) {
      rd_kafka_NewTopic_set_config(topics.back(), key.c_str(), value.c_str());
    }
  }
  // Answer once the topics exist with their leaders, not only once the controller accepted them.
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(admin.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, 30000, err, sizeof err);
  std::unique_ptr<rd_kafka_queue_t, Deleter> queue(rd_kafka_queue_new(admin.get()));
  rd_kafka_CreateTopics(admin.get(), topics.data(), topics.size(), options, queue.get());
  rd_kafka_AdminOptions_destroy(options);
  std::unique_ptr<rd_kafka_event_t, Deleter> ev(rd_kafka_queue_poll(queue.get(), 35000));
  rd_kafka_NewTopic_destroy_array(topics.data(), topics.size());
  if (!ev || rd_kafka_event_error(ev.get())) {
    throw std::runtime_error("cannot create topics: " +
                             std::string(ev ? rd_kafka_event_error_string(ev.get()) : "timeout"));
  }
  std::size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  for (std::size_t i = 0; i < n; ++i) {
    if (rd_kafka_topic_result_error(results[i])) {
      throw std::runtime_error("cannot create topic " +
                               std::string(rd_kafka_topic_result_name(results[i])) + ": " +
                               rd_kafka_topic_result_error_string(results[i]));
    }
  }
}

std::vector<std::int32_t> readablePartitions(rd_kafka_t* rk, const std::string& topic,
                                             std::chrono::seconds timeout) {
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> rkt(
      rd_kafka_topic_new(rk, topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const rd_kafka_metadata_t* md = nullptr;
    if (auto err = rd_kafka_metadata(rk, 0, rkt.get(), &md, 10000)) {
      throw std::runtime_error("metadata for " + topic + ": " + rd_kafka_err2str(err));
    }
    std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)> owned(
        md, &rd_kafka_metadata_destroy);
    std::string why = "not in the metadata";
    if (md->topic_cnt == 1) {
      const auto& t = md->topics[0];
      const bool led = std::all_of(t.partitions, t.partitions + t.partition_cnt,
                                   [](const auto& p) { return p.leader >= 0; });
      if (!t.err && t.partition_cnt > 0 && led) {
        std::vector<std::int32_t> ids;
        for (int p = 0; p < t.partition_cnt; ++p) ids.push_back(t.partitions[p].id);
        return ids;
      }
      why = t.err ? rd_kafka_err2str(t.err) : "a partition has no leader yet";
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("topic " + topic + " not readable after " +
                               std::to_string(timeout.count()) + " s: " + why);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TopicReader::TopicReader(const std::string& bootstrap, const std::string& topic) : topic_(topic) {
  KafkaConfig kafka;
  kafka.bootstrap_servers = bootstrap;
  kafka.consumer_properties["log_level"] = "3";  // errors only, as makeClient's
  reader_ = std::make_unique<consumer::TopicReader>(kafka, "", "outpost-test-reader");
  // Which partitions, asked of a client of its own: consumer::TopicReader::partitions() does not
  // say whether they have leaders yet.
  std::vector<std::int32_t> ids;
  {
    auto metadata = makeClient(RD_KAFKA_CONSUMER, bootstrap, {{"group.id", "outpost-test-reader"}});
    ids = readablePartitions(metadata.get(), topic);
  }
  std::vector<TopicPartition> tps;
  for (auto p : ids) tps.push_back({topic, p});
  if (auto ok = reader_->readFromBeginning(tps); !ok) {
    throw std::runtime_error("cannot read " + topic + ": " + ok.error());
  }
}

TopicReader::~TopicReader() = default;

std::optional<Record> TopicReader::next(std::chrono::milliseconds timeout) {
  auto r = reader_->poll(timeout);
  if (r.kind == consumer::ReadResult::Kind::kError) last_error_ = r.error;
  if (r.kind != consumer::ReadResult::Kind::kRecord) return std::nullopt;
  auto& m = r.record;
  Record out{m.tp.topic, m.tp.partition, m.offset, std::move(m.key), std::move(m.value), {}};
  for (auto& [name, value] : m.headers) out.headers[name] = std::move(value);
  return out;
}

bool TopicReader::readUntil(const std::function<bool(const std::vector<Record>&)>& done,
                            std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done(records_)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    readFor(std::chrono::milliseconds(200));
  }
  return true;
}

void TopicReader::readFor(std::chrono::milliseconds window) {
  auto until = std::chrono::steady_clock::now() + window;
  while (std::chrono::steady_clock::now() < until) {
    if (auto r = next(std::chrono::milliseconds(50))) records_.push_back(std::move(*r));
  }
}

}  // namespace outpost::kafka_testing
