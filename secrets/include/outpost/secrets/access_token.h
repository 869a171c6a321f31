// OAuth 2.0 bearer tokens for the secret stores that take one (Google Secret Manager, Azure Key
// Vault): a token with its expiry, and the cache that renews it before it runs out.
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "outpost/common/clock.h"
#include "outpost/secrets/provider.h"
#include "outpost/secrets/secret_value.h"

namespace outpost::secrets {

// A bearer token and when it stops being accepted.
struct AccessToken {
  SecretValue token;
  std::chrono::system_clock::time_point expires;
};

// Keeps a fetched token until refresh_before its expiry (at most half its lifetime before), then
// fetches a new one. If that fails while the current token is still valid, the current one is
// used (with a warning) until it expires. Thread-safe: one lock, held during a fetch, so that
// concurrent callers share one token request instead of stampeding the token endpoint (or a
// metadata service, which throttles).
class AccessTokenCache {
 public:
  // Gets a new token; may block on the network. Called by one thread at a time (the cache holds
  // its lock). The error names where the token comes from, never a token or a key.
  using Fetch = std::function<std::expected<AccessToken, SecretError>()>;

  // owner names the provider in logs ("gcp-sm"), source where its tokens come from ("metadata
  // server").
  AccessTokenCache(std::string owner, std::string source, Fetch fetch, const Clock& clock,
                   std::chrono::seconds refresh_before);
  AccessTokenCache(const AccessTokenCache&) = delete;
  AccessTokenCache& operator=(const AccessTokenCache&) = delete;

  std::expected<SecretValue, SecretError> token();
  // The store refused the current token: the next call fetches a new one.
  void invalidate();

 private:
  const std::string owner_;
  const std::string source_;
  const Fetch fetch_;
  const Clock& clock_;
  const std::chrono::seconds refresh_before_;

  std::mutex mutex_;  // guards everything below; held while a token is fetched
  std::optional<AccessToken> cached_;
  std::chrono::system_clock::time_point refresh_at_;
};

}  // namespace outpost::secrets
