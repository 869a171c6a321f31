#include "kafka_client.h"

#include <stdexcept>

namespace outpost::bench {

void createTopics(const std::string& bootstrap, const std::vector<std::string>& names,
                  const std::map<std::string, int>& partitions,
                  const std::map<std::string, Properties>& configs) {
  std::vector<kafka_testing::NewTopicSpec> specs;
  for (const auto& name : names) {
    kafka_testing::NewTopicSpec spec{name, 1, {}};
    if (auto p = partitions.find(name); p != partitions.end()) spec.partitions = p->second;
    if (auto c = configs.find(name); c != configs.end()) spec.configs = c->second;
    specs.push_back(std::move(spec));
  }
  kafka_testing::createTopics(bootstrap, specs);
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
  kafka_testing::PartitionListPtr list(rd_kafka_topic_partition_list_new(4));
  for (auto p : kafka_testing::readablePartitions(rk_.get(), topic)) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
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
