// Signature verification: a JWKS, a token and the value it claims to cover, checked as the worker
// checks a record. A refusal is the expected outcome of almost every input; nothing may crash,
// and a token that verifies must be for a trusted key.
// Input: JWKS ~~ token ~~ value.
#include <chrono>
#include <cstdlib>

#include "fuzz_input.h"
#include "outpost/security/command_token.h"
#include "outpost/security/keys.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace outpost::security;
  auto parts = outpost::fuzz::splitParts(data, size, 3);
  auto keys = KeySet::parseJwks(parts[0]);
  const KeySet none;
  const KeySet& trusted = keys ? *keys : none;
  for (auto kind : {CommandKind::kJob, CommandKind::kControl}) {
    auto verified = verifyCommandToken(
        parts[1], RecordFacts{parts[2], "outpost.jobs", "main", kind, "protobuf"}, trusted,
        TokenLimits{}, std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000)));
    if (verified && !trusted.find(verified->kid)) std::abort();
    if (!verified && verified.error().message.rfind("signature: ", 0) != 0) std::abort();
  }
  return 0;
}
