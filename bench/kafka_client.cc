#include "kafka_client.h"

#include <stdexcept>

namespace outpost::bench {

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

void createTopics(const std::string& bootstrap, const std::vector<std::string>& names,
                  const std::map<std::string, int>& partitions,
                  const std::map<std::string, Properties>& configs) {
  auto admin = makeClient(RD_KAFKA_PRODUCER, bootstrap, {});
  std::vector<rd_kafka_NewTopic_t*> topics;
  char err[256];
  for (const auto& name : names) {
    auto p = partitions.find(name);
    topics.push_back(rd_kafka_NewTopic_new(name.c_str(), p == partitions.end() ? 1 : p->second, 1,
                                           err, sizeof err));
    if (!topics.back()) {
      topics.pop_back();
      rd_kafka_NewTopic_destroy_array(topics.data(), topics.size());
      throw std::runtime_error("cannot create topic " + name + ": " + err);
    }
    if (auto c = configs.find(name); c != configs.end()) {
      for (const auto& [key, value] : c->second) {
        rd_kafka_NewTopic_set_config(topics.back(), key.c_str(), value.c_str());
      }
    }
  }
  std::unique_ptr<rd_kafka_queue_t, Deleter> queue(rd_kafka_queue_new(admin.get()));
  rd_kafka_CreateTopics(admin.get(), topics.data(), topics.size(), nullptr, queue.get());
  std::unique_ptr<rd_kafka_event_t, Deleter> ev(rd_kafka_queue_poll(queue.get(), 30000));
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

void produce(rd_kafka_t* producer, const std::string& topic, const std::string& key,
             const std::string& value) {
  for (;;) {
    auto err = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()),
                                 RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                                 RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      throw std::runtime_error("cannot produce to " + topic + ": " + rd_kafka_err2str(err));
    }
    rd_kafka_poll(producer, 1);  // the local queue is full: let deliveries drain it
  }
}

TopicReader::TopicReader(const std::string& bootstrap, const std::string& topic) {
  rk_ = makeClient(RD_KAFKA_CONSUMER, bootstrap,
                   {{"group.id", "outpost-bench-reader"},  // required, but never joined
                    {"enable.auto.commit", "false"},
                    {"isolation.level", "read_committed"}});
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), topic.c_str(), nullptr);
  auto err = rd_kafka_metadata(rk_.get(), 0, rkt, &md, 10000);
  rd_kafka_topic_destroy(rkt);
  if (err) throw std::runtime_error("metadata for " + topic + ": " + rd_kafka_err2str(err));
  std::unique_ptr<rd_kafka_topic_partition_list_t, Deleter> list(
      rd_kafka_topic_partition_list_new(4));
  for (int p = 0; p < md->topics[0].partition_cnt; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), md->topics[0].partitions[p].id)
        ->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_metadata_destroy(md);
  rd_kafka_assign(rk_.get(), list.get());
}

TopicReader::~TopicReader() {
  rd_kafka_consumer_close(rk_.get());
}

MessagePtr TopicReader::poll(std::chrono::milliseconds timeout) {
  MessagePtr m(rd_kafka_consumer_poll(rk_.get(), static_cast<int>(timeout.count())));
  if (m && m->err) return nullptr;
  return m;
}

}  // namespace outpost::bench
