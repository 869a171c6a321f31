#include "scrape.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

namespace outpost::test {

using namespace std::chrono_literals;

Answer get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto r = client.Get(path);
  if (!r) return {};
  return {r->status, r->body};
}

std::optional<double> sample(const std::string& scrape, const std::string& series) {
  std::istringstream in(scrape);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

Answer waitFor(int port, const std::string& path, int status, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Answer a;
  while (std::chrono::steady_clock::now() < deadline) {
    a = get(port, path);
    if (a.status == status) return a;
    std::this_thread::sleep_for(50ms);
  }
  return a;
}

namespace {

std::string waitForScrape(int port, const std::string& series, double value,
                          std::chrono::seconds timeout, bool or_more) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string scrape;
  while (std::chrono::steady_clock::now() < deadline) {
    scrape = get(port, "/metrics").body;
    auto now = sample(scrape, series);
    if (now && (*now == value || (or_more && *now > value))) return scrape;
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << series << " never reached " << value << "; last scrape:\n" << scrape;
  return scrape;
}

}  // namespace

std::string waitForSample(int port, const std::string& series, double value,
                          std::chrono::seconds timeout) {
  return waitForScrape(port, series, value, timeout, false);
}

std::string waitForSampleAtLeast(int port, const std::string& series, double value,
                                 std::chrono::seconds timeout) {
  return waitForScrape(port, series, value, timeout, true);
}

std::pair<int, std::string> promtoolCheck(const std::string& scrape) {
  const char* promtool = std::getenv("OUTPOST_PROMTOOL");
  if (!promtool || !*promtool) {
    ADD_FAILURE() << "OUTPOST_PROMTOOL is not set: run the tests through scripts/test, which "
                     "fetches promtool (scripts/install-deps) and says where it is";
    return {-1, ""};
  }
  char path[] = "/tmp/outpost-scrape.XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  { std::ofstream(path) << scrape; }
  ::close(fd);
  std::string cmd = std::string(promtool) + " check metrics < " + path + " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 512> buf;
  while (p && fgets(buf.data(), buf.size(), p)) out += buf.data();
  int status = p ? pclose(p) : -1;
  std::remove(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace outpost::test
