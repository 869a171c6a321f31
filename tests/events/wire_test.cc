// toWire and appendRepeatedString: what leaves Outpost parses, and its strings are valid UTF-8.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "outpost/common/utf8.h"
#include "outpost/events/wire.h"
#include "outpost/v1/event.pb.h"

namespace outpost::events {
namespace {

TEST(Wire, InvalidStringsAreMadeValidAndValidOnesKept) {
  v1::RunEvent e;
  e.set_run_id("r1");
  e.set_message("bad \xFF byte");
  e.add_log_lines("fine");
  v1::RunEvent back;
  ASSERT_TRUE(back.ParseFromString(toWire(e)));
  EXPECT_EQ(back.run_id(), "r1");
  EXPECT_TRUE(isValidUtf8(back.message()));
  EXPECT_NE(back.message(), e.message());
  EXPECT_EQ(back.log_lines(0), "fine");
}

TEST(Wire, AppendedLinesParseAsIfTheMessageHeldThem) {
  v1::RunEvent e;
  e.set_run_id("r1");
  e.set_state(v1::LOG);
  e.set_log_dropped_lines(7);
  const std::string long_line(300, 'x');
  const std::vector<std::string_view> lines = {"", "one", long_line, "caf\xC3\xA9", "cut \xE2\x82"};
  auto wire = toWire(e);
  appendRepeatedString(wire, v1::RunEvent::kLogLinesFieldNumber, lines);

  v1::RunEvent expected = e;
  for (auto l : lines) expected.add_log_lines(std::string(l));
  makeStringsValidUtf8(expected);
  v1::RunEvent back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.SerializeAsString(), expected.SerializeAsString());
  ASSERT_EQ(back.log_lines_size(), 5);
  EXPECT_EQ(back.log_lines(2), lines[2]);
  EXPECT_EQ(back.log_lines(3), lines[3]);
  EXPECT_TRUE(isValidUtf8(back.log_lines(4)));
  EXPECT_NE(back.log_lines(4), lines[4]);
  EXPECT_EQ(back.log_dropped_lines(), 7u);
}

TEST(Wire, AppendingNothingChangesNothing) {
  v1::RunEvent e;
  e.set_run_id("r1");
  auto wire = toWire(e);
  appendRepeatedString(wire, v1::RunEvent::kLogLinesFieldNumber, {});
  EXPECT_EQ(wire, toWire(e));
}

}  // namespace
}  // namespace outpost::events
