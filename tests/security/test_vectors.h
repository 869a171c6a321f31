// What the security tests share: the RFC test vectors (RFC 8037 appendix A for Ed25519, RFC 7515
// appendix A.3 for ES256) and JWKS text built from them.
#pragma once

#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

namespace outpost::security::test {

using nlohmann::json;

// RFC 8037 appendix A.1 (private key d) and A.2 (public key x).
inline constexpr const char* kRfc8037X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
// A.1's d as PKCS#8 (RFC 8410: the 16-byte prefix, then the 32-byte seed), PEM-armoured.
inline constexpr const char* kRfc8037Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";
// A.4: the JWS of "Example of Ed25519 signing" with the header {"alg":"EdDSA"}.
inline constexpr const char* kRfc8037SigningInput =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
inline constexpr const char* kRfc8037Signature =
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

// RFC 7515 appendix A.3: the ES256 key (x, y; d as PKCS#8) and its JWS.
inline constexpr const char* kRfc7515X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
inline constexpr const char* kRfc7515Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
inline constexpr const char* kRfc7515Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjpsQnnGQmL+YBIff\n"
    "H1136cspYG6+0iY7X1fCE9+E9LKhRANCAAR/zc4ncPbEXUGDy+5v20t7WAczNXvp\n"
    "7xO6z248e9FURcfxRM0bvZt+hyzf7bnuufSzaV1uqQskrYpGIyiFiOWt\n"
    "-----END PRIVATE KEY-----\n";
inline constexpr const char* kRfc7515SigningInput =
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
    "bS9pc19yb290Ijp0cnVlfQ";
inline constexpr const char* kRfc7515Signature =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

// `j` with `changes` merged in (json::update returns nothing).
inline json with(json j, const json& changes) {
  j.update(changes);
  return j;
}

inline std::string jwks(std::initializer_list<json> keys) {
  return json{{"keys", keys}}.dump();
}

inline json rfc8037Jwk(const std::string& kid = "rfc8037") {
  return {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", kRfc8037X}, {"kid", kid}};
}
inline json rfc7515Jwk(const std::string& kid = "rfc7515") {
  return {{"kty", "EC"}, {"crv", "P-256"}, {"x", kRfc7515X}, {"y", kRfc7515Y}, {"kid", kid}};
}

}  // namespace outpost::security::test
