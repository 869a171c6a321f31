// The shared test data: the official OpenLineage spec and the AWS SigV4 test suite, which this
// repository does not carry. Tests find it through OUTPOST_TESTDATA (default
// <repository>/../shared/testdata, OUTPOST_SOURCE_DIR being the repository as the build defines
// it). Where a part is absent the test is skipped, saying what is missing and where it was looked
// for, and the skip is appended to the file named by OUTPOST_TESTDATA_SKIPS, from which
// scripts/test counts such skips at the end. Nothing else in the tests may depend on ../shared.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#ifndef OUTPOST_SOURCE_DIR
#error "OUTPOST_SOURCE_DIR must be defined by the build"
#endif

namespace outpost::testdata {

inline std::filesystem::path root() {
  if (const char* dir = std::getenv("OUTPOST_TESTDATA"); dir && *dir) return dir;
  return std::filesystem::path(OUTPOST_SOURCE_DIR) / ".." / "shared" / "testdata";
}

// The folder `name` under the test data when `probe` (a file or folder in it) exists there.
inline std::optional<std::filesystem::path> find(const std::string& name,
                                                 const std::string& probe) {
  auto dir = root() / name;
  if (std::filesystem::exists(dir / probe)) return dir;
  return std::nullopt;
}

// Marks the running test skipped (it goes on: whatever else it checks still counts, and a
// failure still fails it) and records why for scripts/test. `what` names the missing part.
inline void skipMissing(const std::string& what, const std::string& name) {
  const auto where = (root() / name).lexically_normal().string();
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string message = what + " is missing: looked for " + where +
                              " (set OUTPOST_TESTDATA to the folder that holds " + name + "/)";
  if (const char* log = std::getenv("OUTPOST_TESTDATA_SKIPS"); log && *log) {
    std::ofstream(log, std::ios::app) << (test ? std::string(test->test_suite_name()) + "." +
                                                     test->name()
                                               : std::string("?"))
                                      << ": " << message << "\n";
  }
  GTEST_SKIP() << message;
}

}  // namespace outpost::testdata
