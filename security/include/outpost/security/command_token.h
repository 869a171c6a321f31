// Signed commands: the JWT a control plane puts in a command record's `outpost-signature` header,
// and the checks a worker makes before it decodes the record's value. The token binds the value
// (its SHA-256), where it may be read (topic, pools), what it is (kind, content type, the id
// inside it) and when (iat, exp, nbf). Pure: no I/O, time comes in as an argument.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/security/keys.h"

namespace outpost::security {

inline constexpr std::string_view kSignatureHeader = "outpost-signature";
inline constexpr std::string_view kTokenType = "outpost-command+jwt";

enum class CommandKind { kJob, kControl };
const char* nameOf(CommandKind k);  // "job", "control"

// The claims, as signed. Times are Unix seconds (RFC 7519 NumericDate).
struct CommandClaims {
  std::string sha256;            // base64url (no padding) SHA-256 of the value bytes
  std::string topic;             // the topic it was written to
  std::vector<std::string> aud;  // "outpost:<pool>", one or more (a single string on the wire
                                 // is accepted too)
  CommandKind kind = CommandKind::kJob;
  std::string jti;  // run_id (job) or command_id (control)
  std::string cty;  // "protobuf", "json", "cloudevents", "schema-registry"
  std::int64_t iat = 0;
  std::int64_t exp = 0;
  std::optional<std::int64_t> nbf;
  std::string iss;  // the signer's name; optional, logged
};

// What a verified token says, with the key that signed it.
struct VerifiedCommand {
  CommandClaims claims;
  std::string kid;
  Algorithm alg = Algorithm::kEdDSA;
};

// Which check refused a token. reasonOf() is the bounded word for metrics
// (outpost_rejected_total{reason}); SignatureRefusal::message is for people.
enum class SignatureCheck {
  kMissing,           // no outpost-signature header (or an empty one)
  kMalformed,         // not a compact JWS, bad base64url, bad JSON, a claim missing or mistyped,
                      // a wrong typ
  kAlgorithm,         // alg not EdDSA/ES256 (none, HS256, RS256, ...), or not the key's
  kUnknownKey,        // kid not in the trusted keys
  kBadSignature,      // the signature does not verify
  kExpired,           // now > exp + leeway
  kNotYetValid,       // now < nbf - leeway, or iat in the future beyond the leeway
  kLifetime,          // exp - iat > max lifetime
  kValueChanged,      // sha256 is not that of the value read
  kWrongTopic,        // signed for another topic
  kWrongPool,         // aud does not name this pool
  kWrongKind,         // a control token on a job command, or the other way round
  kWrongContentType,  // signed as one encoding, read as another
  kWrongId,           // jti is not the id inside the value (checked by the caller after decoding)
  kPolicy,            // the key may not sign this (template, action, pool): checked by the caller
  kReplayed,          // a copy of a command already used elsewhere: checked by the caller
};
const char* reasonOf(SignatureCheck c);  // "signature_missing", ..., "replayed"
inline constexpr SignatureCheck kSignatureChecks[] = {
    SignatureCheck::kMissing,          SignatureCheck::kMalformed,    SignatureCheck::kAlgorithm,
    SignatureCheck::kUnknownKey,       SignatureCheck::kBadSignature, SignatureCheck::kExpired,
    SignatureCheck::kNotYetValid,      SignatureCheck::kLifetime,     SignatureCheck::kValueChanged,
    SignatureCheck::kWrongTopic,       SignatureCheck::kWrongPool,    SignatureCheck::kWrongKind,
    SignatureCheck::kWrongContentType, SignatureCheck::kWrongId,      SignatureCheck::kPolicy,
    SignatureCheck::kReplayed};

struct SignatureRefusal {
  SignatureCheck check;
  // Starts with "signature: " (e.g. "signature: expired 4m ago", "signature: signed for pool
  // etl, this is pool ingest"); never quotes more than a short escaped excerpt of the input.
  std::string message;
};

// What the record must match.
struct RecordFacts {
  std::string_view value;  // the value bytes exactly as read
  std::string_view topic;
  std::string_view pool;  // this worker's pool
  CommandKind kind = CommandKind::kJob;
  std::string_view cty;  // the encoding the worker found the value to be in
};

struct TokenLimits {
  std::chrono::seconds max_lifetime{900};
  std::chrono::seconds leeway{60};
};

// Verifies `token` (the header's value) for the record: the algorithm is allow-listed, the
// header's typ is kTokenType (and it has no crit), the key is trusted and the algorithm is the
// key's, the signature verifies, every claim is there with its type, then the claims in this
// order: kind, topic, pool, content type, value hash, lifetime, nbf/iat, exp. The first failing
// check refuses. The payload is not parsed before its signature verifies.
std::expected<VerifiedCommand, SignatureRefusal> verifyCommandToken(
    std::string_view token, const RecordFacts& record, const KeySet& keys,
    const TokenLimits& limits, std::chrono::system_clock::time_point now);

// The claims a signer writes for `value`: sha256 computed here, aud = "outpost:<pool>" for each of
// `pools`, iat = now, exp = now + lifetime.
CommandClaims claimsFor(std::string_view value, std::string topic, std::vector<std::string> pools,
                        CommandKind kind, std::string jti, std::string cty, std::string iss,
                        std::chrono::system_clock::time_point now, std::chrono::seconds lifetime);

// A compact JWS with the protected header {"alg", "kid", "typ": kTokenType} over `claims`.
std::string signCommandToken(const SigningKey& key, std::string_view kid,
                             const CommandClaims& claims);

// "30s", "4m", "2h 5m": how long `seconds` (or -`seconds`) is, for refusals and logs; the caller
// says which way ("expired 4m ago", "not valid for another 5m"). Under 2 minutes in seconds, under
// 2 hours in whole minutes, then hours and minutes.
std::string describeSpan(std::int64_t seconds);

}  // namespace outpost::security
