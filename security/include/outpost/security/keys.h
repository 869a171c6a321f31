// Keys for signed commands: the worker's trusted public keys (a JWKS file) and a signer's private
// key. Ed25519 (JWK kty OKP, crv Ed25519, JWS alg EdDSA) and P-256 (kty EC, crv P-256, alg ES256)
// only: no RSA, no HMAC, no `none`. OpenSSL stays out of this header.
#pragma once

#include <cstddef>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::security {

enum class Algorithm { kEdDSA, kES256 };
const char* nameOf(Algorithm a);  // "EdDSA", "ES256"

// One public key of a JWKS. Immutable and cheap to copy (the OpenSSL key is shared).
class PublicKey {
 public:
  const std::string& kid() const { return kid_; }
  Algorithm algorithm() const { return alg_; }
  // True when `signature` (JWS form: 64 bytes, for ES256 r||s) is this key's signature of
  // `signing_input`. Never throws.
  bool verifies(std::string_view signing_input, std::string_view signature) const;

  struct Handle;  // the OpenSSL key (keys.cc)

 private:
  friend class KeySet;
  std::string kid_;
  Algorithm alg_ = Algorithm::kEdDSA;
  std::shared_ptr<const Handle> key_;
};

// The trusted keys: a JWKS ({"keys": [...]}) as RFC 7517 writes it. Every key needs a unique
// `kid`; a key with `use` other than "sig", or an `alg` that disagrees with its curve, is refused.
// Thread-safe to read; replaced whole on reload.
class KeySet {
 public:
  // The error names the key (its index and kid) and what is wrong with it.
  static std::expected<KeySet, std::string> parseJwks(std::string_view json);
  // Reads and parses the file; the error names the file.
  static std::expected<KeySet, std::string> loadJwksFile(const std::string& path);

  const PublicKey* find(std::string_view kid) const;  // nullptr when unknown
  std::vector<std::string> kids() const;              // sorted
  std::size_t size() const { return keys_.size(); }

 private:
  std::vector<PublicKey> keys_;
};

// A signer's private key: PKCS#8 PEM, Ed25519 or P-256. Move-only.
class SigningKey {
 public:
  static SigningKey generateEd25519();
  // The error names the file; it never quotes the key.
  static std::expected<SigningKey, std::string> loadPemFile(const std::string& path);
  static std::expected<SigningKey, std::string> parsePem(std::string_view pem);

  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;
  ~SigningKey();

  Algorithm algorithm() const { return alg_; }
  // PKCS#8 PEM of the private key (for keygen to write, mode 0600).
  std::string privatePem() const;
  // The public half as one JWK object (JSON text) with this kid, "use":"sig" and "alg".
  std::string publicJwk(std::string_view kid) const;
  // The JWS signature of `signing_input` (ES256: r||s, 64 bytes).
  std::string sign(std::string_view signing_input) const;

  struct Handle;

 private:
  SigningKey() = default;
  Algorithm alg_ = Algorithm::kEdDSA;
  std::unique_ptr<Handle> key_;
};

// Adds `jwk` (a JWK object as publicJwk() writes) to the JWKS text `jwks` (empty: a new set) and
// returns the new text; refuses a kid already there.
std::expected<std::string, std::string> addToJwks(std::string_view jwks, std::string_view jwk);

}  // namespace outpost::security
