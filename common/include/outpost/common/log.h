// Logging: spdlog to stderr, one format for the whole process: text lines, or JSON objects (one
// per line) whose run fields are fields, for log collectors.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

namespace outpost {

// Sets the level ("trace" … "error") and the line format. Throws ConfigError on a bad level.
void initLogging(const std::string& level);

// worker.log_level, at any time. Throws ConfigError on a bad level (and changes nothing).
void setLogLevel(const std::string& level);

// log.format: "text", "json", or "auto" (text when standard error is a terminal, else JSON).
void setLogFormat(const std::string& format);

// The run a log line is about. In JSON, its fields are the line's run_id, job_id and template.
struct RunLogFields {
  std::string_view run_id, job_id, template_name;
};

// While it lives, this thread's log lines carry `fields` (they must outlive it).
class RunLogScope {
 public:
  explicit RunLogScope(const RunLogFields& fields);
  ~RunLogScope();
  RunLogScope(const RunLogScope&) = delete;
  RunLogScope& operator=(const RunLogScope&) = delete;

 private:
  const RunLogFields* previous_;
};

// One log line about a run.
template <typename... Args>
void logRun(spdlog::level::level_enum level, const RunLogFields& fields,
            spdlog::format_string_t<Args...> format, Args&&... args) {
  RunLogScope scope(fields);
  spdlog::log(level, format, std::forward<Args>(args)...);
}

// The JSON line format: {"time","level","thread","msg"} and the run's fields when a RunLogScope
// is open on the logging thread. Always valid UTF-8 (invalid bytes become U+FFFD).
std::unique_ptr<spdlog::formatter> jsonLogFormatter();

}  // namespace outpost
