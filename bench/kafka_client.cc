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

}  // namespace outpost::bench
