// Intake: turning the bytes of a jobs-topic message into a command this worker may run, or into
// a rejection with a reason. Never throws: bad input is an outcome, not an error.
#pragma once

#include <expected>
#include <map>
#include <string>
#include <string_view>

#include "outpost/common/config.h"
#include "outpost/v1/job.pb.h"

namespace outpost::consumer {

struct Rejection {
  std::string reason;  // for the DLQ header and the REJECTED event
  // Whatever could be read of the command (a REJECTED event needs run_id).
  v1::JobCommand partial;
};

// Decodes a JobCommand and checks what every command must have.
std::expected<v1::JobCommand, Rejection> decodeCommand(std::string_view bytes);

// A command that names another pool. Pools may share a jobs topic, each reading every command:
// such a command is not bad input but another pool's work, skipped without an event. A command
// that names no pool runs in any.
bool isForAnotherPool(const v1::JobCommand& command, const std::string& pool);

// Checks that this worker may run the command (one for its pool, see isForAnotherPool): its
// template exists.
std::expected<const TemplateConfig*, Rejection> admitCommand(
    const v1::JobCommand& command, const std::map<std::string, TemplateConfig>& templates);

}  // namespace outpost::consumer
