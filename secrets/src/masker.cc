#include "outpost/secrets/masker.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <set>

namespace outpost {
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
    const std::uint32_t* next = m_.transitions();
    std::uint32_t state = state_;  // a local, so the loop keeps it in a register
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      std::uint32_t t = next[static_cast<std::size_t>(state) * 256 + bytes[i]];
      state = t & ~SecretMasker::kEnds;
      if (t & SecretMasker::kEnds) {
        std::size_t end = base + i + 1, begin = end - m_.endLength(state);
        // Matches arrive by end position; a longer one may swallow earlier intervals.
        while (!masks_.empty() && masks_.back().second >= begin) {
          begin = std::min(begin, masks_.back().first);
          masks_.pop_back();
        }
        masks_.emplace_back(begin, end);
      }
    }
    state_ = state;
    std::size_t keep = m_.longestPattern() - 1;
    return pending_.size() > keep ? emit(pending_.size() - keep) : std::string();
  }

  std::string flush() override { return emit(pending_.size()); }

 private:
  std::string emit(std::size_t n) {
    std::string out;
    out.reserve(n);
    std::size_t pos = 0, k = 0;
    for (; k < masks_.size() && masks_[k].first < n; ++k) {
      auto [begin, end] = masks_[k];
      if (begin > pos) {
        out.append(pending_, pos, begin - pos);
        in_mask_ = false;
      }
      if (!in_mask_) out += kMask;  // a mask continued from the last emit adds no second one
      in_mask_ = true;
      pos = std::min(end, n);
      if (end > n) break;  // the rest of this interval stays pending
    }
    if (pos < n) {
      out.append(pending_, pos, n - pos);
      in_mask_ = false;
    }
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
  bool in_mask_ = false;  // the last emitted byte was masked
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
  // Mark the transitions that land where a pattern ends (see step()).
  for (auto& t : next_) {
    if (out_[t]) t |= kEnds;
  }
}

std::string SecretMasker::mask(std::string_view text) const {
  MaskingStream s(*this);
  std::string out = s.feed(text);  // feed before flush: `a + b` leaves the order unspecified
  return out + s.flush();
}

std::unique_ptr<StreamRedactor> SecretMasker::stream() const {
  return std::make_unique<MaskingStream>(*this);
}

}  // namespace outpost
