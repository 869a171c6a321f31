// A clock the secrets tests move by hand (credential, token and lease expiry, web identity
// session names).
#pragma once

#include <chrono>
#include <mutex>

#include "outpost/common/clock.h"

namespace outpost::secrets::test {

class FakeClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    std::lock_guard l(m_);
    return now_;
  }
  std::chrono::steady_clock::time_point steadyNow() const override {
    std::lock_guard l(m_);
    return std::chrono::steady_clock::time_point(now_.time_since_epoch());
  }
  void advance(std::chrono::seconds d) {
    std::lock_guard l(m_);
    now_ += d;
  }

 private:
  mutable std::mutex m_;
  std::chrono::system_clock::time_point now_ =
      std::chrono::sys_days{std::chrono::year{2026} / 11 / 21} + std::chrono::hours(10);
};

}  // namespace outpost::secrets::test
