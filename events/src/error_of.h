// librdkafka's errors as KafkaError (error.h), classified once, here. Sources of events/ only.
#pragma once

#include <string>

#include <librdkafka/rdkafka.h>

#include "outpost/events/error.h"

namespace outpost::events::kafka {

// An error object of librdkafka's transactional or admin API, by its own flags.
inline KafkaError errorOf(const rd_kafka_error_t* e, const std::string& what) {
  std::string message =
      what + " failed: " + rd_kafka_error_string(e) + " (" + rd_kafka_error_name(e) + ")";
  auto kind = rd_kafka_error_is_fatal(e)             ? KafkaError::Kind::kFatal
              : rd_kafka_error_txn_requires_abort(e) ? KafkaError::Kind::kAbortable
              : rd_kafka_error_is_retriable(e)       ? KafkaError::Kind::kRetriable
                                                     : KafkaError::Kind::kPermanent;
  return KafkaError(kind, rd_kafka_error_code(e), std::move(message));
}

// A message's delivery error. librdkafka retries what it can itself; what reaches a report is
// fatal for the client (it raised a fatal error), a timeout (the same record may go later), or
// permanent for this record.
inline KafkaError deliveryErrorOf(rd_kafka_t* rk, rd_kafka_resp_err_t err) {
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char reason[512] = {};
    auto cause = rd_kafka_fatal_error(rk, reason, sizeof reason);
    return KafkaError(KafkaError::Kind::kFatal, cause,
                      std::string("fatal producer error: ") + reason);
  }
  auto kind = err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT || err == RD_KAFKA_RESP_ERR__TIMED_OUT
                  ? KafkaError::Kind::kRetriable
                  : KafkaError::Kind::kPermanent;
  return KafkaError(kind, err, rd_kafka_err2str(err));
}

}  // namespace outpost::events::kafka
