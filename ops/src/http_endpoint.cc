#include "outpost/ops/http_endpoint.h"

#include <pthread.h>
#include <sys/socket.h>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "outpost/common/config.h"

namespace outpost::ops {

HttpEndpoint::HttpEndpoint(const std::string& host, int port, const Health& health,
                           const Metrics& metrics, std::chrono::milliseconds live_timeout)
    : server_(std::make_unique<httplib::Server>()) {
  // One request at a time (httplib's default pool has a thread per core, at least eight).
  server_->new_task_queue = [] { return new httplib::ThreadPool(1); };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second worker on the
  // same port would bind too and share the probes.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  auto answer = [](httplib::Response& res, const std::optional<std::string>& why) {
    res.status = why ? 503 : 200;
    res.set_content(why ? *why + "\n" : "ok\n", "text/plain; charset=utf-8");
  };
  server_->Get("/livez",
               [&health, live_timeout, answer](const httplib::Request&, httplib::Response& res) {
                 answer(res, health.whyNotLive(std::chrono::steady_clock::now(), live_timeout));
               });
  server_->Get("/readyz", [&health, answer](const httplib::Request&, httplib::Response& res) {
    answer(res, health.whyNotReady());
  });
  server_->Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.scrape(), "text/plain; version=0.0.4; charset=utf-8");
  });
  port_ =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (port_ <= 0) {
    throw ConfigError("http.listen: cannot listen on " + host + ":" + std::to_string(port) +
                      " (in use, or not an address of this machine)");
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "op-http");
    server_->listen_after_bind();
    stopped_ = true;
  });
  // stop() does nothing until the server runs: wait for it, so that the destructor cannot miss it.
  while (!server_->is_running() && !stopped_)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("http: /livez, /readyz and /metrics on {}:{}", host, port_);
}

HttpEndpoint::~HttpEndpoint() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace outpost::ops
