// Intake: turning the bytes of a jobs-topic message into a command this worker may run, or into
// a rejection with a reason. Never throws: bad input is an outcome, not an error.
#pragma once

#include <expected>
#include <map>
#include <string>
#include <string_view>

#include "outpost/common/config.h"
#include "outpost/v1/job.pb.h"

namespace outpost {

struct Rejection {
  std::string reason;  // for the DLQ header and the REJECTED event
  // Whatever could be read of the command (a REJECTED event needs run_id).
  v1::JobCommand partial;
};

// Decodes a JobCommand and checks what every command must have.
std::expected<v1::JobCommand, Rejection> decodeCommand(std::string_view bytes);

// Checks that this worker may run the command: its template exists and its pool is ours.
std::expected<const TemplateConfig*, Rejection> admitCommand(
    const v1::JobCommand& command, const std::map<std::string, TemplateConfig>& templates,
    const std::string& pool);

}  // namespace outpost
