// The bearer tokens a fake token endpoint (Google's, Azure's) hands out and its fake API accepts.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "outpost/common/clock.h"

namespace outpost::secrets::test {

// Tokens "PREFIX1", "PREFIX2", ..., each accepted for an hour of the clock's time. A prefix that
// nothing else holds lets a test look for any of them in messages and logs. Thread-safe: the
// fakes' handlers run on their server's threads.
class FakeBearerTokens {
 public:
  FakeBearerTokens(const Clock& clock, std::string prefix)
      : clock_(clock), prefix_(std::move(prefix)) {}

  std::string issue() {
    std::lock_guard l(mutex_);
    const std::string t = prefix_ + std::to_string(++issued_);
    expiry_[t] = clock_.now() + std::chrono::hours(1);
    return t;
  }
  // Whether an Authorization header's value is "Bearer T" with T issued, not revoked, and not
  // expired.
  bool accepts(std::string_view authorization) const {
    if (!authorization.starts_with("Bearer ")) return false;
    std::lock_guard l(mutex_);
    auto it = expiry_.find(std::string(authorization.substr(7)));
    return it != expiry_.end() && clock_.now() < it->second;
  }
  void revokeAll() {
    std::lock_guard l(mutex_);
    expiry_.clear();
  }

 private:
  const Clock& clock_;
  const std::string prefix_;
  mutable std::mutex mutex_;  // guards what follows
  std::map<std::string, std::chrono::system_clock::time_point> expiry_;
  int issued_ = 0;
};

}  // namespace outpost::secrets::test
