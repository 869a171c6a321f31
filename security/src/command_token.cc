// The command token: a compact JWS (RFC 7515) whose payload is a JWT claims set (RFC 7519) that
// binds one command record. Verification follows RFC 8725 (JWT best current practice): the
// algorithm comes from an allow-list and must be the key's, the key comes only from the trusted
// set by kid (never from the token), and the payload is not read before its signature verifies.
#include "outpost/security/command_token.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "outpost/common/base64.h"
#include "outpost/common/utf8.h"

namespace outpost::security {

const char* nameOf(CommandKind k) {
  switch (k) {
    case CommandKind::kJob:
      return "job";
    case CommandKind::kControl:
      return "control";
  }
  return "?";
}

const char* reasonOf(SignatureCheck c) {
  // Every word says "signature_" but replayed (a copy of a good token: the signature is fine).
  switch (c) {
    case SignatureCheck::kMissing:
      return "signature_missing";
    case SignatureCheck::kMalformed:
      return "signature_malformed";
    case SignatureCheck::kAlgorithm:
      return "signature_algorithm";
    case SignatureCheck::kUnknownKey:
      return "signature_unknown_key";
    case SignatureCheck::kBadSignature:
      return "signature_invalid";
    case SignatureCheck::kExpired:
      return "signature_expired";
    case SignatureCheck::kNotYetValid:
      return "signature_not_yet_valid";
    case SignatureCheck::kLifetime:
      return "signature_lifetime";
    case SignatureCheck::kValueChanged:
      return "signature_value_changed";
    case SignatureCheck::kWrongTopic:
      return "signature_wrong_topic";
    case SignatureCheck::kWrongPool:
      return "signature_wrong_pool";
    case SignatureCheck::kWrongKind:
      return "signature_wrong_kind";
    case SignatureCheck::kWrongContentType:
      return "signature_wrong_content_type";
    case SignatureCheck::kWrongId:
      return "signature_wrong_id";
    case SignatureCheck::kPolicy:
      return "signature_policy";
    case SignatureCheck::kReplayed:
      return "replayed";
  }
  return "?";
}

std::string describeSpan(std::int64_t seconds) {
  // Magnitude only; a span of INT64_MIN has none, and no token lives that long anyway.
  const std::uint64_t s =
      seconds < 0 ? 0 - static_cast<std::uint64_t>(seconds) : static_cast<std::uint64_t>(seconds);
  if (s < 120) return std::to_string(s) + "s";
  if (s < 2 * 3600) return std::to_string(s / 60) + "m";
  const std::uint64_t minutes = s / 60 % 60;
  return std::to_string(s / 3600) + "h" + (minutes ? " " + std::to_string(minutes) + "m" : "");
}

namespace {

using Json = nlohmann::json;

constexpr std::string_view kPoolPrefix = "outpost:";
// A command token is a few hundred bytes; this bounds the work an attacker's header can cause.
constexpr std::size_t kMaxTokenBytes = 16 * 1024;
// NumericDates up to the year 9999: any sum or difference of two stays far inside int64.
constexpr std::int64_t kMaxTime = 253402300799;
constexpr std::size_t kExcerpt = 64;

std::unexpected<SignatureRefusal> refuse(SignatureCheck check, std::string what) {
  return std::unexpected(SignatureRefusal{check, "signature: " + std::move(what)});
}

// Empty if OpenSSL fails, which then matches no token: readClaims accepts only a 32-byte sha256.
std::string sha256Base64Url(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) != 1) return {};
  return encodeBase64Url(std::string_view(reinterpret_cast<const char*>(digest), size));
}

// A JSON object whose members each appear once. nlohmann keeps the last of repeated names; a
// verifier that reads another one than the signer meant is how JWT parser differentials start,
// so a repeated name refuses the token (RFC 7515 section 4 allows either).
std::expected<Json, std::string> parseObject(std::string_view text) {
  std::set<std::string> names;
  std::string repeated;
  auto unique_names = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && repeated.empty() &&
        !names.insert(parsed.get<std::string>()).second) {
      repeated = parsed.get<std::string>();
    }
    return true;
  };
  Json doc = Json::parse(text, unique_names, false);
  if (doc.is_discarded()) return std::unexpected("is not JSON");
  if (!doc.is_object()) return std::unexpected("is not a JSON object");
  if (!repeated.empty()) {
    return std::unexpected("repeats the member " + escapedExcerpt(repeated, kExcerpt));
  }
  return doc;
}

// --- claims ---

using ClaimError = std::string;

std::expected<std::string, ClaimError> stringClaim(const Json& p, const char* name) {
  const auto it = p.find(name);
  if (it == p.end()) return std::unexpected(std::string("the claim ") + name + " is missing");
  if (!it->is_string()) {
    return std::unexpected(std::string("the claim ") + name + " is not a string");
  }
  return it->get<std::string>();
}

// A NumericDate: an integer number of seconds. RFC 7519 allows fractions; a signer of commands
// writes integers, and a float here is more likely a unit mistake (milliseconds) than intent.
std::expected<std::int64_t, ClaimError> timeClaim(const Json& p, const char* name) {
  const auto it = p.find(name);
  if (it == p.end()) return std::unexpected(std::string("the claim ") + name + " is missing");
  if (!it->is_number_integer()) {
    return std::unexpected(std::string("the claim ") + name + " is not an integer (Unix seconds)");
  }
  const bool in_range = it->is_number_unsigned()
                            ? it->get<std::uint64_t>() <= static_cast<std::uint64_t>(kMaxTime)
                            : it->get<std::int64_t>() >= 0 && it->get<std::int64_t>() <= kMaxTime;
  if (!in_range) {
    return std::unexpected(std::string("the claim ") + name +
                           " is not a time between 1970 and 9999 (Unix seconds)");
  }
  return it->get<std::int64_t>();
}

std::expected<CommandClaims, ClaimError> readClaims(const Json& p) {
  CommandClaims c;
  auto text = [&](const char* name, std::string& out) -> std::optional<ClaimError> {
    auto v = stringClaim(p, name);
    if (!v) return v.error();
    out = std::move(*v);
    return std::nullopt;
  };
  auto time = [&](const char* name, std::int64_t& out) -> std::optional<ClaimError> {
    auto v = timeClaim(p, name);
    if (!v) return v.error();
    out = *v;
    return std::nullopt;
  };
  if (auto e = text("sha256", c.sha256)) return std::unexpected(*e);
  if (const auto digest = decodeBase64Url(c.sha256); !digest || digest->size() != 32) {
    return std::unexpected("the claim sha256 is not a SHA-256 in base64url");
  }
  if (auto e = text("topic", c.topic)) return std::unexpected(*e);

  const auto aud = p.find("aud");
  if (aud == p.end()) return std::unexpected("the claim aud is missing");
  if (aud->is_string()) {
    c.aud.push_back(aud->get<std::string>());
  } else if (aud->is_array() && !aud->empty() &&
             std::all_of(aud->begin(), aud->end(), [](const Json& a) { return a.is_string(); })) {
    for (const auto& a : *aud) c.aud.push_back(a.get<std::string>());
  } else {
    return std::unexpected("the claim aud is not a string or a non-empty array of strings");
  }

  std::string kind;
  if (auto e = text("kind", kind)) return std::unexpected(*e);
  if (kind == nameOf(CommandKind::kJob)) {
    c.kind = CommandKind::kJob;
  } else if (kind == nameOf(CommandKind::kControl)) {
    c.kind = CommandKind::kControl;
  } else {
    return std::unexpected("the claim kind is " + escapedExcerpt(kind, kExcerpt) +
                           ", not job or control");
  }
  if (auto e = text("jti", c.jti)) return std::unexpected(*e);
  if (auto e = text("cty", c.cty)) return std::unexpected(*e);
  if (auto e = time("iat", c.iat)) return std::unexpected(*e);
  if (auto e = time("exp", c.exp)) return std::unexpected(*e);
  if (p.contains("nbf")) {
    std::int64_t nbf = 0;
    if (auto e = time("nbf", nbf)) return std::unexpected(*e);
    c.nbf = nbf;
  }
  if (p.contains("iss")) {
    if (auto e = text("iss", c.iss)) return std::unexpected(*e);
  }
  if (c.exp < c.iat) return std::unexpected("the claim exp is before iat");
  return c;
}

// "pool etl" or "pools etl, batch": what the aud names, for a refusal. An audience without the
// "outpost:" prefix names no pool; it is quoted whole, as "audience ...".
std::string describeAudience(const std::vector<std::string>& aud) {
  constexpr std::size_t kListed = 5;
  const bool all_pools = std::all_of(
      aud.begin(), aud.end(), [](const std::string& a) { return a.starts_with(kPoolPrefix); });
  std::string list;
  for (std::size_t i = 0; i < aud.size() && i < kListed; ++i) {
    std::string_view a = aud[i];
    if (all_pools) a.remove_prefix(kPoolPrefix.size());
    if (i) list += ", ";
    list += escapedExcerpt(a, kExcerpt);
  }
  if (aud.size() > kListed) list += " and " + std::to_string(aud.size() - kListed) + " more";
  const char* what = all_pools ? "pool" : "audience";
  return std::string(what) + (aud.size() == 1 ? " " : "s ") + list;
}

// The claims against the record and the clock, in the order command_token.h gives.
std::expected<void, SignatureRefusal> checkClaims(const CommandClaims& c, const RecordFacts& record,
                                                  const TokenLimits& limits, std::int64_t now) {
  if (c.kind != record.kind) {
    return refuse(SignatureCheck::kWrongKind, std::string("signed as a ") + nameOf(c.kind) +
                                                  " command, read as a " + nameOf(record.kind) +
                                                  " command");
  }
  if (c.topic != record.topic) {
    return refuse(SignatureCheck::kWrongTopic,
                  "signed for topic " + escapedExcerpt(c.topic, kExcerpt) + ", read from topic " +
                      escapedExcerpt(record.topic, kExcerpt));
  }
  const std::string audience = std::string(kPoolPrefix) + std::string(record.pool);
  if (std::find(c.aud.begin(), c.aud.end(), audience) == c.aud.end()) {
    const std::string described = describeAudience(c.aud);
    std::string message =
        "signed for " + described + ", this is pool " + escapedExcerpt(record.pool, kExcerpt);
    if (described.starts_with("audience")) {
      message += " (audience " + escapedExcerpt(audience, kExcerpt + kPoolPrefix.size()) + ")";
    }
    return refuse(SignatureCheck::kWrongPool, std::move(message));
  }
  if (c.cty != record.cty) {
    return refuse(SignatureCheck::kWrongContentType,
                  "signed as " + escapedExcerpt(c.cty, kExcerpt) + ", read as " +
                      escapedExcerpt(record.cty, kExcerpt));
  }
  if (c.sha256 != sha256Base64Url(record.value)) {
    return refuse(SignatureCheck::kValueChanged, "the value is not the one signed");
  }
  const std::int64_t max_lifetime = limits.max_lifetime.count();
  if (c.exp - c.iat > max_lifetime) {
    return refuse(SignatureCheck::kLifetime, "lifetime " + describeSpan(c.exp - c.iat) +
                                                 " exceeds the maximum " +
                                                 describeSpan(max_lifetime));
  }
  const std::int64_t leeway = limits.leeway.count();
  if (c.nbf && *c.nbf > now + leeway) {
    return refuse(SignatureCheck::kNotYetValid,
                  "not valid for another " + describeSpan(*c.nbf - now));
  }
  if (c.iat > now + leeway) {
    return refuse(SignatureCheck::kNotYetValid,
                  "issued " + describeSpan(c.iat - now) +
                      " in the future (more than the clock leeway of " + describeSpan(leeway) +
                      ")");
  }
  if (now > c.exp + leeway) {
    return refuse(SignatureCheck::kExpired, "expired " + describeSpan(now - c.exp) + " ago");
  }
  return {};
}

}  // namespace

std::expected<VerifiedCommand, SignatureRefusal> verifyCommandToken(
    std::string_view token, const RecordFacts& record, const KeySet& keys,
    const TokenLimits& limits, std::chrono::system_clock::time_point now) {
  if (token.empty()) {
    return refuse(SignatureCheck::kMissing,
                  "no outpost-signature header (the command is not signed)");
  }
  if (token.size() > kMaxTokenBytes) {
    return refuse(SignatureCheck::kMalformed, "the token is " + std::to_string(token.size()) +
                                                  " bytes, more than the " +
                                                  std::to_string(kMaxTokenBytes) + " accepted");
  }
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return refuse(
        SignatureCheck::kMalformed,
        "not a compact JWS (three base64url parts joined by '.'): " + escapedExcerpt(token, 24));
  }
  const std::string_view header_part = token.substr(0, dot1);
  const std::string_view payload_part = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_part = token.substr(dot2 + 1);
  const std::string_view signing_input = token.substr(0, dot2);

  // --- the protected header: algorithm, key, type ---
  const auto header_text = decodeBase64Url(header_part);
  if (!header_text) return refuse(SignatureCheck::kMalformed, "the header is not base64url");
  const auto header = parseObject(*header_text);
  if (!header) return refuse(SignatureCheck::kMalformed, "the header " + header.error());
  const auto alg_it = header->find("alg");
  if (alg_it == header->end() || !alg_it->is_string()) {
    return refuse(SignatureCheck::kMalformed, "the header has no alg");
  }
  const std::string& alg_name = alg_it->get_ref<const std::string&>();
  Algorithm alg;
  if (alg_name == nameOf(Algorithm::kEdDSA)) {
    alg = Algorithm::kEdDSA;
  } else if (alg_name == nameOf(Algorithm::kES256)) {
    alg = Algorithm::kES256;
  } else {
    return refuse(SignatureCheck::kAlgorithm, "algorithm " + escapedExcerpt(alg_name, 16) +
                                                  " is not accepted (EdDSA or ES256)");
  }
  const auto kid_it = header->find("kid");
  if (kid_it == header->end() || !kid_it->is_string()) {
    return refuse(SignatureCheck::kMalformed, "the header has no kid");
  }
  const std::string& kid = kid_it->get_ref<const std::string&>();
  const auto typ_it = header->find("typ");
  if (typ_it == header->end() || !typ_it->is_string() ||
      typ_it->get_ref<const std::string&>() != kTokenType) {
    return refuse(SignatureCheck::kMalformed,
                  "the header's typ is " +
                      (typ_it != header->end() && typ_it->is_string()
                           ? escapedExcerpt(typ_it->get_ref<const std::string&>(), kExcerpt)
                           : std::string("missing")) +
                      ", not " + std::string(kTokenType));
  }
  // No extension is understood, so a token that says one must be (RFC 7515 section 4.1.11)
  // cannot be.
  if (header->contains("crit")) {
    return refuse(SignatureCheck::kMalformed, "the header has crit; no extension is accepted");
  }

  // --- the signature ---
  const auto signature = decodeBase64Url(signature_part);
  if (!signature) return refuse(SignatureCheck::kMalformed, "the signature is not base64url");
  if (signature->size() != 64) {
    return refuse(SignatureCheck::kMalformed,
                  "the signature is " + std::to_string(signature->size()) + " bytes, not 64");
  }
  const PublicKey* key = keys.find(kid);
  if (!key) {
    return refuse(SignatureCheck::kUnknownKey, "unknown key " + escapedExcerpt(kid, kExcerpt));
  }
  if (key->algorithm() != alg) {
    return refuse(SignatureCheck::kAlgorithm, "algorithm " + alg_name + " is not that of key " +
                                                  escapedExcerpt(kid, kExcerpt) + " (" +
                                                  nameOf(key->algorithm()) + ")");
  }
  if (!key->verifies(signing_input, *signature)) {
    return refuse(SignatureCheck::kBadSignature,
                  "the signature does not verify with key " + escapedExcerpt(kid, kExcerpt));
  }

  // --- the claims, now that they are known to be the signer's ---
  const auto payload_text = decodeBase64Url(payload_part);
  if (!payload_text) return refuse(SignatureCheck::kMalformed, "the payload is not base64url");
  const auto payload = parseObject(*payload_text);
  if (!payload) return refuse(SignatureCheck::kMalformed, "the payload " + payload.error());
  auto claims = readClaims(*payload);
  if (!claims) return refuse(SignatureCheck::kMalformed, claims.error());
  const std::int64_t now_s =
      std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
  if (auto checked = checkClaims(*claims, record, limits, now_s); !checked) {
    return std::unexpected(std::move(checked.error()));
  }
  return VerifiedCommand{std::move(*claims), kid, alg};
}

CommandClaims claimsFor(std::string_view value, std::string topic, std::vector<std::string> pools,
                        CommandKind kind, std::string jti, std::string cty, std::string iss,
                        std::chrono::system_clock::time_point now, std::chrono::seconds lifetime) {
  CommandClaims c;
  c.sha256 = sha256Base64Url(value);
  c.topic = std::move(topic);
  for (auto& pool : pools) c.aud.push_back(std::string(kPoolPrefix) + std::move(pool));
  c.kind = kind;
  c.jti = std::move(jti);
  c.cty = std::move(cty);
  c.iss = std::move(iss);
  c.iat = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
  c.exp = c.iat + lifetime.count();
  return c;
}

std::string signCommandToken(const SigningKey& key, std::string_view kid,
                             const CommandClaims& claims) {
  // ordered_json keeps the members in the order written: the header reads alg, kid, typ.
  const nlohmann::ordered_json header = {{"alg", nameOf(key.algorithm())},
                                         {"kid", std::string(kid)},
                                         {"typ", std::string(kTokenType)}};
  nlohmann::ordered_json payload;
  if (!claims.iss.empty()) payload["iss"] = claims.iss;
  payload["sha256"] = claims.sha256;
  payload["topic"] = claims.topic;
  payload["aud"] = claims.aud;
  payload["kind"] = nameOf(claims.kind);
  payload["jti"] = claims.jti;
  payload["cty"] = claims.cty;
  payload["iat"] = claims.iat;
  payload["exp"] = claims.exp;
  if (claims.nbf) payload["nbf"] = *claims.nbf;
  std::string token = encodeBase64Url(header.dump()) + "." + encodeBase64Url(payload.dump());
  const std::string signature = key.sign(token);
  token += "." + encodeBase64Url(signature);
  return token;
}

}  // namespace outpost::security
