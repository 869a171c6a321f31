// Probing a worker the way an operator does: GET its HTTP endpoint, read samples of a scrape,
// and run promtool on one.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>

namespace outpost::test {

struct Answer {
  int status = -1;  // -1: no answer (nothing listens)
  std::string body;
};

// GET http://127.0.0.1:port/path (5 s timeouts).
Answer get(int port, const std::string& path);

// The value of one sample of a scrape (`name{labels}` exactly as written, labels in the order
// prometheus-cpp writes them), or nullopt when it is not there.
std::optional<double> sample(const std::string& scrape, const std::string& series);

// Waits (safety timeout) until `path` answers `status`; returns the last answer.
Answer waitFor(int port, const std::string& path, int status,
               std::chrono::seconds timeout = std::chrono::seconds(60));

// Waits until a scrape has `series` at `value` (failing the test if it never does); returns the
// last scrape.
std::string waitForSample(int port, const std::string& series, double value,
                          std::chrono::seconds timeout = std::chrono::seconds(60));
// The same for a counter that may pass `value` between two scrapes: `series` at `value` or more.
std::string waitForSampleAtLeast(int port, const std::string& series, double value,
                                 std::chrono::seconds timeout = std::chrono::seconds(60));

// promtool check metrics on a scrape (promtool from OUTPOST_PROMTOOL): its exit status and what
// it printed (problems only).
std::pair<int, std::string> promtoolCheck(const std::string& scrape);

}  // namespace outpost::test
