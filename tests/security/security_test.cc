// The keys without the network: the RFC test vectors (RFC 8037 appendix A for Ed25519, RFC 7515
// appendix A.3 for ES256), ES256's JWS signature form against DER, what a JWKS may not hold,
// signing keys and addToJwks. The command token is tested in command_token_test.cc. The test's
// own OpenSSL (DER signatures, foreign key types) is apart from the library's.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "outpost/common/base64.h"
#include "outpost/security/keys.h"
#include "scratch_dir.h"
#include "test_vectors.h"

namespace outpost::security {
namespace {

using nlohmann::json;
using namespace test;
using testing::AllOf;
using testing::HasSubstr;
using testing::Not;
using testing::StartsWith;

// --- the test's own OpenSSL ---

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using Bio = std::unique_ptr<BIO, BioFree>;
using EcdsaSig = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string pemOf(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Pkey loadPem(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// An ECDSA P-256 / SHA-256 signature as OpenSSL makes it: DER, not the JWS form.
std::string derSignature(EVP_PKEY* key, std::string_view input) {
  MdCtx ctx(EVP_MD_CTX_new());
  std::size_t size = 0;
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &size, bytes(input), input.size()), 1);
  std::string sig(size, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &size,
                           bytes(input), input.size()),
            1);
  sig.resize(size);
  return sig;
}

bool verifiesDer(EVP_PKEY* key, std::string_view input, std::string_view der) {
  MdCtx ctx(EVP_MD_CTX_new());
  return EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
         EVP_DigestVerify(ctx.get(), bytes(der), der.size(), bytes(input), input.size()) == 1;
}

std::string derToRaw(std::string_view der) {
  const unsigned char* p = bytes(der);
  EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  EXPECT_TRUE(sig);
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + 32, 32);
  return raw;
}

std::string rawToDer(std::string_view raw) {
  EcdsaSig sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(bytes(raw), 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes(raw) + 32, 32, nullptr);
  EXPECT_EQ(ECDSA_SIG_set0(sig.get(), r, s), 1);
  std::string der(static_cast<std::size_t>(i2d_ECDSA_SIG(sig.get(), nullptr)), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig.get(), &p);
  return der;
}

// --- RFC vectors ---

TEST(Rfc8037, AppendixA4VerifiesWithTheA2Key) {
  auto set = KeySet::parseJwks(jwks({rfc8037Jwk()}));
  ASSERT_TRUE(set) << set.error();
  const PublicKey* key = set->find("rfc8037");
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->algorithm(), Algorithm::kEdDSA);
  const std::string signature = decodeBase64Url(kRfc8037Signature).value();
  EXPECT_TRUE(key->verifies(kRfc8037SigningInput, signature));

  std::string flipped = signature;
  flipped[10] ^= 0x01;
  EXPECT_FALSE(key->verifies(kRfc8037SigningInput, flipped));
  EXPECT_FALSE(key->verifies(std::string(kRfc8037SigningInput) + "x", signature));
  EXPECT_FALSE(key->verifies(kRfc8037SigningInput, signature.substr(0, 63)));
}

TEST(Rfc8037, TheA1KeySignsAppendixA4) {
  auto key = SigningKey::parsePem(kRfc8037Pem);
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->algorithm(), Algorithm::kEdDSA);
  // Ed25519 is deterministic: the RFC's signature, byte for byte.
  EXPECT_EQ(encodeBase64Url(key->sign(kRfc8037SigningInput)), kRfc8037Signature);
  const json jwk = json::parse(key->publicJwk("k1"));
  EXPECT_EQ(jwk, json({{"kty", "OKP"},
                       {"crv", "Ed25519"},
                       {"x", kRfc8037X},
                       {"kid", "k1"},
                       {"use", "sig"},
                       {"alg", "EdDSA"}}));
}

TEST(Rfc7515, AppendixA3VerifiesWithItsKey) {
  auto set = KeySet::parseJwks(jwks({rfc7515Jwk()}));
  ASSERT_TRUE(set) << set.error();
  const PublicKey* key = set->find("rfc7515");
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->algorithm(), Algorithm::kES256);
  const std::string signature = decodeBase64Url(kRfc7515Signature).value();
  EXPECT_TRUE(key->verifies(kRfc7515SigningInput, signature));
  std::string flipped = signature;
  flipped[40] ^= 0x01;
  EXPECT_FALSE(key->verifies(kRfc7515SigningInput, flipped));
}

TEST(Rfc7515, TheA3KeyLoadsAndWritesItsJwk) {
  auto key = SigningKey::parsePem(kRfc7515Pem);
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->algorithm(), Algorithm::kES256);
  const json jwk = json::parse(key->publicJwk("k2"));
  EXPECT_EQ(jwk, json({{"kty", "EC"},
                       {"crv", "P-256"},
                       {"x", kRfc7515X},
                       {"y", kRfc7515Y},
                       {"kid", "k2"},
                       {"use", "sig"},
                       {"alg", "ES256"}}));
}

// --- ES256: the JWS form, not DER ---

TEST(Es256, SignsInTheJwsFormAndVerifiesItsOwn) {
  auto key = SigningKey::parsePem(kRfc7515Pem).value();
  auto set = KeySet::parseJwks(jwks({json::parse(key.publicJwk("p"))})).value();
  const std::string input = "eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ";
  for (int i = 0; i < 20; ++i) {  // ECDSA is randomized; short r or s get padded, not shortened
    const std::string sig = key.sign(input);
    ASSERT_EQ(sig.size(), 64u);
    EXPECT_TRUE(set.find("p")->verifies(input, sig));
    // Independently of the library: r||s re-encoded as DER verifies with plain OpenSSL.
    Pkey pkey = loadPem(kRfc7515Pem);
    EXPECT_TRUE(verifiesDer(pkey.get(), input, rawToDer(sig)));
  }
}

TEST(Es256, ADerSignatureIsNotAJwsSignature) {
  Pkey pkey = loadPem(kRfc7515Pem);
  auto set = KeySet::parseJwks(jwks({rfc7515Jwk()})).value();
  const PublicKey* key = set.find("rfc7515");
  const std::string input = kRfc7515SigningInput;
  const std::string der = derSignature(pkey.get(), input);
  ASSERT_TRUE(verifiesDer(pkey.get(), input, der));
  // What a signer that forgot the conversion would send: refused, whatever its length.
  EXPECT_FALSE(key->verifies(input, der));
  std::string der64 = der;
  der64.resize(64, '\0');
  EXPECT_FALSE(key->verifies(input, der64));
  // The same signature converted to r||s is good.
  EXPECT_TRUE(key->verifies(input, derToRaw(der)));
}

// --- JWKS ---

TEST(Jwks, ParsesBothKindsAndFindsByKid) {
  auto set = KeySet::parseJwks(jwks(
      {rfc7515Jwk("b-p256"), with(rfc8037Jwk("a-ed25519"), {{"use", "sig"}, {"alg", "EdDSA"}})}));
  ASSERT_TRUE(set) << set.error();
  EXPECT_EQ(set->size(), 2u);
  EXPECT_EQ(set->kids(), (std::vector<std::string>{"a-ed25519", "b-p256"}));
  ASSERT_NE(set->find("a-ed25519"), nullptr);
  EXPECT_EQ(set->find("a-ed25519")->algorithm(), Algorithm::kEdDSA);
  EXPECT_EQ(set->find("b-p256")->algorithm(), Algorithm::kES256);
  EXPECT_EQ(set->find("c"), nullptr);
  EXPECT_EQ(set->find(""), nullptr);
}

std::string jwksError(const std::string& text) {
  auto set = KeySet::parseJwks(text);
  EXPECT_FALSE(set) << text;
  return set ? "" : set.error();
}

TEST(Jwks, RefusesADuplicateKid) {
  EXPECT_THAT(jwksError(jwks({rfc8037Jwk("k1"), rfc7515Jwk("k2"), rfc7515Jwk("k1")})),
              AllOf(HasSubstr("key 2"), HasSubstr("kid k1"), HasSubstr("unique")));
}

TEST(Jwks, RefusesAKeyWithoutKid) {
  json key = rfc8037Jwk();
  key.erase("kid");
  EXPECT_THAT(jwksError(jwks({key})), AllOf(HasSubstr("key 0"), HasSubstr("no kid")));
  key["kid"] = 7;
  EXPECT_THAT(jwksError(jwks({key})), HasSubstr("no kid"));
}

TEST(Jwks, RefusesAPrivateKey) {
  json key = rfc8037Jwk("signer");
  key["d"] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
  const std::string error = jwksError(jwks({rfc7515Jwk(), key}));
  EXPECT_THAT(error, AllOf(HasSubstr("key 1 (kid signer)"), HasSubstr("public keys only")));
  EXPECT_THAT(error, Not(HasSubstr("nWGxne")));
}

TEST(Jwks, RefusesRsaAndSymmetricKeys) {
  EXPECT_THAT(jwksError(jwks({{{"kty", "RSA"}, {"kid", "r"}, {"n", "AQAB"}, {"e", "AQAB"}}})),
              AllOf(HasSubstr("kid r"), HasSubstr("kty RSA is not accepted")));
  EXPECT_THAT(jwksError(jwks({{{"kty", "oct"}, {"kid", "h"}, {"k", "c2VjcmV0"}}})),
              HasSubstr("kty oct is not accepted"));
}

TEST(Jwks, RefusesOtherCurves) {
  EXPECT_THAT(jwksError(jwks({with(rfc8037Jwk(), {{"crv", "Ed448"}})})),
              HasSubstr("crv Ed448 is not accepted"));
  EXPECT_THAT(jwksError(jwks({with(rfc8037Jwk(), {{"crv", "X25519"}})})),
              HasSubstr("crv X25519 is not accepted"));
  EXPECT_THAT(jwksError(jwks({with(rfc7515Jwk(), {{"crv", "P-384"}})})),
              HasSubstr("crv P-384 is not accepted"));
}

TEST(Jwks, RefusesAnAlgThatDisagreesWithTheCurve) {
  EXPECT_THAT(jwksError(jwks({with(rfc7515Jwk(), {{"alg", "EdDSA"}})})),
              HasSubstr("alg EdDSA does not fit crv P-256 (ES256)"));
  EXPECT_THAT(jwksError(jwks({with(rfc8037Jwk(), {{"alg", "ES256"}})})),
              HasSubstr("alg ES256 does not fit"));
  EXPECT_THAT(jwksError(jwks({with(rfc8037Jwk(), {{"alg", "HS256"}})})), HasSubstr("alg HS256"));
}

TEST(Jwks, RefusesAUseOtherThanSig) {
  EXPECT_THAT(jwksError(jwks({with(rfc8037Jwk(), {{"use", "enc"}})})),
              HasSubstr("use enc is not sig"));
}

TEST(Jwks, RefusesCoordinatesOfTheWrongLength) {
  const std::string x31 = encodeBase64Url(std::string(31, '\x01'));
  EXPECT_THAT(jwksError(jwks({with(rfc8037Jwk(), {{"x", x31}})})),
              HasSubstr("x is 31 bytes; an Ed25519 key's is 32"));
  EXPECT_THAT(jwksError(jwks({with(rfc7515Jwk(), {{"y", x31}})})), HasSubstr("y is 31 bytes"));
  EXPECT_THAT(jwksError(jwks({with(rfc8037Jwk(), {{"x", std::string(kRfc8037X) + "="}})})),
              HasSubstr("x is not base64url"));
  json no_y = rfc7515Jwk();
  no_y.erase("y");
  EXPECT_THAT(jwksError(jwks({no_y})), HasSubstr("no y"));
}

TEST(Jwks, RefusesAPointNotOnTheCurve) {
  const std::string one = encodeBase64Url(std::string(31, '\0') + "\x01");
  EXPECT_THAT(jwksError(jwks({with(rfc7515Jwk("bad"), {{"x", one}, {"y", one}})})),
              AllOf(HasSubstr("kid bad"), HasSubstr("not a point on P-256")));
  std::string y = decodeBase64Url(kRfc7515Y).value();
  y[31] ^= 0x01;
  EXPECT_THAT(jwksError(jwks({with(rfc7515Jwk(), {{"y", encodeBase64Url(y)}})})),
              HasSubstr("not a point on P-256"));
}

TEST(Jwks, RefusesWhatIsNotAJwks) {
  EXPECT_THAT(jwksError("not json"), HasSubstr("not JSON"));
  EXPECT_THAT(jwksError("[]"), HasSubstr("\"keys\" array"));
  EXPECT_THAT(jwksError(R"({"keys": {}})"), HasSubstr("\"keys\" array"));
  EXPECT_THAT(jwksError(R"({"keys": []})"), HasSubstr("no keys"));
  EXPECT_THAT(jwksError(R"({"keys": [1]})"), HasSubstr("key 0 is not a JSON object"));
}

TEST(Jwks, EscapesTheKidItQuotes) {
  const std::string kid = "k\"\n" + std::string(200, 'z');
  const std::string error = jwksError(jwks({with(rfc8037Jwk(kid), {{"use", "enc"}})}));
  EXPECT_THAT(error, HasSubstr("k\\x22\\x0azzz"));
  EXPECT_THAT(error, Not(HasSubstr(std::string(100, 'z'))));
}

TEST(Jwks, LoadsAFileAndNamesItInErrors) {
  ScratchDir dir;
  const std::string good = dir.write("jwks.json", jwks({rfc8037Jwk()}));
  auto set = KeySet::loadJwksFile(good);
  ASSERT_TRUE(set) << set.error();
  EXPECT_EQ(set->kids(), std::vector<std::string>{"rfc8037"});

  const std::string bad = dir.write("bad.json", jwks({with(rfc8037Jwk(), {{"use", "enc"}})}));
  auto refused = KeySet::loadJwksFile(bad);
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error(), AllOf(StartsWith(bad + ": "), HasSubstr("use enc")));
  auto missing = KeySet::loadJwksFile(dir.path("missing.json"));
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error(), HasSubstr(dir.path("missing.json")));
}

// --- signing keys ---

TEST(SigningKey, GeneratesEd25519AndRoundTripsItsPem) {
  SigningKey key = SigningKey::generateEd25519();
  EXPECT_EQ(key.algorithm(), Algorithm::kEdDSA);
  const std::string pem = key.privatePem();
  EXPECT_THAT(pem, StartsWith("-----BEGIN PRIVATE KEY-----\n"));
  auto again = SigningKey::parsePem(pem);
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(again->publicJwk("k"), key.publicJwk("k"));
  auto set = KeySet::parseJwks(jwks({json::parse(key.publicJwk("k"))})).value();
  EXPECT_TRUE(set.find("k")->verifies("input", again->sign("input")));
  EXPECT_NE(SigningKey::generateEd25519().publicJwk("k"), key.publicJwk("k"));
}

TEST(SigningKey, RefusesOtherKeyTypesWithoutQuotingTheKey) {
  Pkey rsa(EVP_RSA_gen(1024));
  const std::string rsa_pem = pemOf(rsa.get());
  auto refused = SigningKey::parsePem(rsa_pem);
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error(), AllOf(HasSubstr("RSA"), HasSubstr("Ed25519 or P-256")));
  EXPECT_THAT(refused.error(), Not(HasSubstr(rsa_pem.substr(28, 20))));

  Pkey p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  EXPECT_THAT(SigningKey::parsePem(pemOf(p384.get())).error(), HasSubstr("Ed25519 or P-256"));
  Pkey ed448(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448"));
  EXPECT_THAT(SigningKey::parsePem(pemOf(ed448.get())).error(), HasSubstr("ED448"));
}

TEST(SigningKey, RefusesWhatIsNotAnUnencryptedPrivateKey) {
  EXPECT_THAT(SigningKey::parsePem("hello").error(), HasSubstr("not a private key in PEM"));
  EXPECT_THAT(SigningKey::parsePem("").error(), HasSubstr("not a private key in PEM"));
  std::string truncated = kRfc8037Pem;
  truncated.resize(60);
  EXPECT_THAT(SigningKey::parsePem(truncated).error(), Not(HasSubstr("MC4CAQAw")));
  // Encrypted PKCS#8: refused without a passphrase prompt.
  Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  Bio bio(BIO_new(BIO_s_mem()));
  char pass[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), ed.get(), EVP_aes_256_cbc(), pass, 6, nullptr,
                                          nullptr),
            1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  EXPECT_THAT(SigningKey::parsePem(std::string(data, static_cast<std::size_t>(n))).error(),
              HasSubstr("encrypted"));
}

TEST(SigningKey, LoadsAPemFileAndNamesItInErrors) {
  ScratchDir dir;
  auto key = SigningKey::loadPemFile(dir.write("key.pem", kRfc7515Pem));
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->algorithm(), Algorithm::kES256);
  const std::string bad = dir.write("bad.pem", "nope");
  EXPECT_THAT(SigningKey::loadPemFile(bad).error(), StartsWith(bad + ": "));
  EXPECT_THAT(SigningKey::loadPemFile(dir.path("none.pem")).error(),
              HasSubstr(dir.path("none.pem")));
}

// --- addToJwks ---

TEST(AddToJwks, StartsASetAndAddsToIt) {
  SigningKey first = SigningKey::generateEd25519();
  auto one = addToJwks("", first.publicJwk("2026-01"));
  ASSERT_TRUE(one) << one.error();
  auto second = SigningKey::parsePem(kRfc7515Pem).value();
  auto two = addToJwks(*one, second.publicJwk("2026-02"));
  ASSERT_TRUE(two) << two.error();
  auto set = KeySet::parseJwks(*two);
  ASSERT_TRUE(set) << set.error();
  EXPECT_EQ(set->kids(), (std::vector<std::string>{"2026-01", "2026-02"}));
  // Members the file had besides the keys stay.
  auto kept = addToJwks(R"({"note": "ours", "keys": []})", first.publicJwk("k"));
  ASSERT_TRUE(kept) << kept.error();
  EXPECT_EQ(json::parse(*kept)["note"], "ours");
}

TEST(AddToJwks, RefusesAKidAlreadyThereAndBadKeys) {
  SigningKey key = SigningKey::generateEd25519();
  const std::string set = addToJwks("", key.publicJwk("k1")).value();
  EXPECT_THAT(addToJwks(set, SigningKey::generateEd25519().publicJwk("k1")).error(),
              HasSubstr("already holds a key with kid k1"));
  EXPECT_THAT(addToJwks(set, with(rfc8037Jwk("k2"), {{"d", "x"}}).dump()).error(),
              HasSubstr("public keys only"));
  EXPECT_THAT(addToJwks(set, "{}").error(), HasSubstr("no kid"));
  EXPECT_THAT(addToJwks("[", key.publicJwk("k3")).error(), HasSubstr("\"keys\" array"));
  EXPECT_THAT(addToJwks(set, "nope").error(), HasSubstr("not a JSON object"));
}

}  // namespace
}  // namespace outpost::security
