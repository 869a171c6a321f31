// Logging: spdlog to stderr, one format for the whole process.
#pragma once

#include <string>

#include <spdlog/spdlog.h>

namespace outpost {

// Sets the level ("trace" … "error") and the line format. Throws ConfigError on a bad level.
void initLogging(const std::string& level);

}  // namespace outpost
