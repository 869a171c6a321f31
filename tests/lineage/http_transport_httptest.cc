// The OpenLineage HTTP transport against a real HTTP server (cpp-httplib on 127.0.0.1, a free
// port): records arrive in order with the bearer token, 5xx/429 are retried, a server that is
// down and then up gets everything, refusals and shutdown behave, the token never reaches a log,
// and every body posted validates against the official schemas.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "lineage_validator.h"
#include "outpost/common/fd.h"
#include "outpost/lineage/http_transport.h"
#include "outpost/lineage/openlineage.h"

namespace outpost::lineage {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "tok-3f9a1c77e2b54d0e";

// What the server saw of one POST.
struct Received {
  std::string path;
  std::string body;
  std::string authorization;
  std::string content_type;
};

// A Marquez stand-in: records every POST to /api/v1/lineage and answers from a script of
// statuses (then 201 Created). After hold(), it keeps every answer back until release().
class LineageServer {
 public:
  // port 0: any free port.
  explicit LineageServer(int port = 0) {
    server_.Post(R"(/api/v1/lineage|/custom/path)",
                 [this](const httplib::Request& q, httplib::Response& r) {
                   std::unique_lock lock(mutex_);
                   received_.push_back({q.path, q.body, q.get_header_value("Authorization"),
                                        q.get_header_value("Content-Type")});
                   changed_.notify_all();
                   changed_.wait(lock, [this] { return !held_; });
                   int status = 201;
                   if (!script_.empty()) {
                     status = script_.front();
                     script_.pop_front();
                   }
                   r.status = status;
                   if (status == 429) r.set_header("Retry-After", "0");
                   if (status >= 400) r.set_content("{\"error\":\"scripted\"}", "application/json");
                 });
    port_ = port == 0 ? server_.bind_to_any_port("127.0.0.1")
                      : (server_.bind_to_port("127.0.0.1", port) ? port : -1);
    if (port_ <= 0) throw std::runtime_error("cannot bind 127.0.0.1:" + std::to_string(port));
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~LineageServer() {
    release();
    server_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void script(std::initializer_list<int> statuses) {
    std::lock_guard lock(mutex_);
    script_.insert(script_.end(), statuses);
  }
  std::vector<Received> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  // Waits (safety timeout) until `n` requests have come in; false if they never did.
  bool awaitReceived(std::size_t n) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 30s, [&] { return received_.size() >= n; });
  }
  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    std::lock_guard lock(mutex_);
    held_ = false;
    changed_.notify_all();
  }

 private:
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::deque<int> script_;
  std::vector<Received> received_;
  bool held_ = false;
};

// A port nothing listens on (bound, then closed).
int closedPort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

HttpLineageTransportOptions fastOptions(const std::string& url) {
  HttpLineageTransportOptions o;
  o.url = url;
  o.connect_timeout = 500ms;
  o.timeout = 3000ms;
  o.max_attempts = 3;
  o.base_delay = 10ms;
  o.max_delay = 40ms;
  o.round_delay = 50ms;
  o.max_round_delay = 200ms;
  return o;
}

// Lineage records as the worker makes them, each a little different.
std::vector<std::string> records(int n) {
  LineageBuilder builder("outpost", {"worker-1", "default"});
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    v1::JobCommand c;
    c.set_run_id("0190a5d2-7c3e-7abc-8def-0000000000" + std::string(i < 10 ? "0" : "") +
                 std::to_string(i));
    c.set_job_id("job-" + std::to_string(i));
    c.set_job_type("hello");
    auto* d = c.mutable_lineage()->add_outputs();
    d->set_namespace_("s3://lake");
    d->set_name("raw/part-" + std::to_string(i));
    auto type = i % 2 == 0 ? LineageEventType::kStart : LineageEventType::kComplete;
    LineageOutcome o;
    if (type == LineageEventType::kComplete) o.exit_code = 0;
    out.push_back(builder
                      .build(type, c,
                             std::chrono::system_clock::time_point(
                                 std::chrono::milliseconds(1'795'255'200'000 + i)),
                             o)
                      .dump());
  }
  return out;
}

std::vector<std::string> bodies(const std::vector<Received>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.body);
  return out;
}

// Waits (up to a safety timeout) for every future.
std::vector<LineageDelivery> results(std::vector<std::future<LineageDelivery>>& fs,
                                     std::chrono::seconds limit = 30s) {
  std::vector<LineageDelivery> out;
  for (auto& f : fs) {
    if (f.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "a delivery did not finish within " << limit.count() << " s";
      out.push_back({});
      continue;
    }
    out.push_back(f.get());
  }
  return out;
}

// Captures what spdlog writes while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return stream_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream stream_;
};

// ---------------------------------------------------------------------------------------------

TEST(LineageHttp, RecordsArriveInOrderWithTheBearerTokenAndValidate) {
  LineageServer server;
  auto o = fastOptions(server.url());
  o.token = BearerToken(kToken);
  HttpLineageTransport t(o);
  EXPECT_EQ(t.target(), server.url() + "/api/v1/lineage");
  auto sent = records(40);
  std::vector<std::future<LineageDelivery>> fs;
  for (const auto& r : sent) fs.push_back(t.send(r));
  for (const auto& d : results(fs)) {
    EXPECT_TRUE(d.ok) << d.error;
    EXPECT_EQ(d.status, 201);
    EXPECT_EQ(d.attempts, 1);
  }
  auto got = server.received();
  ASSERT_EQ(got.size(), sent.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].body, sent[i]) << "record " << i << " out of order";
    EXPECT_EQ(got[i].path, "/api/v1/lineage");
    EXPECT_EQ(got[i].authorization, std::string("Bearer ") + kToken);
    EXPECT_EQ(got[i].content_type, "application/json");
  }
  auto v = lineage_test::validateLineageEvents(bodies(got));
  EXPECT_TRUE(v.ok) << v.output;
  EXPECT_EQ(t.pending(), 0u);
}

// pending() counts records accepted and not yet reported: by the time a record's report arrives,
// it no longer counts (a caller that waits for its reports, then for pending() == 0, must not
// hang).
TEST(LineageHttp, ARecordNoLongerCountsAsPendingWhenItsReportArrives) {
  LineageServer server;
  HttpLineageTransport t(fastOptions(server.url()));
  std::promise<std::size_t> seen;
  ASSERT_TRUE(t.send(records(1)[0], [&](const LineageDelivery& d) {
    EXPECT_TRUE(d.ok) << d.error;
    seen.set_value(t.pending());
  }));
  EXPECT_EQ(seen.get_future().get(), 0u);
}

TEST(LineageHttp, NoAuthorizationHeaderWithoutAToken) {
  LineageServer server;
  HttpLineageTransport t(fastOptions(server.url() + "/"));
  EXPECT_TRUE(t.send(records(1)[0]).get().ok);
  ASSERT_EQ(server.received().size(), 1u);
  EXPECT_EQ(server.received()[0].authorization, "");
  EXPECT_EQ(server.received()[0].path, "/api/v1/lineage");
}

TEST(LineageHttp, TheEndpointPathCanBeChanged) {
  LineageServer server;
  auto o = fastOptions(server.url());
  o.endpoint = "custom/path";
  HttpLineageTransport t(o);
  EXPECT_TRUE(t.send(records(1)[0]).get().ok);
  ASSERT_EQ(server.received().size(), 1u);
  EXPECT_EQ(server.received()[0].path, "/custom/path");
}

TEST(LineageHttp, ServerErrorsAndThrottlingAreRetried) {
  LineageServer server;
  server.script({500, 429, 503});
  auto o = fastOptions(server.url());
  o.max_attempts = 2;  // two requests per round: the third answer comes in the second round
  HttpLineageTransport t(o);
  auto sent = records(3);
  std::vector<std::future<LineageDelivery>> fs;
  for (const auto& r : sent) fs.push_back(t.send(r));
  auto ds = results(fs);
  ASSERT_TRUE(ds[0].ok) << ds[0].error;
  EXPECT_EQ(ds[0].attempts, 4);
  EXPECT_TRUE(ds[1].ok);
  EXPECT_EQ(ds[1].attempts, 1);
  auto got = server.received();
  ASSERT_EQ(got.size(), 6u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got[i].body, sent[0]);
  EXPECT_EQ(got[4].body, sent[1]);
  EXPECT_EQ(got[5].body, sent[2]);
}

TEST(LineageHttp, AClientErrorFailsTheRecordAndTheNextOneGoes) {
  LineageServer server;
  server.script({400});
  HttpLineageTransport t(fastOptions(server.url()));
  auto sent = records(2);
  auto first = t.send(sent[0]);
  auto second = t.send(sent[1]);
  LineageDelivery d = first.get();
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.status, 400);
  EXPECT_EQ(d.attempts, 1);
  EXPECT_THAT(d.error, HasSubstr("HTTP 400"));
  EXPECT_THAT(d.error, HasSubstr("scripted"));  // the start of the server's answer
  EXPECT_TRUE(second.get().ok);
  EXPECT_EQ(server.received().size(), 2u);
}

TEST(LineageHttp, AServerThatIsDownThenUpGetsEverythingInOrder) {
  int port = closedPort();
  auto o = fastOptions("http://127.0.0.1:" + std::to_string(port));
  HttpLineageTransport t(o);
  auto sent = records(5);
  std::vector<std::future<LineageDelivery>> fs;
  for (const auto& r : sent) fs.push_back(t.send(r));
  std::this_thread::sleep_for(700ms);  // several failed rounds
  EXPECT_EQ(t.pending(), 5u);
  LineageServer server(port);
  auto ds = results(fs);
  for (const auto& d : ds) EXPECT_TRUE(d.ok) << d.error;
  EXPECT_GT(ds[0].attempts, 1);
  EXPECT_EQ(bodies(server.received()), sent);
}

TEST(LineageHttp, AFullQueueRefusesAtOnce) {
  LineageServer server;
  server.hold();  // the first record's request stays in flight until the end
  auto o = fastOptions(server.url());
  o.queue_size = 2;
  o.timeout = 60s;  // the held request must not time out and go again
  HttpLineageTransport t(o);
  auto sent = records(4);
  std::vector<std::future<LineageDelivery>> fs;
  fs.push_back(t.send(sent[0]));
  // The server has its request: the sender took it off the queue and holds it.
  ASSERT_TRUE(server.awaitReceived(1)) << "the sender never posted the first record";
  fs.push_back(t.send(sent[1]));
  fs.push_back(t.send(sent[2]));  // two queued: full
  EXPECT_EQ(t.pending(), 3u);
  std::promise<LineageDelivery> refused;
  auto started = std::chrono::steady_clock::now();
  bool accepted = t.send(sent[3], [&](const LineageDelivery& d) { refused.set_value(d); });
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_FALSE(accepted);
  auto d = refused.get_future().get();
  EXPECT_FALSE(d.ok);
  EXPECT_THAT(d.error, HasSubstr("queue is full"));
  EXPECT_THAT(d.error, HasSubstr("lineage.http.queue_size"));
  server.release();
  for (const auto& delivered : results(fs)) EXPECT_TRUE(delivered.ok) << delivered.error;
  EXPECT_EQ(bodies(server.received()), (std::vector<std::string>{sent[0], sent[1], sent[2]}));
}

TEST(LineageHttp, ShutdownDeliversWhatItCanThenFailsTheRest) {
  LineageServer server;
  {
    HttpLineageTransport t(fastOptions(server.url()));
    std::vector<std::future<LineageDelivery>> fs;
    for (const auto& r : records(10)) fs.push_back(t.send(r));
    t.shutdown(10s);  // the server is up: everything is flushed
    for (const auto& d : results(fs, 1s)) EXPECT_TRUE(d.ok) << d.error;
    EXPECT_FALSE(t.send(records(1)[0]).get().ok);  // shut down: refused at once
  }
  EXPECT_EQ(server.received().size(), 10u);

  int port = closedPort();
  HttpLineageTransport down(fastOptions("http://127.0.0.1:" + std::to_string(port)));
  std::vector<std::future<LineageDelivery>> fs;
  for (const auto& r : records(3)) fs.push_back(down.send(r));
  auto started = std::chrono::steady_clock::now();
  down.shutdown(300ms);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  for (const auto& d : results(fs, 1s)) {
    EXPECT_FALSE(d.ok);
    EXPECT_THAT(d.error, HasSubstr("shut down"));
  }
  down.shutdown(0ms);  // idempotent
}

TEST(LineageHttp, ARecordGivesUpAfterItsDeliveryTimeout) {
  int port = closedPort();
  auto o = fastOptions("http://127.0.0.1:" + std::to_string(port));
  o.delivery_timeout = 300ms;
  HttpLineageTransport t(o);
  auto d = t.send(records(1)[0]).get();
  EXPECT_FALSE(d.ok);
  EXPECT_THAT(d.error, HasSubstr("delivery_timeout"));
  EXPECT_GT(d.attempts, 1);
}

TEST(LineageHttp, TheTokenFileIsReadForEachRecord) {
  LineageServer server;
  auto dir = std::filesystem::temp_directory_path() /
             ("outpost-lineage-token-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto file = (dir / "token").string();
  std::ofstream(file) << "first-token\n";
  LineageHttpConfig config;
  config.url = server.url();
  config.token_file = file;
  auto o = HttpLineageTransportOptions::fromConfig(config, {});
  HttpLineageTransport t(o);
  EXPECT_TRUE(t.send(records(1)[0]).get().ok);
  std::ofstream(file, std::ios::trunc) << "second-token";
  EXPECT_TRUE(t.send(records(1)[0]).get().ok);
  auto got = server.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].authorization, "Bearer first-token");
  EXPECT_EQ(got[1].authorization, "Bearer second-token");
  std::filesystem::remove_all(dir);
}

TEST(LineageHttp, TheTokenComesFromTheNamedVariable) {
  LineageServer server;
  LineageHttpConfig config;
  config.url = server.url();
  config.token_env = "MARQUEZ_TOKEN";
  config.max_attempts = 2;
  config.queue_size = 7;
  auto o = HttpLineageTransportOptions::fromConfig(config, {{"MARQUEZ_TOKEN", kToken}});
  EXPECT_EQ(o.token.reveal(), kToken);
  EXPECT_EQ(o.max_attempts, 2);
  EXPECT_EQ(o.queue_size, 7u);
  HttpLineageTransport t(o);
  EXPECT_TRUE(t.send(records(1)[0]).get().ok);
  EXPECT_EQ(server.received().at(0).authorization, std::string("Bearer ") + kToken);
}

TEST(LineageHttp, AMissingTokenStopsStartupWithTheSettingsName) {
  LineageHttpConfig config;
  config.url = "http://127.0.0.1:1";
  config.token_env = "MARQUEZ_TOKEN";
  try {
    HttpLineageTransportOptions::fromConfig(config, {});
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'lineage.http.token_env'"));
    EXPECT_THAT(e.what(), HasSubstr("MARQUEZ_TOKEN"));
  }
  config.token_env.clear();
  config.token_file = "/nonexistent/outpost/token";
  EXPECT_THROW(HttpLineageTransportOptions::fromConfig(config, {}), ConfigError);
  HttpLineageTransportOptions bad;
  bad.url = "ftp://example.com";
  EXPECT_THROW(HttpLineageTransport{bad}, ConfigError);
}

TEST(LineageHttp, TheTokenNeverReachesTheLogOrAnError) {
  LogCapture log;
  LineageServer server;
  server.script({500, 500, 500, 401});
  auto o = fastOptions(server.url());
  o.token = BearerToken(kToken);
  o.max_attempts = 3;
  std::vector<LineageDelivery> ds;
  {
    HttpLineageTransport t(o);
    std::vector<std::future<LineageDelivery>> fs;
    for (const auto& r : records(2)) fs.push_back(t.send(r));
    ds = results(fs);
  }
  EXPECT_FALSE(ds[0].ok);  // 500 x3, then the 401 in the second round
  EXPECT_EQ(ds[0].status, 401);
  EXPECT_TRUE(ds[1].ok);
  for (const auto& d : ds) EXPECT_THAT(d.error, Not(HasSubstr(kToken)));
  std::string text = log.text();
  EXPECT_THAT(text, HasSubstr("HTTP 500"));   // it did log the trouble...
  EXPECT_THAT(text, Not(HasSubstr(kToken)));  // ...without the token
}

}  // namespace
}  // namespace outpost::lineage
