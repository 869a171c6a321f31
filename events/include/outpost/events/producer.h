// Outbound publishing outside transactions: a Kafka producer (idempotent unless its properties say
// otherwise; a worker has two, for events and for start records) whose delivery reports are
// served on a thread of its own (op-deliver).
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

// Called once per produced message: on the producer's delivery thread, or on the caller's thread
// when the record could not be queued at all. Keep it short.
using DeliveryCallback = std::function<void(const DeliveryReport&)>;

struct OutRecord;  // out_record.h

class KafkaProducer {
 public:
  // Throws ConfigError when the configuration is refused. `defaults` go over the built-in
  // defaults and under kafka.properties / producer_properties; `extra` is applied last.
  KafkaProducer(const KafkaConfig& config, const std::map<std::string, std::string>& extra,
                const std::map<std::string, std::string>& defaults = {});
  // close().
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Thread-safe, and never waits: the owner's poll thread calls it. Copies the bytes. When
  // librdkafka's local queue is full (a broker outage long enough to fill
  // queue.buffering.max.messages), the record waits in memory, in order with those produced after
  // it, and the delivery thread hands it on as room frees (waitingForRoom()). A message that
  // cannot be queued at all (e.g. too large) is reported through the callback, never thrown.
  void produce(const std::string& topic, std::string_view key, std::string_view value,
               const std::vector<Header>& headers, DeliveryCallback on_delivery);
  // The same for a record that may name its partition (OutRecord::partition >= 0).
  void produce(const OutRecord& record, DeliveryCallback on_delivery);

  // Waits until every queued message is delivered or failed; false on timeout.
  bool flush(std::chrono::milliseconds timeout);
  // Stops the delivery thread; what was not delivered yet is reported failed, on the calling
  // thread, and no callback runs after it returns. flush() first to deliver it. Idempotent; not
  // from a callback.
  void close();

  // Messages queued or in flight, those waiting for room included.
  int outstanding() const;
  // Records waiting in memory for room in librdkafka's queue now, and how many ever did.
  std::size_t waitingForRoom() const;
  std::uint64_t waitedForRoom() const;

  // Whether librdkafka's last statistics (every statistics.interval.ms, default 1 s) saw a
  // connection to some broker up; false until the first.
  bool connected() const;
  // How long records have waited with no progress: none acknowledged (or failed) while some were
  // queued or in flight; 0 when none wait. Brokers that take no writes (too few replicas in sync,
  // no leader) show here while connected() stays true.
  std::chrono::milliseconds unacknowledgedFor() const;
  // The brokers (host:port) that librdkafka's last statistics found wanted but not up.
  std::vector<std::string> unreachableBrokers() const;

 private:
  void produceTo(const std::string& topic, std::int32_t partition, std::string_view key,
                 std::string_view value, const std::vector<Header>& headers,
                 DeliveryCallback on_delivery);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::events
