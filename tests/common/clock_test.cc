// Times and ids (common/clock.h): RFC 3339 as `outpost replay --from/--to` and the lineage a job
// writes (its eventTime) read it, and name-based UUIDs (UUIDv5) as `outpost replay` makes its run
// ids.
#include "outpost/common/clock.h"

#include <gtest/gtest.h>

namespace outpost {
namespace {

// Unix milliseconds of an RFC 3339 text; nullopt when it is refused.
std::optional<std::int64_t> ms(std::string_view text) {
  auto t = parseRfc3339(text);
  return t ? std::optional(toUnixMillis(*t)) : std::nullopt;
}

constexpr std::int64_t kDecember5 = 1'796'464'800'000;  // 2026-12-05T10:00:00Z

TEST(ParseRfc3339, UtcWithAndWithoutAFraction) {
  EXPECT_EQ(ms("2026-12-05T10:00:00Z"), kDecember5);
  EXPECT_EQ(ms("2026-12-05T10:00:00.250Z"), kDecember5 + 250);
  EXPECT_EQ(ms("2026-12-05T10:00:00.5Z"), kDecember5 + 500);
  EXPECT_EQ(ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ms("1969-12-31T23:59:59.999Z"), -1) << "before the epoch";
}

TEST(ParseRfc3339, DigitsPastMillisecondsAreDropped) {
  EXPECT_EQ(ms("2026-12-05T10:00:00.123456789Z"), kDecember5 + 123);
  EXPECT_EQ(ms("2026-12-05T10:00:00.0009Z"), kDecember5);
}

TEST(ParseRfc3339, OffsetsFromUtc) {
  EXPECT_EQ(ms("2026-12-05T12:00:00+02:00"), kDecember5);
  EXPECT_EQ(ms("2026-12-05T04:30:00-05:30"), kDecember5);
  EXPECT_EQ(ms("2026-12-05T10:00:00+00:00"), kDecember5);
  EXPECT_EQ(ms("2026-12-05T10:00:00-00:00"), kDecember5);
  // The lineage tests' event time.
  EXPECT_EQ(ms("2026-11-21T10:00:01.5+01:00"), 1'795'251'601'500);
}

TEST(ParseRfc3339, LowerCaseTAndZ) {
  EXPECT_EQ(ms("2026-12-05t10:00:00z"), kDecember5);
}

TEST(ParseRfc3339, LeapDaysAndALeapSecond) {
  EXPECT_EQ(ms("2024-02-29T00:00:00Z"), 1'709'164'800'000);
  EXPECT_EQ(ms("2000-02-29T00:00:00Z"), 951'782'400'000) << "divisible by 400";
  // 23:59:60 is the next day's first second.
  EXPECT_EQ(ms("2016-12-31T23:59:60Z"), 1'483'228'800'000);
}

TEST(ParseRfc3339, RefusesWhatIsNotADateTime) {
  for (const char* text : {
           "",
           "2026-12-05",
           "2026-12-05T10:00:00",        // no zone: a local time, not an instant
           "2026-12-05 10:00:00Z",       // a space for T
           "2026-12-05T10:00Z",          // no seconds
           "2026-12-05T10:00:00.Z",      // a point without digits
           "2026-12-05T10:00:00+0200",   // offset without its colon
           "2026-12-05T10:00:00+02",     // offset without minutes
           "2026-12-05T10:00:00+24:00",  // offset hours to 23
           "2026-12-05T10:00:00+02:60",  // offset minutes to 59
           "2026-12-05T10:00:00ZZ",
           "2026-12-05T10:00:00Z ",
           "2026-12-5T10:00:00Z",  // two digits each
           "2026-2-05T10:00:00Z",
           "2026-12-05T1:00:00Z",
           "+026-12-05T10:00:00Z",
           "2026-13-01T10:00:00Z",  // no month 13
           "2026-00-01T10:00:00Z",
           "2026-12-00T10:00:00Z",
           "2026-02-30T10:00:00Z",  // no February 30th
           "2025-02-29T10:00:00Z",  // 2025 is no leap year
           "1900-02-29T10:00:00Z",  // nor 1900
           "2026-12-05T24:00:00Z",
           "2026-12-05T10:60:00Z",
           "2026-12-05T10:00:61Z",
           "yesterday",
       }) {
    EXPECT_FALSE(parseRfc3339(text)) << text;
  }
}

TEST(ParseRfc3339, ReadsWhatFormatRfc3339MillisWrites) {
  const auto t = std::chrono::system_clock::time_point{std::chrono::milliseconds(kDecember5 + 7)};
  EXPECT_EQ(parseRfc3339(formatRfc3339Millis(t)), t);
}

// RFC 9562's name spaces.
constexpr UuidBytes kDns = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                            0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
constexpr UuidBytes kUrl = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
                            0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};

TEST(UuidV5, Rfc9562Example) {
  // RFC 9562, appendix A.4.
  EXPECT_EQ(uuidV5(kDns, "www.example.com"), "2ed6657d-e927-568b-95e1-2665a8aea6a2");
}

TEST(UuidV5, AsPythonsUuid5) {
  // uuid.uuid5(uuid.NAMESPACE_URL, "urn:outpost:replay"): `outpost replay`'s name space.
  EXPECT_EQ(uuidV5(kUrl, "urn:outpost:replay"), "c7e37c2c-9ce9-57b0-9de8-4172bf00fd35");
  EXPECT_EQ(uuidV5(kUrl, ""), "1b4db7eb-4057-5ddf-91e0-36dec72071f5");
  EXPECT_EQ(uuidV5(kDns, "python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d");
}

TEST(UuidV5, IsAUuidOfVersion5AndTheRfcVariant) {
  const auto id = uuidV5(kDns, "outpost");
  EXPECT_TRUE(isUuid(id)) << id;
  EXPECT_EQ(id[14], '5');
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
}

TEST(FormatUuid, LowerCaseHexInFiveGroups) {
  EXPECT_EQ(formatUuid(kDns), "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
}

}  // namespace
}  // namespace outpost
