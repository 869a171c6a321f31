// The redaction seam: every byte a run writes passes through one of these before it leaves the
// runner (tail, LOG events, output.log). The secrets module provides the real one.
#pragma once

#include <string>
#include <string_view>

namespace outpost {

// One per run, used by one thread at a time.
class StreamRedactor {
 public:
  virtual ~StreamRedactor() = default;
  // Returns the bytes that are safe to pass on. It may hold back a suffix that could be the
  // start of a secret split across writes; flush() returns what is held back at the end.
  virtual std::string feed(std::string_view chunk) = 0;
  virtual std::string flush() = 0;
};

class PassThroughRedactor final : public StreamRedactor {
 public:
  std::string feed(std::string_view chunk) override { return std::string(chunk); }
  std::string flush() override { return {}; }
};

}  // namespace outpost
