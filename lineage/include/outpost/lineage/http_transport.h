// The OpenLineage HTTP transport: each record POSTed, in order, to a Marquez-compatible
// endpoint ({url}/api/v1/lineage), with an optional bearer token, from a sender thread of its
// own so that callers never wait for the network.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "outpost/common/config.h"

namespace outpost {
class HttpClient;  // outpost/common/http_client.h
}  // namespace outpost

namespace outpost::lineage {

// The result of one record.
struct LineageDelivery {
  bool ok = false;
  long status = 0;    // the last HTTP status; 0 when no response came
  int attempts = 0;   // HTTP requests made for this record
  std::string error;  // why it failed: method, URL without query, status or transport error
};

// Called once per record, on the sender thread (or on the caller's thread when send() refuses
// the record at once). Must not block for long: the next record waits for it.
using LineageDeliveryCallback = std::function<void(const LineageDelivery&)>;

// A bearer token. No formatting and no conversion: reveal() is the one, greppable way to the
// bytes (it goes into the Authorization header and nowhere else).
class BearerToken {
 public:
  BearerToken() = default;
  explicit BearerToken(std::string value) : value_(std::move(value)) {}
  bool empty() const { return value_.empty(); }
  const std::string& reveal() const { return value_; }

 private:
  std::string value_;
};

struct HttpLineageTransportOptions {
  // Where records go: url + endpoint ("http://marquez:5000" + "/api/v1/lineage").
  std::string url;
  std::string endpoint = "/api/v1/lineage";
  // The bearer token, already read; empty: no Authorization header.
  BearerToken token;
  // Re-read before each request when set (a rotated token file, e.g. a projected service
  // account token); takes precedence over `token`. Empty: not used.
  std::string token_file;
  std::string ca_bundle;
  std::string proxy;  // empty: the proxy environment variables
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds timeout{10000};  // one request
  int max_attempts = 4;                      // requests per round, with backoff (HttpClient)
  std::chrono::milliseconds base_delay{200};
  std::chrono::milliseconds max_delay{5000};
  // After a round fails with a retryable error (connection, timeout, 5xx, 429), the record is
  // tried again after round_delay (doubling up to max_round_delay) until delivery_timeout has
  // passed since it was queued; 0: no limit, the record waits for the server like Kafka's
  // records wait for the broker.
  std::chrono::milliseconds round_delay{1000};
  std::chrono::milliseconds max_round_delay{30000};
  std::chrono::milliseconds delivery_timeout{0};
  // Records queued and not yet delivered; send() refuses more.
  std::size_t queue_size = 10000;

  // From the lineage.http settings: reads the token from token_env in `env`, or names
  // token_file to be read per request. Throws ConfigError when the token cannot be read.
  static HttpLineageTransportOptions fromConfig(const LineageHttpConfig& config,
                                                const Environment& env);
};

// Thread-safe: send() and shutdown() may be called from any thread. Records are POSTed one at a
// time in the order send() accepted them; a record that fails for good (a 4xx other than 408
// and 429, a TLS or URL problem, its delivery_timeout, or shutdown) is reported failed and the
// next one goes.
class HttpLineageTransport {
 public:
  // Throws ConfigError when url/endpoint do not make an http(s) URL.
  explicit HttpLineageTransport(HttpLineageTransportOptions options);
  // shutdown(0): what is still queued is reported failed.
  ~HttpLineageTransport();
  HttpLineageTransport(const HttpLineageTransport&) = delete;
  HttpLineageTransport& operator=(const HttpLineageTransport&) = delete;

  // Queues one record (the event's JSON). Never blocks on the network. Returns false, and
  // calls `done` at once with the reason, when the queue is full or the transport is shut down.
  bool send(std::string event_json, LineageDeliveryCallback done);
  // The same, with a future for the result.
  std::future<LineageDelivery> send(std::string event_json);

  // Stops taking records, delivers what is queued until `flush_deadline` has passed, then
  // reports the rest failed and joins the sender. A request in flight at the deadline finishes
  // first (at worst max_attempts x timeout later). Idempotent.
  void shutdown(std::chrono::milliseconds flush_deadline);

  // Records accepted and not yet reported.
  std::size_t pending() const;
  // The URL records go to.
  const std::string& target() const { return target_; }

 private:
  struct Item {
    std::string body;
    LineageDeliveryCallback done;
    std::chrono::steady_clock::time_point queued_at;
  };

  void run();
  LineageDelivery deliver(const Item& item);
  // Waits up to `d`, or less once shutdown's deadline has passed. False: stop trying.
  bool pause(std::chrono::milliseconds d);
  bool pastDeadline() const;  // mutex_ held
  // The token to send now (sender thread only): token_file re-read, else options_.token.
  BearerToken currentToken();

  HttpLineageTransportOptions options_;
  std::string target_;
  std::unique_ptr<HttpClient> client_;
  BearerToken last_file_token_;  // sender thread only
  std::once_flag joined_;

  // Shared between callers and the sender thread.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item> queue_;
  std::size_t in_flight_ = 0;
  bool closed_ = false;                                            // no more send()
  std::optional<std::chrono::steady_clock::time_point> deadline_;  // set by shutdown()

  std::thread sender_;
};

}  // namespace outpost::lineage
