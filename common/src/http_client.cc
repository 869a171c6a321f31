#include "outpost/common/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

namespace outpost {
namespace {

// Every libcurl handle is owned from the moment it exists.
struct CurlEasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;

bool appendLine(CurlSlist& list, const std::string& line) {
  curl_slist* head = curl_slist_append(list.get(), line.c_str());
  if (head == nullptr) return false;  // the old list is untouched and still owned
  (void)list.release();
  list.reset(head);
  return true;
}

void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

struct Transfer {
  HttpResponse response;
  std::size_t limit = 0;
  bool too_large = false;
};

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->response.body.size() + n > t->limit) {
    t->too_large = true;
    return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
  }
  t->response.body.append(data, n);
  return n;
}

size_t onHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    t->response.headers.clear();  // a new response begins (after 100 Continue, say)
    return n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  t->response.headers.push_back(
      {std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
  return n;
}

struct AttemptError {
  HttpError error;
  bool retryable = false;
};

AttemptError classify(CURLcode code, const std::string& what, const char* detail) {
  std::string text = what + ": " + curl_easy_strerror(code);
  if (detail != nullptr && *detail != '\0') text += std::string(" (") + detail + ")";
  using K = HttpError::Kind;
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return {{K::kConnect, text, 1}, true};
    case CURLE_OPERATION_TIMEDOUT:
      return {{K::kTimeout, text, 1}, true};
    case CURLE_SSL_CONNECT_ERROR:
      return {{K::kTls, text, 1}, true};  // a handshake cut short can be transient
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ENGINE_INITFAILED:
      return {{K::kTls, text, 1}, false};
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return {{K::kTransport, text, 1}, true};
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return {{K::kInvalid, text, 1}, false};
    default:
      return {{K::kTransport, text, 1}, false};
  }
}

bool hasLineBreak(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

}  // namespace

std::optional<std::string_view> findHeader(const HttpHeaders& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

void removeHeader(HttpHeaders& headers, std::string_view name) {
  std::erase_if(headers, [&](const HttpHeader& h) { return iequals(h.name, name); });
}

void setHeader(HttpHeaders& headers, std::string_view name, std::string value) {
  removeHeader(headers, name);
  headers.push_back({std::string(name), std::move(value)});
}

std::string UrlParts::authority() const {
  std::string a = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (!port.empty()) a += ":" + port;
  return a;
}

std::optional<UrlParts> parseUrl(std::string_view url) {
  UrlParts u;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  for (char c : url.substr(0, sep)) {
    u.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (u.scheme != "http" && u.scheme != "https") return std::nullopt;
  auto rest = url.substr(sep + 3);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  auto path_at = rest.find_first_of("/?");
  auto authority = rest.substr(0, path_at);
  rest = path_at == std::string_view::npos ? std::string_view() : rest.substr(path_at);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);  // user info is never used, and never shown
  }
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    auto after = authority.substr(close + 1);
    if (after.starts_with(":")) u.port = std::string(after.substr(1));
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) return std::nullopt;
  auto q = rest.find('?');
  u.path = std::string(rest.substr(0, q));
  if (q != std::string_view::npos) u.query = std::string(rest.substr(q + 1));
  if (u.path.empty()) u.path = "/";
  return u;
}

std::string urlForMessages(std::string_view url) {
  auto u = parseUrl(url);
  if (!u) return "<not an http(s) URL>";
  return u->scheme + "://" + u->authority() + u->path;
}

bool isLoopbackHost(std::string_view host) {
  if (iequals(host, "localhost") || host == "::1") return true;
  return host.starts_with("127.") &&
         std::all_of(host.begin(), host.end(), [](char c) { return c == '.' || std::isdigit(c); });
}

std::chrono::milliseconds RetryPolicy::backoff(int attempt, double unit_random) const {
  const int doublings = std::clamp(attempt - 2, 0, 30);
  const double cap = std::min<double>(
      static_cast<double>(max_delay.count()),
      static_cast<double>(base_delay.count()) * static_cast<double>(1LL << doublings));
  const double u = std::clamp(unit_random, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<long long>(cap * u));
}

bool RetryPolicy::shouldRetry(const HttpResponse& response) const {
  if (response.status >= 500 || response.status == 429) return true;
  return retry_response && retry_response(response);
}

ProxyConfig ProxyConfig::fromEnvironment(const Environment& env) {
  auto first = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      auto it = env.find(n);
      if (it != env.end() && !it->second.empty()) return it->second;
    }
    return std::string();
  };
  ProxyConfig p;
  p.https_proxy = first({"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"});
  p.http_proxy = first({"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"});
  p.no_proxy = first({"no_proxy", "NO_PROXY"});
  return p;
}

ProxyConfig ProxyConfig::explicitProxy(std::string url, std::string no_proxy) {
  ProxyConfig p;
  p.http_proxy = url;
  p.https_proxy = std::move(url);
  p.no_proxy = std::move(no_proxy);
  return p;
}

// Idle easy handles, so that connections (and TLS sessions) are reused between requests.
// Guarded by mutex; a handle is used by one thread at a time, outside the lock.
struct HttpClient::Pool {
  static constexpr std::size_t kMaxIdle = 4;
  std::mutex mutex;
  std::vector<CurlEasy> idle;
  std::mt19937_64 random{std::random_device{}()};

  CurlEasy take() {
    {
      std::lock_guard lock(mutex);
      if (!idle.empty()) {
        CurlEasy h = std::move(idle.back());
        idle.pop_back();
        return h;
      }
    }
    return CurlEasy(curl_easy_init());
  }
  void give(CurlEasy h) {
    std::lock_guard lock(mutex);
    if (idle.size() < kMaxIdle) idle.push_back(std::move(h));
  }
  double unit() {
    std::lock_guard lock(mutex);
    return std::uniform_real_distribution<double>(0.0, 1.0)(random);
  }
};

HttpClient::HttpClient(HttpClientConfig config)
    : config_(std::move(config)), pool_(std::make_unique<Pool>()) {
  initCurlOnce();
  proxy_ = config_.proxy ? *config_.proxy : ProxyConfig::fromEnvironment(processEnvironment());
  if (config_.retry.max_attempts < 1) config_.retry.max_attempts = 1;
}

HttpClient::~HttpClient() = default;

namespace {

struct Attempt {
  std::optional<HttpResponse> response;
  AttemptError failure;
};

Attempt sendOnce(CURL* h, const HttpRequest& request, const HttpClientConfig& config,
                 const ProxyConfig& proxy, bool https, const std::string& what) {
  using K = HttpError::Kind;
  curl_easy_reset(h);  // keeps the connection cache
  Transfer t;
  t.limit = config.max_response_bytes;
  char detail[CURL_ERROR_SIZE] = {0};

  CurlSlist headers;
  bool ok = true;
  for (const auto& hd : request.headers) {
    ok = ok && appendLine(headers, hd.value.empty() ? hd.name + ";" : hd.name + ": " + hd.value);
  }
  // No "Expect: 100-continue" round trip for larger bodies.
  ok = ok && appendLine(headers, "Expect:");
  if (!ok) return {std::nullopt, {{K::kTransport, what + ": out of memory", 1}, false}};

  const auto& proxy_url = https ? proxy.https_proxy : proxy.http_proxy;
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!config.ca_bundle.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, config.ca_bundle.c_str());
  // Empty string: no proxy, and libcurl does not look at the environment either.
  curl_easy_setopt(h, CURLOPT_PROXY, proxy_url.c_str());
  curl_easy_setopt(h, CURLOPT_NOPROXY, proxy.no_proxy.c_str());
  curl_easy_setopt(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(config.timeout.count()));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "outpost");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &onBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &onHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    if (request.method != "POST") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
  }

  CURLcode code = curl_easy_perform(h);
  // The error buffer could hold libcurl's view of the URL; it never holds a body. Keep only
  // its first line.
  detail[CURL_ERROR_SIZE - 1] = '\0';
  if (char* nl = std::strpbrk(detail, "\r\n")) *nl = '\0';
  if (t.too_large) {
    return {
        std::nullopt,
        {{K::kTooLarge,
          what + ": response larger than " + std::to_string(config.max_response_bytes) + " bytes",
          1},
         false}};
  }
  if (code != CURLE_OK) return {std::nullopt, classify(code, what, detail)};
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  t.response.status = status;
  return {std::move(t.response), {}};
}

}  // namespace

std::expected<HttpResponse, HttpError> HttpClient::send(const HttpRequest& request) {
  using K = HttpError::Kind;
  const std::string what = request.method + " " + urlForMessages(request.url);
  auto url = parseUrl(request.url);
  if (!url) return std::unexpected(HttpError{K::kInvalid, what + ": not an http(s) URL", 0});
  if (request.method.empty() || hasLineBreak(request.method)) {
    return std::unexpected(HttpError{K::kInvalid, what + ": bad method", 0});
  }
  for (const auto& hd : request.headers) {
    if (hd.name.empty() || hasLineBreak(hd.name) || hasLineBreak(hd.value) ||
        hd.name.find(':') != std::string::npos) {
      // Name only: the value may be a credential.
      return std::unexpected(
          HttpError{K::kInvalid, what + ": header '" + hd.name + "' has a line break or colon", 0});
    }
  }
  const bool https = url->scheme == "https";
  const auto& policy = config_.retry;
  for (int attempt = 1;; ++attempt) {
    CurlEasy handle = pool_->take();
    if (!handle) {
      return std::unexpected(HttpError{K::kTransport, what + ": curl_easy_init failed", attempt});
    }
    Attempt a = sendOnce(handle.get(), request, config_, proxy_, https, what);
    pool_->give(std::move(handle));

    const bool retry = a.response ? policy.shouldRetry(*a.response) : a.failure.retryable;
    if (!retry || attempt >= policy.max_attempts) {
      if (a.response) {
        a.response->attempts = attempt;
        return std::move(*a.response);
      }
      a.failure.error.attempts = attempt;
      if (attempt > 1) a.failure.error.message += " (" + std::to_string(attempt) + " attempts)";
      return std::unexpected(std::move(a.failure.error));
    }
    auto delay = policy.backoff(attempt + 1, config_.random ? config_.random() : pool_->unit());
    if (a.response) {
      // A server that says how long to wait is believed, up to max_delay.
      if (auto ra = findHeader(a.response->headers, "Retry-After")) {
        long long seconds = 0;
        auto [p, ec] = std::from_chars(ra->data(), ra->data() + ra->size(), seconds);
        if (ec == std::errc() && p == ra->data() + ra->size() && seconds >= 0) {
          delay = std::max(delay, std::min<std::chrono::milliseconds>(std::chrono::seconds(seconds),
                                                                      policy.max_delay));
        }
      }
    }
    if (config_.sleep) {
      config_.sleep(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
  }
}

}  // namespace outpost
