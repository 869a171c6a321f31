// What the cloud secret providers (AWS, Google, Azure, Vault) share: handling credential bytes,
// text from servers fit for messages, settings from the environment, HTTP client settings and
// what an HTTP status means for a fetch. Private to the secrets library.
#pragma once

#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/base64.h"
#include "outpost/common/config.h"
#include "outpost/common/http_client.h"
#include "outpost/secrets/provider.h"

namespace outpost::secrets::provider_internal {

// Overwrites and clears a string that held a credential or a secret.
void wipe(std::string& s);

std::string_view trimWhitespace(std::string_view s);

// A small file's bytes; the error names the file and the reason (never its contents).
std::expected<std::string, std::string> readSmallFile(const std::string& path,
                                                      std::size_t max_bytes = 1024 * 1024);

// Text from a server, fit for an error message: at most max bytes, control characters dropped.
std::string forMessage(std::string_view text, std::size_t max = 300);

// The variable's value; empty when it is not set.
std::string envValue(const Environment& env, const char* name);

std::string withoutTrailingSlash(std::string url);

// The '/'-separated segments of a path, empty ones included ("a//b" is "a", "", "b").
std::vector<std::string_view> splitPath(std::string_view path);

// Standard base64 whose padding the caller has taken off (outpost/common/base64.h).
using outpost::decodeUnpaddedBase64;

// --- answers ---

// What an HTTP error status means for a fetch: 404 kNotFound, 401 and 403 kDenied, 5xx and 429
// kUnavailable, anything else kInvalid.
SecretError::Kind kindOfStatus(long status);
// "not found", "denied", "unavailable", "refused": how messages say a kind.
const char* describe(SecretError::Kind kind);
// msg, then " (N attempts)" when it took more than one.
std::string withAttempts(std::string msg, int attempts);

// The secret, or its ref.field when the reference names one (see extractJsonField).
std::expected<FetchedSecret, SecretError> selectField(const SecretRef& ref, FetchedSecret secret);

// --- settings ---

// Throws ConfigError ("PROVIDER: SETTING 'URL' ...") unless url is http:// or https:// with a host
// (and, when no_query, without a query), and https:// unless it is to a loopback address or
// any_http (a metadata service, which is plain http at a link-local address by design).
void checkServiceUrl(const std::string& url, std::string_view provider, const char* setting,
                     bool any_http, bool no_query = false);

// The client of the store's API (and of a token endpoint on the internet), from the provider's
// StoreTransport: the proxy given, else the environment's (no_proxy, when given, replacing the
// environment's list either way).
inline HttpClientConfig apiClientConfig(const StoreTransport& t, const Environment& env) {
  HttpClientConfig h;
  h.ca_bundle = t.ca_bundle;
  if (t.proxy.empty()) {
    h.proxy = ProxyConfig::fromEnvironment(env);
    if (!t.no_proxy.empty()) h.proxy->no_proxy = t.no_proxy;
  } else {
    h.proxy = ProxyConfig::explicitProxy(
        t.proxy, t.no_proxy.empty() ? ProxyConfig::fromEnvironment(env).no_proxy : t.no_proxy);
  }
  h.connect_timeout = t.connect_timeout;
  h.timeout = t.timeout;
  h.retry.max_attempts = static_cast<int>(t.max_attempts);
  h.retry.base_delay = t.retry_base_delay;
  h.retry.max_delay = t.retry_max_delay;
  return h;
}

// A provider's transport settings, checked as the config loader checks them; messages name the
// provider ("vault: max_attempts must be at least 1").
inline void checkTransport(const StoreTransport& t, std::string_view provider) {
  t.check([&](const char* key) { return std::string(provider) + ": " + key; });
}

// The client of an instance metadata service: never through a proxy (it would answer with its
// own host's identity, or not at all); the settings' metadata_timeout and metadata_attempts,
// which are short because such a service is local and quick, or absent.
template <typename ProviderConfig>
HttpClientConfig metadataClientConfig(const ProviderConfig& c) {
  HttpClientConfig h;
  h.proxy = ProxyConfig{};
  h.connect_timeout = c.metadata_timeout;
  h.timeout = c.metadata_timeout;
  h.retry.max_attempts = c.metadata_attempts;
  h.retry.base_delay = c.transport.retry_base_delay;
  h.retry.max_delay = c.transport.retry_max_delay;
  return h;
}

}  // namespace outpost::secrets::provider_internal
