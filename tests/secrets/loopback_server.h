// Fake cloud services for the secrets integration tests: the loopback server and closed port of
// tests/support/http_loopback.h, and the form bodies token endpoints read.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "http_loopback.h"
#include "outpost/secrets/sigv4.h"

namespace outpost::secrets::test {

using test_support::closedPort;
using test_support::closedPortUrl;
using test_support::LoopbackServer;

// An application/x-www-form-urlencoded body, names and values decoded; a name without '=' has
// an empty value.
inline std::map<std::string, std::string> parseForm(std::string_view body) {
  std::map<std::string, std::string> out;
  std::size_t begin = 0;
  while (begin <= body.size()) {
    auto amp = body.find('&', begin);
    auto item = body.substr(begin, amp == std::string_view::npos ? amp : amp - begin);
    auto eq = item.find('=');
    if (!item.empty()) {
      out[percentDecode(item.substr(0, eq))] =
          eq == std::string_view::npos ? "" : percentDecode(item.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    begin = amp + 1;
  }
  return out;
}

}  // namespace outpost::secrets::test
