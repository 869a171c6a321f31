// A run's output as the platform sees it: a bounded tail of the bytes, counted, made valid UTF-8.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace outpost {

// Replaces invalid UTF-8 sequences and NUL bytes with U+FFFD. A truncated sequence at the very
// start (the tail cut through a character) is dropped instead.
std::string sanitizeUtf8(std::string_view bytes, bool drop_leading_partial = false);

// Keeps the last `capacity` bytes written to it, in constant memory. Single-threaded.
class TailBuffer {
 public:
  explicit TailBuffer(std::size_t capacity);
  void append(std::string_view bytes);
  std::uint64_t totalBytes() const { return total_; }
  std::uint64_t droppedBytes() const { return total_ - size_; }
  // The kept bytes in order, sanitized to UTF-8.
  std::string text() const;

 private:
  std::vector<char> ring_;
  std::size_t start_ = 0;  // index of the oldest kept byte
  std::size_t size_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace outpost
