// A Kafka client's error with its class kept, in the style of modern-cpp-kafka's kafka::Error:
// callers decide by the class (retry the same call, abort the transaction, replace the client,
// or give the record up), never by parsing the message.
#pragma once

#include <string>
#include <utility>

namespace outpost::events {

class KafkaError {
 public:
  enum class Kind {
    kRetriable,  // the same call may succeed later (broker or coordinator unavailable, timeout)
    kAbortable,  // the open transaction must be aborted; the client stays usable
    kFatal,      // the client is unusable (fenced, fatal idempotence error): make a new one
    kPermanent,  // this request cannot succeed as it is (a record too large, a topic refused)
  };

  KafkaError(Kind kind, int code, std::string message)
      : kind_(kind), code_(code), message_(std::move(message)) {}

  Kind kind() const { return kind_; }
  bool isRetriable() const { return kind_ == Kind::kRetriable; }
  bool isFatal() const { return kind_ == Kind::kFatal; }
  bool transactionRequiresAbort() const { return kind_ == Kind::kAbortable; }
  // librdkafka's rd_kafka_resp_err_t.
  int code() const { return code_; }
  const std::string& message() const { return message_; }
  // "fatal: <message>": the class first, for logs and operators.
  std::string toString() const { return std::string(kindName(kind_)) + ": " + message_; }

  static const char* kindName(Kind kind) {
    switch (kind) {
      case Kind::kRetriable:
        return "retriable";
      case Kind::kAbortable:
        return "abortable";
      case Kind::kFatal:
        return "fatal";
      case Kind::kPermanent:
        return "permanent";
    }
    return "unknown";
  }

 private:
  Kind kind_;
  int code_;
  std::string message_;
};

}  // namespace outpost::events
