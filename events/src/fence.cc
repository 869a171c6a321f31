#include "outpost/events/fence.h"

#include <librdkafka/rdkafka.h>

#include "outpost/events/kafka.h"

namespace outpost::events {

std::expected<void, std::string> fenceTransactionalId(const KafkaConfig& kafka,
                                                      const std::string& transactional_id,
                                                      std::chrono::milliseconds timeout) {
  const kafka::Properties base = {{"bootstrap.servers", kafka.bootstrap_servers},
                                  {"transactional.id", transactional_id}};
  auto conf = kafka::makeConf({&base, &kafka.properties, &kafka.producer_properties},
                              "kafka.properties / kafka.producer_properties");
  auto rk = kafka::makeHandle(kafka::ClientType::kProducer, std::move(conf));
  kafka::ErrorPtr e{rd_kafka_init_transactions(rk.get(), static_cast<int>(timeout.count()))};
  if (e) {
    return std::unexpected("cannot fence transactional id " + transactional_id + ": " +
                           rd_kafka_error_string(e.get()));
  }
  return {};
}

}  // namespace outpost::events
