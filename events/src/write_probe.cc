#include "outpost/events/write_probe.h"

#include <atomic>
#include <cstring>
#include <mutex>

#include <librdkafka/rdkafka.h>

#include "outpost/events/kafka.h"

namespace outpost::events {
namespace {

struct Reports {
  std::mutex mutex;
  std::map<std::string, std::string> errors;  // topic -> why
  std::atomic<int> pending{0};
};

void onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* r = static_cast<Reports*>(opaque);
  if (m->err) {
    std::lock_guard lock(r->mutex);
    r->errors[rd_kafka_topic_name(m->rkt)] = rd_kafka_err2str(m->err);
  }
  --r->pending;
}

std::string why(rd_kafka_error_t* e) {
  kafka::ErrorPtr owned(e);
  return rd_kafka_error_string(e);
}

}  // namespace

std::map<std::string, std::string> probeWrites(const KafkaConfig& kafka,
                                               const std::string& transactional_id,
                                               const std::vector<std::string>& topics,
                                               std::chrono::milliseconds timeout) {
  std::map<std::string, std::string> out;
  auto all = [&](const std::string& reason) {
    for (const auto& t : topics) out[t] = reason;
    return out;
  };
  Reports reports;
  const kafka::Properties base = {{"bootstrap.servers", kafka.bootstrap_servers},
                                  {"transactional.id", transactional_id},
                                  {"message.timeout.ms", std::to_string(timeout.count())}};
  auto conf = kafka::makeConf({&base, &kafka.properties, &kafka.producer_properties},
                              "kafka.properties / kafka.producer_properties");
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &onDelivery);
  rd_kafka_conf_set_opaque(conf.get(), &reports);
  auto rk = kafka::makeHandle(kafka::ClientType::kProducer, std::move(conf));
  const int ms = static_cast<int>(timeout.count());
  if (auto* e = rd_kafka_init_transactions(rk.get(), ms)) return all(why(e));
  if (auto* e = rd_kafka_begin_transaction(rk.get())) return all(why(e));
  for (const auto& topic : topics) {
    const char* name = "outpost.check";
    ++reports.pending;
    auto err = rd_kafka_producev(
        rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_KEY(name, std::strlen(name)),  // compacted topics need one
        RD_KAFKA_V_HEADER(name, "1", 1), RD_KAFKA_V_VALUE(nullptr, 0), RD_KAFKA_V_END);
    if (err) {
      --reports.pending;
      out[topic] = rd_kafka_err2str(err);
    }
  }
  // The records must reach the brokers (which checks WRITE on each topic) before the abort.
  rd_kafka_flush(rk.get(), ms);
  if (auto* e = rd_kafka_abort_transaction(rk.get(), ms)) {
    auto reason = why(e);
    for (const auto& t : topics) out.emplace(t, "transaction: " + reason);
  }
  rd_kafka_poll(rk.get(), 0);
  std::lock_guard lock(reports.mutex);
  for (const auto& [topic, reason] : reports.errors) out[topic] = reason;
  for (const auto& t : topics) out.emplace(t, "");
  return out;
}

}  // namespace outpost::events
