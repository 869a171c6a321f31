#include "outpost/lineage/http_transport.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>

#include "outpost/common/http_client.h"
#include "outpost/common/thread_name.h"

namespace outpost::lineage {
namespace {

constexpr std::size_t kMaxTokenBytes = 64 * 1024;
constexpr std::size_t kBodySnippet = 200;

std::string trimmed(std::string s) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.back())) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && is_space(s[start])) ++start;
  return s.substr(start);
}

// The file's bytes without surrounding white space; nullopt when it cannot be read.
std::optional<std::string> readTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string data(kMaxTokenBytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (in.bad()) return std::nullopt;
  data.resize(static_cast<std::size_t>(in.gcount()));
  if (data.size() > kMaxTokenBytes) return std::nullopt;
  return trimmed(std::move(data));
}

// The start of a response body for an error message: printable ASCII only.
std::string snippet(const std::string& body) {
  std::string out;
  for (char c : body.substr(0, kBodySnippet)) {
    out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  }
  if (body.size() > kBodySnippet) out += "...";
  return trimmed(std::move(out));
}

bool retryableError(HttpError::Kind kind) {
  return kind == HttpError::Kind::kConnect || kind == HttpError::Kind::kTimeout ||
         kind == HttpError::Kind::kTransport;
}

}  // namespace

HttpLineageTransportOptions HttpLineageTransportOptions::fromConfig(const LineageHttpConfig& c,
                                                                    const Environment& env) {
  HttpLineageTransportOptions o;
  o.url = c.url;
  o.endpoint = c.endpoint;
  o.ca_bundle = c.ca_bundle;
  o.proxy = c.proxy;
  o.timeout = c.timeout;
  o.max_attempts = static_cast<int>(std::max(1u, c.max_attempts));
  o.delivery_timeout = c.delivery_timeout;
  o.queue_size = std::max<std::size_t>(1, c.queue_size);
  if (!c.token_env.empty()) {
    auto it = env.find(c.token_env);
    std::string value = it == env.end() ? std::string() : trimmed(it->second);
    if (value.empty()) {
      throw ConfigError("'lineage.http.token_env' names the variable " + c.token_env +
                        ", which is not set (or empty) in the worker's environment");
    }
    o.token = BearerToken(std::move(value));
  }
  if (!c.token_file.empty()) {
    auto value = readTokenFile(c.token_file);
    if (!value || value->empty()) {
      throw ConfigError("'lineage.http.token_file': cannot read a token from '" + c.token_file +
                        "' (missing, unreadable, empty or over 64 KiB)");
    }
    o.token_file = c.token_file;
  }
  return o;
}

HttpLineageTransport::HttpLineageTransport(HttpLineageTransportOptions options)
    : options_(std::move(options)) {
  std::string base = options_.url;
  while (base.ends_with('/')) base.pop_back();
  std::string endpoint = options_.endpoint;
  if (!endpoint.empty() && !endpoint.starts_with('/')) endpoint.insert(0, "/");
  target_ = base + endpoint;
  auto parts = parseUrl(target_);
  if (!parts) {
    throw ConfigError("'lineage.http.url' must be an http:// or https:// URL with a host, not '" +
                      urlForMessages(options_.url) + "'");
  }
  if (parts->scheme == "http" && !isLoopbackHost(parts->host) &&
      (!options_.token.empty() || !options_.token_file.empty())) {
    spdlog::warn(
        "lineage.http.url {} is plain http: the bearer token crosses the network "
        "unencrypted",
        urlForMessages(target_));
  }
  if (options_.queue_size == 0) options_.queue_size = 1;

  HttpClientConfig hc;
  hc.ca_bundle = options_.ca_bundle;
  if (!options_.proxy.empty()) hc.proxy = ProxyConfig::explicitProxy(options_.proxy, "");
  hc.connect_timeout = std::min(options_.connect_timeout, options_.timeout);
  hc.timeout = options_.timeout;
  hc.max_response_bytes = 1024 * 1024;
  hc.retry.max_attempts = std::max(1, options_.max_attempts);
  hc.retry.base_delay = options_.base_delay;
  hc.retry.max_delay = options_.max_delay;
  hc.retry.retry_response = [](const HttpResponse& r) { return r.status == 408; };
  // Backoff between tries ends early at shutdown's deadline.
  hc.sleep = [this](std::chrono::milliseconds d) { pause(d); };
  client_ = std::make_unique<HttpClient>(std::move(hc));
  sender_ = std::thread([this] {
    nameThisThread("op-lineage-http");
    run();
  });
}

HttpLineageTransport::~HttpLineageTransport() {
  shutdown(std::chrono::milliseconds(0));
}

bool HttpLineageTransport::send(std::string event_json, LineageDeliveryCallback done) {
  std::string refused;
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      refused = "the lineage HTTP transport is shut down";
    } else if (queue_.size() >= options_.queue_size) {
      refused = "the lineage HTTP queue is full (" + std::to_string(options_.queue_size) +
                " records, lineage.http.queue_size): " + urlForMessages(target_) +
                " is not keeping up";
    } else {
      queue_.push_back({std::move(event_json), std::move(done), std::chrono::steady_clock::now()});
    }
  }
  if (!refused.empty()) {
    if (done) done(LineageDelivery{false, 0, 0, refused});
    return false;
  }
  wake_.notify_all();
  return true;
}

std::future<LineageDelivery> HttpLineageTransport::send(std::string event_json) {
  auto promise = std::make_shared<std::promise<LineageDelivery>>();
  auto future = promise->get_future();
  send(std::move(event_json), [promise](const LineageDelivery& d) { promise->set_value(d); });
  return future;
}

void HttpLineageTransport::shutdown(std::chrono::milliseconds flush_deadline) {
  {
    std::lock_guard lock(mutex_);
    if (!closed_) {
      closed_ = true;
      deadline_ = std::chrono::steady_clock::now() + flush_deadline;
    }
  }
  wake_.notify_all();
  if (std::this_thread::get_id() == sender_.get_id()) return;  // from a callback: cannot join
  std::call_once(joined_, [this] {
    if (sender_.joinable()) sender_.join();
  });
}

std::size_t HttpLineageTransport::pending() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + in_flight_;
}

bool HttpLineageTransport::pastDeadline() const {
  return deadline_ && std::chrono::steady_clock::now() >= *deadline_;
}

bool HttpLineageTransport::pause(std::chrono::milliseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  std::unique_lock lock(mutex_);
  for (;;) {
    if (pastDeadline()) return false;
    auto now = std::chrono::steady_clock::now();
    if (now >= end) return true;
    auto until = deadline_ ? std::min(end, *deadline_) : end;
    wake_.wait_until(lock, until);
  }
}

BearerToken HttpLineageTransport::currentToken() {
  if (options_.token_file.empty()) return options_.token;
  auto value = readTokenFile(options_.token_file);
  if (value && !value->empty()) {
    last_file_token_ = BearerToken(std::move(*value));
  } else if (!last_file_token_.empty()) {
    spdlog::warn("lineage.http.token_file {} cannot be read; using the token read before",
                 options_.token_file);
  }
  return last_file_token_;
}

LineageDelivery HttpLineageTransport::deliver(const Item& item) {
  HttpRequest request;
  request.method = "POST";
  request.url = target_;
  request.headers.push_back({"Content-Type", "application/json"});
  request.body = item.body;
  LineageDelivery d;
  auto round_delay = options_.round_delay;
  for (;;) {
    removeHeader(request.headers, "Authorization");
    if (auto token = currentToken(); !token.empty()) {
      setHeader(request.headers, "Authorization", "Bearer " + token.reveal());
    }
    auto r = client_->send(request);
    bool retryable = false;
    if (r) {
      d.attempts += r->attempts;
      d.status = r->status;
      if (r->status >= 200 && r->status < 300) {
        d.ok = true;
        d.error.clear();
        return d;
      }
      retryable = r->status >= 500 || r->status == 429 || r->status == 408;
      d.error = "POST " + urlForMessages(target_) + ": HTTP " + std::to_string(r->status);
      if (auto s = snippet(r->body); !s.empty()) d.error += ": " + s;
    } else {
      d.attempts += r.error().attempts;
      d.status = 0;
      retryable = retryableError(r.error().kind);
      d.error = r.error().message;
    }
    if (!retryable) return d;
    if (options_.delivery_timeout.count() > 0 &&
        std::chrono::steady_clock::now() - item.queued_at >= options_.delivery_timeout) {
      d.error += " (given up after lineage.http.delivery_timeout)";
      return d;
    }
    spdlog::warn("lineage record not delivered yet ({}); trying again in {} ms", d.error,
                 round_delay.count());
    if (!pause(round_delay)) {
      d.error += " (the transport shut down before it was delivered)";
      return d;
    }
    round_delay = std::min(round_delay * 2, options_.max_round_delay);
  }
}

void HttpLineageTransport::run() {
  for (;;) {
    Item item;
    std::vector<Item> abandoned;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return !queue_.empty() || closed_; });
      if (queue_.empty()) return;  // shut down, nothing left
      if (pastDeadline()) {
        abandoned.assign(std::make_move_iterator(queue_.begin()),
                         std::make_move_iterator(queue_.end()));
        queue_.clear();
      } else {
        item = std::move(queue_.front());
        queue_.pop_front();
        in_flight_ = 1;
      }
    }
    if (!abandoned.empty()) {
      for (auto& a : abandoned) {
        if (a.done) {
          a.done(LineageDelivery{false, 0, 0,
                                 "the lineage HTTP transport shut down before the record was "
                                 "sent (flush deadline passed)"});
        }
      }
      continue;  // the queue is empty now: the next wait sees closed_ and returns
    }
    LineageDelivery d = deliver(item);
    if (!d.ok) {
      spdlog::error("lineage record not delivered: {}", d.error);
    }
    {
      // Reported means no longer pending: whoever learns of the report sees pending() without it.
      std::lock_guard lock(mutex_);
      in_flight_ = 0;
    }
    wake_.notify_all();
    if (item.done) item.done(d);
  }
}

}  // namespace outpost::lineage
