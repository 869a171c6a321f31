// Retrying what a moment cures, within a deadline: the runs topic's restore and the reading of
// topics outside a group (the client subcommands) share it. Sources of consumer/ only.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

#include <librdkafka/rdkafka.h>

namespace outpost::consumer::retry {

using Steady = std::chrono::steady_clock;

inline int msLeft(Steady::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1 << 30));
}

// Errors a moment's wait may cure: a topic just created and not in every broker's metadata yet,
// a leader or coordinator being elected or loading (after a topic's creation or a broker's
// restart), a connection being made.
inline bool isTransient(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
      return true;
    default:
      return false;
  }
}

inline constexpr std::chrono::milliseconds kRetryPause{100};

// Calls `request(timeout_ms)` again after transient errors until it succeeds, fails for good, or
// `deadline` is near; returns its last error.
template <typename Request>
rd_kafka_resp_err_t retrying(Steady::time_point deadline, Request request) {
  for (;;) {
    auto err = request(std::max(1, msLeft(deadline)));
    if (!err || !isTransient(err) || Steady::now() + kRetryPause >= deadline) return err;
    std::this_thread::sleep_for(kRetryPause);
  }
}

}  // namespace outpost::consumer::retry
