// The secret reference parser: ${provider:name#field} and secret:/ forms inside any text. Parsing
// never throws; each reference found is text of the input, and literals and references together
// are never longer than it ("$${" stands for a literal "${").
#include <cstdlib>
#include <string>

#include "outpost/secrets/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parts = outpost::secrets::parseReferences(text);
  if (!parts) return 0;
  std::size_t length = 0;
  for (const auto& p : *parts) {
    if (p.is_reference && text.find(p.ref.text) == std::string_view::npos) std::abort();
    length += p.is_reference ? p.ref.text.size() : p.literal.size();
  }
  if (length > text.size()) std::abort();
  return 0;
}
