// Runs tests/tools/validate_lineage.py under /usr/bin/python3 on OpenLineage events: the official
// spec in ../shared/testdata/openlineage plus Outpost's own facet schemas (lineage/schemas/).
// Needs OUTPOST_SOURCE_DIR (the repository root) defined by the build.
#pragma once

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#ifndef OUTPOST_SOURCE_DIR
#error "OUTPOST_SOURCE_DIR must be defined by the build"
#endif

namespace outpost::lineage_test {

struct LineageValidation {
  bool ok = false;
  std::string output;  // the validator's "ok N" / "FAIL N: ..." lines and any error
};

inline std::string lineageSpecDir() {
  return std::string(OUTPOST_SOURCE_DIR) + "/../shared/testdata/openlineage";
}

// Validates each string as one event (one JSON line).
inline LineageValidation validateLineageEvents(const std::vector<std::string>& events) {
  namespace fs = std::filesystem;
  LineageValidation v;
  if (!fs::exists(lineageSpecDir() + "/OpenLineage.json")) {
    v.output = "missing the OpenLineage spec at " + lineageSpecDir();
    return v;
  }
  std::string path = (fs::temp_directory_path() / "outpost-lineage-XXXXXX").string();
  int fd = mkstemp(path.data());
  if (fd < 0) {
    v.output = "mkstemp failed";
    return v;
  }
  close(fd);
  {
    std::ofstream out(path, std::ios::trunc);
    for (const auto& e : events) out << e << "\n";
  }
  std::string cmd = "/usr/bin/python3 " + std::string(OUTPOST_SOURCE_DIR) +
                    "/tests/tools/validate_lineage.py --spec-dir " + lineageSpecDir() + " " + path +
                    " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  while (p && fgets(buf.data(), buf.size(), p)) v.output += buf.data();
  int status = p ? pclose(p) : -1;
  v.ok = status == 0;
  fs::remove(path);
  return v;
}

}  // namespace outpost::lineage_test
