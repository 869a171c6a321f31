// Whether this client may write to some topics, found by writing: one empty record (key and header
// outpost.check) to partition 0 of each, inside a Kafka transaction that is then aborted, so that
// read_committed readers (Outpost's own, and the platform's with exactly-once delivery) never see
// it. librdkafka 2.0.2 workaround: it cannot ask the broker for a topic's authorized operations
// (KIP-430 came to it in 2.3), and a transaction is the one way to write that leaves nothing behind.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "outpost/common/config.h"

namespace outpost::events {

// For each topic: empty when the write was accepted, else why not. `transactional_id` must not
// be a worker's (it would fence it). Every topic gets the same answer when the transaction itself
// cannot be opened (e.g. no WRITE on the transactional id). Blocks up to about `timeout`.
std::map<std::string, std::string> probeWrites(const KafkaConfig& kafka,
                                               const std::string& transactional_id,
                                               const std::vector<std::string>& topics,
                                               std::chrono::milliseconds timeout);

}  // namespace outpost::events
