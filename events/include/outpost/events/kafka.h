// librdkafka handles owned by RAII from the moment they exist, and the one place that turns a
// property map into an rd_kafka_conf_t. Only consumer/ and events/ include this header.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <librdkafka/rdkafka.h>

namespace outpost::kafka {

struct HandleDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
  void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); }
  void operator()(rd_kafka_topic_partition_list_t* p) const {
    rd_kafka_topic_partition_list_destroy(p);
  }
  void operator()(rd_kafka_message_t* p) const { rd_kafka_message_destroy(p); }
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
  void operator()(rd_kafka_headers_t* p) const { rd_kafka_headers_destroy(p); }
  void operator()(rd_kafka_error_t* p) const { rd_kafka_error_destroy(p); }
};

using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, HandleDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, HandleDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, HandleDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, HandleDeleter>;
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HandleDeleter>;
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, HandleDeleter>;

using Properties = std::map<std::string, std::string>;

// Builds a configuration from properties applied in order (later maps win), over Outpost's base
// (socket.nagle.disable=true). Throws ConfigError naming the property that librdkafka refused
// and why. `where` names the config section.
ConfPtr makeConf(std::initializer_list<const Properties*> layers, const std::string& where);

// Creates a client; throws ConfigError with librdkafka's reason.
HandlePtr makeHandle(rd_kafka_type_t type, ConfPtr conf);

}  // namespace outpost::kafka
