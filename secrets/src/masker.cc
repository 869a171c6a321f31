#include "outpost/secrets/masker.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <deque>
#include <set>

namespace outpost::secrets {
namespace {

std::string base64(std::string_view in, bool url, bool pad) {
  static const char* kStd = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char* kUrl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* a = url ? kUrl : kStd;
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t v = (static_cast<unsigned char>(in[i]) << 16) |
                      (static_cast<unsigned char>(in[i + 1]) << 8) |
                      static_cast<unsigned char>(in[i + 2]);
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    out += a[(v >> 6) & 63];
    out += a[v & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    if (i + 1 < in.size()) out += a[(v >> 6) & 63];
    if (pad) out += i + 1 < in.size() ? "=" : "==";
  }
  return out;
}

std::string urlEncode(std::string_view in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string jsonEscape(std::string_view in) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : in) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::atomic<std::uint64_t> g_redactions{0};

// Masks what the matcher finds, streaming: it keeps back the last longest-1 bytes, which a
// match ending in a later chunk could still cover. Matches are kept as merged [start, end)
// intervals of the pending bytes, so clean spans are copied whole: one table lookup per byte.
class MaskingStream final : public StreamRedactor {
 public:
  explicit MaskingStream(const SecretMasker& m) : m_(m) {}

  std::string feed(std::string_view chunk) override {
    if (m_.patternCount() == 0) return std::string(chunk);
    const std::size_t base = pending_.size();
    pending_.append(chunk);
    const auto* bytes = reinterpret_cast<const unsigned char*>(chunk.data());
    const std::size_t n = chunk.size(), longest = m_.longestPattern();
    if (n < kSplitAt) {
      state_ = scan(bytes, n, base, state_);
    } else {
      // Two halves side by side: the table lookups of one step depend on the step before, so
      // one chain of them keeps the core waiting; two independent chains overlap. The second
      // half starts from the root instead of the first half's last state, which it agrees with
      // once it has seen longest-1 bytes (a state is the longest pattern prefix ending there).
      // Its matches before that point are dropped, and those bytes scanned again afterwards.
      const std::size_t half = n / 2, settle = longest - 1;
      const auto* a = bytes;
      const auto* b = bytes + half;
      const std::uint16_t* cls = m_.byteClass();
      const std::uint32_t* table = m_.table();
      const std::uint32_t first_end = m_.firstEnd();
      std::uint32_t sa = state_, sb = 0;
      later_.clear();
      for (std::size_t i = 0; i < half; ++i) {
        sa = table[sa + cls[a[i]]];
        sb = table[sb + cls[b[i]]];
        if (sa >= first_end) [[unlikely]]
          addMask(base + i + 1, sa);
        if (sb >= first_end && i >= settle) [[unlikely]]
          later_.emplace_back(base + half + i + 1, sb);
      }
      scan(b, settle, base + half, sa);  // the second half's first bytes, from the true state
      for (auto [end, state] : later_) addMask(end, state);
      state_ = scan(b + half, n - 2 * half, base + 2 * half, sb);
    }
    std::size_t keep = longest - 1;
    return pending_.size() > keep ? emit(pending_.size() - keep) : std::string();
  }

  std::string flush() override { return emit(pending_.size()); }

 private:
  // Below this, a chunk is scanned in one chain (the split's fix-up would not pay).
  static constexpr std::size_t kSplitAt = 4096;

  // Scans n bytes that sit at pending_[base...] from `state`; returns the state after them.
  std::uint32_t scan(const unsigned char* bytes, std::size_t n, std::size_t base,
                     std::uint32_t state) {
    const std::uint16_t* cls = m_.byteClass();
    const std::uint32_t* table = m_.table();
    const std::uint32_t first_end = m_.firstEnd();
    for (std::size_t i = 0; i < n; ++i) {
      state = table[state + cls[bytes[i]]];
      if (state >= first_end) [[unlikely]]
        addMask(base + i + 1, state);
    }
    return state;
  }

  // A pattern ends at pending_[end - 1] in `state`. Matches arrive by end position; a longer
  // one may swallow earlier intervals.
  void addMask(std::size_t end, std::uint32_t state) {
    std::size_t begin = end - m_.endLength(state);
    while (!masks_.empty() && masks_.back().second >= begin) {
      begin = std::min(begin, masks_.back().first);
      masks_.pop_back();
    }
    masks_.emplace_back(begin, end);
  }

  std::string emit(std::size_t n) {
    std::string out;
    out.reserve(n);
    std::size_t pos = 0, k = 0, written = 0;
    for (; k < masks_.size() && masks_[k].first < n; ++k) {
      auto [begin, end] = masks_[k];
      if (begin > pos) {
        out.append(pending_, pos, begin - pos);
        in_mask_ = false;
      }
      if (!in_mask_) {  // a mask continued from the last emit adds no second one
        out += kMask;
        ++written;
      }
      in_mask_ = true;
      pos = std::min(end, n);
      if (end > n) break;  // the rest of this interval stays pending
    }
    if (pos < n) {
      out.append(pending_, pos, n - pos);
      in_mask_ = false;
    }
    if (written > 0) g_redactions.fetch_add(written, std::memory_order_relaxed);
    // Drop what was emitted; intervals that end by n are done, one straddling n is cut.
    std::vector<std::pair<std::size_t, std::size_t>> rest;
    for (std::size_t j = k; j < masks_.size(); ++j) {
      auto [begin, end] = masks_[j];
      if (end <= n) continue;
      rest.emplace_back(begin > n ? begin - n : 0, end - n);
    }
    masks_ = std::move(rest);
    pending_.erase(0, n);
    return out;
  }

  const SecretMasker& m_;
  std::uint32_t state_ = 0;
  std::string pending_;
  std::vector<std::pair<std::size_t, std::size_t>> masks_;
  bool in_mask_ = false;                                      // the last emitted byte was masked
  std::vector<std::pair<std::size_t, std::uint32_t>> later_;  // second-half matches: end, state
};

}  // namespace

std::vector<std::string> maskedForms(std::string_view value) {
  std::vector<std::string> forms{std::string(value)};
  for (bool url : {false, true}) {
    for (bool pad : {true, false}) forms.push_back(base64(value, url, pad));
  }
  forms.push_back(urlEncode(value));
  forms.push_back(jsonEscape(value));
  std::set<std::string> seen;
  std::vector<std::string> unique;
  for (auto& f : forms) {
    if (seen.insert(f).second) unique.push_back(std::move(f));
  }
  return unique;
}

SecretMasker::SecretMasker(const std::vector<const SecretValue*>& values) {
  next_.assign(256, 0);
  out_.assign(1, 0);
  fail_.assign(1, 0);
  for (const auto* v : values) {
    if (!v || v->size() < kMinLength) continue;
    for (const auto& form : maskedForms(v->reveal())) add(form);
  }
  build();
}

void SecretMasker::add(std::string_view pattern) {
  // Trie edges go into next_ first; build() turns it into the full automaton. 0 means "no edge"
  // during construction (the root is never a target).
  std::uint32_t s = 0;
  for (unsigned char c : pattern) {
    used_[c] = true;
    auto& edge = next_[static_cast<std::size_t>(s) * 256 + c];
    if (edge == 0) {
      edge = static_cast<std::uint32_t>(out_.size());
      out_.push_back(0);
      fail_.push_back(0);
      next_.resize(next_.size() + 256, 0);
    }
    s = next_[static_cast<std::size_t>(s) * 256 + c];
  }
  out_[s] = std::max<std::uint32_t>(out_[s], static_cast<std::uint32_t>(pattern.size()));
  longest_ = std::max(longest_, pattern.size());
  ++patterns_;
}

void SecretMasker::build() {
  std::deque<std::uint32_t> queue;
  for (int c = 0; c < 256; ++c) {
    if (auto t = next_[c]) {
      fail_[t] = 0;
      queue.push_back(t);
    }
  }
  while (!queue.empty()) {
    auto s = queue.front();
    queue.pop_front();
    out_[s] = std::max(out_[s], out_[fail_[s]]);
    for (int c = 0; c < 256; ++c) {
      auto& t = next_[static_cast<std::size_t>(s) * 256 + c];
      auto via_fail = next_[static_cast<std::size_t>(fail_[s]) * 256 + c];
      if (t) {
        fail_[t] = via_fail;
        queue.push_back(t);
      } else {
        t = via_fail;
      }
    }
  }
  // Compress: one class per byte some pattern holds (the rest go to the root from anywhere),
  // ending states numbered last, transitions stored as row offsets.
  std::vector<unsigned char> representative{0};
  for (int c = 0; c < 256; ++c) {
    if (used_[c]) {
      class_[c] = static_cast<std::uint16_t>(representative.size());
      representative.push_back(static_cast<unsigned char>(c));
    }
  }
  stride_ = static_cast<std::uint32_t>(representative.size());
  const std::size_t states = out_.size();
  std::vector<std::uint32_t> number(states);
  std::uint32_t n = 0;
  for (std::size_t s = 0; s < states; ++s) {
    if (!out_[s]) number[s] = n++;
  }
  first_end_ = n * stride_;
  for (std::size_t s = 0; s < states; ++s) {
    if (out_[s]) number[s] = n++;
  }
  table_.assign(states * stride_, 0);
  end_length_.assign(states, 0);
  for (std::size_t s = 0; s < states; ++s) {
    end_length_[number[s]] = out_[s];
    for (std::uint32_t k = 1; k < stride_; ++k) {
      table_[number[s] * stride_ + k] = number[next_[s * 256 + representative[k]]] * stride_;
    }
  }
  next_ = {};
  out_ = {};
  fail_ = {};
}

std::string SecretMasker::mask(std::string_view text) const {
  MaskingStream s(*this);
  std::string out = s.feed(text);  // feed before flush: `a + b` leaves the order unspecified
  return out + s.flush();
}

std::uint64_t SecretMasker::redactions() {
  return g_redactions.load(std::memory_order_relaxed);
}

std::unique_ptr<StreamRedactor> SecretMasker::stream() const {
  return std::make_unique<MaskingStream>(*this);
}

}  // namespace outpost::secrets
