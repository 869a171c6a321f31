// Reading /proc/<pid>/stat (proc(5)), whose second field, the command name, may hold spaces and
// parentheses.
#pragma once

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace outpost {

// The fields after the command name: field n of proc(5) is the result's [n - 3] (state is [0],
// utime [11], stime [12]). Empty when the file cannot be read.
inline std::vector<std::string> procStatFields(const std::string& path) {
  std::ifstream in(path);
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return {};
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string s; fields >> s;) f.push_back(s);
  return f;
}

}  // namespace outpost
