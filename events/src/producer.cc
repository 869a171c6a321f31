#include "outpost/events/producer.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "error_of.h"
#include "outpost/common/thread_name.h"
#include "outpost/events/kafka.h"
#include "outpost/events/out_record.h"

namespace outpost::events {

struct KafkaProducer::Impl {
  kafka::HandlePtr rk;
  std::atomic<bool> stop{false};
  std::atomic<bool> connected{false};
  // When the producer last made progress: a delivery report came, or the statistics found nothing
  // queued or in flight (steady clock, nanoseconds since its epoch). For unacknowledgedFor().
  std::atomic<std::int64_t> progress_at{nowNanos()};
  // Records handed to librdkafka and not yet reported (onDelivery). rd_kafka_outq_len() also
  // counts events waiting in its main queue (a statistics document), which are no write waiting
  // for a broker.
  std::atomic<std::int64_t> in_flight{0};
  std::mutex unreachable_mutex;
  std::vector<std::string> unreachable;  // from the last statistics; guarded by unreachable_mutex
  std::thread delivery_thread;

  static std::int64_t nowNanos() {
    return std::chrono::steady_clock::now().time_since_epoch().count();
  }

  // Records librdkafka's queue had no room for (QUEUE_FULL), in the order produced: every record
  // after the first one here waits here too, so that none overtakes another. The delivery thread
  // hands them on as room frees. Guarded by overflow_mutex; overflow_size is read without it.
  struct Waiting {
    std::string topic;
    std::int32_t partition;
    std::string key, value;
    std::vector<Header> headers;
    std::unique_ptr<DeliveryCallback> done;
  };
  std::mutex overflow_mutex;
  std::deque<Waiting> overflow;
  std::atomic<std::size_t> overflow_size{0};
  std::atomic<std::uint64_t> overflowed{0};  // records that ever waited here

  // Hands a record to librdkafka (which copies the bytes): NO_ERROR (taken; `done` is then owned
  // by the message), QUEUE_FULL (no room; nothing changed), or another error (reported through
  // `done`, which stays the caller's).
  rd_kafka_resp_err_t hand(const std::string& topic, std::int32_t partition, std::string_view key,
                           std::string_view value, const std::vector<Header>& headers,
                           std::unique_ptr<DeliveryCallback>& done) {
    kafka::HeadersPtr hdrs;
    if (!headers.empty()) {
      hdrs.reset(rd_kafka_headers_new(headers.size()));
      for (const auto& h : headers) {
        rd_kafka_header_add(hdrs.get(), h.name.data(), static_cast<ssize_t>(h.name.size()),
                            h.value.data(), static_cast<ssize_t>(h.value.size()));
      }
    }
    // Counted first: the report may come on the delivery thread before producev returns.
    in_flight.fetch_add(1, std::memory_order_relaxed);
    rd_kafka_resp_err_t err =
        rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                          RD_KAFKA_V_PARTITION(partition >= 0 ? partition : RD_KAFKA_PARTITION_UA),
                          RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs.get()),
                          RD_KAFKA_V_OPAQUE(done.get()), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      hdrs.release();  // owned by the message now
      done.release();  // freed by onDelivery
    } else if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      spdlog::error("cannot queue a message for topic {}: {}", topic, rd_kafka_err2str(err));
      if (*done) (*done)(DeliveryReport{kafka::deliveryErrorOf(rk.get(), err), -1, -1});
    }
    return err;
  }
  rd_kafka_resp_err_t hand(Waiting& w) {
    return hand(w.topic, w.partition, w.key, w.value, w.headers, w.done);
  }

  // On the delivery thread: hands on what waits, in order, while librdkafka takes it.
  void handOverflow() {
    std::lock_guard lock(overflow_mutex);
    while (!overflow.empty() && hand(overflow.front()) != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      overflow.pop_front();
      overflow_size.store(overflow.size(), std::memory_order_relaxed);
    }
  }

  // On the delivery thread too: is a connection to some broker up, which brokers the producer
  // needs but cannot reach, and is anything queued or in flight?
  static int onStats(rd_kafka_t* rk, char* json, size_t len, void* opaque) {
    auto* impl = static_cast<Impl*>(opaque);
    auto doc = nlohmann::json::parse(std::string_view(json, len), nullptr, false);
    if (doc.is_discarded()) return 0;
    bool up = false;
    std::vector<std::string> unreachable;
    if (auto brokers = doc.find("brokers"); brokers != doc.end() && brokers->is_object()) {
      for (const auto& broker : *brokers) {
        if (!broker.is_object()) continue;
        const auto state = broker.value("state", "");
        up = up || state == "UP";
        // A broker of the cluster (not a bootstrap address, nodeid -1) that a connection was
        // wanted to (INIT: never needed, librdkafka connects sparsely) and is not up.
        if (broker.value("nodeid", -1) >= 0 && state != "UP" && state != "INIT") {
          unreachable.push_back(broker.value("nodename", broker.value("name", "?")));
        }
      }
    }
    impl->connected.store(up, std::memory_order_relaxed);
    if (rd_kafka_outq_len(rk) == 0) impl->progress_at.store(nowNanos(), std::memory_order_relaxed);
    std::lock_guard lock(impl->unreachable_mutex);
    impl->unreachable = std::move(unreachable);
    return 0;  // librdkafka frees the document
  }

  // librdkafka calls this on the thread that polls the producer (delivery_thread) for every
  // message; the opaque is the heap-allocated callback given at produce time.
  static void onDelivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
    auto* impl = static_cast<Impl*>(opaque);
    impl->progress_at.store(nowNanos(), std::memory_order_relaxed);
    impl->in_flight.fetch_sub(1, std::memory_order_relaxed);
    std::unique_ptr<DeliveryCallback> cb(static_cast<DeliveryCallback*>(m->_private));
    if (!cb || !*cb) return;
    DeliveryReport r;
    if (m->err) r.error = kafka::deliveryErrorOf(rk, m->err);
    r.partition = m->partition;
    r.offset = m->offset;
    (*cb)(r);
  }
};

KafkaProducer::KafkaProducer(const KafkaConfig& config,
                             const std::map<std::string, std::string>& extra,
                             const std::map<std::string, std::string>& defaults_over)
    : impl_(std::make_unique<Impl>()) {
  // Defaults first so that kafka.properties / producer_properties can override any of them.
  // message.timeout.ms=0: a broker outage delays delivery instead of failing it. No compression:
  // the records are small and a batch holds few, and the broker decompresses every compressed
  // batch to validate it; lz4 cost the broker ~30% more CPU per no-op job (bench/run).
  const kafka::Properties defaults = {
      {"bootstrap.servers", config.bootstrap_servers},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "2"},
      {"message.timeout.ms", "0"},
      // For connected(); a producer's document is a few kB, parsed in well under a millisecond.
      {"statistics.interval.ms", "1000"},
  };
  auto conf = kafka::makeConf(
      {&defaults, &defaults_over, &config.properties, &config.producer_properties, &extra},
      "kafka.properties / kafka.producer_properties");
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &Impl::onDelivery);
  rd_kafka_conf_set_stats_cb(conf.get(), &Impl::onStats);
  rd_kafka_conf_set_opaque(conf.get(), impl_.get());
  impl_->rk = kafka::makeHandle(kafka::ClientType::kProducer, std::move(conf));
  impl_->delivery_thread = std::thread([impl = impl_.get()] {
    nameThisThread("op-deliver");
    while (!impl->stop.load(std::memory_order_relaxed)) {
      rd_kafka_poll(impl->rk.get(), impl->overflow_size.load(std::memory_order_relaxed) ? 5 : 100);
      if (impl->overflow_size.load(std::memory_order_relaxed)) impl->handOverflow();
    }
  });
}

KafkaProducer::~KafkaProducer() {
  close();
}

void KafkaProducer::close() {
  if (impl_->stop.exchange(true)) return;
  if (impl_->delivery_thread.joinable()) impl_->delivery_thread.join();
  // Every record still here gets its report, on this thread: what waited for room, then what
  // librdkafka held (purged). Nothing is reported after this.
  std::deque<Impl::Waiting> waiting;
  {
    std::lock_guard lock(impl_->overflow_mutex);
    waiting.swap(impl_->overflow);
    impl_->overflow_size.store(0, std::memory_order_relaxed);
  }
  for (auto& w : waiting) {
    if (*w.done) {
      (*w.done)(DeliveryReport{
          KafkaError(KafkaError::Kind::kRetriable, RD_KAFKA_RESP_ERR__QUEUE_FULL,
                     "the producer was closed with the record still waiting for room"),
          -1, -1});
    }
  }
  rd_kafka_purge(impl_->rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(impl_->rk.get(), 0);
}

void KafkaProducer::produce(const OutRecord& record, DeliveryCallback on_delivery) {
  produceTo(record.topic, record.partition, record.key, record.value, record.headers,
            std::move(on_delivery));
}

void KafkaProducer::produce(const std::string& topic, std::string_view key, std::string_view value,
                            const std::vector<Header>& headers, DeliveryCallback on_delivery) {
  produceTo(topic, -1, key, value, headers, std::move(on_delivery));
}

void KafkaProducer::produceTo(const std::string& topic, std::int32_t partition,
                              std::string_view key, std::string_view value,
                              const std::vector<Header>& headers, DeliveryCallback on_delivery) {
  auto done = std::make_unique<DeliveryCallback>(std::move(on_delivery));
  if (impl_->stop.load()) {
    if (*done) {
      (*done)(DeliveryReport{KafkaError(KafkaError::Kind::kPermanent, RD_KAFKA_RESP_ERR__DESTROY,
                                        "the producer is closed"),
                             -1, -1});
    }
    return;
  }
  std::lock_guard lock(impl_->overflow_mutex);
  // Never waits for room: what librdkafka cannot take now waits in order (see Impl::overflow).
  if (impl_->overflow.empty()) {
    if (impl_->hand(topic, partition, key, value, headers, done) != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      return;
    spdlog::warn("the producer's queue is full ({} record(s)): records wait in memory for room",
                 rd_kafka_outq_len(impl_->rk.get()));
  }
  impl_->overflow.push_back(
      {topic, partition, std::string(key), std::string(value), headers, std::move(done)});
  impl_->overflow_size.store(impl_->overflow.size(), std::memory_order_relaxed);
  impl_->overflowed.fetch_add(1, std::memory_order_relaxed);
}

bool KafkaProducer::flush(std::chrono::milliseconds timeout) {
  // What waits for room first (the delivery thread hands it on), then librdkafka's queue.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (impl_->overflow_size.load(std::memory_order_relaxed) > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return rd_kafka_flush(impl_->rk.get(), static_cast<int>(std::max<std::int64_t>(
                                             0, left.count()))) == RD_KAFKA_RESP_ERR_NO_ERROR;
}
bool KafkaProducer::connected() const {
  return impl_->connected.load(std::memory_order_relaxed);
}

std::chrono::milliseconds KafkaProducer::unacknowledgedFor() const {
  if (impl_->in_flight.load(std::memory_order_relaxed) +
          static_cast<std::int64_t>(impl_->overflow_size.load(std::memory_order_relaxed)) ==
      0) {
    return std::chrono::milliseconds(0);
  }
  const auto since = std::chrono::steady_clock::time_point(
      std::chrono::steady_clock::duration(impl_->progress_at.load(std::memory_order_relaxed)));
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - since));
}

std::vector<std::string> KafkaProducer::unreachableBrokers() const {
  std::lock_guard lock(impl_->unreachable_mutex);
  return impl_->unreachable;
}

int KafkaProducer::outstanding() const {
  return rd_kafka_outq_len(impl_->rk.get()) +
         static_cast<int>(impl_->overflow_size.load(std::memory_order_relaxed));
}

std::size_t KafkaProducer::waitingForRoom() const {
  return impl_->overflow_size.load(std::memory_order_relaxed);
}

std::uint64_t KafkaProducer::waitedForRoom() const {
  return impl_->overflowed.load(std::memory_order_relaxed);
}

}  // namespace outpost::events
