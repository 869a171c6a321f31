#include "outpost/common/clock.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <stdexcept>

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

namespace {

// `n` decimal digits at `pos`.
std::optional<int> digitsAt(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parseRfc3339(std::string_view s) {
  using namespace std::chrono;
  // date-time = full-date "T" partial-time time-offset; 2026-11-21T10:00:00 is 19 bytes.
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
      s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  auto y = digitsAt(s, 0, 4), mo = digitsAt(s, 5, 2), d = digitsAt(s, 8, 2);
  auto h = digitsAt(s, 11, 2), mi = digitsAt(s, 14, 2), sec = digitsAt(s, 17, 2);
  if (!y || !mo || !d || !h || !mi || !sec) return std::nullopt;
  const year_month_day date{year{*y}, month{static_cast<unsigned>(*mo)},
                            day{static_cast<unsigned>(*d)}};
  if (!date.ok() || *h > 23 || *mi > 59 || *sec > 60) return std::nullopt;

  std::size_t i = 19;
  int millis = 0;
  if (s[i] == '.') {
    const std::size_t start = ++i;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      if (i - start < 3) millis = millis * 10 + (s[i] - '0');
    }
    if (i == start) return std::nullopt;
    for (auto n = i - start; n < 3; ++n) millis *= 10;
  }
  if (i == s.size()) return std::nullopt;  // no zone: a local time, not an instant
  minutes offset{0};
  if (s[i] == 'Z' || s[i] == 'z') {
    if (i + 1 != s.size()) return std::nullopt;
  } else {
    auto oh = digitsAt(s, i + 1, 2), om = digitsAt(s, i + 4, 2);
    if ((s[i] != '+' && s[i] != '-') || i + 6 != s.size() || !oh || s[i + 3] != ':' || !om ||
        *oh > 23 || *om > 59) {
      return std::nullopt;
    }
    offset = hours{*oh} + minutes{*om};
    if (s[i] == '-') offset = -offset;
  }
  // The local time minus its offset from UTC.
  return system_clock::time_point{sys_days{date} + hours{*h} + minutes{*mi} + seconds{*sec} +
                                  milliseconds{millis} - offset};
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
  UuidBytes bytes;
  std::copy(std::begin(b), std::end(b), bytes.begin());
  return formatUuid(bytes);
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

std::string formatUuid(const UuidBytes& b) {
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

std::string uuidV5(const UuidBytes& name_space, std::string_view name) {
  std::string input(name_space.begin(), name_space.end());
  input.append(name);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  // One shot: OpenSSL makes and frees its digest context inside.
  if (EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha1(), nullptr) != 1 ||
      size < 16) {
    throw std::runtime_error("OpenSSL cannot compute SHA-1, which UUIDv5 needs");
  }
  UuidBytes b;
  std::copy(digest, digest + 16, b.begin());
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0F) | 0x50);  // version 5
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3F) | 0x80);  // RFC 9562 variant
  return formatUuid(b);
}

}  // namespace outpost
