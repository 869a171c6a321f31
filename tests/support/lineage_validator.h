// Runs tests/tools/validate_lineage.py under /usr/bin/python3 on OpenLineage events: the official
// spec (openlineage/ in the shared test data, see testdata.h) plus Outpost's own facet schemas
// (lineage/schemas/). Without the spec the calling test is marked skipped and the events count as
// valid, so the rest of what the test checks still runs.
#pragma once

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "testdata.h"

namespace outpost::lineage_test {

struct LineageValidation {
  bool ok = false;
  bool skipped = false;  // no spec here: nothing was validated (the test is marked skipped)
  std::string output;    // the validator's "ok N" / "FAIL N: ..." lines and any error
};

// Validates each string as one event (one JSON line).
inline LineageValidation validateLineageEvents(const std::vector<std::string>& events) {
  namespace fs = std::filesystem;
  LineageValidation v;
  auto spec = testdata::find("openlineage", "OpenLineage.json");
  if (!spec) {
    testdata::skipMissing("the OpenLineage spec", "openlineage");
    v.ok = v.skipped = true;
    v.output = "not validated: no OpenLineage spec";
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
                    "/tests/tools/validate_lineage.py --spec-dir '" + spec->string() + "' " + path +
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
