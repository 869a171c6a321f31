// The Kafka admin requests `outpost topics` needs (list topics, create them, read one topic-level
// setting) and a worker's look at its group's members before it counts another worker lost.
// librdkafka's admin API stays behind it. One thread; each call blocks (bounded).
#pragma once

#include <expected>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "outpost/common/config.h"

namespace outpost::events {

struct NewTopic {
  std::string name;
  int partitions = 1;
  std::vector<std::pair<std::string, std::string>> configs;  // topic-level settings
};

struct CreateTopicsResult {
  std::map<std::string, std::string> failed;  // name -> why it was not created
  std::set<std::string> existed;              // created by someone else meanwhile
};

// One member of a consumer group: its client.id, group.instance.id (static members; else empty)
// and the host it connects from.
struct GroupMember {
  std::string client_id;
  std::string group_instance_id;
  std::string host;
};

class KafkaAdmin {
 public:
  // kafka.bootstrap_servers and kafka.properties apply. Throws ConfigError when refused.
  explicit KafkaAdmin(const KafkaConfig& kafka);
  ~KafkaAdmin();
  KafkaAdmin(const KafkaAdmin&) = delete;
  KafkaAdmin& operator=(const KafkaAdmin&) = delete;

  // The partition count of every topic the cluster has.
  std::expected<std::map<std::string, int>, std::string> partitionCounts();
  // Creates `topics`, answering once they are created, not only accepted.
  CreateTopicsResult createTopics(const std::vector<NewTopic>& topics, int replication_factor);
  // The value of one topic-level setting of an existing topic (empty when the broker lists none).
  std::expected<std::string, std::string> topicSetting(const std::string& topic,
                                                       const std::string& key);
  // The members of a consumer group now (empty when it has none); at most some 10 s.
  std::expected<std::vector<GroupMember>, std::string> groupMembers(const std::string& group);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::events
