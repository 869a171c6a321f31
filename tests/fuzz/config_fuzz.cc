// The configuration parser: any YAML text, with an environment override, either parses or is a
// ConfigError naming the setting; nothing else escapes.
#include "outpost/common/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    outpost::parseConfig(text, {{"OUTPOST_WORKER__SLOTS", "2"}}, "fuzz");
  } catch (const outpost::ConfigError&) {
  }
  return 0;
}
