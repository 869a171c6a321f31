// What the fuzz targets share: splitting one input into the parts a target needs. Each target is
// built twice: with libFuzzer (scripts/fuzz, clang) and with replay_main.cc, which runs its corpus
// as an ordinary test (scripts/test, any compiler).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::fuzz {

// The input's parts, separated by "\n~~\n" (a corpus file stays readable text where the target's
// inputs are text); `count` parts at most, the last one taking the rest. Missing parts are empty.
inline std::vector<std::string_view> splitParts(const std::uint8_t* data, std::size_t size,
                                                std::size_t count) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  constexpr std::string_view kSeparator = "\n~~\n";
  while (parts.size() + 1 < count) {
    auto at = in.find(kSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(in.substr(0, at));
    in.remove_prefix(at + kSeparator.size());
  }
  parts.push_back(in);
  parts.resize(count);
  return parts;
}

// Headers written one per line as "name: value" (the jobs topic's headers).
inline std::vector<std::pair<std::string, std::string>> headerLines(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> headers;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    auto colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    headers.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 2)));
  }
  return headers;
}

}  // namespace outpost::fuzz
