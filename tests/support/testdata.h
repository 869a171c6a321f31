// The shared test data: the official OpenLineage spec and the AWS SigV4 test suite, which this
// repository does not carry. Tests find it only through OUTPOST_TESTDATA, whose default
// scripts/test sets (the one place that knows where the data usually lies). Where it is unset or a
// part is absent, the test is skipped, saying what is missing and where it was looked for, and the
// skip is appended to the file named by OUTPOST_TESTDATA_SKIPS, from which scripts/test counts
// such skips at the end.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace outpost::testdata {

// OUTPOST_TESTDATA, when set.
inline std::optional<std::filesystem::path> root() {
  if (const char* dir = std::getenv("OUTPOST_TESTDATA"); dir && *dir) return dir;
  return std::nullopt;
}

// The folder `name` under the test data; empty when OUTPOST_TESTDATA is unset.
inline std::filesystem::path dirOf(const std::string& name) {
  auto r = root();
  return r ? *r / name : std::filesystem::path();
}

// The folder `name` under the test data when `probe` (a file or folder in it) exists there.
inline std::optional<std::filesystem::path> find(const std::string& name,
                                                 const std::string& probe) {
  auto dir = dirOf(name);
  if (!dir.empty() && std::filesystem::exists(dir / probe)) return dir;
  return std::nullopt;
}

// Marks the running test skipped (it goes on: whatever else it checks still counts, and a
// failure still fails it) and records why for scripts/test. `what` names the missing part.
inline void skipMissing(const std::string& what, const std::string& name) {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string message = what + " is missing: " +
                              (root() ? "looked for " + dirOf(name).lexically_normal().string()
                                      : std::string("OUTPOST_TESTDATA is not set")) +
                              " (set OUTPOST_TESTDATA to the folder that holds " + name +
                              "/; scripts/test does)";
  if (const char* log = std::getenv("OUTPOST_TESTDATA_SKIPS"); log && *log) {
    std::ofstream(log, std::ios::app)
        << (test ? std::string(test->test_suite_name()) + "." + test->name() : std::string("?"))
        << ": " << message << "\n";
  }
  GTEST_SKIP() << message;
}

}  // namespace outpost::testdata
