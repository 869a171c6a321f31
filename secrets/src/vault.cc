#include "outpost/secrets/vault.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "outpost/secrets/sigv4.h"
#include "provider_internal.h"

namespace outpost::secrets {

using nlohmann::json;
using provider_internal::forMessage;
using provider_internal::readSmallFile;
using provider_internal::trimWhitespace;
using provider_internal::wipe;
using Seconds = std::chrono::seconds;
using TimePoint = std::chrono::system_clock::time_point;

// A token and what Vault said about its lease.
struct VaultProvider::Lease {
  SecretValue token;
  bool renewable = false;
  // Zero: the token does not expire, or its lease is unknown; then it is never refreshed ahead.
  Seconds duration{0};
  TimePoint start;
  Seconds threshold{0};  // from the login's lease: see vaultRenewThreshold
  // After a refresh that failed while the token was still good: not again before this.
  TimePoint next_try{};
  std::string source;  // for logs: how it was obtained

  bool expires() const { return duration.count() > 0; }
  bool expiredAt(TimePoint now) const { return expires() && now >= start + duration; }
  bool refreshDueAt(TimePoint now) const {
    return expires() && now >= start + duration - threshold && now >= next_try;
  }
};

struct VaultProvider::Token {
  SecretValue value;
  std::uint64_t generation = 0;
};

namespace {

using K = SecretError::Kind;
using provider_internal::describe;
using provider_internal::envValue;
using provider_internal::splitPath;
using provider_internal::withAttempts;
using provider_internal::withoutTrailingSlash;

// How long a refresh that failed while the token was still good waits before the next try.
constexpr Seconds kRefreshRetry{30};
constexpr std::size_t kMaxCredentialFileBytes = 64 * 1024;

std::string trimSlashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  while (!s.empty() && s.front() == '/') s.erase(0, 1);
  return s;
}

// Overwrites every string in a parsed answer (client tokens, secret values) before it is freed.
void wipeJson(json& j) {
  if (j.is_string()) {
    wipe(j.get_ref<std::string&>());
  } else if (j.is_structured()) {
    for (auto& v : j) wipeJson(v);
  }
}

struct WipeOnExit {
  json& doc;
  ~WipeOnExit() { wipeJson(doc); }
};

// A message with every occurrence of `secret` replaced: Vault's error texts do not echo
// credentials, but a message must never carry one even if a server did.
std::string scrub(std::string message, std::string_view secret) {
  if (secret.size() < 4) return message;
  for (auto at = message.find(secret); at != std::string::npos; at = message.find(secret, at)) {
    message.replace(at, secret.size(), "***");
  }
  return message;
}

// As for every provider, and 412 (see clientConfig) is worth another try later too.
SecretError::Kind kindOfStatus(long status) {
  if (status == 412) return K::kUnavailable;
  return provider_internal::kindOfStatus(status);
}

// "denied: HTTP 403: permission denied (2 attempts)" for an error answer: Vault's `errors`
// list, cut short. The body is wiped.
std::string describeAnswer(HttpResponse& resp) {
  std::string out =
      std::string(describe(kindOfStatus(resp.status))) + ": HTTP " + std::to_string(resp.status);
  auto doc = json::parse(resp.body, nullptr, false);
  wipe(resp.body);
  if (!doc.is_discarded() && doc.is_object()) {
    WipeOnExit w{doc};
    std::string errors;
    if (auto it = doc.find("errors"); it != doc.end() && it->is_array()) {
      for (const auto& e : *it) {
        if (!e.is_string() || e.get_ref<const std::string&>().empty()) continue;
        errors += (errors.empty() ? "" : "; ") + e.get<std::string>();
      }
    }
    // A KV v2 version that was deleted or destroyed answers 404 with its metadata.
    if (auto d = doc.find("data"); d != doc.end() && d->is_object()) {
      if (auto m = d->find("metadata"); m != d->end() && m->is_object()) {
        auto flag = m->find("destroyed");
        const bool destroyed = flag != m->end() && flag->is_boolean() && flag->get<bool>();
        auto when = m->find("deletion_time");
        const bool deleted =
            when != m->end() && when->is_string() && !when->get_ref<const std::string&>().empty();
        if (destroyed || deleted) {
          std::string version;
          if (auto v = m->find("version"); v != m->end() && v->is_number_integer()) {
            version = " " + std::to_string(v->get<long long>());
          }
          errors += (errors.empty() ? "" : "; ") + std::string("version") + version +
                    (destroyed ? " was destroyed" : " was deleted");
        }
      }
    }
    if (!errors.empty()) out += ": " + forMessage(errors, 200);
  }
  return withAttempts(std::move(out), resp.attempts);
}

HttpClientConfig clientConfig(const VaultConfig& c, const Environment& env) {
  HttpClientConfig h = provider_internal::apiClientConfig(c.transport, env);
  // Vault Enterprise answers 412 when a standby has not caught up with a recent write yet.
  h.retry.retry_response = [](const HttpResponse& r) { return r.status == 412; };
  return h;
}

// One request to Vault with its headers. The token header and the body are wiped afterwards.
std::expected<HttpResponse, HttpError> call(HttpClient& http, const VaultConfig& c,
                                            std::string method, std::string url,
                                            const SecretValue* token, std::string body = {}) {
  HttpRequest req;
  req.method = std::move(method);
  req.url = std::move(url);
  req.headers.push_back({"X-Vault-Request", "true"});  // what a Vault Agent proxy asks for
  if (!c.vault_namespace.empty()) req.headers.push_back({"X-Vault-Namespace", c.vault_namespace});
  if (token != nullptr) req.headers.push_back({"X-Vault-Token", std::string(token->reveal())});
  if (!body.empty()) {
    req.headers.push_back({"Content-Type", "application/json"});
    req.body = std::move(body);
  }
  auto resp = http.send(req);
  for (auto& h : req.headers) wipe(h.value);
  wipe(req.body);
  return resp;
}

// What a login or a renewal answers: auth.client_token, auth.lease_duration, auth.renewable.
struct Grant {
  SecretValue token;
  Seconds lease{0};
  bool renewable = false;
};

std::expected<Grant, std::string> grantFromAnswer(std::string& body) {
  auto doc = json::parse(body, nullptr, false);
  wipe(body);
  if (doc.is_discarded() || !doc.is_object()) return std::unexpected("the answer is not JSON");
  WipeOnExit w{doc};
  auto auth = doc.find("auth");
  if (auth == doc.end() || !auth->is_object()) return std::unexpected("the answer has no auth");
  auto token = auth->find("client_token");
  if (token == auth->end() || !token->is_string() || token->get_ref<std::string&>().empty()) {
    return std::unexpected("the answer has no auth.client_token");
  }
  Grant g;
  g.token = SecretValue(token->get<std::string>());
  if (auto l = auth->find("lease_duration"); l != auth->end() && l->is_number_integer()) {
    g.lease = Seconds(std::max<long long>(0, l->get<long long>()));
  }
  if (auto r = auth->find("renewable"); r != auth->end() && r->is_boolean()) {
    g.renewable = r->get<bool>();
  }
  return g;
}

// The token of the `token` method: what token_file holds, or else VAULT_TOKEN.
std::expected<SecretValue, SecretError> givenToken(const VaultConfig& c,
                                                   const SecretValue& env_token) {
  if (c.token_file.empty()) {
    if (env_token.empty()) {
      return std::unexpected(SecretError{
          K::kDenied,
          "no token: set secrets.vault.token_file, or VAULT_TOKEN in the worker's environment"});
    }
    return env_token;
  }
  auto bytes = readSmallFile(c.token_file, kMaxCredentialFileBytes);
  if (!bytes) return std::unexpected(SecretError{K::kDenied, "token_file: " + bytes.error()});
  SecretValue token(std::string(trimWhitespace(*bytes)));
  wipe(*bytes);
  if (token.empty()) {
    return std::unexpected(SecretError{K::kDenied, "token_file " + c.token_file + " is empty"});
  }
  return token;
}

}  // namespace

std::optional<VaultAuthMethod> parseVaultAuthMethod(std::string_view name) {
  if (name == "token") return VaultAuthMethod::kToken;
  if (name == "kubernetes") return VaultAuthMethod::kKubernetes;
  if (name == "approle") return VaultAuthMethod::kAppRole;
  return std::nullopt;
}

std::string_view vaultAuthMethodName(VaultAuthMethod method) {
  switch (method) {
    case VaultAuthMethod::kToken:
      return "token";
    case VaultAuthMethod::kKubernetes:
      return "kubernetes";
    case VaultAuthMethod::kAppRole:
      return "approle";
  }
  return "?";
}

VaultConfig resolveVaultConfig(VaultConfig c, const Environment& env) {
  c.address = withoutTrailingSlash(std::move(c.address));
  if (c.address.empty()) {
    throw ConfigError(
        "vault: no address: set secrets.vault.address (like https://vault.example.com:8200)");
  }
  auto url = parseUrl(c.address);
  if (!url) {
    throw ConfigError("vault: address '" + forMessage(c.address, 200) +
                      "' is not an http:// or https:// URL with a host");
  }
  if (!url->query.empty() || c.address.find('#') != std::string::npos) {
    throw ConfigError("vault: address " + urlForMessages(c.address) +
                      " must not have a query or a fragment");
  }
  if (url->scheme == "http" && !isLoopbackHost(url->host)) {
    throw ConfigError("vault: address " + urlForMessages(c.address) +
                      " is plain http://, which would carry tokens and secrets unencrypted; use "
                      "https:// (http:// is only for a loopback address, such as a local Vault "
                      "Agent)");
  }
  if (c.vault_namespace.empty()) c.vault_namespace = envValue(env, "VAULT_NAMESPACE");
  c.vault_namespace = trimSlashes(c.vault_namespace);
  if (c.transport.ca_bundle.empty()) c.transport.ca_bundle = envValue(env, "VAULT_CACERT");
  c.auth_mount = trimSlashes(c.auth_mount);
  switch (c.auth) {
    case VaultAuthMethod::kToken:
      break;
    case VaultAuthMethod::kKubernetes:
      if (c.auth_mount.empty()) c.auth_mount = "kubernetes";
      if (c.role.empty()) {
        throw ConfigError(
            "vault: auth kubernetes needs secrets.vault.role (the Vault role bound to the "
            "service account)");
      }
      if (c.jwt_file.empty()) c.jwt_file = VaultConfig().jwt_file;
      break;
    case VaultAuthMethod::kAppRole:
      if (c.auth_mount.empty()) c.auth_mount = "approle";
      if (c.role_id.empty()) throw ConfigError("vault: auth approle needs secrets.vault.role_id");
      break;
  }
  provider_internal::checkTransport(c.transport, "vault");
  return c;
}

std::expected<std::string, SecretError> vaultKvReadUrl(std::string_view address,
                                                       const SecretRef& ref) {
  const std::string shown = ref.text.empty() ? "vault:" + ref.path : ref.text;
  const std::vector<std::string_view> segments = splitPath(ref.path);
  const bool bad_segment = std::ranges::any_of(
      segments, [](std::string_view s) { return s.empty() || s == "." || s == ".."; });
  if (segments.size() < 2 || bad_segment) {
    return std::unexpected(SecretError{
        K::kInvalid, shown + ": vault: a reference names MOUNT/PATH (like kv/team/db), without "
                             "empty, '.' or '..' parts"});
  }
  while (address.ends_with('/')) address.remove_suffix(1);
  std::string url = std::string(address) + "/v1/" + uriEncode(segments[0], false) + "/data";
  for (std::size_t i = 1; i < segments.size(); ++i) url += "/" + uriEncode(segments[i], false);
  if (!ref.version.empty()) {
    std::uint64_t n = 0;
    const char* end = ref.version.data() + ref.version.size();
    auto [p, ec] = std::from_chars(ref.version.data(), end, n);
    if (ec != std::errc() || p != end || n == 0) {
      return std::unexpected(
          SecretError{K::kInvalid, shown + ": vault: the version must be a positive number"});
    }
    url += "?version=" + std::to_string(n);
  }
  return url;
}

std::expected<FetchedSecret, SecretError> vaultSecretFromAnswer(const SecretRef& ref,
                                                                std::string& body) {
  const std::string where = (ref.text.empty() ? "vault:" + ref.path : ref.text) + ": vault";
  auto doc = json::parse(body, nullptr, false);
  wipe(body);
  if (doc.is_discarded() || !doc.is_object()) {
    return std::unexpected(SecretError{K::kUnavailable, where + ": the answer is not JSON"});
  }
  WipeOnExit w{doc};
  auto data = doc.find("data");
  if (data == doc.end() || !data->is_object()) {
    return std::unexpected(SecretError{
        K::kUnavailable, where + ": the answer has no data (is the mount a KV version 2 engine?)"});
  }
  FetchedSecret out;
  if (auto m = data->find("metadata"); m != data->end() && m->is_object()) {
    if (auto v = m->find("version"); v != m->end() && v->is_number_integer()) {
      out.version = std::to_string(v->get<long long>());
    }
  }
  auto kv = data->find("data");
  if (kv == data->end() || kv->is_null()) {
    return std::unexpected(
        SecretError{K::kNotFound, where + ": version " + (out.version.empty() ? "?" : out.version) +
                                      " of the secret was deleted or destroyed"});
  }
  if (!kv->is_object()) {
    return std::unexpected(
        SecretError{K::kUnavailable, where + ": the answer's data.data is not an object"});
  }
  const std::string keys = std::to_string(kv->size()) + (kv->size() == 1 ? " key" : " keys");
  const json* node = nullptr;
  if (ref.field.empty()) {
    if (kv->size() != 1) {
      return std::unexpected(SecretError{
          K::kInvalid, where + ": the secret has " + keys + "; name the one to use with #field"});
    }
    node = &kv->begin().value();
  } else if (auto whole = kv->find(ref.field); whole != kv->end()) {
    node = &*whole;
  } else {
    node = &*kv;
    for (std::size_t begin = 0; node != nullptr;) {
      auto dot = ref.field.find('.', begin);
      auto key = ref.field.substr(begin, dot == std::string::npos ? dot : dot - begin);
      auto it = node->is_object() ? node->find(key) : node->end();
      node = it == node->end() ? nullptr : &*it;
      if (dot == std::string::npos) break;
      begin = dot + 1;
    }
    if (node == nullptr) {
      return std::unexpected(SecretError{K::kNotFound, where + ": the secret has no field '" +
                                                           ref.field + "' (it has " + keys + ")"});
    }
  }
  out.value = SecretValue(node->is_string() ? node->get<std::string>() : node->dump());
  return out;
}

Seconds vaultRenewThreshold(Seconds lease, Seconds renew_before) {
  if (lease.count() <= 0) return Seconds(0);
  return std::min(renew_before.count() > 0 ? renew_before : lease / 3, lease / 2);
}

VaultProvider::VaultProvider(VaultConfig config, const Environment& env, const Clock& clock)
    : config_(resolveVaultConfig(std::move(config), env)),
      env_token_(envValue(env, "VAULT_TOKEN")),
      env_secret_id_(envValue(env, "VAULT_SECRET_ID")),
      clock_(clock),
      http_(std::make_unique<HttpClient>(clientConfig(config_, env))) {}

VaultProvider::~VaultProvider() = default;

std::expected<VaultProvider::Lease, SecretError> VaultProvider::loginLocked() {
  const auto now = clock_.now();
  Lease lease;
  lease.start = now;

  if (config_.auth == VaultAuthMethod::kToken) {
    auto given = givenToken(config_, env_token_);
    if (!given) return std::unexpected(given.error());
    lease.token = std::move(*given);
    lease.source =
        config_.token_file.empty() ? "token from VAULT_TOKEN" : "token from " + config_.token_file;
    // The lease is what the token's own lookup says.
    auto resp =
        call(*http_, config_, "GET", config_.address + "/v1/auth/token/lookup-self", &lease.token);
    if (!resp) {
      return std::unexpected(SecretError{K::kUnavailable, "token lookup: " + resp.error().message});
    }
    if (resp->status == 401 || resp->status == 403) {
      // Revoked or expired, or without the default policy (then it may still read secrets). It
      // is used as it is, without renewal; a refused read makes the token source be read again.
      spdlog::warn(
          "vault: the {} was refused its own lookup (HTTP {}): it is revoked or expired, or lacks "
          "the default policy; it is used as it is, without renewal",
          lease.source, resp->status);
      wipe(resp->body);
      return lease;
    }
    if (resp->status != 200) {
      const auto kind = kindOfStatus(resp->status);
      return std::unexpected(
          SecretError{kind, scrub("token lookup (auth/token/lookup-self): " + describeAnswer(*resp),
                                  lease.token.reveal())});
    }
    auto doc = json::parse(resp->body, nullptr, false);
    wipe(resp->body);
    WipeOnExit w{doc};  // data.id is the token itself
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("data") ||
        !doc["data"].is_object()) {
      return std::unexpected(SecretError{K::kUnavailable, "token lookup: the answer has no data"});
    }
    const auto& d = doc["data"];
    if (auto ttl = d.find("ttl"); ttl != d.end() && ttl->is_number_integer()) {
      lease.duration = Seconds(std::max<long long>(0, ttl->get<long long>()));
    }
    if (auto r = d.find("renewable"); r != d.end() && r->is_boolean()) {
      lease.renewable = r->get<bool>();
    }
    lease.threshold = vaultRenewThreshold(lease.duration, config_.renew_before);
    return lease;
  }

  const bool kubernetes = config_.auth == VaultAuthMethod::kKubernetes;
  const std::string what = std::string(vaultAuthMethodName(config_.auth)) + " login at auth/" +
                           config_.auth_mount + (kubernetes ? " (role " + config_.role + ")" : "");
  json body;
  WipeOnExit w{body};
  std::string credential;  // the JWT or the secret id, kept out of messages
  if (kubernetes) {
    auto bytes = readSmallFile(config_.jwt_file, kMaxCredentialFileBytes);
    if (!bytes) return std::unexpected(SecretError{K::kDenied, what + ": " + bytes.error()});
    credential = std::string(trimWhitespace(*bytes));
    wipe(*bytes);
    if (credential.empty()) {
      return std::unexpected(
          SecretError{K::kDenied, what + ": jwt_file " + config_.jwt_file + " is empty"});
    }
    body = {{"role", config_.role}, {"jwt", credential}};
  } else {
    if (!config_.secret_id_file.empty()) {
      auto bytes = readSmallFile(config_.secret_id_file, kMaxCredentialFileBytes);
      if (!bytes) return std::unexpected(SecretError{K::kDenied, what + ": " + bytes.error()});
      credential = std::string(trimWhitespace(*bytes));
      wipe(*bytes);
    } else {
      credential = std::string(env_secret_id_.reveal());
    }
    body = {{"role_id", config_.role_id}};
    // A role may be set up without secret ids (bind_secret_id=false); Vault says so if not.
    if (!credential.empty()) body["secret_id"] = credential;
  }
  auto resp = call(*http_, config_, "POST",
                   config_.address + "/v1/auth/" + uriEncode(config_.auth_mount, true) + "/login",
                   nullptr, body.dump());
  SecretValue presented(std::move(credential));
  if (!resp) {
    return std::unexpected(SecretError{K::kUnavailable, what + ": " + resp.error().message});
  }
  if (resp->status != 200) {
    // A login refused for its credentials answers 400 (unknown role, bad secret id) or 403.
    const auto kind = resp->status == 400 ? K::kDenied : kindOfStatus(resp->status);
    return std::unexpected(
        SecretError{kind, scrub(what + ": " + describeAnswer(*resp), presented.reveal())});
  }
  auto grant = grantFromAnswer(resp->body);
  if (!grant) return std::unexpected(SecretError{K::kUnavailable, what + ": " + grant.error()});
  lease.token = std::move(grant->token);
  lease.duration = grant->lease;
  lease.renewable = grant->renewable;
  lease.threshold = vaultRenewThreshold(lease.duration, config_.renew_before);
  lease.source =
      std::string(vaultAuthMethodName(config_.auth)) + " login at auth/" + config_.auth_mount;
  return lease;
}

std::expected<VaultProvider::Lease, SecretError> VaultProvider::renewLocked() {
  auto resp = call(*http_, config_, "POST", config_.address + "/v1/auth/token/renew-self",
                   &lease_->token, "{}");
  if (!resp) return std::unexpected(SecretError{K::kUnavailable, resp.error().message});
  if (resp->status != 200) {
    return std::unexpected(SecretError{kindOfStatus(resp->status),
                                       scrub(describeAnswer(*resp), lease_->token.reveal())});
  }
  auto grant = grantFromAnswer(resp->body);
  if (!grant) return std::unexpected(SecretError{K::kUnavailable, grant.error()});
  Lease renewed = *lease_;
  // renew-self answers with the same token; should a server hand out another, it is used.
  renewed.token = std::move(grant->token);
  renewed.duration = grant->lease;
  renewed.renewable = grant->renewable;
  renewed.start = clock_.now();
  renewed.next_try = {};
  return renewed;
}

void VaultProvider::installLocked(Lease lease) {
  spdlog::info("vault: {}; lease {}, {}", lease.source,
               lease.expires() ? std::to_string(lease.duration.count()) + "s" : "without expiry",
               lease.renewable ? "renewable" : "not renewable");
  lease_ = std::make_unique<Lease>(std::move(lease));
  ++generation_;
}

std::expected<VaultProvider::Token, SecretError> VaultProvider::currentToken() {
  std::lock_guard lock(auth_mutex_);
  const auto now = clock_.now();
  if (!lease_) {
    auto fresh = loginLocked();
    if (!fresh) return std::unexpected(fresh.error());
    installLocked(std::move(*fresh));
    return Token{lease_->token, generation_};
  }
  if (!lease_->refreshDueAt(now)) return Token{lease_->token, generation_};

  // Less than the threshold is left: renew it if Vault allows, else (or if that fails) log in
  // again. Renewal keeps the token, so nobody else's copy goes stale.
  std::string why;
  if (!lease_->renewable) {
    why = "the token is not renewable";
  } else if (lease_->expiredAt(now)) {
    why = "the token has expired";
  } else {
    auto renewed = renewLocked();
    if (renewed && renewed->duration > lease_->threshold) {
      spdlog::debug("vault: token renewed; lease {}s", renewed->duration.count());
      const bool same = renewed->token == lease_->token;
      *lease_ = std::move(*renewed);
      if (!same) ++generation_;
      return Token{lease_->token, generation_};
    }
    if (renewed) {
      // Vault capped the lease at the token's max TTL: renewing further will not keep it alive.
      if (renewed->token == lease_->token) *lease_ = std::move(*renewed);
      why = "the token is near its maximum TTL";
    } else {
      why = "renewing the token failed: " + renewed.error().message;
    }
  }
  auto fresh = loginLocked();
  if (fresh && fresh->token != lease_->token) {
    spdlog::info("vault: logging in again: {}", why);
    installLocked(std::move(*fresh));
    return Token{lease_->token, generation_};
  }
  if (!fresh && lease_->expiredAt(now)) return std::unexpected(fresh.error());
  // Nothing better than the current token (the token source still holds it, or Vault cannot be
  // reached): keep it while it lasts, and try again a little later.
  lease_->next_try = now + kRefreshRetry;
  if (fresh) {
    spdlog::info("vault: {}; the token source still holds the same token", why);
  } else {
    spdlog::warn(
        "vault: {}, and logging in again failed: {}; using the current token while it "
        "lasts",
        why, fresh.error().message);
  }
  return Token{lease_->token, generation_};
}

std::optional<std::expected<VaultProvider::Token, SecretError>> VaultProvider::replaceRefused(
    std::uint64_t refused) {
  std::lock_guard lock(auth_mutex_);
  if (lease_ && generation_ != refused) return Token{lease_->token, generation_};
  if (lease_ && config_.auth == VaultAuthMethod::kToken) {
    // Only a different token in the token source can help.
    auto given = givenToken(config_, env_token_);
    if (given && *given == lease_->token) return std::nullopt;
  }
  if (lease_) {
    // A token that can still look itself up is good: the refusal is the policy's, and a new
    // token would be refused the same way.
    auto check = call(*http_, config_, "GET", config_.address + "/v1/auth/token/lookup-self",
                      &lease_->token);
    if (check) wipe(check->body);
    if (check && check->status == 200) return std::nullopt;
  }
  auto fresh = loginLocked();
  if (!fresh) return std::unexpected(fresh.error());
  if (lease_ && fresh->token == lease_->token) return std::nullopt;
  spdlog::info("vault: the token was refused; logged in again");
  installLocked(std::move(*fresh));
  return Token{lease_->token, generation_};
}

std::expected<FetchedSecret, SecretError> VaultProvider::fetch(const SecretRef& ref) {
  const std::string where = (ref.text.empty() ? "vault:" + ref.path : ref.text) + ": vault";
  auto url = vaultKvReadUrl(config_.address, ref);
  if (!url) return std::unexpected(url.error());
  auto token = currentToken();
  if (!token) {
    return std::unexpected(SecretError{token.error().kind, where + ": " + token.error().message});
  }
  auto resp = call(*http_, config_, "GET", *url, &token->value);
  if (resp && (resp->status == 401 || resp->status == 403)) {
    // The token may have been revoked or have expired early: one new login and one more try.
    if (auto again = replaceRefused(token->generation)) {
      if (!*again) {
        const std::string refused = scrub(describeAnswer(*resp), token->value.reveal());
        return std::unexpected(SecretError{
            again->error().kind,
            where + ": " + refused + ", and a new login failed: " + again->error().message});
      }
      wipe(resp->body);
      token = std::move(*again);
      resp = call(*http_, config_, "GET", *url, &token->value);
    }
  }
  if (!resp) {
    return std::unexpected(SecretError{K::kUnavailable, where + ": " + resp.error().message});
  }
  if (resp->status != 200) {
    const auto kind = kindOfStatus(resp->status);
    return std::unexpected(
        SecretError{kind, scrub(where + ": " + describeAnswer(*resp), token->value.reveal())});
  }
  return vaultSecretFromAnswer(ref, resp->body);
}

}  // namespace outpost::secrets
