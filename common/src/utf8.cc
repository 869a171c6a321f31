#include "outpost/common/utf8.h"

#include <cstdint>
#include <cstring>

namespace outpost {
namespace {

// The length of the valid UTF-8 character at the start of `in`, or 0 when none starts there.
std::size_t validCharLength(std::string_view in) {
  auto c = static_cast<unsigned char>(in[0]);
  if (c < 0x80) return 1;
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  }
  if (len == 0 || len > in.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    auto cc = static_cast<unsigned char>(in[k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  // Reject overlong forms, surrogates and values past U+10FFFF.
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

// Where the run of ASCII bytes that starts at `i` ends (at a NUL too when `stop_at_nul`). Eight
// bytes a step: log output is mostly ASCII, and a byte a step was a tenth of the worker's CPU
// on a run printing 1 MB/s.
std::size_t asciiRunEnd(std::string_view in, std::size_t i, bool stop_at_nul) {
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL, kOnes = 0x0101010101010101ULL;
  while (i + 8 <= in.size()) {
    std::uint64_t w;
    std::memcpy(&w, in.data() + i, sizeof w);
    std::uint64_t stop = w & kHigh;
    if (stop_at_nul) stop |= (w - kOnes) & ~w & kHigh;  // a zero byte sets its high bit
    if (stop != 0) break;
    i += 8;
  }
  while (i < in.size()) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c >= 0x80 || (stop_at_nul && c == 0)) break;
    ++i;
  }
  return i;
}

}  // namespace

bool isValidUtf8(std::string_view in) {
  std::size_t i = 0;
  while ((i = asciiRunEnd(in, i, false)) < in.size()) {
    auto len = validCharLength(in.substr(i));
    if (len == 0) return false;
    i += len;
  }
  return true;
}

bool isSanitized(std::string_view in) {
  std::size_t i = 0;
  while ((i = asciiRunEnd(in, i, true)) < in.size()) {
    auto len = in[i] == 0 ? 0 : validCharLength(in.substr(i));
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string sanitizeUtf8(std::string_view in, bool drop_leading_partial) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  if (drop_leading_partial) {
    while (i < in.size() && i < 3 && (static_cast<unsigned char>(in[i]) & 0xC0) == 0x80) ++i;
  }
  while (i < in.size()) {
    const std::size_t ascii_end = asciiRunEnd(in, i, true);
    out.append(in.substr(i, ascii_end - i));
    i = ascii_end;
    if (i == in.size()) break;
    if (in[i] == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    auto len = validCharLength(in.substr(i));
    if (len > 0) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

std::string escapedExcerpt(std::string_view bytes, std::size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < max_bytes; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  if (bytes.size() > max_bytes) out += "...";
  return out;
}

}  // namespace outpost
