// Shell-style glob patterns (fnmatch: *, ?, [...]) as the configuration uses them: a template's
// accept_env and secrets lists.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace outpost {

// Whether `name` matches any of `patterns`.
bool matchesAnyGlob(const std::vector<std::string>& patterns, std::string_view name);

}  // namespace outpost
