// Secrets: resolving credentials locally from the stores customers run, caching them, and masking
// them wherever output leaves the worker. This header: the value type that cannot be logged.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace outpost::secrets {

// A secret's bytes. No operator<<, no formatter, no implicit conversion: getting the bytes out is
// the explicit, greppable call reveal(). Moves leave the source empty.
class SecretValue {
 public:
  SecretValue() = default;
  explicit SecretValue(std::string bytes) : bytes_(std::move(bytes)) {}
  SecretValue(const SecretValue&) = default;
  SecretValue& operator=(const SecretValue&) = default;
  SecretValue(SecretValue&& o) noexcept : bytes_(std::exchange(o.bytes_, {})) {}
  SecretValue& operator=(SecretValue&& o) noexcept {
    bytes_ = std::exchange(o.bytes_, {});
    return *this;
  }
  ~SecretValue() {
    // Best effort: do not leave the bytes in freed memory.
    volatile char* p = bytes_.data();
    for (std::size_t i = 0; i < bytes_.size(); ++i) p[i] = 0;
  }

  std::string_view reveal() const { return bytes_; }
  std::size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  bool operator==(const SecretValue& o) const { return bytes_ == o.bytes_; }

 private:
  std::string bytes_;
};

}  // namespace outpost::secrets
