// For the tests that no secret, token or key ends up in an error message or a log line.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "outpost/secrets/provider.h"

namespace outpost::secrets::test {

// While it lives, everything the default logger writes, at every level, is kept; so are the error
// messages of the failures a test provokes. expectNoneHolds() then looks for canaries (the
// values, tokens and keys in play) in both.
class LeakCheck {
 public:
  LeakCheck()
      : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(logs_)),
        level_(spdlog::get_level()) {
    spdlog::default_logger()->sinks().push_back(sink_);
    spdlog::set_level(spdlog::level::trace);
  }
  ~LeakCheck() {
    spdlog::set_level(level_);
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  LeakCheck(const LeakCheck&) = delete;
  LeakCheck& operator=(const LeakCheck&) = delete;

  // The fetch must fail; its message is kept.
  void expectError(SecretProvider& provider, const SecretRef& ref) {
    auto s = provider.fetch(ref);
    EXPECT_FALSE(s) << ref.text;
    if (!s) messages_.push_back(s.error().message);
  }
  void addMessage(std::string message) { messages_.push_back(std::move(message)); }
  std::size_t messages() const { return messages_.size(); }

  void expectNoneHolds(const std::vector<std::string>& canaries) const {
    using testing::HasSubstr;
    using testing::Not;
    for (const auto& m : messages_) {
      for (const auto& c : canaries) EXPECT_THAT(m, Not(HasSubstr(c))) << m;
    }
    const std::string logs = logs_.str();
    for (const auto& c : canaries) EXPECT_THAT(logs, Not(HasSubstr(c)));
  }

 private:
  std::ostringstream logs_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  spdlog::level::level_enum level_;
  std::vector<std::string> messages_;
};

}  // namespace outpost::secrets::test
