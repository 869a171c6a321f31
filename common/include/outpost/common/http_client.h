// HTTP for the cloud secret providers and the lineage transport: libcurl behind a small
// request/response API, with TLS verification always on, proxies from the environment, timeouts
// and bounded retries.
#pragma once

#include <chrono>
#include <cstddef>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/config.h"

namespace outpost {

struct HttpHeader {
  std::string name;
  std::string value;
};
// In order; a name may repeat.
using HttpHeaders = std::vector<HttpHeader>;

// The first value of a header (names compare case-insensitively), if there is one.
std::optional<std::string_view> findHeader(const HttpHeaders& headers, std::string_view name);
// Replaces every header of that name with one (appended at the end).
void setHeader(HttpHeaders& headers, std::string_view name, std::string value);
void removeHeader(HttpHeaders& headers, std::string_view name);

struct HttpRequest {
  std::string method = "GET";
  // Absolute http:// or https:// URL; path and query already percent-encoded as they go on the
  // wire.
  std::string url;
  HttpHeaders headers;
  // May carry credentials: never logged and never part of an error message.
  std::string body;
};

struct HttpResponse {
  long status = 0;
  HttpHeaders headers;  // of the final response (not of a proxy's CONNECT or a 100 Continue)
  std::string body;
  int attempts = 1;  // tries it took, the first included
};

// A request that got no HTTP response (after its retries), or that could not be sent at all.
// An HTTP error status is not an HttpError: it comes back as an HttpResponse.
struct HttpError {
  enum class Kind {
    kConnect,   // could not resolve or connect (host, or proxy)
    kTimeout,   // connect or total timeout
    kTls,       // handshake failed or the certificate is not trusted for that host
    kTooLarge,  // response body over HttpClientConfig::max_response_bytes
    kInvalid,   // the request itself is unusable (bad URL, header with a line break, ...)
    kTransport  // the connection broke or the answer was not HTTP
  };
  Kind kind = Kind::kTransport;
  // Method, URL without its query, and what failed. Never a body or a header value.
  std::string message;
  int attempts = 1;
};

// The parts of an http(s) URL. host is without brackets for IPv6; port is empty when not given.
struct UrlParts {
  std::string scheme;  // lower case
  std::string host;
  std::string port;
  std::string path;   // "/" when the URL has none
  std::string query;  // without '?'
  // host[:port] as the Host header carries it (IPv6 in brackets).
  std::string authority() const;
};
// Byte-tolerant split (no validation of the characters); nullopt unless http or https with a
// host.
std::optional<UrlParts> parseUrl(std::string_view url);
// scheme://authority/path, without query or fragment: what error messages show of a URL.
std::string urlForMessages(std::string_view url);
// 127.0.0.0/8, ::1, localhost.
bool isLoopbackHost(std::string_view host);

// How a failed try is repeated: at most max_attempts tries in all, with exponential backoff and
// full jitter between them. Connection failures, timeouts, 5xx and 429 are retried, and any
// response retry_response accepts (a provider's throttling answer in a 400, say). Errors that
// another try cannot fix (TLS trust, bad URL, oversized body) are not.
struct RetryPolicy {
  int max_attempts = 3;
  std::chrono::milliseconds base_delay{100};
  std::chrono::milliseconds max_delay{2000};
  std::function<bool(const HttpResponse&)> retry_response;

  // The pause before try number `attempt` (2, 3, ...): unit_random * min(max_delay,
  // base_delay * 2^(attempt - 2)), unit_random in [0, 1).
  std::chrono::milliseconds backoff(int attempt, double unit_random) const;
  // True for 5xx, 429, and what retry_response accepts.
  bool shouldRetry(const HttpResponse& response) const;
};

// Which proxy a request goes through. libcurl alone would read the proxy variables itself, but
// it ignores HTTP_PROXY in upper case (only http_proxy counts, a CGI precaution); we resolve
// them here, with libcurl's rules plus HTTP_PROXY, and always hand libcurl an explicit answer.
struct ProxyConfig {
  std::string http_proxy;   // for http:// URLs; empty: direct
  std::string https_proxy;  // for https:// URLs; empty: direct
  // Hosts that bypass the proxy: comma-separated names (a leading dot or none: the domain and
  // its subdomains), IP addresses, CIDR ranges, or "*" for every host. libcurl matches it.
  std::string no_proxy;

  // https_proxy, HTTPS_PROXY, then all_proxy, ALL_PROXY for https; http_proxy, HTTP_PROXY, then
  // all_proxy, ALL_PROXY for http; no_proxy, then NO_PROXY. Lower case wins, like libcurl.
  static ProxyConfig fromEnvironment(const Environment& env);
  // One proxy for both schemes.
  static ProxyConfig explicitProxy(std::string url, std::string no_proxy);
};

struct HttpClientConfig {
  // PEM file of the certificate authorities to trust instead of the system's; empty: the
  // system's. Verification of the peer and of its host name is always on.
  std::string ca_bundle;
  // nullopt: ProxyConfig::fromEnvironment(processEnvironment()) when the client is made.
  std::optional<ProxyConfig> proxy;
  std::chrono::milliseconds connect_timeout{3000};
  // One try, from connecting to the last byte.
  std::chrono::milliseconds timeout{10000};
  std::size_t max_response_bytes = 4 * 1024 * 1024;
  RetryPolicy retry;
  // Seams for tests: a number in [0, 1) for the jitter, and how to wait between tries.
  std::function<double()> random;
  std::function<void(std::chrono::milliseconds)> sleep;
};

// A libcurl client. Thread-safe: send() may be called from any number of threads at once; each
// call uses its own easy handle, taken from a small pool so connections are reused. Redirects
// are not followed (they would carry signed headers elsewhere). Only http and https are spoken.
class HttpClient {
 public:
  explicit HttpClient(HttpClientConfig config);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends, retrying as the policy says. The worst case takes about max_attempts * (timeout +
  // max_delay). Never throws.
  std::expected<HttpResponse, HttpError> send(const HttpRequest& request);

  const HttpClientConfig& config() const { return config_; }

 private:
  struct Pool;
  HttpClientConfig config_;
  ProxyConfig proxy_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace outpost
