#include "outpost/runner/output.h"

#include <algorithm>
#include <utility>

namespace outpost::runner {

TailBuffer::TailBuffer(std::size_t capacity) : capacity_(capacity) {}

void TailBuffer::append(std::string_view bytes) {
  total_ += bytes.size();
  const std::size_t cap = capacity_;
  if (cap == 0) return;
  // Grown as output arrives, not allocated up front: most runs print little, and a run that
  // allocated (and zeroed) the whole capacity cost the supervisor a page-faulting 64 KiB each.
  if (ring_.size() < cap && bytes.size() < cap) {
    const std::size_t fits = std::min(bytes.size(), cap - ring_.size());
    ring_.insert(ring_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(fits));
    size_ = ring_.size();
    bytes.remove_prefix(fits);
    if (bytes.empty()) return;
  }
  if (ring_.size() < cap) ring_.resize(cap);
  if (bytes.size() >= cap) {
    bytes = bytes.substr(bytes.size() - cap);
    std::copy(bytes.begin(), bytes.end(), ring_.begin());
    start_ = 0;
    size_ = cap;
    return;
  }
  // Two copies at most: up to the ring's end, then from its start.
  const std::size_t n = bytes.size();
  const std::size_t at = (start_ + size_) % cap;
  const std::size_t first = std::min(n, cap - at);
  std::copy_n(bytes.data(), first, ring_.begin() + static_cast<std::ptrdiff_t>(at));
  std::copy_n(bytes.data() + first, n - first, ring_.begin());
  if (size_ + n <= cap) {
    size_ += n;
  } else {
    start_ = (start_ + (size_ + n - cap)) % cap;
    size_ = cap;
  }
}

std::string TailBuffer::text() const {
  std::string raw;
  raw.reserve(size_);
  const std::size_t first = std::min(size_, ring_.size() - start_);
  raw.append(ring_.data() + start_, first);
  raw.append(ring_.data(), size_ - first);
  return sanitizeUtf8(raw, droppedBytes() > 0);
}

}  // namespace outpost::runner

namespace outpost::runner {

void LineSplitter::feed(std::string_view bytes, const Sink& sink) {
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    auto piece = bytes.substr(0, nl);
    if (nl != std::string_view::npos && current_.empty() && cut_ == 0 && piece.size() <= max_) {
      emit(piece, sink);  // the whole line is in this chunk
    } else {
      std::size_t room = max_ > current_.size() ? max_ - current_.size() : 0;
      current_.append(piece.substr(0, room));
      if (piece.size() > room) cut_ += piece.size() - room;
      if (nl == std::string_view::npos) return;
      emit(current_, sink);
      current_.clear();
      cut_ = 0;
    }
    bytes.remove_prefix(nl + 1);
  }
}

void LineSplitter::finish(const Sink& sink) {
  if (!current_.empty() || cut_ > 0) emit(current_, sink);
  current_.clear();
  cut_ = 0;
}

void LineSplitter::emit(std::string_view line, const Sink& sink) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // Raw bytes: the batcher sanitizes only the lines it keeps, so a flood costs little.
  if (cut_ == 0) return sink(line);
  sink(std::string(line) + " [outpost: line cut, " + std::to_string(cut_) + " more bytes]");
}

LogLines::LogLines(std::initializer_list<std::string_view> lines) {
  for (auto l : lines) add(l);
}

void LogLines::add(std::string_view line) {
  text_.append(line);
  ends_.push_back(text_.size());
}

std::string_view LogLines::operator[](std::size_t i) const {
  const std::size_t begin = i == 0 ? 0 : ends_[i - 1];
  return std::string_view(text_).substr(begin, ends_[i] - begin);
}

std::vector<std::string_view> LogLines::views() const {
  std::vector<std::string_view> out;
  out.reserve(size());
  for (std::size_t i = 0; i < size(); ++i) out.push_back((*this)[i]);
  return out;
}

LogBatcher::LogBatcher(std::size_t batch_bytes, std::chrono::milliseconds batch_interval,
                       std::size_t rate_bytes)
    : batch_bytes_(batch_bytes),
      interval_(batch_interval),
      rate_(static_cast<double>(rate_bytes)),
      tokens_(static_cast<double>(rate_bytes)) {}

void LogBatcher::add(std::string_view line, Clock::time_point now) {
  if (refilled_ != Clock::time_point{}) {
    tokens_ =
        std::min(rate_, tokens_ + rate_ * std::chrono::duration<double>(now - refilled_).count());
  }
  refilled_ = now;
  double cost = static_cast<double>(line.size() + 1);
  if (cost > tokens_) {
    ++dropped_lines_;
    return;
  }
  tokens_ -= cost;
  if (lines_.empty()) first_ = now;
  // Most lines are clean already: copied once, into the batch.
  if (isSanitized(line)) {
    lines_.add(line);
  } else {
    lines_.add(sanitizeUtf8(line));
  }
}

bool LogBatcher::due(Clock::time_point now) const {
  return !lines_.empty() && (lines_.bytes() >= batch_bytes_ || now >= first_ + interval_);
}

LogBatcher::Clock::time_point LogBatcher::dueAt() const {
  if (lines_.empty()) return Clock::time_point::max();
  return lines_.bytes() >= batch_bytes_ ? first_ : first_ + interval_;
}

LogLines LogBatcher::take() {
  return std::exchange(lines_, {});
}

}  // namespace outpost::runner
