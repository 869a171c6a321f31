// ops::HttpEndpoint on loopback, asked by cpp-httplib's client.
#include "outpost/ops/http_endpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "outpost/common/config.h"

namespace outpost::ops {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

Metrics::Known ingest() {
  Metrics::Known k;
  k.templates = {"ingest"};
  return k;
}

struct Served {
  Health health;
  Metrics metrics{ingest()};
  HttpEndpoint endpoint{"127.0.0.1", 0, health, metrics, std::chrono::seconds(30)};
  httplib::Result get(const std::string& path) {
    httplib::Client c("127.0.0.1", endpoint.port());
    c.set_connection_timeout(5);
    return c.Get(path);
  }
};

TEST(HttpEndpoint, LivezAndReadyzSay503AndWhyUntilTheWorkerIsAliveAndReady) {
  Served s;
  ASSERT_GT(s.endpoint.port(), 0);
  auto live = s.get("/livez");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 503);
  EXPECT_THAT(live->body, HasSubstr("not started"));
  auto ready = s.get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, "starting\n");

  s.health.beat(std::chrono::steady_clock::now());
  s.health.setNotReady(std::nullopt);
  EXPECT_EQ(s.get("/livez")->status, 200);
  EXPECT_EQ(s.get("/readyz")->body, "ok\n");
}

TEST(HttpEndpoint, MetricsAreServedInTheTextFormat) {
  Served s;
  s.metrics.runEnded("ingest", "succeeded", 1.0);
  auto r = s.get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->get_header_value("Content-Type"), StartsWith("text/plain; version=0.0.4"));
  EXPECT_THAT(r->body,
              HasSubstr("outpost_jobs_total{state=\"succeeded\",template=\"ingest\"} 1\n"));
}

TEST(HttpEndpoint, AnUnknownPathIs404) {
  Served s;
  EXPECT_EQ(s.get("/")->status, 404);
}

TEST(HttpEndpoint, APortInUseIsAConfigErrorNamingIt) {
  Served s;
  Health h;
  Metrics m(ingest());
  try {
    HttpEndpoint second("127.0.0.1", s.endpoint.port(), h, m, std::chrono::seconds(30));
    FAIL() << "a second endpoint bound the same port";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("cannot listen on 127.0.0.1:" + std::to_string(s.endpoint.port())));
  }
}

TEST(HttpEndpoint, StopsAtOnceWhenDestroyed) {
  int port;
  {
    Served s;
    port = s.endpoint.port();
  }
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(1);
  EXPECT_FALSE(c.Get("/livez")) << "nothing listens any more";
}

}  // namespace
}  // namespace outpost::ops
