// The log line formats: JSON objects whose run fields are fields, always valid UTF-8.
#include "outpost/common/log.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <nlohmann/json.hpp>

namespace outpost {
namespace {

// A logger writing JSON lines into a string.
struct JsonLog {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  JsonLog() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_formatter(jsonLogFormatter());
    logger->set_level(spdlog::level::debug);
  }
  std::vector<nlohmann::json> lines() {
    std::vector<nlohmann::json> v;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) v.push_back(nlohmann::json::parse(line));
    return v;
  }
};

TEST(JsonLog, ALineAboutARunCarriesItsFieldsOthersDoNot) {
  JsonLog log;
  log.logger->info("worker starting");
  {
    RunLogFields run{"0190d5a4-7b1c-7cc0-8000-000000000001", "nightly", "ingest"};
    RunLogScope scope(run);
    log.logger->warn("run {} starting", run.run_id);
  }
  log.logger->info("after");
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["msg"], "worker starting");
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_FALSE(lines[0].contains("run_id"));
  EXPECT_EQ(lines[1]["run_id"], "0190d5a4-7b1c-7cc0-8000-000000000001");
  EXPECT_EQ(lines[1]["job_id"], "nightly");
  EXPECT_EQ(lines[1]["template"], "ingest");
  EXPECT_EQ(lines[1]["level"], "warning");
  EXPECT_FALSE(lines[2].contains("run_id")) << "the scope ended";
  EXPECT_THAT(lines[0]["time"].get<std::string>(),
              ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z"));
}

TEST(JsonLog, QuotesNewlinesAndInvalidUtf8StayOneValidLine) {
  JsonLog log;
  log.logger->error("a \"quoted\"\nsecond line \xff\xfe end");
  auto text = log.out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0]["msg"].get<std::string>(), ::testing::HasSubstr("\"quoted\"\nsecond line"));
  EXPECT_THAT(lines[0]["msg"].get<std::string>(), ::testing::HasSubstr("\xEF\xBF\xBD"));
}

TEST(JsonLog, LogRunOpensTheScopeForOneLine) {
  JsonLog log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(log.logger);
  logRun(spdlog::level::info, {"r-1", "j-1", "t-1"}, "run {} ended", "r-1");
  spdlog::info("not about a run");
  spdlog::set_default_logger(previous);
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["template"], "t-1");
  EXPECT_FALSE(lines[1].contains("template"));
}

}  // namespace
}  // namespace outpost
