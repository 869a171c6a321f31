// A run's output as the platform sees it: a bounded tail of the bytes, counted, made valid UTF-8;
// lines for LOG events, cut when too long, batched and rate-limited.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
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
// without the newline. A line is handed on as a view, valid only during the call: one that
// arrived whole in a chunk is never copied. Single-threaded.
class LineSplitter {
 public:
  using Sink = std::function<void(std::string_view line)>;
  explicit LineSplitter(std::size_t max_bytes) : max_(max_bytes) {}
  // Hands each complete line to `sink`.
  void feed(std::string_view bytes, const Sink& sink);
  // The last line, if it had no newline.
  void finish(const Sink& sink);

 private:
  void emit(std::string_view line, const Sink& sink);
  std::size_t max_;
  std::string current_;    // the start of a line that has not ended yet
  std::uint64_t cut_ = 0;  // bytes of the current line beyond max_
};

// The lines of a LOG event in one buffer and a list of where each ends, so that a batch of
// hundreds costs the few allocations of those two growing, not one a line.
class LogLines {
 public:
  LogLines() = default;
  LogLines(std::initializer_list<std::string_view> lines);
  void add(std::string_view line);
  std::size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  std::size_t bytes() const { return text_.size(); }
  std::string_view operator[](std::size_t i) const;
  std::vector<std::string_view> views() const;

 private:
  std::string text_;
  std::vector<std::size_t> ends_;  // line i is text_[ends_[i-1], ends_[i]), from 0 for the first
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
  void add(std::string_view line, Clock::time_point now);
  bool due(Clock::time_point now) const;
  // When the current batch will be due; max() when it is empty.
  Clock::time_point dueAt() const;
  LogLines take();
  std::uint64_t droppedLines() const { return dropped_lines_; }

 private:
  std::size_t batch_bytes_;
  std::chrono::milliseconds interval_;
  double rate_;
  double tokens_;
  Clock::time_point refilled_{};
  LogLines lines_;
  Clock::time_point first_{};
  std::uint64_t dropped_lines_ = 0;
};

}  // namespace outpost::runner
