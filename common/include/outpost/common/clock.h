// Time and identifiers come through these seams so that tests can be exact.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace outpost {

// Safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const = 0;
  virtual std::chrono::steady_clock::time_point steadyNow() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::now();
  }
};

std::int64_t toUnixMillis(std::chrono::system_clock::time_point t);

// RFC 3339 UTC with milliseconds: 2026-11-21T10:00:00.123Z.
std::string formatRfc3339Millis(std::chrono::system_clock::time_point t);

// An RFC 3339 date-time (section 5.6): 2026-11-21T10:00:00Z, 2026-11-21t12:00:00.123+02:00, ...
// A real date, hours to 23, minutes to 59, seconds to 60 (a leap second counts as the next
// minute's first), a fraction of at least one digit (digits past milliseconds are dropped) and a
// zone, Z or +HH:MM / -HH:MM. nullopt for anything else, a missing zone included.
std::optional<std::chrono::system_clock::time_point> parseRfc3339(std::string_view text);

// Makes RFC 9562 UUIDv7 strings (time-ordered, 74 random bits). Thread-safe.
class UuidGenerator {
 public:
  explicit UuidGenerator(const Clock& clock);
  std::string next();

 private:
  const Clock& clock_;
  std::mutex mutex_;
  std::mt19937_64 random_;
};

// True for the canonical 8-4-4-4-12 hexadecimal form.
bool isUuid(std::string_view text);

// A UUID's 16 bytes, in the order they are written.
using UuidBytes = std::array<std::uint8_t, 16>;

// The canonical form of `bytes`: 8-4-4-4-12 lower-case hexadecimal.
std::string formatUuid(const UuidBytes& bytes);

// The RFC 9562 UUIDv5 of `name` in `name_space` (SHA-1 of both): the same name always gets the
// same id. Thread-safe.
std::string uuidV5(const UuidBytes& name_space, std::string_view name);

}  // namespace outpost
