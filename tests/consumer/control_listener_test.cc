// The control topic's pure parts: decoding ControlCommands, and the bounded, expiring memory of
// run_ids the worker answers cancels from.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outpost/consumer/control_listener.h"

namespace outpost::consumer {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

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

using TimePoint = std::chrono::system_clock::time_point;
const TimePoint kT0{std::chrono::seconds(1'700'000'000)};

TEST(RunMemory, FindsAnEntryUntilItExpires) {
  RunMemory<int> m(10);
  m.put("a", 1, kT0 + 10min);
  ASSERT_NE(m.find("a", kT0), nullptr);
  EXPECT_EQ(*m.find("a", kT0 + 9min), 1);
  EXPECT_EQ(m.find("a", kT0 + 10min), nullptr) << "expired at its expiry";
  EXPECT_EQ(m.find("b", kT0), nullptr);
  EXPECT_EQ(m.size(), 1u) << "find does not forget";
  m.expire(kT0 + 10min);
  EXPECT_EQ(m.size(), 0u);
}

TEST(RunMemory, PutReplacesAndMovesTheExpiry) {
  RunMemory<int> m(10);
  m.put("a", 1, kT0 + 1min);
  m.put("a", 2, kT0 + 5min);
  EXPECT_EQ(m.size(), 1u);
  m.expire(kT0 + 2min);
  ASSERT_NE(m.find("a", kT0 + 2min), nullptr);
  EXPECT_EQ(*m.find("a", kT0 + 2min), 2);
}

TEST(RunMemory, ValuesCanBeChangedInPlace) {
  RunMemory<int> m(10);
  m.put("a", 1, kT0 + 1min);
  ++*m.find("a", kT0);
  EXPECT_EQ(*m.find("a", kT0), 2);
}

TEST(RunMemory, ExpireForgetsOnlyWhatHasExpired) {
  RunMemory<int> m(10);
  m.put("late", 1, kT0 + 3min);
  m.put("early", 2, kT0 + 1min);
  m.put("middle", 3, kT0 + 2min);
  m.expire(kT0 + 2min);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_NE(m.find("late", kT0), nullptr);
}

TEST(RunMemory, AtCapacityTheEntryClosestToExpiryGivesWay) {
  RunMemory<int> m(3);
  m.put("a", 1, kT0 + 3min);
  m.put("b", 2, kT0 + 1min);
  m.put("c", 3, kT0 + 2min);
  m.put("d", 4, kT0 + 4min);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m.find("b", kT0), nullptr);
  EXPECT_NE(m.find("a", kT0), nullptr);
  EXPECT_NE(m.find("c", kT0), nullptr);
  EXPECT_NE(m.find("d", kT0), nullptr);
  // Replacing an entry at capacity evicts nothing else.
  m.put("a", 5, kT0 + 5min);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_NE(m.find("c", kT0), nullptr);
}

TEST(RunMemory, StaysBoundedUnderAFlood) {
  RunMemory<std::string> m(1000);
  for (int i = 0; i < 100'000; ++i) m.put(std::to_string(i), "x", kT0 + std::chrono::seconds(i));
  EXPECT_EQ(m.size(), 1000u);
  EXPECT_NE(m.find("99999", kT0), nullptr);
  EXPECT_EQ(m.find("0", kT0), nullptr);
}

TEST(RunMemory, EraseForgetsOne) {
  RunMemory<int> m(10);
  m.put("a", 1, kT0 + 1min);
  m.put("b", 2, kT0 + 1min);
  m.erase("a");
  m.erase("zzz");
  EXPECT_EQ(m.find("a", kT0), nullptr);
  EXPECT_NE(m.find("b", kT0), nullptr);
  EXPECT_EQ(m.size(), 1u);
}

}  // namespace
}  // namespace outpost::consumer
