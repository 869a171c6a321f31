// Trusted public keys from a JWKS, and a signer's private key, over OpenSSL 3. The JWS signature
// form (RFC 7518 section 3.4: ES256 is r||s, 32 bytes each) is converted to and from OpenSSL's DER
// here, so nothing else sees DER.
#include "outpost/security/keys.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "openssl_handles.h"
#include "outpost/common/base64.h"
#include "outpost/common/fd.h"
#include "outpost/common/utf8.h"

namespace outpost::security {

struct PublicKey::Handle {
  ossl::Pkey pkey;
};

struct SigningKey::Handle {
  ossl::Pkey pkey;
};

const char* nameOf(Algorithm a) {
  switch (a) {
    case Algorithm::kEdDSA:
      return "EdDSA";
    case Algorithm::kES256:
      return "ES256";
  }
  return "?";
}

namespace {

using Json = nlohmann::ordered_json;

constexpr std::size_t kCoordinateBytes = 32;  // Ed25519 public key; P-256 x, y, r and s
constexpr std::size_t kSignatureBytes = 64;   // Ed25519; ES256's r||s
constexpr std::size_t kMaxJwksBytes = 1024 * 1024;
constexpr std::size_t kMaxPemBytes = 64 * 1024;
constexpr const char* kP256GroupName = "prime256v1";  // OpenSSL's name for P-256

const unsigned char* bytesOf(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// OpenSSL leaves reasons on a per-thread queue; a failure here is reported in our own words, so
// the queue is emptied on the way out rather than left to confuse the next caller's diagnosis.
struct ClearOpenSslErrors {
  ~ClearOpenSslErrors() { ERR_clear_error(); }
};

// A kid as a message may quote it: the JWKS and tokens come from outside.
std::string kidForMessage(std::string_view kid) {
  return escapedExcerpt(kid, 64);
}

// Reads a small file into one buffer allocated up front (so no reallocation leaves a copy of a
// private key behind), hands the bytes to `use`, and wipes the buffer whatever `use` returned.
template <typename T, typename Use>
std::expected<T, std::string> withFileBytes(const std::string& path, std::size_t max_bytes,
                                            Use use) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected("cannot read " + path + ": " + std::strerror(errno));
  std::string buf(max_bytes + 1, '\0');
  std::size_t n = 0;
  while (n < buf.size()) {
    const auto got = ::read(fd.get(), buf.data() + n, buf.size() - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int err = errno;
      OPENSSL_cleanse(buf.data(), buf.size());
      return std::unexpected("cannot read " + path + ": " + std::strerror(err));
    }
    if (got == 0) break;
    n += static_cast<std::size_t>(got);
  }
  if (n > max_bytes) {
    OPENSSL_cleanse(buf.data(), buf.size());
    return std::unexpected(path + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  std::expected<T, std::string> result = use(std::string_view(buf.data(), n));
  OPENSSL_cleanse(buf.data(), buf.size());
  if (!result) return std::unexpected(path + ": " + result.error());
  return result;
}

// --- building public keys from JWK members ---

ossl::Pkey ed25519PublicKey(std::string_view x) {
  return ossl::Pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytesOf(x), x.size()));
}

// A P-256 public key from its affine coordinates. OpenSSL refuses a point that is not on the
// curve when it decodes 0x04||x||y; the public check afterwards says so again, explicitly (an
// off-curve point is the classic invalid-curve attack on ECDSA verifiers).
ossl::Pkey p256PublicKey(std::string_view x, std::string_view y) {
  unsigned char point[1 + 2 * kCoordinateBytes];
  point[0] = 0x04;  // uncompressed (SEC 1 section 2.3.3)
  std::memcpy(point + 1, x.data(), kCoordinateBytes);
  std::memcpy(point + 1 + kCoordinateBytes, y.data(), kCoordinateBytes);
  ossl::ParamBuild build(OSSL_PARAM_BLD_new());
  if (!build ||
      OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, kP256GroupName, 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point) !=
          1) {
    return {};
  }
  ossl::Params params(OSSL_PARAM_BLD_to_param(build.get()));
  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return {};
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) return {};
  ossl::Pkey pkey(raw);
  ossl::PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return {};
  return pkey;
}

struct ParsedJwk {
  std::string kid;
  Algorithm alg = Algorithm::kEdDSA;
  ossl::Pkey pkey;
};

// A string member: absent (nullopt), or its text; a member of another type is an error.
std::expected<std::optional<std::string>, std::string> stringMember(const Json& jwk,
                                                                    const char* name) {
  const auto it = jwk.find(name);
  if (it == jwk.end()) return std::nullopt;
  if (!it->is_string()) return std::unexpected(std::string(name) + " is not a string");
  return it->get<std::string>();
}

// A base64url coordinate of exactly 32 bytes.
std::expected<std::string, std::string> coordinate(const Json& jwk, const char* name,
                                                   std::string_view curve) {
  auto text = stringMember(jwk, name);
  if (!text) return std::unexpected(text.error());
  if (!*text) return std::unexpected("it has no " + std::string(name));
  auto bytes = decodeBase64Url(**text);
  if (!bytes) return std::unexpected(std::string(name) + " is not base64url (without padding)");
  if (bytes->size() != kCoordinateBytes) {
    return std::unexpected(std::string(name) + " is " + std::to_string(bytes->size()) +
                           " bytes; an " + std::string(curve) + " key's is 32");
  }
  return std::move(*bytes);
}

// One key of the JWKS, in the words an error message uses after "key N (kid K): ".
std::expected<ParsedJwk, std::string> parseJwk(const Json& jwk, const std::string& kid) {
  if (jwk.contains("d")) {
    return std::unexpected(
        "it holds a private key (d); a JWKS of trusted keys must hold public keys only: remove "
        "d here and keep the private key with the signer");
  }
  auto kty = stringMember(jwk, "kty");
  if (!kty) return std::unexpected(kty.error());
  if (!*kty) return std::unexpected("it has no kty (OKP or EC)");
  auto crv = stringMember(jwk, "crv");
  if (!crv) return std::unexpected(crv.error());
  auto alg = stringMember(jwk, "alg");
  if (!alg) return std::unexpected(alg.error());
  auto use = stringMember(jwk, "use");
  if (!use) return std::unexpected(use.error());

  ParsedJwk out;
  out.kid = kid;
  if (**kty == "OKP") {
    if (!*crv || **crv != "Ed25519") {
      return std::unexpected("crv " + (*crv ? escapedExcerpt(**crv, 16) : "(none)") +
                             " is not accepted for kty OKP (Ed25519 only)");
    }
    out.alg = Algorithm::kEdDSA;
  } else if (**kty == "EC") {
    if (!*crv || **crv != "P-256") {
      return std::unexpected("crv " + (*crv ? escapedExcerpt(**crv, 16) : "(none)") +
                             " is not accepted for kty EC (P-256 only)");
    }
    out.alg = Algorithm::kES256;
  } else {
    return std::unexpected("kty " + escapedExcerpt(**kty, 16) +
                           " is not accepted (OKP with Ed25519, or EC with P-256; no RSA, no "
                           "symmetric keys)");
  }
  if (*alg && **alg != nameOf(out.alg)) {
    return std::unexpected("alg " + escapedExcerpt(**alg, 16) + " does not fit crv " + **crv +
                           " (" + nameOf(out.alg) + ")");
  }
  if (*use && **use != "sig") {
    return std::unexpected("use " + escapedExcerpt(**use, 16) +
                           " is not sig (a trusted key verifies signatures)");
  }

  auto x = coordinate(jwk, "x", **crv);
  if (!x) return std::unexpected(x.error());
  if (out.alg == Algorithm::kEdDSA) {
    out.pkey = ed25519PublicKey(*x);
    if (!out.pkey) return std::unexpected("x is not an Ed25519 public key");
  } else {
    auto y = coordinate(jwk, "y", **crv);
    if (!y) return std::unexpected(y.error());
    out.pkey = p256PublicKey(*x, *y);
    if (!out.pkey) return std::unexpected("x and y are not a point on P-256");
  }
  return out;
}

// --- signatures: JWS form and OpenSSL's ---

// r||s (32 bytes each) as the DER ECDSA-Sig-Value OpenSSL verifies; 0 when it cannot be
// encoded. `der` holds at most 72 bytes for P-256 (two 33-byte INTEGERs and their headers).
int es256ToDer(std::string_view rs, unsigned char (&der)[80]) {
  ossl::Bignum r(BN_bin2bn(bytesOf(rs), kCoordinateBytes, nullptr));
  ossl::Bignum s(BN_bin2bn(bytesOf(rs) + kCoordinateBytes, kCoordinateBytes, nullptr));
  ossl::EcdsaSig sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return 0;
  // ECDSA_SIG_set0 took r and s.
  (void)r.release();
  (void)s.release();
  const int size = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (size <= 0 || static_cast<std::size_t>(size) > sizeof der) return 0;
  unsigned char* p = der;
  return i2d_ECDSA_SIG(sig.get(), &p);
}

// OpenSSL's DER signature as the JWS wants it: r||s, each left-padded to 32 bytes.
std::string derToEs256(const unsigned char* der, std::size_t size) {
  const unsigned char* p = der;
  ossl::EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(size)));
  if (!sig) throw std::runtime_error("signing: OpenSSL returned an ECDSA signature it cannot read");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(kSignatureBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, o, kCoordinateBytes) != static_cast<int>(kCoordinateBytes) ||
      BN_bn2binpad(s, o + kCoordinateBytes, kCoordinateBytes) !=
          static_cast<int>(kCoordinateBytes)) {
    throw std::runtime_error("signing: an ECDSA signature value is longer than 32 bytes");
  }
  return out;
}

// A P-256 key's public coordinate (OSSL_PKEY_PARAM_EC_PUB_X or _Y), 32 bytes.
std::string p256Coordinate(const EVP_PKEY* pkey, const char* param) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, param, &raw) != 1) {
    throw std::runtime_error("publicJwk: OpenSSL did not give the P-256 public key");
  }
  ossl::Bignum bn(raw);
  std::string out(kCoordinateBytes, '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), kCoordinateBytes) !=
      static_cast<int>(kCoordinateBytes)) {
    throw std::runtime_error("publicJwk: a P-256 coordinate is longer than 32 bytes");
  }
  return out;
}

bool isP256(const EVP_PKEY* pkey) {
  char group[64] = {};
  std::size_t len = 0;
  return EVP_PKEY_is_a(pkey, "EC") &&
         EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        &len) == 1 &&
         std::string_view(group, len) == kP256GroupName;
}

// "an RSA key", "an EC key on secp384r1": what a refused private key is, never what it holds.
std::string describeKeyType(const EVP_PKEY* pkey) {
  const char* type = EVP_PKEY_get0_type_name(pkey);
  std::string out = std::string("a key of type ") + (type ? type : "unknown");
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_is_a(pkey, "EC") && EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                                                  group, sizeof group, &len) == 1) {
    out += " on curve " + std::string(group, len);
  }
  return out;
}

// The passphrase callback: none. Without it OpenSSL would prompt on the terminal for an
// encrypted key.
int noPassphrase(char*, int, int, void*) {
  return 0;
}

}  // namespace

// --- PublicKey ---

bool PublicKey::verifies(std::string_view signing_input, std::string_view signature) const {
  ClearOpenSslErrors clear;
  if (!key_ || signature.size() != kSignatureBytes) return false;
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  if (alg_ == Algorithm::kEdDSA) {
    // Ed25519 hashes internally (PureEdDSA): no digest, one-shot verify.
    return EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey.get()) == 1 &&
           EVP_DigestVerify(ctx.get(), bytesOf(signature), signature.size(), bytesOf(signing_input),
                            signing_input.size()) == 1;
  }
  unsigned char der[80];
  const int der_size = es256ToDer(signature, der);
  return der_size > 0 &&
         EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_->pkey.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), der, static_cast<std::size_t>(der_size),
                          bytesOf(signing_input), signing_input.size()) == 1;
}

// --- KeySet ---

std::expected<KeySet, std::string> KeySet::parseJwks(std::string_view json) {
  ClearOpenSslErrors clear;
  const Json doc = Json::parse(json, nullptr, false);
  if (doc.is_discarded()) return std::unexpected("the JWKS is not JSON");
  if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) {
    return std::unexpected("the JWKS is not a JSON object with a \"keys\" array");
  }
  const Json& keys = doc["keys"];
  if (keys.empty()) return std::unexpected("the JWKS holds no keys");
  KeySet set;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const Json& jwk = keys[i];
    const std::string where = "key " + std::to_string(i);
    if (!jwk.is_object()) return std::unexpected(where + " is not a JSON object");
    const auto kid = jwk.find("kid");
    if (kid == jwk.end() || !kid->is_string() || kid->get_ref<const std::string&>().empty()) {
      return std::unexpected(where +
                             " has no kid (every trusted key needs one, unique in the set)");
    }
    const auto& kid_text = kid->get_ref<const std::string&>();
    const std::string named = where + " (kid " + kidForMessage(kid_text) + ")";
    for (std::size_t j = 0; j < set.keys_.size(); ++j) {
      if (set.keys_[j].kid_ == kid_text) {
        return std::unexpected(named +
                               ": the kid is used by an earlier key too; each kid "
                               "must be unique");
      }
    }
    auto parsed = parseJwk(jwk, kid_text);
    if (!parsed) return std::unexpected(named + ": " + parsed.error());
    PublicKey key;
    key.kid_ = std::move(parsed->kid);
    key.alg_ = parsed->alg;
    key.key_ =
        std::make_shared<const PublicKey::Handle>(PublicKey::Handle{std::move(parsed->pkey)});
    set.keys_.push_back(std::move(key));
  }
  std::sort(set.keys_.begin(), set.keys_.end(),
            [](const PublicKey& a, const PublicKey& b) { return a.kid_ < b.kid_; });
  return set;
}

std::expected<KeySet, std::string> KeySet::loadJwksFile(const std::string& path) {
  return withFileBytes<KeySet>(path, kMaxJwksBytes,
                               [](std::string_view text) { return KeySet::parseJwks(text); });
}

const PublicKey* KeySet::find(std::string_view kid) const {
  const auto it =
      std::lower_bound(keys_.begin(), keys_.end(), kid,
                       [](const PublicKey& k, std::string_view v) { return k.kid_ < v; });
  return it != keys_.end() && it->kid_ == kid ? &*it : nullptr;
}

std::vector<std::string> KeySet::kids() const {
  std::vector<std::string> out;
  out.reserve(keys_.size());
  for (const auto& k : keys_) out.push_back(k.kid_);
  return out;  // keys_ is sorted by kid
}

// --- SigningKey ---

SigningKey::SigningKey(SigningKey&&) noexcept = default;
SigningKey& SigningKey::operator=(SigningKey&&) noexcept = default;
SigningKey::~SigningKey() = default;

SigningKey SigningKey::generateEd25519() {
  ClearOpenSslErrors clear;
  ossl::Pkey pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!pkey) throw std::runtime_error("generating an Ed25519 key failed in OpenSSL");
  SigningKey key;
  key.alg_ = Algorithm::kEdDSA;
  key.key_ = std::make_unique<Handle>(Handle{std::move(pkey)});
  return key;
}

std::expected<SigningKey, std::string> SigningKey::loadPemFile(const std::string& path) {
  return withFileBytes<SigningKey>(path, kMaxPemBytes,
                                   [](std::string_view pem) { return parsePem(pem); });
}

std::expected<SigningKey, std::string> SigningKey::parsePem(std::string_view pem) {
  ClearOpenSslErrors clear;
  if (pem.find("ENCRYPTED") != std::string_view::npos) {
    return std::unexpected(
        "the private key is encrypted; the signer reads an unencrypted PKCS#8 PEM (keep the file "
        "mode 0600)");
  }
  // A read-only memory BIO over the caller's bytes: no copy of the key to wipe. OpenSSL decodes
  // private keys in its secure heap and clears what it frees.
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return std::unexpected("cannot read the private key (out of memory)");
  ossl::Pkey pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr));
  if (!pkey) {
    return std::unexpected(
        "it is not a private key in PEM (PKCS#8, \"-----BEGIN PRIVATE KEY-----\")");
  }
  SigningKey key;
  if (EVP_PKEY_is_a(pkey.get(), "ED25519")) {
    key.alg_ = Algorithm::kEdDSA;
  } else if (isP256(pkey.get())) {
    key.alg_ = Algorithm::kES256;
  } else {
    return std::unexpected("it is " + describeKeyType(pkey.get()) +
                           "; commands are signed with Ed25519 or P-256 keys only");
  }
  key.key_ = std::make_unique<Handle>(Handle{std::move(pkey)});
  return key;
}

std::string SigningKey::privatePem() const {
  ClearOpenSslErrors clear;
  // A memory BIO frees its buffer with OPENSSL_clear_free: the copy inside OpenSSL is wiped.
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key_->pkey.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    throw std::runtime_error("writing the private key as PEM failed in OpenSSL");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string SigningKey::publicJwk(std::string_view kid) const {
  ClearOpenSslErrors clear;
  Json jwk;
  if (alg_ == Algorithm::kEdDSA) {
    std::string x(kCoordinateBytes, '\0');
    std::size_t size = x.size();
    if (EVP_PKEY_get_raw_public_key(key_->pkey.get(), reinterpret_cast<unsigned char*>(x.data()),
                                    &size) != 1 ||
        size != kCoordinateBytes) {
      throw std::runtime_error("publicJwk: OpenSSL did not give the Ed25519 public key");
    }
    jwk = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", encodeBase64Url(x)}};
  } else {
    jwk = {{"kty", "EC"},
           {"crv", "P-256"},
           {"x", encodeBase64Url(p256Coordinate(key_->pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X))},
           {"y", encodeBase64Url(p256Coordinate(key_->pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y))}};
  }
  jwk["kid"] = std::string(kid);
  jwk["use"] = "sig";
  jwk["alg"] = nameOf(alg_);
  return jwk.dump();
}

std::string SigningKey::sign(std::string_view signing_input) const {
  ClearOpenSslErrors clear;
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  const EVP_MD* md = alg_ == Algorithm::kEdDSA ? nullptr : EVP_sha256();
  std::size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, bytesOf(signing_input), signing_input.size()) !=
          1) {
    throw std::runtime_error("signing failed in OpenSSL");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     bytesOf(signing_input), signing_input.size()) != 1) {
    throw std::runtime_error("signing failed in OpenSSL");
  }
  signature.resize(size);
  if (alg_ == Algorithm::kEdDSA) return signature;
  return derToEs256(bytesOf(signature), signature.size());
}

// --- addToJwks ---

std::expected<std::string, std::string> addToJwks(std::string_view jwks, std::string_view jwk) {
  Json set;
  if (jwks.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    set = {{"keys", Json::array()}};
  } else {
    set = Json::parse(jwks, nullptr, false);
    if (set.is_discarded() || !set.is_object() || !set.contains("keys") ||
        !set["keys"].is_array()) {
      return std::unexpected("the JWKS is not a JSON object with a \"keys\" array");
    }
  }
  Json key = Json::parse(jwk, nullptr, false);
  if (key.is_discarded() || !key.is_object()) {
    return std::unexpected("the JWK is not a JSON object");
  }
  if (!key.contains("kid") || !key["kid"].is_string() || key["kid"].get<std::string>().empty()) {
    return std::unexpected("the JWK has no kid");
  }
  const std::string& kid = key["kid"].get_ref<const std::string&>();
  for (const auto& existing : set["keys"]) {
    if (existing.is_object() && existing.contains("kid") && existing["kid"] == kid) {
      return std::unexpected("the JWKS already holds a key with kid " + kidForMessage(kid) +
                             "; choose another kid (a rotated key gets a new one)");
    }
  }
  set["keys"].push_back(std::move(key));
  std::string text = set.dump(2) + "\n";
  // What is written must load: the same checks a worker makes, on the whole new set.
  if (auto check = KeySet::parseJwks(text); !check) return std::unexpected(check.error());
  return text;
}

}  // namespace outpost::security
