#include "outpost/events/admin.h"

#include <librdkafka/rdkafka.h>

#include "outpost/events/kafka.h"

namespace outpost::events {
namespace {

// Owners of the admin API's objects (kafka.h owns the clients' own handles).
struct AdminDeleter {
  void operator()(rd_kafka_NewTopic_t* p) const { rd_kafka_NewTopic_destroy(p); }
  void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
  void operator()(rd_kafka_ConfigResource_t* p) const { rd_kafka_ConfigResource_destroy(p); }
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
  void operator()(const rd_kafka_metadata_t* p) const { rd_kafka_metadata_destroy(p); }
};
using NewTopicPtr = std::unique_ptr<rd_kafka_NewTopic_t, AdminDeleter>;
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, AdminDeleter>;
using ConfigResourcePtr = std::unique_ptr<rd_kafka_ConfigResource_t, AdminDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, AdminDeleter>;
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, AdminDeleter>;

constexpr int kAdminTimeoutMs = 30000;
// Shorter: a worker asks on the thread that fences, which its shutdown waits for.
constexpr int kDescribeGroupTimeoutMs = 5000;

// The partition count of every topic the cluster has.
std::expected<std::map<std::string, int>, std::string> partitionCounts(rd_kafka_t* rk) {
  const rd_kafka_metadata_t* raw = nullptr;
  auto err = rd_kafka_metadata(rk, 1, nullptr, &raw, 10000);
  MetadataPtr md(raw);
  if (err) return std::unexpected(std::string(rd_kafka_err2str(err)));
  std::map<std::string, int> counts;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (!md->topics[i].err) counts[md->topics[i].topic] = md->topics[i].partition_cnt;
  }
  return counts;
}

// Runs one admin request (`post` sends it to the queue) and returns its result event, which
// carries any error of the request as a whole.
template <typename Post>
std::expected<EventPtr, std::string> adminRequest(rd_kafka_t* rk, rd_kafka_admin_op_t op,
                                                  Post post, int timeout_ms = kAdminTimeoutMs) {
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk, op));
  char err[512];
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, err, sizeof err);
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS) {
    // Answer once the topics are created, not only accepted.
    rd_kafka_AdminOptions_set_operation_timeout(options.get(), kAdminTimeoutMs, err, sizeof err);
  }
  kafka::QueuePtr queue(rd_kafka_queue_new(rk));
  post(options.get(), queue.get());
  EventPtr ev(rd_kafka_queue_poll(queue.get(), timeout_ms + 5000));
  if (!ev) return std::unexpected(std::string("no answer from the brokers"));
  if (rd_kafka_event_error(ev.get())) {
    return std::unexpected(std::string(rd_kafka_event_error_string(ev.get())));
  }
  return ev;
}

// Creates `missing`; for each name, nothing when it was created (or appeared meanwhile: `existed`
// then says so), else why not.
CreateTopicsResult createTopics(rd_kafka_t* rk, const std::vector<NewTopic>& missing,
                                int replication_factor) {
  CreateTopicsResult result;
  auto& failed = result.failed;
  std::vector<NewTopicPtr> owned;
  std::vector<rd_kafka_NewTopic_t*> topics;
  for (const auto& topic : missing) {
    const auto* t = &topic;
    char err[512];
    NewTopicPtr nt(
        rd_kafka_NewTopic_new(t->name.c_str(), t->partitions, replication_factor, err, sizeof err));
    if (!nt) {
      failed[t->name] = err;
      continue;
    }
    for (const auto& [key, value] : t->configs) {
      if (auto e = rd_kafka_NewTopic_set_config(nt.get(), key.c_str(), value.c_str())) {
        failed[t->name] = key + ": " + rd_kafka_err2str(e);
      }
    }
    if (failed.contains(t->name)) continue;
    topics.push_back(nt.get());
    owned.push_back(std::move(nt));
  }
  if (topics.empty()) return result;
  auto ev = adminRequest(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS,
                         [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                           rd_kafka_CreateTopics(rk, topics.data(), topics.size(), options, queue);
                         });
  if (!ev) {
    for (const auto& t : missing) failed.emplace(t.name, ev.error());
    return result;
  }
  std::size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev->get()), &n);
  for (std::size_t i = 0; i < n; ++i) {
    std::string name = rd_kafka_topic_result_name(results[i]);
    auto err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      result.existed.insert(
          name);  // another `outpost topics`, or a producer's auto-creation, was first
    } else if (err) {
      const char* why = rd_kafka_topic_result_error_string(results[i]);
      failed[name] = why && *why ? why : rd_kafka_err2str(err);
    }
  }
  return result;
}

// The value of one topic-level setting of an existing topic (empty when the broker lists none).
std::expected<std::string, std::string> topicSetting(rd_kafka_t* rk, const std::string& topic,
                                                     const std::string& key) {
  ConfigResourcePtr resource(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  rd_kafka_ConfigResource_t* resources[] = {resource.get()};
  auto ev = adminRequest(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
                         [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                           rd_kafka_DescribeConfigs(rk, resources, 1, options, queue);
                         });
  if (!ev) return std::unexpected(ev.error());
  std::size_t n = 0;
  const rd_kafka_ConfigResource_t** described = rd_kafka_DescribeConfigs_result_resources(
      rd_kafka_event_DescribeConfigs_result(ev->get()), &n);
  for (std::size_t i = 0; i < n; ++i) {
    if (auto err = rd_kafka_ConfigResource_error(described[i])) {
      return std::unexpected(std::string(rd_kafka_err2str(err)));
    }
    std::size_t count = 0;
    const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(described[i], &count);
    for (std::size_t j = 0; j < count; ++j) {
      if (key == rd_kafka_ConfigEntry_name(entries[j])) {
        const char* value = rd_kafka_ConfigEntry_value(entries[j]);
        return std::string(value ? value : "");
      }
    }
  }
  return std::string();
}

// The members of a consumer group as its coordinator describes them (none when it is empty or
// unknown to the cluster).
std::expected<std::vector<GroupMember>, std::string> groupMembers(rd_kafka_t* rk,
                                                                  const std::string& group) {
  const char* groups[] = {group.c_str()};
  auto ev = adminRequest(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
                         [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                           rd_kafka_DescribeConsumerGroups(rk, groups, 1, options, queue);
                         },
                         kDescribeGroupTimeoutMs);
  if (!ev) return std::unexpected(ev.error());
  std::size_t n = 0;
  const rd_kafka_ConsumerGroupDescription_t** described =
      rd_kafka_DescribeConsumerGroups_result_groups(
          rd_kafka_event_DescribeConsumerGroups_result(ev->get()), &n);
  std::vector<GroupMember> members;
  for (std::size_t i = 0; i < n; ++i) {
    if (const rd_kafka_error_t* err = rd_kafka_ConsumerGroupDescription_error(described[i])) {
      return std::unexpected(std::string(rd_kafka_error_string(err)));
    }
    const std::size_t count = rd_kafka_ConsumerGroupDescription_member_count(described[i]);
    for (std::size_t j = 0; j < count; ++j) {
      const rd_kafka_MemberDescription_t* m =
          rd_kafka_ConsumerGroupDescription_member(described[i], j);
      auto text = [](const char* v) { return std::string(v ? v : ""); };
      members.push_back({text(rd_kafka_MemberDescription_client_id(m)),
                         text(rd_kafka_MemberDescription_group_instance_id(m)),
                         text(rd_kafka_MemberDescription_host(m))});
    }
  }
  return members;
}

}  // namespace

struct KafkaAdmin::Impl {
  kafka::HandlePtr rk;
};

KafkaAdmin::KafkaAdmin(const KafkaConfig& kafka) : impl_(std::make_unique<Impl>()) {
  kafka::Properties servers = {{"bootstrap.servers", kafka.bootstrap_servers}};
  impl_->rk = kafka::makeHandle(kafka::ClientType::kProducer,
                                kafka::makeConf({&servers, &kafka.properties}, "kafka.properties"));
}

KafkaAdmin::~KafkaAdmin() = default;

std::expected<std::map<std::string, int>, std::string> KafkaAdmin::partitionCounts() {
  return events::partitionCounts(impl_->rk.get());
}

CreateTopicsResult KafkaAdmin::createTopics(const std::vector<NewTopic>& topics,
                                            int replication_factor) {
  return events::createTopics(impl_->rk.get(), topics, replication_factor);
}

std::expected<std::string, std::string> KafkaAdmin::topicSetting(const std::string& topic,
                                                                 const std::string& key) {
  return events::topicSetting(impl_->rk.get(), topic, key);
}

std::expected<std::vector<GroupMember>, std::string> KafkaAdmin::groupMembers(
    const std::string& group) {
  return events::groupMembers(impl_->rk.get(), group);
}

}  // namespace outpost::events
