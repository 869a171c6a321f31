#include "outpost/common/base64.h"

#include <cstdint>
#include <cstring>

namespace outpost {
namespace {

// The value of a base64 digit, standard alphabet ('+', '/'); -1 for anything else.
int standardDigit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::optional<std::string> decodeUnpaddedBase64(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = standardDigit(c);
    if (v < 0) {
      ::explicit_bzero(out.data(), out.size());
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFFu);
    }
  }
  return out;
}

std::string encodeBase64Url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16 |
                            static_cast<unsigned char>(bytes[i + 1]) << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    if (rest == 2) out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> decodeBase64Url(std::string_view in) {
  // Map the URL alphabet onto the standard one and let decodeUnpaddedBase64 do the rest; the
  // standard alphabet's own '+' and '/' are refused here, before the mapping could hide them.
  // The copy is wiped as decodeUnpaddedBase64 wipes its output: the input may be a secret.
  std::string standard(in);
  auto wipe = [](std::string& s) { ::explicit_bzero(s.data(), s.size()); };
  std::optional<std::string> out;
  if (standard.find_first_of("+/") == std::string::npos) {
    for (char& c : standard) {
      if (c == '-') c = '+';
      if (c == '_') c = '/';
    }
    out = decodeUnpaddedBase64(standard);
  }
  if (out && !standard.empty()) {
    // A last digit that carries bits past the final byte: a second spelling of the same bytes.
    const int last = standardDigit(standard.back());
    const int unused = standard.size() % 4 == 2 ? 0x0F : standard.size() % 4 == 3 ? 0x03 : 0;
    if ((last & unused) != 0) {
      wipe(*out);
      out.reset();
    }
  }
  wipe(standard);
  return out;
}

}  // namespace outpost
