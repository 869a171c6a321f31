// Outbound publishing: one idempotent Kafka producer per worker, its delivery reports served on a
// thread of its own, and the RunEvent / WorkerStatus writers on top of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/events/error.h"

namespace outpost::events {

struct Header {
  std::string name;
  std::string value;
};

struct DeliveryReport {
  std::optional<KafkaError> error;  // none: delivered
  std::int32_t partition = -1;
  std::int64_t offset = -1;

  bool ok() const { return !error; }
  // Why it was not delivered, with the error's class ("" when delivered).
  std::string why() const { return error ? error->toString() : std::string(); }
};

// Called once per produced message, on the producer's delivery thread: keep it short.
using DeliveryCallback = std::function<void(const DeliveryReport&)>;

struct OutRecord;  // out_record.h

class KafkaProducer {
 public:
  // Throws ConfigError when the configuration is refused. `defaults` go over the built-in
  // defaults and under kafka.properties / producer_properties; `extra` is applied last.
  KafkaProducer(const KafkaConfig& config, const std::map<std::string, std::string>& extra,
                const std::map<std::string, std::string>& defaults = {});
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Thread-safe. Copies the bytes. When librdkafka's local queue is full it waits for room rather
  // than drop the message. A message that cannot be queued at all (e.g. too large) is reported
  // through the callback, never thrown.
  void produce(const std::string& topic, std::string_view key, std::string_view value,
               const std::vector<Header>& headers, DeliveryCallback on_delivery);
  // The same for a record that may name its partition (OutRecord::partition >= 0).
  void produce(const OutRecord& record, DeliveryCallback on_delivery);

  // Waits until every queued message is delivered or failed; false on timeout.
  bool flush(std::chrono::milliseconds timeout);

  // Messages queued or in flight.
  int outstanding() const;

  // Whether librdkafka's last statistics (every statistics.interval.ms, default 1 s) saw a
  // connection to some broker up; false until the first.
  bool connected() const;

 private:
  void produceTo(const std::string& topic, std::int32_t partition, std::string_view key,
                 std::string_view value, const std::vector<Header>& headers,
                 DeliveryCallback on_delivery);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::events
