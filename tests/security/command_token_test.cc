// The command token without the network: every check the verifier makes, one test each, with the
// leeway at both edges, the order of the checks, what refusals quote, and key rotation. The clock
// is an argument: no test sleeps or reads the wall clock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <chrono>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "outpost/common/base64.h"
#include "outpost/security/command_token.h"
#include "outpost/security/keys.h"
#include "test_vectors.h"

namespace outpost::security {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using namespace test;
using testing::HasSubstr;
using testing::StartsWith;

constexpr std::int64_t kNow = 1'800'000'000;
const auto kNowTp = std::chrono::system_clock::time_point(std::chrono::seconds(kNow));
const std::string kValue = R"({"run_id":"r-1","job_type":"etl"})";
const std::string kTopic = "outpost.commands";

RecordFacts facts() {
  return RecordFacts{kValue, kTopic, "ingest", CommandKind::kJob, "json"};
}

CommandClaims goodClaims(std::chrono::seconds lifetime = 300s) {
  return claimsFor(kValue, kTopic, {"ingest"}, CommandKind::kJob, "r-1", "json", "scheduler",
                   kNowTp, lifetime);
}

// The signers and the worker's trusted keys, made once: an Ed25519 key and a P-256 key.
struct Signers {
  SigningKey ed = SigningKey::parsePem(kRfc8037Pem).value();
  SigningKey p256 = SigningKey::parsePem(kRfc7515Pem).value();
  KeySet trusted = KeySet::parseJwks(jwks({json::parse(ed.publicJwk("ed-1")),
                                           json::parse(p256.publicJwk("p256-1"))}))
                       .value();
};
const Signers& signers() {
  static const Signers s;
  return s;
}

std::expected<VerifiedCommand, SignatureRefusal> verify(std::string_view token,
                                                        const RecordFacts& record = facts(),
                                                        const TokenLimits& limits = {},
                                                        std::int64_t now = kNow) {
  return verifyCommandToken(token, record, signers().trusted, limits,
                            std::chrono::system_clock::time_point(std::chrono::seconds(now)));
}

std::string goodToken(const CommandClaims& claims = goodClaims()) {
  return signCommandToken(signers().ed, "ed-1", claims);
}

json partOf(const std::string& token, int index) {
  std::size_t start = 0;
  for (int i = 0; i < index; ++i) start = token.find('.', start) + 1;
  const std::size_t end = token.find('.', start);
  return json::parse(decodeBase64Url(token.substr(start, end - start)).value());
}

// A token with this header and payload text, signed by `key` whatever the header says.
std::string signedText(const std::string& header, const std::string& payload,
                       const SigningKey& key = signers().ed) {
  const std::string input = encodeBase64Url(header) + "." + encodeBase64Url(payload);
  return input + "." + encodeBase64Url(key.sign(input));
}

json goodHeader() {
  return partOf(goodToken(), 0);
}
json goodPayload() {
  return partOf(goodToken(), 1);
}

std::string withPayload(const json& payload) {
  return signedText(goodHeader().dump(), payload.dump());
}
std::string withHeader(const json& header) {
  return signedText(header.dump(), goodPayload().dump());
}

// Expects a refusal by `check` whose message has `words`; returns the message.
std::string refusal(const std::expected<VerifiedCommand, SignatureRefusal>& r,
                    SignatureCheck check) {
  EXPECT_FALSE(r);
  if (r) return "";
  EXPECT_EQ(r.error().check, check) << r.error().message;
  EXPECT_THAT(r.error().message, StartsWith("signature: "));
  return r.error().message;
}

TEST(CommandToken, AcceptsAGoodTokenAndSaysWhatItSigned) {
  for (const auto* kid : {"ed-1", "p256-1"}) {
    const SigningKey& key = std::string(kid) == "ed-1" ? signers().ed : signers().p256;
    auto verified = verify(signCommandToken(key, kid, goodClaims()));
    ASSERT_TRUE(verified) << verified.error().message;
    EXPECT_EQ(verified->kid, kid);
    EXPECT_EQ(verified->alg, key.algorithm());
    const CommandClaims& c = verified->claims;
    EXPECT_EQ(c.sha256, goodClaims().sha256);
    EXPECT_EQ(c.topic, kTopic);
    EXPECT_EQ(c.aud, std::vector<std::string>{"outpost:ingest"});
    EXPECT_EQ(c.kind, CommandKind::kJob);
    EXPECT_EQ(c.jti, "r-1");
    EXPECT_EQ(c.cty, "json");
    EXPECT_EQ(c.iat, kNow);
    EXPECT_EQ(c.exp, kNow + 300);
    EXPECT_EQ(c.nbf, std::nullopt);
    EXPECT_EQ(c.iss, "scheduler");
  }
}

TEST(CommandToken, WritesTheHeaderAndClaimsAsSpecified) {
  const std::string token = goodToken();
  EXPECT_EQ(token.substr(0, token.find('.')),
            encodeBase64Url(R"({"alg":"EdDSA","kid":"ed-1","typ":"outpost-command+jwt"})"));
  const json payload = partOf(token, 1);
  // sha256 is base64url of the value's SHA-256 (computed apart, with OpenSSL's one-shot digest).
  unsigned char digest[32];
  unsigned int size = 0;
  EVP_Digest(kValue.data(), kValue.size(), digest, &size, EVP_sha256(), nullptr);
  EXPECT_EQ(payload["sha256"], encodeBase64Url(std::string(reinterpret_cast<char*>(digest), 32)));
  EXPECT_EQ(payload["aud"], json::array({"outpost:ingest"}));
  EXPECT_EQ(payload["iat"], kNow);
  EXPECT_EQ(payload["exp"], kNow + 300);
  EXPECT_FALSE(payload.contains("nbf"));
}

TEST(CommandToken, MissingWhenEmpty) {
  EXPECT_THAT(refusal(verify(""), SignatureCheck::kMissing), HasSubstr("outpost-signature"));
}

TEST(CommandToken, MalformedWhenNotACompactJws) {
  const std::string good = goodToken();
  const std::string header = good.substr(0, good.find('.'));
  for (const std::string& token :
       {std::string("abc"), std::string("a.b"), good + ".x", std::string(".."), "!!." + good,
        "e30=." + good.substr(good.find('.') + 1), header + ".e30." + std::string(86, '!'),
        std::string(20000, 'a')}) {
    SCOPED_TRACE(token.substr(0, 80));
    refusal(verify(token), SignatureCheck::kMalformed);
  }
}

TEST(CommandToken, MalformedHeaders) {
  const std::string payload = goodPayload().dump();
  auto without = [](const char* name) {
    json h = goodHeader();
    h.erase(name);
    return h.dump();
  };
  const std::pair<std::string, const char*> cases[] = {
      {"not json", "the header is not JSON"},
      {"[1]", "the header is not a JSON object"},
      {without("alg"), "no alg"},
      {without("kid"), "no kid"},
      {with(goodHeader(), {{"kid", 5}}).dump(), "no kid"},
      {without("typ"), "typ is missing"},
      {with(goodHeader(), {{"typ", "JWT"}}).dump(), "typ is JWT, not outpost-command+jwt"},
      {with(goodHeader(), {{"crit", {"exp"}}}).dump(), "crit"},
      {R"({"alg":"EdDSA","kid":"ed-1","kid":"p256-1","typ":"outpost-command+jwt"})",
       "repeats the member kid"},
  };
  for (const auto& [header, words] : cases) {
    SCOPED_TRACE(header);
    EXPECT_THAT(refusal(verify(signedText(header, payload)), SignatureCheck::kMalformed),
                HasSubstr(words));
  }
  // A signature of another length (what a DER ES256 signature would be).
  const std::string good = goodToken();
  const std::string input = good.substr(0, good.rfind('.'));
  EXPECT_THAT(refusal(verify(input + "." + encodeBase64Url(std::string(70, 'x'))),
                      SignatureCheck::kMalformed),
              HasSubstr("70 bytes, not 64"));
  EXPECT_THAT(refusal(verify(input + "." + good.substr(good.rfind('.') + 1) + "="),
                      SignatureCheck::kMalformed),
              HasSubstr("signature is not base64url"));
}

TEST(CommandToken, MalformedClaims) {
  auto without = [](const char* name) {
    json p = goodPayload();
    p.erase(name);
    return p;
  };
  for (const char* claim : {"sha256", "topic", "aud", "kind", "jti", "cty", "iat", "exp"}) {
    SCOPED_TRACE(claim);
    EXPECT_THAT(refusal(verify(withPayload(without(claim))), SignatureCheck::kMalformed),
                HasSubstr(std::string("the claim ") + claim + " is missing"));
  }
  const std::pair<json, const char*> cases[] = {
      {with(goodPayload(), {{"iat", 1.8e9}}), "the claim iat is not an integer"},
      {with(goodPayload(), {{"exp", "1800000300"}}), "the claim exp is not an integer"},
      {with(goodPayload(), {{"nbf", 1.5}}), "the claim nbf is not an integer"},
      {with(goodPayload(), {{"exp", -1}}), "the claim exp is not a time"},
      {with(goodPayload(), {{"exp", 18000000000000}}), "the claim exp is not a time"},
      {with(goodPayload(), {{"topic", 5}}), "the claim topic is not a string"},
      {with(goodPayload(), {{"sha256", ""}}), "the claim sha256 is not a SHA-256"},
      {with(goodPayload(), {{"sha256", encodeBase64Url(std::string(20, 'x'))}}),
       "the claim sha256 is not a SHA-256"},
      {with(goodPayload(), {{"iss", true}}), "the claim iss is not a string"},
      {with(goodPayload(), {{"aud", 1}}), "the claim aud is not a string or"},
      {with(goodPayload(), {{"aud", json::array()}}), "the claim aud is not a string or"},
      {with(goodPayload(), {{"aud", json::array({"outpost:ingest", 1})}}),
       "the claim aud is not a string or"},
      {with(goodPayload(), {{"kind", "reboot"}}), "the claim kind is reboot, not job or control"},
      {with(goodPayload(), {{"exp", kNow - 1}}), "exp is before iat"},
      {json::array({1}), "the payload is not a JSON object"},
  };
  for (const auto& [payload, words] : cases) {
    SCOPED_TRACE(payload.dump());
    EXPECT_THAT(refusal(verify(withPayload(payload)), SignatureCheck::kMalformed),
                HasSubstr(words));
  }
  const std::string repeated = goodPayload().dump();
  EXPECT_THAT(refusal(verify(signedText(goodHeader().dump(),
                                        repeated.substr(0, repeated.size() - 1) + R"(,"exp":1})")),
                      SignatureCheck::kMalformed),
              HasSubstr("repeats the member exp"));
  EXPECT_THAT(refusal(verify(signedText(goodHeader().dump(), "{")), SignatureCheck::kMalformed),
              HasSubstr("the payload is not JSON"));
}

TEST(CommandToken, RefusesAlgNone) {
  json header = goodHeader();
  header["alg"] = "none";
  const std::string token =
      encodeBase64Url(header.dump()) + "." + encodeBase64Url(goodPayload().dump()) + ".";
  EXPECT_EQ(refusal(verify(token), SignatureCheck::kAlgorithm),
            "signature: algorithm none is not accepted (EdDSA or ES256)");
}

TEST(CommandToken, RefusesHs256) {
  // The classic confusion: an HMAC keyed with the public key's bytes.
  json header = goodHeader();
  header["alg"] = "HS256";
  const std::string token = encodeBase64Url(header.dump()) + "." +
                            encodeBase64Url(goodPayload().dump()) + "." +
                            encodeBase64Url(std::string(32, 'h'));
  EXPECT_EQ(refusal(verify(token), SignatureCheck::kAlgorithm),
            "signature: algorithm HS256 is not accepted (EdDSA or ES256)");
  header["alg"] = "RS256";
  EXPECT_THAT(refusal(verify(withHeader(header)), SignatureCheck::kAlgorithm),
              HasSubstr("algorithm RS256 is not accepted"));
  header["alg"] = 1;
  refusal(verify(withHeader(header)), SignatureCheck::kMalformed);
}

TEST(CommandToken, RefusesAnAlgorithmThatIsNotTheKeys) {
  // An Ed25519 signature labelled ES256 under the Ed25519 key's kid.
  json header = goodHeader();
  header["alg"] = "ES256";
  EXPECT_EQ(refusal(verify(withHeader(header)), SignatureCheck::kAlgorithm),
            "signature: algorithm ES256 is not that of key ed-1 (EdDSA)");
  // And the P-256 key's kid on an EdDSA token.
  header = goodHeader();
  header["kid"] = "p256-1";
  refusal(verify(withHeader(header)), SignatureCheck::kAlgorithm);
}

TEST(CommandToken, RefusesAnUnknownKid) {
  json header = goodHeader();
  header["kid"] = "k9";
  EXPECT_EQ(refusal(verify(withHeader(header)), SignatureCheck::kUnknownKey),
            "signature: unknown key k9");
  header["kid"] = "\x1b[31m" + std::string(500, 'k');
  const std::string message = refusal(verify(withHeader(header)), SignatureCheck::kUnknownKey);
  EXPECT_THAT(message, HasSubstr("\\x1b[31mkkk"));
  EXPECT_LT(message.size(), 120u);
}

TEST(CommandToken, RefusesABadSignature) {
  const std::string good = goodToken();
  const std::string input = good.substr(0, good.rfind('.'));
  std::string signature = decodeBase64Url(good.substr(good.rfind('.') + 1)).value();
  signature[5] ^= 0x04;
  EXPECT_EQ(
      refusal(verify(input + "." + encodeBase64Url(signature)), SignatureCheck::kBadSignature),
      "signature: the signature does not verify with key ed-1");
  // A payload changed under a good signature.
  const std::string other = goodToken(goodClaims(600s));
  const std::string spliced = other.substr(0, other.rfind('.')) + good.substr(good.rfind('.'));
  refusal(verify(spliced), SignatureCheck::kBadSignature);
  // A good signature by the other trusted key, under this key's kid.
  json header = goodHeader();
  header["kid"] = "p256-1";
  header["alg"] = "ES256";
  const std::string p256_input =
      encodeBase64Url(header.dump()) + "." + encodeBase64Url(goodPayload().dump());
  header["kid"] = "ed-1";
  header["alg"] = "EdDSA";
  refusal(verify(encodeBase64Url(header.dump()) + "." + encodeBase64Url(goodPayload().dump()) +
                 "." + encodeBase64Url(signers().p256.sign(p256_input))),
          SignatureCheck::kBadSignature);
}

TEST(CommandToken, RefusesAnExpiredToken) {
  EXPECT_EQ(refusal(verify(goodToken(), facts(), {}, kNow + 300 + 240), SignatureCheck::kExpired),
            "signature: expired 4m ago");
}

TEST(CommandToken, RefusesATokenNotValidBeforeLater) {
  CommandClaims c = goodClaims();
  c.nbf = kNow + 300;
  EXPECT_EQ(refusal(verify(goodToken(c)), SignatureCheck::kNotYetValid),
            "signature: not valid for another 5m");
}

TEST(CommandToken, RefusesATokenIssuedInTheFuture) {
  EXPECT_THAT(refusal(verify(goodToken(), facts(), {}, kNow - 300), SignatureCheck::kNotYetValid),
              HasSubstr("issued 5m in the future"));
}

TEST(CommandToken, RefusesALifetimeOverTheMaximum) {
  EXPECT_EQ(refusal(verify(goodToken(goodClaims(2h))), SignatureCheck::kLifetime),
            "signature: lifetime 2h exceeds the maximum 15m");
  EXPECT_TRUE(verify(goodToken(goodClaims(15min))));
  TokenLimits strict;
  strict.max_lifetime = 299s;
  refusal(verify(goodToken(), facts(), strict), SignatureCheck::kLifetime);
}

TEST(CommandToken, HonoursTheLeewayAtBothEdges) {
  TokenLimits limits;
  limits.leeway = 30s;
  const std::string token = goodToken();  // iat = kNow, exp = kNow + 300
  EXPECT_TRUE(verify(token, facts(), limits, kNow + 300 + 30));
  EXPECT_EQ(refusal(verify(token, facts(), limits, kNow + 300 + 31), SignatureCheck::kExpired),
            "signature: expired 31s ago");
  EXPECT_TRUE(verify(token, facts(), limits, kNow - 30));
  refusal(verify(token, facts(), limits, kNow - 31), SignatureCheck::kNotYetValid);

  CommandClaims c = goodClaims();
  c.nbf = kNow + 100;
  const std::string later = goodToken(c);
  EXPECT_TRUE(verify(later, facts(), limits, kNow + 70));
  refusal(verify(later, facts(), limits, kNow + 69), SignatureCheck::kNotYetValid);

  // Fractions of a second do not count in the token's favour: now is floored, then compared.
  const auto just_after =
      std::chrono::system_clock::time_point(std::chrono::seconds(kNow + 330)) + 999ms;
  EXPECT_TRUE(verifyCommandToken(token, facts(), signers().trusted, limits, just_after));
  EXPECT_FALSE(verifyCommandToken(token, facts(), signers().trusted, limits, just_after + 1ms));
}

TEST(CommandToken, RefusesAChangedValue) {
  RecordFacts record = facts();
  const std::string changed = R"({"run_id":"r-1","job_type":"rm-rf"})";
  record.value = changed;
  EXPECT_EQ(refusal(verify(goodToken(), record), SignatureCheck::kValueChanged),
            "signature: the value is not the one signed");
}

TEST(CommandToken, RefusesAnotherTopic) {
  RecordFacts record = facts();
  record.topic = "outpost.commands.staging";
  EXPECT_EQ(refusal(verify(goodToken(), record), SignatureCheck::kWrongTopic),
            "signature: signed for topic outpost.commands, read from topic "
            "outpost.commands.staging");
}

TEST(CommandToken, RefusesAnotherPool) {
  const CommandClaims etl =
      claimsFor(kValue, kTopic, {"etl"}, CommandKind::kJob, "r-1", "json", "", kNowTp, 300s);
  EXPECT_EQ(refusal(verify(goodToken(etl)), SignatureCheck::kWrongPool),
            "signature: signed for pool etl, this is pool ingest");
  const CommandClaims two = claimsFor(kValue, kTopic, {"etl", "batch"}, CommandKind::kJob, "r-1",
                                      "json", "", kNowTp, 300s);
  EXPECT_EQ(refusal(verify(goodToken(two)), SignatureCheck::kWrongPool),
            "signature: signed for pools etl, batch, this is pool ingest");
  // One of several pools, and aud as a single string, are both fine.
  const CommandClaims three = claimsFor(kValue, kTopic, {"etl", "ingest"}, CommandKind::kJob, "r-1",
                                        "json", "", kNowTp, 300s);
  EXPECT_TRUE(verify(goodToken(three)));
  EXPECT_TRUE(verify(withPayload(with(goodPayload(), {{"aud", "outpost:ingest"}}))));
  // The prefix is part of the audience: a bare pool name is not it.
  EXPECT_EQ(refusal(verify(withPayload(with(goodPayload(), {{"aud", "ingest"}}))),
                    SignatureCheck::kWrongPool),
            "signature: signed for audience ingest, this is pool ingest (audience "
            "outpost:ingest)");
}

TEST(CommandToken, RefusesAnotherKind) {
  RecordFacts record = facts();
  record.kind = CommandKind::kControl;
  EXPECT_EQ(refusal(verify(goodToken(), record), SignatureCheck::kWrongKind),
            "signature: signed as a job command, read as a control command");
}

TEST(CommandToken, RefusesAnotherContentType) {
  RecordFacts record = facts();
  record.cty = "cloudevents";
  EXPECT_EQ(refusal(verify(goodToken(), record), SignatureCheck::kWrongContentType),
            "signature: signed as json, read as cloudevents");
}

TEST(CommandToken, ChecksInTheHeadersOrder) {
  // Everything wrong at once: the first check in command_token.h's order answers.
  RecordFacts record{"other value", "other.topic", "etl", CommandKind::kControl, "protobuf"};
  EXPECT_EQ(verify(goodToken(goodClaims(2h)), record, {}, kNow + 9000).error().check,
            SignatureCheck::kWrongKind);
  record.kind = CommandKind::kJob;
  EXPECT_EQ(verify(goodToken(), record).error().check, SignatureCheck::kWrongTopic);
  record.topic = kTopic;
  EXPECT_EQ(verify(goodToken(), record).error().check, SignatureCheck::kWrongPool);
  record.pool = "ingest";
  EXPECT_EQ(verify(goodToken(), record).error().check, SignatureCheck::kWrongContentType);
  record.cty = "json";
  EXPECT_EQ(verify(goodToken(goodClaims(2h)), record).error().check, SignatureCheck::kValueChanged);
  record.value = kValue;
  EXPECT_EQ(verify(goodToken(goodClaims(2h)), record, {}, kNow + 9000).error().check,
            SignatureCheck::kLifetime);
}

TEST(CommandToken, QuotesOnlyShortEscapedExcerpts) {
  const std::string long_topic = "t\n" + std::string(10000, 'x');
  const CommandClaims c =
      claimsFor(kValue, long_topic, {"ingest"}, CommandKind::kJob, "r-1", "json", "", kNowTp, 300s);
  const std::string message = refusal(verify(goodToken(c)), SignatureCheck::kWrongTopic);
  EXPECT_THAT(message, HasSubstr("t\\x0axxx"));
  EXPECT_LT(message.size(), 200u);
}

TEST(KeyRotation, ASetOfTwoKeysVerifiesTokensFromBoth) {
  SigningKey old_key = SigningKey::generateEd25519();
  SigningKey new_key = SigningKey::parsePem(kRfc7515Pem).value();
  const std::string set_text =
      addToJwks(addToJwks("", old_key.publicJwk("2026-01")).value(), new_key.publicJwk("2026-02"))
          .value();
  const KeySet both = KeySet::parseJwks(set_text).value();
  const std::string old_token = signCommandToken(old_key, "2026-01", goodClaims());
  const std::string new_token = signCommandToken(new_key, "2026-02", goodClaims());
  for (const auto& token : {old_token, new_token}) {
    auto verified = verifyCommandToken(token, facts(), both, {}, kNowTp);
    ASSERT_TRUE(verified) << verified.error().message;
  }
  EXPECT_EQ(verifyCommandToken(old_token, facts(), both, {}, kNowTp)->kid, "2026-01");
  EXPECT_EQ(verifyCommandToken(new_token, facts(), both, {}, kNowTp)->alg, Algorithm::kES256);

  // Once the old key is retired, its tokens are refused.
  const KeySet only_new =
      KeySet::parseJwks(addToJwks("", new_key.publicJwk("2026-02")).value()).value();
  EXPECT_EQ(verifyCommandToken(old_token, facts(), only_new, {}, kNowTp).error().check,
            SignatureCheck::kUnknownKey);
  EXPECT_TRUE(verifyCommandToken(new_token, facts(), only_new, {}, kNowTp));
}

// --- names ---

TEST(Names, ReasonsAreDistinctAndBounded) {
  std::set<std::string> seen;
  for (int i = 0; i <= static_cast<int>(SignatureCheck::kReplayed); ++i) {
    const std::string reason = reasonOf(static_cast<SignatureCheck>(i));
    EXPECT_THAT(reason, testing::MatchesRegex("[a-z_]+")) << i;
    EXPECT_TRUE(seen.insert(reason).second) << reason;
  }
  EXPECT_STREQ(reasonOf(SignatureCheck::kMissing), "signature_missing");
  EXPECT_STREQ(reasonOf(SignatureCheck::kReplayed), "replayed");
  EXPECT_STREQ(nameOf(Algorithm::kEdDSA), "EdDSA");
  EXPECT_STREQ(nameOf(Algorithm::kES256), "ES256");
  EXPECT_STREQ(nameOf(CommandKind::kJob), "job");
  EXPECT_STREQ(nameOf(CommandKind::kControl), "control");
}

TEST(Names, DescribeSpan) {
  EXPECT_EQ(describeSpan(0), "0s");
  EXPECT_EQ(describeSpan(30), "30s");
  EXPECT_EQ(describeSpan(-30), "30s");
  EXPECT_EQ(describeSpan(119), "119s");
  EXPECT_EQ(describeSpan(120), "2m");
  EXPECT_EQ(describeSpan(250), "4m");
  EXPECT_EQ(describeSpan(900), "15m");
  EXPECT_EQ(describeSpan(7199), "119m");
  EXPECT_EQ(describeSpan(7200), "2h");
  EXPECT_EQ(describeSpan(7200 + 5 * 60 + 9), "2h 5m");
  EXPECT_EQ(describeSpan(-(50 * 3600 + 60)), "50h 1m");
  EXPECT_FALSE(describeSpan(std::numeric_limits<std::int64_t>::min()).empty());
}

}  // namespace
}  // namespace outpost::security
