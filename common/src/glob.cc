#include "outpost/common/glob.h"

#include <fnmatch.h>

#include <algorithm>

namespace outpost {

bool matchesAnyGlob(const std::vector<std::string>& patterns, std::string_view name) {
  const std::string n(name);
  return std::ranges::any_of(patterns, [&](const std::string& pattern) {
    return fnmatch(pattern.c_str(), n.c_str(), 0) == 0;
  });
}

}  // namespace outpost
