// Fencing a lost worker: before its runs are run again elsewhere, the transactional producer of the
// worker that held them is fenced, so that a worker that was only cut off (paused, partitioned
// away) can never commit a terminal event or a claim afterwards. Kafka's own mechanism: a producer
// initialising transactions with the same transactional.id bumps the id's epoch, aborts what the
// old producer left open, and from then on the broker refuses the old producer (fatal
// PRODUCER_FENCED on its next transactional request).
#pragma once

#include <chrono>
#include <expected>
#include <string>

#include "outpost/common/config.h"

namespace outpost::events {

// Fences `transactional_id` and lets it go (the fencing producer is closed at once, with nothing
// open). Blocks for at most about `timeout`. The error says why when the broker did not answer in
// time or refused (e.g. no WRITE on the transactional id). Throws ConfigError when the Kafka
// configuration is refused.
std::expected<void, std::string> fenceTransactionalId(const KafkaConfig& kafka,
                                                      const std::string& transactional_id,
                                                      std::chrono::milliseconds timeout);

}  // namespace outpost::events
