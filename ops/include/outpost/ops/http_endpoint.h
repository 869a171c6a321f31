// The worker's HTTP endpoint for probes and scrapes (cpp-httplib), on its own thread:
//   GET /livez    200 "ok" while the poll loop goes round; 503 with the reason otherwise
//   GET /readyz   200 "ok" when the worker may be sent work; 503 with the reason otherwise
//   GET /metrics  the Prometheus text format
// One listening thread and one request thread: a probe or a scrape at a time is enough.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "outpost/ops/health.h"
#include "outpost/ops/metrics.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace outpost::ops {

class HttpEndpoint {
 public:
  // Binds `host`:`port` (port 0: any free port) and starts serving. Throws ConfigError when the
  // address cannot be bound.
  HttpEndpoint(const std::string& host, int port, const Health& health, const Metrics& metrics,
               std::chrono::milliseconds live_timeout);
  // Stops serving and joins its thread.
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The port it listens on (the one the system chose when asked for 0).
  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::atomic<bool> stopped_{false};  // listen_after_bind returned
  std::thread thread_;
};

}  // namespace outpost::ops
