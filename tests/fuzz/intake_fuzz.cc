// Command intake in every encoding: a jobs-topic value and its headers, decoded as the worker
// does (decodeCommand), and told apart before decoding (encodingOf), which must agree.
// Input: headers ("name: value" lines) ~~ value.
#include <cstdlib>

#include "fuzz_input.h"
#include "outpost/consumer/intake.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace outpost;
  auto parts = fuzz::splitParts(data, size, 2);
  std::vector<events::Header> headers;
  for (auto& [name, value] : fuzz::headerLines(parts[0])) headers.push_back({name, value});
  consumer::Encoding found{};
  auto decoded = consumer::decodeCommand(parts[1], headers, &found);
  if (!parts[1].empty() && consumer::encodingOf(parts[1], headers) != found) std::abort();
  if (decoded && decoded->run_id().empty()) std::abort();  // a command always names its run
  if (decoded) consumer::isForAnotherPool(*decoded, "main");
  return 0;
}
