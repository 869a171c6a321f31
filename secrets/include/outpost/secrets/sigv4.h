// AWS Signature Version 4 (header form, HMAC-SHA256): how every request to an AWS API proves
// who sends it. The steps are public so that a verifier (our tests' fake AWS) can rebuild them.
#pragma once

#include <chrono>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "outpost/common/http_client.h"
#include "outpost/secrets/secret_value.h"

namespace outpost::secrets {

struct AwsCredentials {
  std::string access_key_id;
  SecretValue secret_access_key;
  SecretValue session_token;  // empty for long-term keys
  // When temporary credentials stop working; nullopt for long-term keys.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

struct SigV4Params {
  std::string region;
  std::string service;
  // The signing time (X-Amz-Date): a parameter, so tests are exact. Take it from a Clock.
  std::chrono::system_clock::time_point time;
  // The session token is signed (what most services want). false: X-Amz-Security-Token is added
  // after signing, outside the signature (a few older services want that).
  bool sign_session_token = true;
  // Every service but S3: the path is normalized (".", "..", empty segments) and its bytes are
  // percent-encoded once more, so a path that is already encoded on the wire ends up encoded
  // twice in the canonical request, as AWS computes it. false (S3): the wire path as it is.
  bool normalize_path = true;
};

// The intermediate products, for tests and for a verifier. canonical_request holds signed header
// values, the session token among them: never log it.
struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string scope;           // 20150830/us-east-1/service/aws4_request
  std::string signed_headers;  // host;x-amz-date
  std::string signature;       // hex
  std::string authorization;   // the Authorization header's value
};

// Signs `request` in place. Sets Host (from the URL, when the request has none), X-Amz-Date,
// X-Amz-Security-Token (when the credentials carry one) and Authorization (replacing an earlier
// one). Every other header the request holds is signed; send it exactly as it is. The error says
// which input is unusable, never a credential.
std::expected<SigV4Signature, std::string> signSigV4(HttpRequest& request,
                                                     const AwsCredentials& credentials,
                                                     const SigV4Params& params);

// --- the steps ---

// 20150830T123600Z (UTC).
std::string sigV4Time(std::chrono::system_clock::time_point t);
// Percent-encodes every byte but A-Z a-z 0-9 - . _ ~ (and '/' when keep_slash), as %XX in upper
// case.
std::string uriEncode(std::string_view bytes, bool keep_slash);
std::string percentDecode(std::string_view text);
// The canonical URI of a wire path (see SigV4Params::normalize_path).
std::string canonicalUri(std::string_view wire_path, bool normalize_path);
// The canonical query string of a wire query (without '?'): pairs decoded, encoded again, sorted
// by name then value; "name=" for a name without value.
std::string canonicalQuery(std::string_view wire_query);
struct CanonicalHeaders {
  std::string block;           // "name:value\n" lines, sorted by lower-cased name
  std::string signed_headers;  // the names joined by ';'
};
// Every given header: names lower-cased, values trimmed with runs of spaces and tabs collapsed,
// repeated names joined with ',' in their order.
CanonicalHeaders canonicalHeaders(const HttpHeaders& headers);
std::string canonicalRequest(std::string_view method, std::string_view wire_path,
                             std::string_view wire_query, const HttpHeaders& headers,
                             std::string_view payload_sha256_hex, bool normalize_path = true);
std::string sha256Hex(std::string_view bytes);
// kSigning = HMAC chain over "AWS4" + secret, date (yyyymmdd), region, service, "aws4_request".
// Raw bytes, a secret of its own.
SecretValue sigV4SigningKey(const SecretValue& secret_access_key, std::string_view date,
                            std::string_view region, std::string_view service);

}  // namespace outpost::secrets
