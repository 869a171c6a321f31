// Base64 (RFC 4648): standard decoding, shared by the secret stores (SecretBinary, Secret Manager
// payloads) and the intake (CloudEvents' data_base64); base64url for JWTs (the service-account
// assertion in secrets/, signed commands in security/).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace outpost {

// Base64 whose padding the caller has taken off (each caller accepts padding its own way).
// nullopt on any other character, or on a length no encoding has; what was decoded before the
// failure is wiped (the input may be a secret).
std::optional<std::string> decodeUnpaddedBase64(std::string_view in);

// base64url (RFC 4648 section 5) without padding, as JWS and JWK write it.
std::string encodeBase64Url(std::string_view bytes);

// base64url without padding, strictly: nullopt on '=', '+', '/', whitespace or any other
// character outside the URL alphabet, on a length no encoding has, and on a last character whose
// unused bits are not zero. Strict because a token's parts are compared and logged as text: each
// byte string must have exactly one spelling.
std::optional<std::string> decodeBase64Url(std::string_view in);

}  // namespace outpost
