#include "outpost/secrets/gcp.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "oauth_internal.h"
#include "outpost/common/base64.h"
#include "outpost/secrets/crc32c.h"
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
using provider_internal::decodeUnpaddedBase64;
using provider_internal::envValue;
using provider_internal::forMessage;
using provider_internal::metadataClientConfig;
using provider_internal::readSmallFile;
using provider_internal::selectField;
using provider_internal::splitPath;
using provider_internal::wipe;
using provider_internal::withoutTrailingSlash;
using K = SecretError::Kind;

constexpr const char* kScope = "https://www.googleapis.com/auth/cloud-platform";
constexpr const char* kJwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
constexpr const char* kDefaultMetadata = "http://169.254.169.254";

// OpenSSL handles, owned from the moment they exist.
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// Never prompt on a terminal for the passphrase of an encrypted key: refuse it.
int noPassphrase(char*, int, int, void*) {
  return -1;
}

// The RSA private key of a PEM text, or null (the OpenSSL error queue is cleared either way).
Pkey loadRsaKey(const SecretValue& pem) {
  Bio bio(BIO_new_mem_buf(pem.reveal().data(), static_cast<int>(pem.size())));
  Pkey key;
  if (bio) key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, &noPassphrase, nullptr));
  ERR_clear_error();
  if (key && !EVP_PKEY_is_a(key.get(), "RSA")) key.reset();
  return key;
}

// See checkServiceUrl; any_http for the metadata server.
void checkUrl(const std::string& url, const char* setting, bool any_http) {
  checkServiceUrl(url, "gcp-sm", setting, any_http);
}

// Strict standard base64, padding optional. nullopt on anything else.
std::optional<std::string> decodeBase64(std::string_view in) {
  if (in.size() % 4 == 0 && in.ends_with("==")) {
    in.remove_suffix(2);
  } else if (in.size() % 4 == 0 && in.ends_with("=")) {
    in.remove_suffix(1);
  }
  return decodeUnpaddedBase64(in);
}

// Google's error answer: {"error": {"code": 404, "status": "NOT_FOUND", "message": "..."}} from
// the APIs, {"error": "invalid_grant", "error_description": "..."} from the token endpoint.
std::string googleError(const HttpResponse& response) {
  return jsonErrorSummary(response, "status");
}

// Segment characters of resource names; anything else (/, ?, #, %) could change the request.
bool nameSegment(std::string_view s, bool colon_allowed) {
  return !s.empty() && s.size() <= 255 && std::all_of(s.begin(), s.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           (colon_allowed && c == ':');
  });
}

}  // namespace

// --- settings ---

GcpConfig resolveGcpConfig(GcpConfig c, const Environment& env) {
  if (c.endpoint.empty()) c.endpoint = "https://secretmanager.googleapis.com";
  c.endpoint = withoutTrailingSlash(c.endpoint);
  checkUrl(c.endpoint, "endpoint", false);
  if (c.credentials_file.empty())
    c.credentials_file = envValue(env, "GOOGLE_APPLICATION_CREDENTIALS");
  if (!c.token_uri.empty()) checkUrl(c.token_uri, "token_uri", false);
  if (c.metadata_endpoint.empty()) {
    const std::string host = envValue(env, "GCE_METADATA_HOST");
    if (host.empty()) {
      c.metadata_endpoint = kDefaultMetadata;
    } else {
      c.metadata_endpoint = host.find("://") == std::string::npos ? "http://" + host : host;
    }
  }
  c.metadata_endpoint = withoutTrailingSlash(c.metadata_endpoint);
  checkUrl(c.metadata_endpoint, "metadata_endpoint (GCE_METADATA_HOST)", true);
  if (!c.project.empty() && !nameSegment(c.project, true)) {
    throw ConfigError("gcp-sm: project '" + forMessage(c.project, 64) +
                      "' is not a project id or number");
  }
  provider_internal::checkTransport(c.transport, "gcp-sm");
  if (c.metadata_attempts < 1) throw ConfigError("gcp-sm: metadata_attempts must be at least 1");
  return c;
}

// --- helpers ---

std::expected<std::string, std::string> gcpVersionName(const SecretRef& ref,
                                                       const std::string& project) {
  static constexpr const char* kForms =
      "use projects/PROJECT/secrets/SECRET[/versions/VERSION], or SECRET with "
      "secrets.gcp.project set";
  const auto parts = splitPath(ref.path);
  std::string_view proj, secret, version;
  if (parts.size() == 1) {
    if (project.empty()) {
      return std::unexpected("'" + forMessage(ref.path, 255) +
                             "' names no project and secrets.gcp.project is not set; " + kForms);
    }
    proj = project;
    secret = parts[0];
  } else if ((parts.size() == 4 || parts.size() == 6) && parts[0] == "projects" &&
             parts[2] == "secrets" && (parts.size() == 4 || parts[4] == "versions")) {
    proj = parts[1];
    secret = parts[3];
    if (parts.size() == 6) version = parts[5];
  } else {
    return std::unexpected("'" + forMessage(ref.path, 255) + "' is not a secret name; " + kForms);
  }
  if (version.empty()) version = ref.version.empty() ? std::string_view("latest") : ref.version;
  if (!nameSegment(proj, true) || !nameSegment(secret, false) || !nameSegment(version, false)) {
    return std::unexpected("'" + forMessage(ref.path, 255) +
                           "' has a project, secret or version with characters a name cannot "
                           "hold (letters, digits, '-', '_', '.')");
  }
  return "projects/" + std::string(proj) + "/secrets/" + std::string(secret) + "/versions/" +
         std::string(version);
}

std::expected<GcpServiceAccountKey, std::string> parseGcpServiceAccountKey(std::string_view json) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::unexpected("it is not a JSON object");
  auto text = [&](const char* key) -> std::string {
    return doc.contains(key) && doc[key].is_string() ? doc[key].get<std::string>() : "";
  };
  const std::string type = text("type");
  GcpServiceAccountKey key;
  key.client_email = text("client_email");
  key.private_key_id = text("private_key_id");
  key.token_uri = text("token_uri");
  if (doc.contains("private_key") && doc["private_key"].is_string()) {
    auto& pem = doc["private_key"].get_ref<std::string&>();
    key.private_key = SecretValue(pem);
    wipe(pem);
  }
  if (type != "service_account") {
    return std::unexpected(
        "its type is '" + forMessage(type, 40) +
        "', not 'service_account' (user credentials and workload identity federation files are "
        "not supported; use a service-account key, or the metadata server)");
  }
  if (key.client_email.empty()) return std::unexpected("it has no client_email");
  if (key.private_key.empty()) return std::unexpected("it has no private_key");
  if (key.token_uri.empty()) key.token_uri = "https://oauth2.googleapis.com/token";
  return key;
}

std::expected<SecretValue, std::string> makeGcpJwtAssertion(
    const GcpServiceAccountKey& key, const std::string& audience,
    std::chrono::system_clock::time_point now) {
  Pkey pkey = loadRsaKey(key.private_key);
  if (!pkey) return std::unexpected("the private_key is not an unencrypted RSA key in PEM");
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!key.private_key_id.empty()) header["kid"] = key.private_key_id;
  const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const nlohmann::json claims = {{"iss", key.client_email},
                                 {"scope", kScope},
                                 {"aud", audience},
                                 {"iat", iat},
                                 {"exp", iat + 3600}};
  std::string signing_input = encodeBase64Url(header.dump()) + "." + encodeBase64Url(claims.dump());

  MdCtx ctx(EVP_MD_CTX_new());
  std::size_t size = 0;
  bool ok = ctx && EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) == 1 &&
            EVP_DigestSign(ctx.get(), nullptr, &size,
                           reinterpret_cast<const unsigned char*>(signing_input.data()),
                           signing_input.size()) == 1;
  std::string signature(size, '\0');
  ok = ok && EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                            reinterpret_cast<const unsigned char*>(signing_input.data()),
                            signing_input.size()) == 1;
  ERR_clear_error();
  if (!ok) return std::unexpected("signing the JWT with the private_key failed");
  signature.resize(size);
  signing_input += "." + encodeBase64Url(signature);
  return SecretValue(std::move(signing_input));
}

std::expected<AccessToken, std::string> parseGcpTokenResponse(
    std::string_view json, std::chrono::system_clock::time_point now) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::unexpected("the answer is not JSON");
  auto token = takeBearerToken(doc);
  if (!token) return std::unexpected(token.error());
  AccessToken t{std::move(*token), {}};
  if (!doc.contains("expires_in") || !doc["expires_in"].is_number_integer() ||
      doc["expires_in"].get<long long>() <= 0) {
    return std::unexpected("the answer has no positive expires_in");
  }
  t.expires = now + std::chrono::seconds(doc["expires_in"].get<long long>());
  return t;
}

std::expected<FetchedSecret, std::string> parseGcpAccessResponse(std::string_view json) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::unexpected("the answer is not JSON");
  FetchedSecret out;
  if (doc.contains("name") && doc["name"].is_string()) {
    const std::string name = doc["name"].get<std::string>();
    out.version = name.substr(name.rfind('/') + 1);
  }
  if (!doc.contains("payload") || !doc["payload"].is_object()) {
    return std::unexpected("the answer has no payload");
  }
  auto& payload = doc["payload"];
  std::optional<std::string> data;
  if (payload.contains("data") && payload["data"].is_string()) {
    auto& s = payload["data"].get_ref<std::string&>();
    data = decodeBase64(s);
    wipe(s);
    if (!data) return std::unexpected("payload.data is not valid base64");
  } else if (!payload.contains("data")) {
    data = std::string();  // an empty secret: proto3 JSON leaves the field out
  } else {
    return std::unexpected("payload.data is not a string");
  }
  // int64 in proto3 JSON is a decimal string; a number is accepted too.
  std::optional<std::uint64_t> expected_crc;
  if (payload.contains("dataCrc32c")) {
    const auto& v = payload["dataCrc32c"];
    std::uint64_t n = 0;
    bool ok = false;
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      ok = ec == std::errc() && p == s.data() + s.size() && !s.empty();
    } else if (v.is_number_unsigned()) {
      n = v.get<std::uint64_t>();
      ok = true;
    }
    if (!ok) {
      wipe(*data);
      return std::unexpected("payload.dataCrc32c is not a whole number");
    }
    expected_crc = n;
  }
  if (expected_crc && *expected_crc != crc32c(*data)) {
    wipe(*data);
    return std::unexpected(
        "the payload does not match its CRC32C checksum (payload.dataCrc32c): it was damaged "
        "on the way, so it is refused");
  }
  if (!expected_crc) {
    spdlog::debug("gcp-sm: the answer has no payload.dataCrc32c; the payload is not checked");
  }
  out.value = SecretValue(std::move(*data));
  return out;
}

// --- token sources ---

GcpServiceAccountTokenSource::GcpServiceAccountTokenSource(GcpServiceAccountKey key,
                                                           std::string token_uri,
                                                           std::shared_ptr<HttpClient> http,
                                                           const Clock& clock)
    : key_(std::move(key)),
      token_uri_(token_uri.empty() ? key_.token_uri : std::move(token_uri)),
      http_(std::move(http)),
      clock_(clock) {
  if (!loadRsaKey(key_.private_key)) {
    throw ConfigError("gcp-sm: the private_key of service account " + key_.client_email +
                      " is not an unencrypted RSA private key in PEM");
  }
  checkUrl(token_uri_, "token_uri (of the key file)", false);
}

std::expected<AccessToken, SecretError> GcpServiceAccountTokenSource::load() {
  const std::string what =
      "gcp-sm: access token for " + name() + " from " + urlForMessages(token_uri_);
  auto assertion = makeGcpJwtAssertion(key_, token_uri_, clock_.now());
  if (!assertion) return std::unexpected(SecretError{K::kInvalid, what + ": " + assertion.error()});
  HttpRequest req;
  req.method = "POST";
  req.url = token_uri_;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  req.body = "grant_type=" + uriEncode(kJwtBearerGrant, false) +
             "&assertion=" + std::string(assertion->reveal());
  auto resp = http_->send(req);
  wipe(req.body);
  if (!resp)
    return std::unexpected(SecretError{K::kUnavailable, what + ": " + resp.error().message});
  return tokenFromAnswer(*resp, what, googleError, parseGcpTokenResponse, clock_);
}

GcpMetadataTokenSource::GcpMetadataTokenSource(std::string endpoint,
                                               std::shared_ptr<HttpClient> http, const Clock& clock)
    : endpoint_(withoutTrailingSlash(std::move(endpoint))), http_(std::move(http)), clock_(clock) {}

std::expected<AccessToken, SecretError> GcpMetadataTokenSource::load() {
  const std::string what =
      "gcp-sm: access token from the metadata server at " + urlForMessages(endpoint_);
  HttpRequest req;
  req.url = endpoint_ + "/computeMetadata/v1/instance/service-accounts/default/token";
  req.headers = {{"Metadata-Flavor", "Google"}};
  auto resp = http_->send(req);
  if (!resp) {
    return std::unexpected(SecretError{
        K::kUnavailable, what + ": " + resp.error().message +
                             " (not on Google Cloud? set secrets.gcp.credentials_file or "
                             "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file)"});
  }
  // What Google's client libraries check too: a server that does not say so is not Google's.
  if (resp->status == 200 &&
      findHeader(resp->headers, "Metadata-Flavor").value_or("") != "Google") {
    wipe(resp->body);
    return std::unexpected(SecretError{
        K::kUnavailable, what + ": the answer has no 'Metadata-Flavor: Google' header"});
  }
  auto detail = [](const HttpResponse& r) -> std::string {
    return r.status == 404 ? "(the instance has no service account)" : "";
  };
  return tokenFromAnswer(*resp, what, detail, parseGcpTokenResponse, clock_);
}

// --- the provider ---

namespace {

// The key file when one is given, else the metadata server. Throws ConfigError when the key file
// cannot be read or used.
std::unique_ptr<GcpTokenSource> defaultTokenSource(const GcpConfig& config,
                                                   const std::shared_ptr<HttpClient>& http,
                                                   const Clock& clock) {
  if (config.credentials_file.empty()) {
    return std::make_unique<GcpMetadataTokenSource>(
        config.metadata_endpoint, std::make_shared<HttpClient>(metadataClientConfig(config)),
        clock);
  }
  const std::string setting = "the service-account key file " + config.credentials_file +
                              " (secrets.gcp.credentials_file, GOOGLE_APPLICATION_CREDENTIALS)";
  auto bytes = readSmallFile(config.credentials_file);
  if (!bytes) throw ConfigError("gcp-sm: " + bytes.error() + " (" + setting + ")");
  auto key = parseGcpServiceAccountKey(*bytes);
  wipe(*bytes);
  if (!key) throw ConfigError("gcp-sm: " + setting + ": " + key.error());
  return std::make_unique<GcpServiceAccountTokenSource>(std::move(*key), config.token_uri, http,
                                                        clock);
}

}  // namespace

GcpSecretManagerProvider::GcpSecretManagerProvider(GcpConfig config, const Environment& env,
                                                   const Clock& clock)
    : GcpSecretManagerProvider(std::move(config), env, clock, nullptr) {}

GcpSecretManagerProvider::GcpSecretManagerProvider(GcpConfig config, const Environment& env,
                                                   const Clock& clock,
                                                   std::unique_ptr<GcpTokenSource> tokens)
    : config_(resolveGcpConfig(std::move(config), env)),
      http_(std::make_shared<HttpClient>(apiClientConfig(config_.transport, env))),
      token_source_(tokens ? std::move(tokens) : defaultTokenSource(config_, http_, clock)),
      tokens_(
          "gcp-sm", token_source_->name(),
          [source = token_source_.get()] { return source->load(); }, clock,
          config_.refresh_before_expiry) {
  spdlog::info("gcp-sm: access tokens from {}", token_source_->name());
}

std::expected<FetchedSecret, SecretError> GcpSecretManagerProvider::fetch(const SecretRef& ref) {
  const std::string shown = ref.text.empty() ? "gcp-sm:" + ref.path : ref.text;
  auto name = gcpVersionName(ref, config_.project);
  if (!name) return std::unexpected(SecretError{K::kInvalid, shown + ": gcp-sm: " + name.error()});
  const std::string where = shown + ": gcp-sm (" + *name + ")";

  auto resp = getWithAccessToken(*http_, tokens_, config_.endpoint + "/v1/" + *name + ":access",
                                 shown, where, googleError);
  if (!resp) return std::unexpected(resp.error());
  auto got = parseGcpAccessResponse(resp->body);
  wipe(resp->body);
  if (!got) return std::unexpected(SecretError{K::kUnavailable, where + ": " + got.error()});
  return selectField(ref, std::move(*got));
}

}  // namespace outpost::secrets
