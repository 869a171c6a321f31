#include "outpost/common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include "outpost/common/config.h"

namespace outpost {

void initLogging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw ConfigError("'worker.log_level' must be one of trace, debug, info, warn, error; not '" +
                      level + "'");
  }
  auto logger = spdlog::stderr_logger_mt("outpost");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace outpost
