// The HTTP client (outpost/common/http_client.h) against cpp-httplib servers on 127.0.0.1:
// retries of connection failures, Retry-After up to the cap, redirects left alone, answers cut at
// their limit, and the proxy settings of the environment. Loopback only: no Kafka, no internet.
#include "outpost/common/http_client.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "http_loopback.h"

namespace outpost {
namespace {

using namespace std::chrono_literals;
using test_support::closedPortUrl;
using test_support::LoopbackServer;
using testing::HasSubstr;
using testing::Not;

class HttpClientTest : public testing::Test {
 protected:
  static HttpClientConfig direct() {
    HttpClientConfig c;
    c.proxy = ProxyConfig{};
    c.retry.base_delay = 1ms;
    c.retry.max_delay = 5ms;
    return c;
  }
};

TEST_F(HttpClientTest, ConnectionFailuresAreRetriedThenReported) {
  auto c = direct();
  c.retry.max_attempts = 3;
  std::vector<std::chrono::milliseconds> waits;
  c.sleep = [&](std::chrono::milliseconds d) { waits.push_back(d); };
  HttpClient http(c);
  auto r = http.send({"GET", closedPortUrl() + "/x?q=1", {}, ""});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, HttpError::Kind::kConnect);
  EXPECT_EQ(r.error().attempts, 3);
  EXPECT_EQ(waits.size(), 2u);
  EXPECT_THAT(r.error().message, HasSubstr("GET http://127.0.0.1:"));
  EXPECT_THAT(r.error().message, Not(HasSubstr("q=1")));
}

TEST_F(HttpClientTest, RetryAfterIsHonouredUpToTheCap) {
  auto server = std::make_unique<httplib::Server>();
  std::atomic<int> calls{0};
  server->Get("/busy", [&](const httplib::Request&, httplib::Response& res) {
    if (++calls < 3) {
      res.status = 429;
      res.set_header("Retry-After", "1");
      return;
    }
    res.set_content("ok", "text/plain");
  });
  LoopbackServer s(std::move(server));
  auto c = direct();
  c.retry.max_delay = 700ms;
  std::vector<std::chrono::milliseconds> waits;
  c.sleep = [&](std::chrono::milliseconds d) { waits.push_back(d); };
  HttpClient http(c);
  auto r = http.send({"GET", s.url("/busy"), {}, ""});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(r->attempts, 3);
  EXPECT_EQ(waits, (std::vector<std::chrono::milliseconds>{700ms, 700ms}));
}

TEST_F(HttpClientTest, RedirectsAreNotFollowedAndBigAnswersAreCut) {
  auto server = std::make_unique<httplib::Server>();
  server->Get("/redirect", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("http://198.51.100.7/steal");
  });
  server->Get("/big", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(100000, 'x'), "text/plain");
  });
  server->Put("/echo", [](const httplib::Request& q, httplib::Response& res) {
    res.set_content(q.method + ":" + q.body, "text/plain");
  });
  LoopbackServer s(std::move(server));
  const std::string base = s.url();
  auto c = direct();
  c.max_response_bytes = 1000;
  HttpClient http(c);
  auto redirect = http.send({"GET", base + "/redirect", {}, ""});
  ASSERT_TRUE(redirect);
  EXPECT_EQ(redirect->status, 302);
  auto big = http.send({"GET", base + "/big", {}, ""});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().kind, HttpError::Kind::kTooLarge);
  EXPECT_EQ(big.error().attempts, 1);
  auto put = http.send({"PUT", base + "/echo", {}, "abc"});
  ASSERT_TRUE(put);
  EXPECT_EQ(put->body, "PUT:abc");
}

TEST_F(HttpClientTest, UsesTheProxyFromUpperCaseHttpProxyAndBypassesNoProxyHosts) {
  // A proxy receives the absolute URL as the request target.
  auto proxy_server = std::make_unique<httplib::Server>();
  std::mutex m;
  std::vector<std::string> seen;
  proxy_server->Get(".*", [&](const httplib::Request& q, httplib::Response& res) {
    std::lock_guard l(m);
    seen.push_back(q.target);
    res.set_content("via proxy", "text/plain");
  });
  LoopbackServer proxy(std::move(proxy_server));
  const std::string proxy_url = proxy.url();

  auto c = direct();
  c.proxy = ProxyConfig::fromEnvironment({{"HTTP_PROXY", proxy_url}});
  HttpClient via(c);
  auto r = via.send({"GET", "http://secretsmanager.example.invalid/path", {}, ""});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->body, "via proxy");
  {
    std::lock_guard l(m);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0], "http://secretsmanager.example.invalid/path");
  }

  // NO_PROXY: straight to the target, even though the proxy is dead.
  auto target = std::make_unique<httplib::Server>();
  target->Get("/direct", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("direct", "text/plain");
  });
  LoopbackServer direct_server(std::move(target));
  c.proxy = ProxyConfig::fromEnvironment(
      {{"HTTP_PROXY", closedPortUrl()}, {"NO_PROXY", "example.com,127.0.0.1"}});
  HttpClient bypass(c);
  auto d = bypass.send({"GET", direct_server.url("/direct"), {}, ""});
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->body, "direct");
}

}  // namespace
}  // namespace outpost
