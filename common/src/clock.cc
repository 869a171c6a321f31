#include "outpost/common/clock.h"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace outpost {

std::int64_t toUnixMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string formatRfc3339Millis(std::chrono::system_clock::time_point t) {
  auto ms = toUnixMillis(t);
  // Floor division, so that times before 1970 format correctly too.
  auto millis = ((ms % 1000) + 1000) % 1000;
  std::time_t secs = static_cast<std::time_t>((ms - millis) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return buf;
}

UuidGenerator::UuidGenerator(const Clock& clock) : clock_(clock), random_(std::random_device{}()) {}

std::string UuidGenerator::next() {
  auto ms = static_cast<std::uint64_t>(toUnixMillis(clock_.now()));
  std::uint64_t r1, r2;
  {
    std::lock_guard lock(mutex_);
    r1 = random_();
    r2 = random_();
  }
  unsigned char b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  for (int i = 6; i < 16; ++i) {
    b[i] = static_cast<unsigned char>((i < 11 ? r1 : r2) >> (8 * (i % 8)));
  }
  b[6] = static_cast<unsigned char>(0x70 | (b[6] & 0x0f));  // version 7
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f));  // RFC 9562 variant
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace outpost
