// librdkafka handles owned by RAII from the moment they exist, and the one place that turns a
// property map into a client configuration. The handles are opaque here: this header does not
// include rdkafka.h, so only the sources of consumer/ and events/ (which do) can use them.
#pragma once

#include <map>
#include <memory>
#include <string>

// librdkafka's handle types, declared as rdkafka.h declares them.
extern "C" {
typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct rd_kafka_topic_partition_list_s rd_kafka_topic_partition_list_t;
typedef struct rd_kafka_message_s rd_kafka_message_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;
typedef struct rd_kafka_headers_s rd_kafka_headers_t;
typedef struct rd_kafka_error_s rd_kafka_error_t;
}

namespace outpost::events::kafka {

struct HandleDeleter {
  void operator()(rd_kafka_t* p) const;
  void operator()(rd_kafka_conf_t* p) const;
  void operator()(rd_kafka_topic_partition_list_t* p) const;
  void operator()(rd_kafka_message_t* p) const;
  void operator()(rd_kafka_queue_t* p) const;
  void operator()(rd_kafka_headers_t* p) const;
  void operator()(rd_kafka_error_t* p) const;
};

using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, HandleDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, HandleDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, HandleDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, HandleDeleter>;
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HandleDeleter>;
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, HandleDeleter>;

using Properties = std::map<std::string, std::string>;

enum class ClientType { kProducer, kConsumer };

// Builds a configuration from properties applied in order (later maps win), over Outpost's base
// (socket.nagle.disable=true). Throws ConfigError naming the property that librdkafka refused
// and why. `where` names the config section.
ConfPtr makeConf(std::initializer_list<const Properties*> layers, const std::string& where);

// Creates a client; throws ConfigError with librdkafka's reason.
HandlePtr makeHandle(ClientType type, ConfPtr conf);

// The librdkafka this process runs with (e.g. "2.0.2"): the workarounds in the code are marked
// "librdkafka 2.0.2 workaround", to be dropped on an upgrade that fixes them.
std::string libraryVersion();

}  // namespace outpost::events::kafka
