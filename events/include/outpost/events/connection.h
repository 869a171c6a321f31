// Whether a configuration reaches the cluster, checked before a worker or a client starts its
// real clients: with TLS or SASL a wrong setting otherwise shows only as clients retrying
// forever. A metadata request on a short-lived client; the broker refusing the credentials or a
// failed TLS handshake ends the wait at once, with a message naming the settings to look at.
#pragma once

#include <chrono>
#include <expected>
#include <string>

#include "outpost/common/config.h"

namespace outpost::events {

// kafka.bootstrap_servers and kafka.properties apply (as for every client). The error never
// holds a property's value.
std::expected<void, std::string> checkConnection(const KafkaConfig& kafka,
                                                 std::chrono::milliseconds timeout);

}  // namespace outpost::events
