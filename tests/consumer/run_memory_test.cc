// The bounded, expiring memory of run_ids the worker answers cancels from (run_memory.h).
#include "outpost/consumer/run_memory.h"

#include <gtest/gtest.h>

namespace outpost::consumer {
namespace {

using namespace std::chrono_literals;

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
