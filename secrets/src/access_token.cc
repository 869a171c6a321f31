#include "outpost/secrets/access_token.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace outpost::secrets {

AccessTokenCache::AccessTokenCache(std::string owner, std::string source, Fetch fetch,
                                   const Clock& clock, std::chrono::seconds refresh_before)
    : owner_(std::move(owner)),
      source_(std::move(source)),
      fetch_(std::move(fetch)),
      clock_(clock),
      refresh_before_(refresh_before) {}

std::expected<SecretValue, SecretError> AccessTokenCache::token() {
  std::lock_guard lock(mutex_);
  const auto now = clock_.now();
  if (cached_ && now < refresh_at_) return cached_->token;
  auto fresh = fetch_();
  if (fresh) {
    const auto lifetime = fresh->expires - now;
    refresh_at_ = fresh->expires -
                  std::min<std::chrono::system_clock::duration>(refresh_before_, lifetime / 2);
    cached_ = std::move(*fresh);
    spdlog::debug("{}: new access token from {}", owner_, source_);
    return cached_->token;
  }
  if (cached_ && now < cached_->expires) {
    spdlog::warn("{}: renewing the access token failed, using the current one until it expires: {}",
                 owner_, fresh.error().message);
    return cached_->token;
  }
  cached_.reset();
  return std::unexpected(fresh.error());
}

void AccessTokenCache::invalidate() {
  std::lock_guard lock(mutex_);
  cached_.reset();
}

}  // namespace outpost::secrets
