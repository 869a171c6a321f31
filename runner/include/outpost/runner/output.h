// A run's output as the platform sees it: a bounded tail of the bytes, counted, made valid UTF-8;
// lines for LOG events, cut when too long, batched and rate-limited.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/utf8.h"

namespace outpost::runner {

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
  std::size_t capacity_;
  std::vector<char> ring_;  // grows to capacity_ as bytes arrive, then wraps
  std::size_t start_ = 0;   // index of the oldest kept byte
  std::size_t size_ = 0;
  std::uint64_t total_ = 0;
};

// Splits a byte stream into lines. A line longer than max_bytes is cut there and ends with a
// marker saying how many bytes were cut; lines come out raw (LogBatcher makes them valid UTF-8)
// without the newline. Single-threaded.
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_bytes) : max_(max_bytes) {}
  // Appends complete lines to `out`.
  void feed(std::string_view bytes, std::vector<std::string>& out);
  // The last line, if it had no newline.
  void finish(std::vector<std::string>& out);

 private:
  void emit(std::vector<std::string>& out);
  std::size_t max_;
  std::string current_;
  std::uint64_t cut_ = 0;  // bytes of the current line beyond max_
};

// Collects lines into LOG batches: a batch is due when it holds batch_bytes, or batch_interval
// after its first line. At most rate_bytes of lines per second pass (a token bucket holding one
// second's worth); lines beyond that are counted, not kept. Kept lines are made valid UTF-8.
// Single-threaded.
class LogBatcher {
 public:
  using Clock = std::chrono::steady_clock;
  LogBatcher(std::size_t batch_bytes, std::chrono::milliseconds batch_interval,
             std::size_t rate_bytes);
  void add(std::string line, Clock::time_point now);
  bool due(Clock::time_point now) const;
  // When the current batch will be due; max() when it is empty.
  Clock::time_point dueAt() const;
  std::vector<std::string> take();
  std::uint64_t droppedLines() const { return dropped_lines_; }

 private:
  std::size_t batch_bytes_;
  std::chrono::milliseconds interval_;
  double rate_;
  double tokens_;
  Clock::time_point refilled_{};
  std::vector<std::string> lines_;
  std::size_t bytes_ = 0;
  Clock::time_point first_{};
  std::uint64_t dropped_lines_ = 0;
};

}  // namespace outpost::runner
