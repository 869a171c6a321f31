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

// Masks the bytes a matcher marks, streaming: it keeps back the last longest-1 bytes, which a
// match ending in a later chunk could still cover. Buffers are contiguous and spans without a
// mask are copied whole, so clean output costs one table lookup per byte.
class MaskingStream final : public StreamRedactor {
 public:
  explicit MaskingStream(const SecretMasker& m) : m_(m) {}

  std::string feed(std::string_view chunk) override {
    if (m_.patternCount() == 0) return std::string(chunk);
    std::size_t base = pending_.size();
    pending_.append(chunk);
    masked_.resize(pending_.size(), 0);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      if (auto len = m_.step(state_, static_cast<unsigned char>(chunk[i]))) {
        std::size_t end = base + i + 1;
        std::fill(masked_.begin() + static_cast<std::ptrdiff_t>(end - len),
                  masked_.begin() + static_cast<std::ptrdiff_t>(end), 1);
      }
    }
    std::size_t keep = m_.longestPattern() - 1;
    return pending_.size() > keep ? emit(pending_.size() - keep) : std::string();
  }

  std::string flush() override { return emit(pending_.size()); }

 private:
  std::string emit(std::size_t n) {
    std::string out;
    out.reserve(n);
    std::size_t i = 0;
    while (i < n) {
      if (!masked_[i]) {
        std::size_t j = i;
        while (j < n && !masked_[j]) ++j;
        out.append(pending_, i, j - i);
        in_mask_ = false;
        i = j;
      } else {
        if (!in_mask_) out += kMask;
        in_mask_ = true;
        ++i;
      }
    }
    pending_.erase(0, n);
    masked_.erase(masked_.begin(), masked_.begin() + static_cast<std::ptrdiff_t>(n));
    return out;
  }

  const SecretMasker& m_;
  std::uint32_t state_ = 0;
  std::string pending_;
  std::vector<std::uint8_t> masked_;
  bool in_mask_ = false;  // the last emitted byte was masked (a continued run adds no second ***)
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
