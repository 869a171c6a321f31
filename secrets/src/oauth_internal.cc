#include "oauth_internal.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "provider_internal.h"

namespace outpost::secrets::oauth_internal {
namespace {

using K = SecretError::Kind;
using provider_internal::forMessage;
using provider_internal::wipe;
using provider_internal::withAttempts;

// "HEAD: HTTP 403 DETAIL (2 attempts)".
std::string refusal(std::string head, const HttpResponse& response, ErrorDetail detail) {
  std::string msg = std::move(head) + ": HTTP " + std::to_string(response.status);
  if (auto e = detail(response); !e.empty()) msg += " " + e;
  return withAttempts(std::move(msg), response.attempts);
}

}  // namespace

std::string jsonErrorSummary(const HttpResponse& response, const char* code_key) {
  auto doc = nlohmann::json::parse(response.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("error")) return {};
  const auto& e = doc["error"];
  std::string out;
  auto add = [&](const nlohmann::json& node, const char* key, std::size_t max) {
    if (node.contains(key) && node[key].is_string()) {
      out += (out.empty() ? "" : ": ") + forMessage(node[key].get<std::string>(), max);
    }
  };
  if (e.is_object()) {
    add(e, code_key, 60);
    add(e, "message", 300);
  } else if (e.is_string()) {
    out = forMessage(e.get<std::string>(), 60);
    add(doc, "error_description", 300);
  }
  return out;
}

std::expected<SecretValue, std::string> takeBearerToken(nlohmann::json& answer) {
  SecretValue token;
  if (answer.contains("access_token") && answer["access_token"].is_string()) {
    auto& s = answer["access_token"].get_ref<std::string&>();
    token = SecretValue(s);
    wipe(s);
  }
  if (token.empty()) return std::unexpected("the answer has no access_token");
  if (token.reveal().find_first_of("\r\n") != std::string_view::npos) {
    return std::unexpected("the answer's access_token has a line break");
  }
  if (answer.contains("token_type") && answer["token_type"].is_string()) {
    auto type = answer["token_type"].get<std::string>();
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (type != "bearer") {
      return std::unexpected("the answer's token_type is '" + forMessage(type, 20) +
                             "', not Bearer");
    }
  }
  return token;
}

std::expected<AccessToken, SecretError> tokenFromAnswer(HttpResponse& response,
                                                        const std::string& what, ErrorDetail detail,
                                                        TokenParser parse, const Clock& clock) {
  if (response.status != 200) {
    const auto kind =
        response.status >= 500 || response.status == 429 ? K::kUnavailable : K::kDenied;
    std::string msg = refusal(what, response, detail);
    wipe(response.body);
    return std::unexpected(SecretError{kind, std::move(msg)});
  }
  auto token = parse(response.body, clock.now());
  wipe(response.body);
  if (!token) return std::unexpected(SecretError{K::kUnavailable, what + ": " + token.error()});
  return std::move(*token);
}

std::expected<HttpResponse, SecretError> getWithAccessToken(
    HttpClient& http, AccessTokenCache& tokens, std::string url, const std::string& shown,
    const std::string& where, ErrorDetail detail) {
  auto token = tokens.token();
  if (!token) {
    return std::unexpected(SecretError{token.error().kind, shown + ": " + token.error().message});
  }
  HttpRequest req;
  req.url = std::move(url);
  req.headers = {{"Authorization", "Bearer " + std::string(token->reveal())},
                 {"Accept", "application/json"}};
  auto resp = http.send(req);
  for (auto& h : req.headers) wipe(h.value);
  if (!resp)
    return std::unexpected(SecretError{K::kUnavailable, where + ": " + resp.error().message});
  if (resp->status != 200) {
    const auto kind = provider_internal::kindOfStatus(resp->status);
    if (resp->status == 401) tokens.invalidate();  // the next fetch asks for a new token
    std::string msg = refusal(where + ": " + provider_internal::describe(kind), *resp, detail);
    wipe(resp->body);
    return std::unexpected(SecretError{kind, std::move(msg)});
  }
  return std::move(*resp);
}

}  // namespace outpost::secrets::oauth_internal
