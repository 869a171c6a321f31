#include "outpost/events/connection.h"

#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include "outpost/events/kafka.h"

namespace outpost::events {
namespace {

// What the client's error callback saw that no retry will fix.
struct Fatal {
  std::mutex mutex;
  std::optional<std::string> why;
  std::string last;  // the last error of any kind, for the timeout's message
};

bool isTls(rd_kafka_resp_err_t err, const std::string& reason) {
  return err == RD_KAFKA_RESP_ERR__SSL || reason.find("SSL") != std::string::npos;
}

void onError(rd_kafka_t*, int code, const char* reason, void* opaque) {
  auto* f = static_cast<Fatal*>(opaque);
  const auto err = static_cast<rd_kafka_resp_err_t>(code);
  const std::string r = reason ? reason : "";
  std::lock_guard lock(f->mutex);
  f->last = r;
  if (f->why) return;
  if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
    f->why = "the broker refused the client's credentials (" + r +
             "): check kafka.properties sasl.mechanisms, sasl.username and sasl.password";
  } else if (isTls(err, r)) {
    f->why = "the TLS connection failed (" + r +
             "): check kafka.properties ssl.ca.location (the CA that signed the broker's "
             "certificate) and, where the broker asks for a client certificate, "
             "ssl.certificate.location, ssl.key.location and ssl.key.password";
  }
}

}  // namespace

std::expected<void, std::string> checkConnection(const KafkaConfig& kafka,
                                                 std::chrono::milliseconds timeout) {
  const kafka::Properties base = {{"bootstrap.servers", kafka.bootstrap_servers}};
  Fatal fatal;
  auto conf = kafka::makeConf({&base, &kafka.properties}, "kafka.properties");
  rd_kafka_conf_set_error_cb(conf.get(), &onError);
  rd_kafka_conf_set_opaque(conf.get(), &fatal);
  auto rk = kafka::makeHandle(kafka::ClientType::kProducer, std::move(conf));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const struct rd_kafka_metadata* md = nullptr;
    if (rd_kafka_metadata(rk.get(), 0, nullptr, &md, 250) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
      return {};
    }
    rd_kafka_poll(rk.get(), 0);  // serves the error callback
    std::lock_guard lock(fatal.mutex);
    if (fatal.why) {
      return std::unexpected(fmt::format("kafka {}: {}", kafka.bootstrap_servers, *fatal.why));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::unexpected(fmt::format(
          "kafka {}: no broker answered within {} s{}: check kafka.bootstrap_servers and "
          "kafka.properties security.protocol",
          kafka.bootstrap_servers,
          std::chrono::duration_cast<std::chrono::seconds>(timeout).count(),
          fatal.last.empty() ? "" : " (last error: " + fatal.last + ")"));
    }
  }
}

}  // namespace outpost::events
