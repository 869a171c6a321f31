// Masking resolved secret values wherever text leaves the worker: each value and its base64
// (standard and URL-safe, with and without padding), URL-encoded and JSON-escaped forms, found
// by one multi-pattern matcher (Aho-Corasick) that also works across chunk boundaries.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/redaction.h"
#include "outpost/secrets/secret_value.h"

namespace outpost::secrets {

inline constexpr std::string_view kMask = "***";

// Immutable once built; safe to share between threads.
class SecretMasker {
 public:
  // Values shorter than this are not masked (they would mask half of every log); the resolver
  // warns about them.
  static constexpr std::size_t kMinLength = 4;

  explicit SecretMasker(const std::vector<const SecretValue*>& values);
  SecretMasker(const SecretMasker&) = delete;
  SecretMasker& operator=(const SecretMasker&) = delete;

  // The text with every occurrence replaced by kMask.
  std::string mask(std::string_view text) const;
  // A streaming redactor over this masker (hold the masker alive while it is used).
  std::unique_ptr<StreamRedactor> stream() const;

  // How many masks every masker of this process wrote since it started (a value and its
  // encodings found side by side count once).
  static std::uint64_t redactions();

  std::size_t patternCount() const { return patterns_; }
  std::size_t longestPattern() const { return longest_; }

  // The automaton for the streaming loop, small enough that its busy rows stay in L1: bytes
  // are first mapped to classes (bytes no pattern holds share class 0), and states are row
  // offsets, so a step is `state = table()[state + byteClass()[byte]]` with state 0 the root.
  // Ending states are numbered last: a pattern ends wherever state >= firstEnd(), and
  // endLength(state) is the longest pattern ending there.
  const std::uint16_t* byteClass() const { return class_; }
  const std::uint32_t* table() const { return table_.data(); }
  std::uint32_t firstEnd() const { return first_end_; }
  std::uint32_t endLength(std::uint32_t state) const { return end_length_[state / stride_]; }

 private:
  void add(std::string_view pattern);
  void build();

  // Built from the trie in add() and build(), then dropped for table_.
  std::vector<std::uint32_t> next_;  // states x 256 transitions (goto + failure folded in)
  std::vector<std::uint32_t> out_;   // longest pattern length ending in each state
  std::vector<std::uint32_t> fail_;
  bool used_[256] = {};  // bytes some pattern holds

  std::uint16_t class_[256] = {};
  std::uint32_t stride_ = 1;  // classes per row
  std::vector<std::uint32_t> table_;
  std::vector<std::uint32_t> end_length_;  // by state number (row offset / stride_)
  std::uint32_t first_end_ = 0;
  std::size_t patterns_ = 0;
  std::size_t longest_ = 0;
};

// The encodings a value is masked in (the value itself first). Exposed for tests.
std::vector<std::string> maskedForms(std::string_view value);

}  // namespace outpost::secrets
