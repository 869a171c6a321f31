// Standard base64 (RFC 4648 section 4) decoding, shared by the secret stores (SecretBinary,
// Secret Manager payloads) and the intake (CloudEvents' data_base64).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace outpost {

// Base64 whose padding the caller has taken off (each caller accepts padding its own way).
// nullopt on any other character, or on a length no encoding has; what was decoded before the
// failure is wiped (the input may be a secret).
std::optional<std::string> decodeUnpaddedBase64(std::string_view in);

}  // namespace outpost
