#include "outpost/secrets/azure.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "oauth_internal.h"
#include "outpost/secrets/sigv4.h"
#include "provider_internal.h"

namespace outpost::secrets {
namespace {

using oauth_internal::getWithAccessToken;
using oauth_internal::jsonErrorSummary;
using oauth_internal::takeBearerToken;
using oauth_internal::tokenFromAnswer;
using provider_internal::apiClientConfig;
using provider_internal::checkServiceUrl;
using provider_internal::envValue;
using provider_internal::forMessage;
using provider_internal::readSmallFile;
using provider_internal::selectField;
using provider_internal::trimWhitespace;
using provider_internal::wipe;
using provider_internal::withoutTrailingSlash;
using K = SecretError::Kind;

constexpr const char* kDefaultImds = "http://169.254.169.254";
constexpr const char* kDefaultAuthority = "https://login.microsoftonline.com";
constexpr const char* kDefaultResource = "https://vault.azure.net";

// See checkServiceUrl; any_http for IMDS. The provider appends its own query, so none is allowed.
void checkUrl(const std::string& url, const char* setting, bool any_http) {
  checkServiceUrl(url, "azure-kv", setting, any_http, /*no_query=*/true);
}

bool allOf(std::string_view s, std::size_t max, bool (*ok)(char)) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), ok);
}
bool alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}
bool alnumOrDash(char c) {
  return alnum(c) || c == '-';
}
bool tenantChar(char c) {
  return alnum(c) || c == '-' || c == '.';
}

// Seconds in a JSON number or a decimal string (IMDS sends strings).
std::optional<long long> secondsIn(const nlohmann::json& doc, const char* key) {
  if (!doc.contains(key)) return std::nullopt;
  const auto& v = doc[key];
  if (v.is_number_integer()) return v.get<long long>();
  if (!v.is_string()) return std::nullopt;
  const auto& s = v.get_ref<const std::string&>();
  long long n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return n;
}

// Entra ID and IMDS: {"error": "invalid_client", "error_description": "AADSTS7000215: ..."};
// Key Vault: {"error": {"code": "SecretNotFound", "message": "..."}}.
std::string azureError(const HttpResponse& response) {
  return jsonErrorSummary(response, "code");
}

// Key Vault and Entra ID. 429 (with Retry-After, which the client honours up to max_delay) and
// 5xx are retried.
HttpClientConfig keyVaultClientConfig(const AzureConfig& c, const Environment& env) {
  HttpClientConfig h = apiClientConfig(c.transport, env);
  h.sleep = c.sleep;
  return h;
}

// Microsoft asks IMDS clients to retry 404 and 410 as well (the identity or the service may not
// be ready yet) besides 429 and 5xx.
HttpClientConfig imdsClientConfig(const AzureConfig& c) {
  HttpClientConfig h = provider_internal::metadataClientConfig(c);
  h.retry.retry_response = [](const HttpResponse& r) { return r.status == 404 || r.status == 410; };
  h.sleep = c.sleep;
  return h;
}

}  // namespace

// --- settings ---

AzureConfig resolveAzureConfig(AzureConfig c, const Environment& env) {
  if (c.vault_url.empty()) {
    throw ConfigError(
        "azure-kv: no vault: set secrets.azure.vault_url (https://NAME.vault.azure.net)");
  }
  c.vault_url = withoutTrailingSlash(c.vault_url);
  checkUrl(c.vault_url, "vault_url", false);
  if (c.tenant_id.empty()) c.tenant_id = envValue(env, "AZURE_TENANT_ID");
  if (c.client_id.empty()) c.client_id = envValue(env, "AZURE_CLIENT_ID");
  if (c.authority_host.empty()) c.authority_host = envValue(env, "AZURE_AUTHORITY_HOST");
  if (c.authority_host.empty()) c.authority_host = kDefaultAuthority;
  c.authority_host = withoutTrailingSlash(c.authority_host);
  checkUrl(c.authority_host, "authority_host (AZURE_AUTHORITY_HOST)", false);
  if (c.imds_endpoint.empty()) c.imds_endpoint = kDefaultImds;
  c.imds_endpoint = withoutTrailingSlash(c.imds_endpoint);
  checkUrl(c.imds_endpoint, "imds_endpoint", true);

  const bool have_secret =
      !c.client_secret_file.empty() || !envValue(env, "AZURE_CLIENT_SECRET").empty();
  if (c.auth == AzureAuth::kDefault) {
    c.auth = have_secret ? AzureAuth::kClientCredentials : AzureAuth::kManagedIdentity;
  }
  if (c.auth == AzureAuth::kClientCredentials) {
    if (c.tenant_id.empty()) {
      throw ConfigError(
          "azure-kv: client credentials need a tenant: set secrets.azure.tenant_id or "
          "AZURE_TENANT_ID");
    }
    if (!allOf(c.tenant_id, 256, tenantChar)) {
      throw ConfigError("azure-kv: tenant_id '" + forMessage(c.tenant_id, 64) +
                        "' is not a tenant id or domain");
    }
    if (c.client_id.empty()) {
      throw ConfigError(
          "azure-kv: client credentials need the application (client) id: set "
          "secrets.azure.client_id or AZURE_CLIENT_ID");
    }
    if (!have_secret) {
      throw ConfigError(
          "azure-kv: client credentials need a client secret: set "
          "secrets.azure.client_secret_file or AZURE_CLIENT_SECRET");
    }
  }
  provider_internal::checkTransport(c.transport, "azure-kv");
  if (c.metadata_attempts < 1) throw ConfigError("azure-kv: metadata_attempts must be at least 1");
  return c;
}

// --- helpers ---

std::string azureVaultResource(std::string_view vault_url) {
  auto u = parseUrl(vault_url);
  if (!u) return kDefaultResource;
  std::string host = u->host;
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char ch) { return std::tolower(ch); });
  // NAME.vault.azure.net -> https://vault.azure.net, NAME.vault.azure.cn -> ...
  static constexpr std::string_view kClouds[] = {
      "vault.azure.net", "vault.azure.cn", "vault.usgovcloudapi.net", "vault.microsoftazure.de"};
  for (auto cloud : kClouds) {
    if (host.size() > cloud.size() && host.ends_with(cloud) &&
        host[host.size() - cloud.size() - 1] == '.') {
      return "https://" + std::string(cloud);
    }
  }
  return kDefaultResource;
}

std::expected<std::string, std::string> azureSecretPath(const SecretRef& ref) {
  std::string_view name = ref.path;
  std::string_view version = ref.version;
  if (auto slash = name.find('/'); slash != std::string_view::npos) {
    if (!version.empty()) {
      return std::unexpected("'" + forMessage(ref.path, 200) +
                             "' names a version twice; write NAME/VERSION once");
    }
    version = name.substr(slash + 1);
    name = name.substr(0, slash);
    if (version.empty()) {
      return std::unexpected("'" + forMessage(ref.path, 200) + "' has an empty version");
    }
  }
  if (!allOf(name, 127, alnumOrDash)) {
    return std::unexpected("'" + forMessage(name, 200) +
                           "' is not a Key Vault secret name (1-127 letters, digits and '-')");
  }
  if (!version.empty() && !allOf(version, 64, alnum)) {
    return std::unexpected("'" + forMessage(version, 100) +
                           "' is not a Key Vault secret version (letters and digits)");
  }
  std::string path = "/secrets/" + std::string(name);
  if (!version.empty()) path += "/" + std::string(version);
  return path;
}

std::expected<AccessToken, std::string> parseAzureTokenResponse(
    std::string_view json, std::chrono::system_clock::time_point now) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::unexpected("the answer is not JSON");
  auto token = takeBearerToken(doc);
  if (!token) return std::unexpected(token.error());
  AccessToken t{std::move(*token), {}};
  const auto in = secondsIn(doc, "expires_in");
  const auto on = secondsIn(doc, "expires_on");
  std::optional<std::chrono::system_clock::time_point> expires;
  if (in && *in > 0) expires = now + std::chrono::seconds(*in);
  if (on && *on > 0) {
    const auto at = std::chrono::system_clock::time_point(std::chrono::seconds(*on));
    expires = expires ? std::min(*expires, at) : at;
  }
  if (!expires) return std::unexpected("the answer has no expires_in or expires_on");
  if (*expires <= now) return std::unexpected("the answer's token has already expired");
  t.expires = *expires;
  return t;
}

std::expected<FetchedSecret, std::string> parseAzureSecretResponse(std::string_view json) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::unexpected("the answer is not JSON");
  FetchedSecret out;
  if (doc.contains("id") && doc["id"].is_string()) {
    const std::string id = doc["id"].get<std::string>();
    out.version = id.substr(id.rfind('/') + 1);
  }
  if (!doc.contains("value") || !doc["value"].is_string()) {
    return std::unexpected("the answer has no value");
  }
  auto& s = doc["value"].get_ref<std::string&>();
  out.value = SecretValue(s);
  wipe(s);
  return out;
}

// --- token sources ---

AzureManagedIdentityTokenSource::AzureManagedIdentityTokenSource(std::string imds_endpoint,
                                                                 std::string resource,
                                                                 std::string client_id,
                                                                 std::shared_ptr<HttpClient> http,
                                                                 const Clock& clock)
    : endpoint_(withoutTrailingSlash(std::move(imds_endpoint))),
      resource_(std::move(resource)),
      client_id_(std::move(client_id)),
      http_(std::move(http)),
      clock_(clock) {}

std::string AzureManagedIdentityTokenSource::name() const {
  return client_id_.empty() ? "managed identity (system-assigned)"
                            : "managed identity " + client_id_;
}

std::expected<AccessToken, SecretError> AzureManagedIdentityTokenSource::load() {
  const std::string what =
      "azure-kv: access token for the " + name() + " from IMDS at " + urlForMessages(endpoint_);
  HttpRequest req;
  req.url = endpoint_ + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" +
            uriEncode(resource_, false);
  if (!client_id_.empty()) req.url += "&client_id=" + uriEncode(client_id_, false);
  req.headers = {{"Metadata", "true"}};
  auto resp = http_->send(req);
  if (!resp) {
    return std::unexpected(SecretError{
        K::kUnavailable, what + ": " + resp.error().message +
                             " (not on Azure? set secrets.azure.auth: client_credentials with a "
                             "tenant, client id and client secret)"});
  }
  return tokenFromAnswer(*resp, what, azureError, parseAzureTokenResponse, clock_);
}

AzureClientCredentialsTokenSource::AzureClientCredentialsTokenSource(
    std::string authority_host, std::string tenant_id, std::string client_id, SecretValue secret,
    std::string secret_file, std::string scope, std::shared_ptr<HttpClient> http,
    const Clock& clock)
    : token_url_(withoutTrailingSlash(std::move(authority_host)) + "/" + tenant_id +
                 "/oauth2/v2.0/token"),
      client_id_(std::move(client_id)),
      secret_(std::move(secret)),
      secret_file_(std::move(secret_file)),
      scope_(std::move(scope)),
      http_(std::move(http)),
      clock_(clock) {}

std::expected<AccessToken, SecretError> AzureClientCredentialsTokenSource::load() {
  const std::string what =
      "azure-kv: access token for " + name() + " from " + urlForMessages(token_url_);
  std::string secret;
  if (!secret_file_.empty()) {
    auto bytes = readSmallFile(secret_file_, 64 * 1024);
    if (!bytes) {
      return std::unexpected(SecretError{K::kDenied, what + ": client secret: " + bytes.error() +
                                                         " (secrets.azure.client_secret_file)"});
    }
    secret = std::string(trimWhitespace(*bytes));
    wipe(*bytes);
  } else {
    secret = std::string(secret_.reveal());
  }
  if (secret.empty()) {
    return std::unexpected(SecretError{K::kDenied, what + ": the client secret is empty"});
  }
  HttpRequest req;
  req.method = "POST";
  req.url = token_url_;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  req.body = "grant_type=client_credentials&client_id=" + uriEncode(client_id_, false) +
             "&client_secret=" + uriEncode(secret, false) + "&scope=" + uriEncode(scope_, false);
  wipe(secret);
  auto resp = http_->send(req);
  wipe(req.body);
  if (!resp)
    return std::unexpected(SecretError{K::kUnavailable, what + ": " + resp.error().message});
  return tokenFromAnswer(*resp, what, azureError, parseAzureTokenResponse, clock_);
}

// --- the provider ---

namespace {

// The token source config_.auth names. Throws ConfigError when a client secret file is not
// there: better at startup than at the first run.
std::unique_ptr<AzureTokenSource> defaultTokenSource(const AzureConfig& config,
                                                     const Environment& env,
                                                     const std::shared_ptr<HttpClient>& http,
                                                     const Clock& clock) {
  const std::string resource = azureVaultResource(config.vault_url);
  if (config.auth != AzureAuth::kClientCredentials) {
    return std::make_unique<AzureManagedIdentityTokenSource>(
        config.imds_endpoint, resource, config.client_id,
        std::make_shared<HttpClient>(imdsClientConfig(config)), clock);
  }
  if (!config.client_secret_file.empty()) {
    auto bytes = readSmallFile(config.client_secret_file, 64 * 1024);
    if (!bytes) {
      throw ConfigError("azure-kv: client secret: " + bytes.error() +
                        " (secrets.azure.client_secret_file)");
    }
    wipe(*bytes);
  }
  return std::make_unique<AzureClientCredentialsTokenSource>(
      config.authority_host, config.tenant_id, config.client_id,
      SecretValue(envValue(env, "AZURE_CLIENT_SECRET")), config.client_secret_file,
      resource + "/.default", http, clock);
}

}  // namespace

AzureKeyVaultProvider::AzureKeyVaultProvider(AzureConfig config, const Environment& env,
                                             const Clock& clock)
    : AzureKeyVaultProvider(std::move(config), env, clock, nullptr) {}

AzureKeyVaultProvider::AzureKeyVaultProvider(AzureConfig config, const Environment& env,
                                             const Clock& clock,
                                             std::unique_ptr<AzureTokenSource> tokens)
    : config_(resolveAzureConfig(std::move(config), env)),
      http_(std::make_shared<HttpClient>(keyVaultClientConfig(config_, env))),
      token_source_(tokens ? std::move(tokens) : defaultTokenSource(config_, env, http_, clock)),
      tokens_(
          "azure-kv", token_source_->name(),
          [source = token_source_.get()] { return source->load(); }, clock,
          config_.refresh_before_expiry) {
  spdlog::info("azure-kv: {} with access tokens from {}", urlForMessages(config_.vault_url),
               token_source_->name());
}

std::expected<FetchedSecret, SecretError> AzureKeyVaultProvider::fetch(const SecretRef& ref) {
  const std::string shown = ref.text.empty() ? "azure-kv:" + ref.path : ref.text;
  auto path = azureSecretPath(ref);
  if (!path)
    return std::unexpected(SecretError{K::kInvalid, shown + ": azure-kv: " + path.error()});
  const std::string where = shown + ": azure-kv (" + urlForMessages(config_.vault_url) + ")";

  auto resp = getWithAccessToken(
      *http_, tokens_, config_.vault_url + *path + "?api-version=" + kAzureKeyVaultApiVersion,
      shown, where, azureError);
  if (!resp) return std::unexpected(resp.error());
  auto got = parseAzureSecretResponse(resp->body);
  wipe(resp->body);
  if (!got) return std::unexpected(SecretError{K::kUnavailable, where + ": " + got.error()});
  return selectField(ref, std::move(*got));
}

}  // namespace outpost::secrets
