#include "outpost/consumer/intake.h"

#include "outpost/common/clock.h"
#include "outpost/common/utf8.h"

namespace outpost::consumer {

std::expected<v1::JobCommand, Rejection> decodeCommand(std::string_view bytes) {
  v1::JobCommand c;
  if (bytes.empty()) return std::unexpected(Rejection{"empty message: not a JobCommand", {}});
  if (!c.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return std::unexpected(Rejection{"undecodable: not a protobuf outpost.v1.JobCommand", {}});
  }
  // Protobuf is lenient: random bytes can parse as unknown fields. A command without the fields
  // every command carries is treated as undecodable.
  if (c.run_id().empty()) {
    return std::unexpected(Rejection{"undecodable or incomplete JobCommand: run_id is missing", c});
  }
  if (!isUuid(c.run_id())) {
    Rejection r{"run_id '" + escapedExcerpt(c.run_id(), 40) + "' is not a UUID", c};
    r.partial.clear_run_id();  // not an id the platform can key an event by
    return std::unexpected(std::move(r));
  }
  if (c.job_type().empty()) {
    return std::unexpected(Rejection{"job_type is missing", c});
  }
  if (c.attempt() == 0) c.set_attempt(1);
  return c;
}

bool isForAnotherPool(const v1::JobCommand& c, const std::string& pool) {
  return !c.pool().empty() && c.pool() != pool;
}

std::expected<const TemplateConfig*, Rejection> admitCommand(
    const v1::JobCommand& c, const std::map<std::string, TemplateConfig>& templates) {
  auto it = templates.find(c.job_type());
  if (it == templates.end()) {
    return std::unexpected(Rejection{"unknown job_type '" + escapedExcerpt(c.job_type(), 64) +
                                         "': no such template on this worker",
                                     c});
  }
  return &it->second;
}

}  // namespace outpost::consumer
