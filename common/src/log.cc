#include "outpost/common/log.h"

#include <pthread.h>
#include <unistd.h>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <nlohmann/json.hpp>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"

namespace outpost {
namespace {

thread_local const RunLogFields* t_run = nullptr;

constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v";

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string when = formatRfc3339Millis(msg.time);
    char thread[16] = {};
    pthread_getname_np(pthread_self(), thread, sizeof thread);
    nlohmann::ordered_json line;
    line["time"] = when;
    const auto level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string(level.data(), level.size());
    line["thread"] = thread;
    line["msg"] = std::string(msg.payload.data(), msg.payload.size());
    if (t_run) {
      if (!t_run->run_id.empty()) line["run_id"] = t_run->run_id;
      if (!t_run->job_id.empty()) line["job_id"] = t_run->job_id;
      if (!t_run->template_name.empty()) line["template"] = t_run->template_name;
    }
    auto text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    text += '\n';
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

RunLogScope::RunLogScope(const RunLogFields& fields) : previous_(t_run) {
  t_run = &fields;
}

RunLogScope::~RunLogScope() {
  t_run = previous_;
}

std::unique_ptr<spdlog::formatter> jsonLogFormatter() {
  return std::make_unique<JsonFormatter>();
}

void setLogLevel(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw ConfigError("'worker.log_level' must be one of trace, debug, info, warn, error; not '" +
                      level + "'");
  }
  spdlog::set_level(lvl);
}

void initLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("outpost");
  spdlog::set_default_logger(logger);
  setLogLevel(level);
  spdlog::set_pattern(kTextPattern, spdlog::pattern_time_type::utc);
  spdlog::flush_on(spdlog::level::info);
}

void setLogFormat(const std::string& format) {
  const bool json = format == "json" || (format == "auto" && !::isatty(STDERR_FILENO));
  if (json) {
    spdlog::set_formatter(jsonLogFormatter());
  } else {
    spdlog::set_pattern(kTextPattern, spdlog::pattern_time_type::utc);
  }
}

}  // namespace outpost
