// What the providers that authenticate with OAuth 2.0 bearer tokens (Google, Azure) share: their
// token endpoints' answers and refusals, and a GET with the token. Private to the secrets library.
#pragma once

#include <chrono>
#include <expected>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "outpost/common/clock.h"
#include "outpost/common/http_client.h"
#include "outpost/secrets/access_token.h"
#include "outpost/secrets/provider.h"

namespace outpost::secrets::oauth_internal {

// What an error answer says, for a message after its status ("" when it says nothing useful).
using ErrorDetail = std::string (*)(const HttpResponse& response);
// A token endpoint's 200 answer as a token; now is when it arrived.
using TokenParser = std::expected<AccessToken, std::string> (*)(
    std::string_view json, std::chrono::system_clock::time_point now);

// A JSON error answer, cut short: "CODE: MESSAGE" from {"error": {code_key: ..., "message": ...}}
// as the cloud APIs send it, "ERROR: DESCRIPTION" from {"error": ..., "error_description": ...}
// as token endpoints do (RFC 6749, 5.2). Empty when the body is neither.
std::string jsonErrorSummary(const HttpResponse& response, const char* code_key);

// The access_token of a token answer (RFC 6749, 5.1), taken out of `answer` (its copy there is
// wiped): there, without a line break, and of token_type Bearer when one is given. The error says
// which, never the token.
std::expected<SecretValue, std::string> takeBearerToken(nlohmann::json& answer);

// The end of a token request that was answered: on 200, the token `parse` reads; otherwise an
// error saying `what`, the status (kUnavailable for 5xx and 429, worth a later try; kDenied
// otherwise), detail(response) and the attempts. The body is wiped either way.
std::expected<AccessToken, SecretError> tokenFromAnswer(HttpResponse& response,
                                                        const std::string& what, ErrorDetail detail,
                                                        TokenParser parse, const Clock& clock);

// GET url with the cache's token as a bearer token: the answer, when it is 200. Otherwise an error
// saying `where`, what the status means for a fetch (see kindOfStatus), detail(response) and the
// attempts; a 401 makes the cache fetch a new token for the next call. When no token can be had,
// the cache's error after `shown` (the reference). The token's header, and a refused answer's
// body, are wiped.
std::expected<HttpResponse, SecretError> getWithAccessToken(
    HttpClient& http, AccessTokenCache& tokens, std::string url, const std::string& shown,
    const std::string& where, ErrorDetail detail);

}  // namespace outpost::secrets::oauth_internal
