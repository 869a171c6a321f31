// The control topic's pure part: decoding ControlCommands.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outpost/consumer/control_listener.h"

namespace outpost::consumer {
namespace {

using ::testing::HasSubstr;

constexpr const char* kRun = "0190d2a8-0000-7000-8000-000000000001";

v1::ControlCommand cancelOf(const std::string& run_id) {
  v1::ControlCommand c;
  c.set_command_id("0190d2a8-0000-7000-8000-0000000000ff");
  c.set_issued_at_ms(1'700'000'000'000);
  c.mutable_cancel()->set_run_id(run_id);
  c.mutable_cancel()->set_reason("wrong recipe");
  c.mutable_cancel()->set_requested_by("alice");
  return c;
}

TEST(DecodeControlCommand, AcceptsACancelForAUuidRun) {
  auto d = decodeControlCommand(cancelOf(kRun).SerializeAsString());
  ASSERT_TRUE(d.has_value()) << d.error();
  EXPECT_EQ(d->cancel().run_id(), kRun);
  EXPECT_EQ(d->cancel().reason(), "wrong recipe");
  EXPECT_EQ(d->cancel().requested_by(), "alice");
}

TEST(DecodeControlCommand, RefusesEmptyGarbageAndCommandlessMessages) {
  auto empty = decodeControlCommand("");
  ASSERT_FALSE(empty.has_value());
  EXPECT_THAT(empty.error(), HasSubstr("empty"));

  auto garbage = decodeControlCommand(std::string("\xff\xfe not a protobuf \x00\x01", 20));
  ASSERT_FALSE(garbage.has_value());

  v1::ControlCommand none;
  none.set_command_id("x");
  auto commandless = decodeControlCommand(none.SerializeAsString());
  ASSERT_FALSE(commandless.has_value());
  EXPECT_THAT(commandless.error(), HasSubstr("no command"));
}

TEST(DecodeControlCommand, RefusesACancelWithoutAUuidRunId) {
  auto missing = decodeControlCommand(cancelOf("").SerializeAsString());
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error(), HasSubstr("without a run_id"));
  auto bad = decodeControlCommand(cancelOf("not-a-uuid").SerializeAsString());
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error(), HasSubstr("not a UUID"));
}

}  // namespace
}  // namespace outpost::consumer
