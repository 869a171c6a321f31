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

// Each client subcommand started the moment `outpost topics` has created the topics, as a new user
// does: leaders are still being elected, and a client that gave up on the first
// "Not leader for partition" exited 2. Every one retries what is retriable within its time budget.
TEST(Cli, EverySubcommandWorksRightAfterTheTopicsAreCreated) {
  auto fresh = [](const std::string& stem) {
    auto t = topicNames(stem);
    auto [status, out] = runCli(t, "topics --partitions 3 2>&1");
    EXPECT_EQ(status, 0) << out;
    return t;
  };
  for (const std::string args : {"tail --timeout 5s", "ledger --timeout 30s", "workers",
                                 "replay --timeout 30s", "tail --follow --timeout 2s"}) {
    auto topics = fresh("cli-fresh");
    auto [status, out] = runCli(topics, args + " 2>&1");
    EXPECT_EQ(status, 0) << "outpost " << args << "\n" << out;
  }
  // submit --wait and cancel --wait, with a worker started at the same moment.
  auto topics = fresh("cli-fresh-run");
  WorkerProcess worker(topics, {});
  auto [submitted, out] = runCli(topics, "submit -t ok --wait --wait-timeout 90s");
  EXPECT_EQ(submitted, 0) << out;
  const auto run_id = out.substr(0, out.find('\n'));
  auto [cancelled, cout] =
      runCli(topics, "cancel --run " + run_id + " --wait --wait-timeout 30s 2>&1");
  EXPECT_EQ(cancelled, 9) << "the run had ended before the cancel\n" << cout;
}

}  // namespace
}  // namespace outpost::test
