#include "outpost/secrets/aws.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "aws_internal.h"
#include "outpost/common/clock.h"
#include "outpost/secrets/providers.h"
#include "outpost/secrets/sigv4.h"
#include "provider_internal.h"

namespace outpost::secrets {
namespace {

using provider_internal::describe;
using provider_internal::envValue;
using provider_internal::forMessage;
using provider_internal::wipe;
using provider_internal::withAttempts;
using provider_internal::withoutTrailingSlash;

std::string expandHome(std::string path, const Environment& env) {
  if (path == "~" || path.starts_with("~/")) path = envValue(env, "HOME") + path.substr(1);
  return path;
}

bool isRegionName(std::string_view r) {
  return !r.empty() && r.size() <= 64 && std::all_of(r.begin(), r.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '-';
  });
}

std::string dnsSuffix(std::string_view region) {
  return region.starts_with("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Any http(s) URL with a host; plain http is accepted here, and warned about where it matters
// (warnIfPlainHttp).
void checkEndpoint(const std::string& url, const char* setting) {
  if (url.empty()) return;
  provider_internal::checkServiceUrl(url, "aws-sm", setting, /*any_http=*/true);
}

void warnIfPlainHttp(const std::string& url, const char* setting) {
  auto u = parseUrl(url);
  if (u && u->scheme == "http" && !isLoopbackHost(u->host)) {
    spdlog::warn("aws-sm: {} {} is plain http: what it returns crosses the network unencrypted",
                 setting, urlForMessages(url));
  }
}

// The region an ARN names (arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME), if any.
std::string arnRegion(std::string_view path) {
  if (!path.starts_with("arn:")) return {};
  std::array<std::string_view, 5> parts{};  // arn, partition, service, region, account
  std::size_t begin = 0;
  for (auto& part : parts) {
    auto colon = path.find(':', begin);
    if (colon == std::string_view::npos) return {};
    part = path.substr(begin, colon - begin);
    begin = colon + 1;
  }
  return parts[2] == "secretsmanager" && isRegionName(parts[3]) ? std::string(parts[3]) : "";
}

// Strict standard base64 (padding optional). nullopt on anything else.
std::optional<std::string> decodeBase64(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  return provider_internal::decodeUnpaddedBase64(in);
}

SecretError::Kind kindOf(const std::string& code, long status, const HttpResponse& response) {
  using K = SecretError::Kind;
  if (code == "ResourceNotFoundException") return K::kNotFound;
  if (code.starts_with("AccessDenied") || code == "UnrecognizedClientException" ||
      code == "InvalidSignatureException" || code.starts_with("IncompleteSignature") ||
      code.starts_with("MissingAuthenticationToken") || code == "InvalidClientTokenId" ||
      code.starts_with("ExpiredToken") || code == "SignatureDoesNotMatch" ||
      code == "DecryptionFailure" || code == "NotAuthorized") {
    return K::kDenied;
  }
  if (status >= 500 || status == 429 || isAwsThrottling(response)) return K::kUnavailable;
  return K::kInvalid;
}

// Secrets Manager and STS: besides 5xx and 429, AWS's throttling answers (often a 400) and STS's
// IDPCommunicationError are tried again.
HttpClientConfig apiClientConfig(const AwsConfig& c, const Environment& env) {
  HttpClientConfig h = provider_internal::apiClientConfig(c.transport, env);
  h.retry.retry_response = [](const HttpResponse& r) {
    return isAwsThrottling(r) || aws_internal::awsErrorCode(r) == "IDPCommunicationError";
  };
  return h;
}

// Instance metadata and container endpoints (the container endpoint may be https).
HttpClientConfig metadataClientConfig(const AwsConfig& c) {
  HttpClientConfig h = provider_internal::metadataClientConfig(c);
  h.ca_bundle = c.transport.ca_bundle;
  return h;
}

}  // namespace

bool isAwsThrottling(const HttpResponse& response) {
  if (response.status < 400) return false;
  static constexpr std::string_view kCodes[] = {
      "Throttling",
      "ThrottlingException",
      "ThrottledException",
      "RequestThrottled",
      "RequestThrottledException",
      "TooManyRequestsException",
      "RequestLimitExceeded",
      "BandwidthLimitExceeded",
      "ProvisionedThroughputExceededException",
      "SlowDown",
      "PriorRequestNotComplete",
      "EC2ThrottledException",
  };
  const std::string code = aws_internal::awsErrorCode(response);
  return std::find(std::begin(kCodes), std::end(kCodes), code) != std::end(kCodes);
}

AwsConfig resolveAwsConfig(AwsConfig c, const Environment& env) {
  auto first = [&](std::string current, std::initializer_list<const char*> names) {
    for (const char* n : names) {
      if (!current.empty()) break;
      current = envValue(env, n);
    }
    return current;
  };
  c.profile = first(c.profile, {"AWS_PROFILE", "AWS_DEFAULT_PROFILE"});
  if (c.profile.empty()) c.profile = "default";
  c.shared_credentials_file =
      expandHome(first(c.shared_credentials_file, {"AWS_SHARED_CREDENTIALS_FILE"}), env);
  if (c.shared_credentials_file.empty()) {
    c.shared_credentials_file = envValue(env, "HOME") + "/.aws/credentials";
  }
  c.config_file = expandHome(first(c.config_file, {"AWS_CONFIG_FILE"}), env);
  if (c.config_file.empty()) c.config_file = envValue(env, "HOME") + "/.aws/config";

  c.region = first(c.region, {"AWS_REGION", "AWS_DEFAULT_REGION"});
  if (c.region.empty()) {
    if (auto file = readIniFile(c.config_file)) {
      if (const auto* p = findProfile(*file, c.profile, true)) {
        if (auto it = p->find("region"); it != p->end()) c.region = it->second;
      }
    }
  }
  if (c.region.empty()) {
    throw ConfigError(
        "aws-sm: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), `region` "
        "in profile '" +
        c.profile + "' of " + c.config_file + ", or the provider's region setting");
  }
  if (!isRegionName(c.region)) {
    throw ConfigError("aws-sm: region '" + forMessage(c.region, 64) +
                      "' is not a region name (like eu-west-1)");
  }

  c.endpoint = first(c.endpoint, {"AWS_ENDPOINT_URL_SECRETS_MANAGER"});
  checkEndpoint(c.endpoint, "endpoint (AWS_ENDPOINT_URL_SECRETS_MANAGER)");
  c.sts_endpoint = first(c.sts_endpoint, {"AWS_ENDPOINT_URL_STS"});
  if (c.sts_endpoint.empty()) {
    c.sts_endpoint = "https://sts." + c.region + "." + dnsSuffix(c.region) + "/";
  }
  checkEndpoint(c.sts_endpoint, "sts_endpoint (AWS_ENDPOINT_URL_STS)");
  checkEndpoint(c.container_endpoint, "container_endpoint");
  c.instance_metadata_endpoint =
      first(c.instance_metadata_endpoint, {"AWS_EC2_METADATA_SERVICE_ENDPOINT"});
  if (c.instance_metadata_endpoint.empty()) {
    c.instance_metadata_endpoint = "http://169.254.169.254";
  }
  checkEndpoint(c.instance_metadata_endpoint,
                "instance_metadata_endpoint (AWS_EC2_METADATA_SERVICE_ENDPOINT)");
  if (iequals(envValue(env, "AWS_EC2_METADATA_DISABLED"), "true")) {
    c.instance_metadata_disabled = true;
  }
  c.transport.ca_bundle = expandHome(first(c.transport.ca_bundle, {"AWS_CA_BUNDLE"}), env);

  auto intFromEnv = [&](const char* name, auto apply) {
    auto text = envValue(env, name);
    if (text.empty()) return;
    int v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || v < 1) {
      throw ConfigError(std::string("aws-sm: ") + name + "='" + forMessage(text, 32) +
                        "' is not a positive whole number");
    }
    apply(v);
  };
  intFromEnv("AWS_METADATA_SERVICE_TIMEOUT",
             [&](int v) { c.metadata_timeout = std::chrono::seconds(v); });
  intFromEnv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", [&](int v) { c.metadata_attempts = v; });
  provider_internal::checkTransport(c.transport, "aws-sm");
  if (c.metadata_attempts < 1) throw ConfigError("aws-sm: metadata_attempts must be at least 1");
  return c;
}

std::vector<std::unique_ptr<AwsCredentialSource>> defaultAwsCredentialSources(
    const AwsConfig& config, const Environment& env, const Clock& clock) {
  auto api = std::make_shared<HttpClient>(apiClientConfig(config, env));
  auto metadata = std::make_shared<HttpClient>(metadataClientConfig(config));

  std::vector<std::unique_ptr<AwsCredentialSource>> sources;
  sources.push_back(std::make_unique<EnvironmentCredentialSource>(env));
  sources.push_back(std::make_unique<ProfileCredentialSource>(
      config.shared_credentials_file, config.config_file, config.profile,
      /*profile_required=*/config.profile != "default"));

  std::string session = envValue(env, "AWS_ROLE_SESSION_NAME");
  if (session.empty()) session = "outpost-" + std::to_string(toUnixMillis(clock.now()));
  sources.push_back(std::make_unique<WebIdentityCredentialSource>(
      envValue(env, "AWS_ROLE_ARN"), expandHome(envValue(env, "AWS_WEB_IDENTITY_TOKEN_FILE"), env),
      session, config.sts_endpoint, api));

  std::string container_url;
  if (auto rel = envValue(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); !rel.empty()) {
    container_url =
        withoutTrailingSlash(config.container_endpoint) + (rel.starts_with("/") ? "" : "/") + rel;
  } else {
    container_url = envValue(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  }
  sources.push_back(std::make_unique<ContainerCredentialSource>(
      container_url, SecretValue(envValue(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN")),
      envValue(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"), metadata));

  sources.push_back(std::make_unique<InstanceMetadataCredentialSource>(
      config.instance_metadata_endpoint, config.instance_metadata_disabled, metadata));
  return sources;
}

AwsSecretsManagerProvider::AwsSecretsManagerProvider(AwsConfig config, const Environment& env,
                                                     const Clock& clock)
    : AwsSecretsManagerProvider(config, env, clock, nullptr) {}

AwsSecretsManagerProvider::AwsSecretsManagerProvider(
    AwsConfig config, const Environment& env, const Clock& clock,
    std::shared_ptr<AwsCredentialsProvider> credentials)
    : config_(resolveAwsConfig(std::move(config), env)),
      clock_(clock),
      credentials_(std::move(credentials)),
      http_(std::make_shared<HttpClient>(apiClientConfig(config_, env))) {
  if (!credentials_) {
    credentials_ = std::make_shared<AwsCredentialChain>(
        defaultAwsCredentialSources(config_, env, clock_), clock_, config_.refresh_before_expiry);
  }
  warnIfPlainHttp(config_.endpoint, "endpoint");
  warnIfPlainHttp(config_.sts_endpoint, "sts_endpoint");
}

std::expected<FetchedSecret, SecretError> AwsSecretsManagerProvider::fetch(const SecretRef& ref) {
  using K = SecretError::Kind;
  const std::string shown = ref.text.empty() ? "aws-sm:" + ref.path : ref.text;
  if (ref.path.empty())
    return std::unexpected(SecretError{K::kInvalid, shown + ": no secret name"});

  std::string region = config_.region;
  std::string url = config_.endpoint;
  if (url.empty()) {
    if (auto r = arnRegion(ref.path); !r.empty()) region = r;
    url = "https://secretsmanager." + region + "." + dnsSuffix(region) + "/";
  }
  const std::string where = shown + ": aws-sm (" + region + ")";

  auto creds = credentials_->credentials();
  if (!creds) {
    return std::unexpected(SecretError{creds.error().kind, where + ": " + creds.error().message});
  }

  nlohmann::json body = {{"SecretId", ref.path}};
  if (!ref.version.empty()) {
    body[isUuid(ref.version) ? "VersionId" : "VersionStage"] = ref.version;
  }
  HttpRequest req;
  req.method = "POST";
  req.url = url;
  req.headers = {{"Content-Type", "application/x-amz-json-1.1"},
                 {"X-Amz-Target", "secretsmanager.GetSecretValue"}};
  req.body = body.dump();
  auto signed_ = signSigV4(req, *creds, {region, "secretsmanager", clock_.now()});
  if (!signed_) return std::unexpected(SecretError{K::kInvalid, where + ": " + signed_.error()});

  auto resp = http_->send(req);
  for (auto& h : req.headers) wipe(h.value);  // the session token is among them
  if (!resp) {
    return std::unexpected(SecretError{K::kUnavailable, where + ": " + resp.error().message});
  }
  if (resp->status != 200) {
    const std::string code = aws_internal::awsErrorCode(*resp);
    const auto kind = kindOf(code, resp->status, *resp);
    if (code.starts_with("ExpiredToken")) credentials_->invalidate();
    std::string msg = where + ": " + describe(kind) + ": HTTP " + std::to_string(resp->status);
    if (!code.empty()) msg += " " + forMessage(code, 80);
    if (auto m = aws_internal::awsErrorMessage(*resp); !m.empty()) msg += ": " + m;
    wipe(resp->body);
    return std::unexpected(SecretError{kind, withAttempts(std::move(msg), resp->attempts)});
  }

  auto doc = nlohmann::json::parse(resp->body, nullptr, false);
  wipe(resp->body);
  if (doc.is_discarded() || !doc.is_object()) {
    return std::unexpected(SecretError{K::kUnavailable, where + ": the answer is not JSON"});
  }
  FetchedSecret out;
  if (doc.contains("VersionId") && doc["VersionId"].is_string()) {
    out.version = doc["VersionId"].get<std::string>();
  }
  std::string value;
  bool binary = false;
  if (doc.contains("SecretString") && doc["SecretString"].is_string()) {
    auto& s = doc["SecretString"].get_ref<std::string&>();
    value = s;
    wipe(s);
  } else if (doc.contains("SecretBinary") && doc["SecretBinary"].is_string()) {
    auto& s = doc["SecretBinary"].get_ref<std::string&>();
    auto decoded = decodeBase64(s);
    wipe(s);
    if (!decoded) {
      return std::unexpected(
          SecretError{K::kUnavailable, where + ": SecretBinary is not valid base64"});
    }
    value = std::move(*decoded);
    binary = true;
  } else {
    return std::unexpected(SecretError{
        K::kNotFound, where + ": the secret version has no SecretString or SecretBinary"});
  }

  if (ref.field.empty()) {
    out.value = SecretValue(std::move(value));
    return out;
  }
  if (binary) {
    wipe(value);
    return std::unexpected(SecretError{
        K::kInvalid, where + ": the secret is binary, so it has no field '" + ref.field + "'"});
  }
  auto field = extractJsonField(ref, value);  // its errors name the reference and the field
  wipe(value);
  if (!field) return std::unexpected(field.error());
  out.value = std::move(*field);
  return out;
}

}  // namespace outpost::secrets
