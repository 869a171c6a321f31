// The client subcommands' exit statuses, as the documentation gives them: a bad option or option
// value is exit 2 with a message naming the option, whichever subcommand; the broker's failures are
// not (exit 8).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;

TEST(Cli, ABadOptionValueIsExitTwoNamingTheOption) {
  auto topics = topicNames("cli-bad");  // nothing is read: the options are refused first
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tail --timeout 5parsecs", "--timeout"},
      {"tail --follow --timeout x", "--timeout"},
      {"ledger --timeout soon", "--timeout"},
      {"submit -t ok --timeout 3q", "--timeout"},
      {"submit -t ok --start-within never", "--start-within"},
      {"submit -t ok --wait --wait-timeout forever", "--wait-timeout"},
      {"replay --timeout x", "--timeout"},
      {"topics --runs-retention long", "--runs-retention"},
      {"submit --no-such-option", "--no-such-option"},
      {"tail --follow=maybe", "--follow"},
  };
  for (const auto& [args, option] : cases) {
    auto [status, out] = runCli(topics, args + " 2>&1");
    EXPECT_EQ(status, 2) << "outpost " << args << "\n" << out;
    EXPECT_THAT(out, HasSubstr(option)) << "outpost " << args;
  }
}

}  // namespace
}  // namespace outpost::test
