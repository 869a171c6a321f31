// Google Cloud Secret Manager as a SecretProvider ("gcp-sm"): AccessSecretVersion over HTTPS,
// with an OAuth 2.0 access token from a service-account key or from the metadata server.
#pragma once

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/common/http_client.h"
#include "outpost/secrets/access_token.h"
#include "outpost/secrets/provider.h"

namespace outpost::secrets {

// Settings of the Google provider. Empty strings mean "from the environment, as Google's client
// libraries read it", then the default; resolveGcpConfig() fills them in.
struct GcpConfig {
  // The project of short references (${gcp-sm:NAME}, secret:/NAME). Empty: they are refused.
  std::string project;
  // Secret Manager's URL (a Private Service Connect endpoint, a test server). Only a loopback
  // address may be plain http://.
  std::string endpoint = "https://secretmanager.googleapis.com";
  // A service-account key file (JSON). Empty: GOOGLE_APPLICATION_CREDENTIALS; with neither, the
  // token comes from the metadata server.
  std::string credentials_file;
  // Where the key's signed JWT is exchanged for an access token (also the JWT's audience).
  // Empty: the key file's token_uri. Only a loopback address may be plain http://.
  std::string token_uri;
  // The metadata server. Empty: GCE_METADATA_HOST (host[:port]), then http://169.254.169.254.
  std::string metadata_endpoint;
  // How Secret Manager and token_uri are reached. The metadata server never goes through the
  // proxy.
  StoreTransport transport;
  // The metadata server is local and quick, or absent: short limits.
  std::chrono::milliseconds metadata_timeout{2000};
  int metadata_attempts = 3;
  // Access tokens are renewed this long before they expire (at most half their lifetime).
  std::chrono::seconds refresh_before_expiry{std::chrono::minutes(5)};
};

// Fills the empty settings from env as described above. Throws ConfigError naming the setting
// when a URL is not http(s), or is plain http:// to anything but a loopback address (the
// metadata server excepted), or max_attempts is below 1.
GcpConfig resolveGcpConfig(GcpConfig config, const Environment& env);

// Where access tokens come from.
class GcpTokenSource {
 public:
  virtual ~GcpTokenSource() = default;
  // For messages and logs: "service account NAME@PROJECT.iam.gserviceaccount.com".
  virtual std::string name() const = 0;
  // Called by one thread at a time (the provider's AccessTokenCache holds its lock). May block on
  // the network. The error names the source, never a token or a key.
  virtual std::expected<AccessToken, SecretError> load() = 0;
};

// What a service-account key file holds that the token exchange needs.
struct GcpServiceAccountKey {
  std::string client_email;
  std::string private_key_id;
  std::string token_uri;
  SecretValue private_key;  // PEM
};

// Signs a JWT with the key (RS256) and exchanges it at token_uri (grant type jwt-bearer).
class GcpServiceAccountTokenSource final : public GcpTokenSource {
 public:
  // token_uri empty: the key's. Throws ConfigError when the key cannot be used for signing.
  GcpServiceAccountTokenSource(GcpServiceAccountKey key, std::string token_uri,
                               std::shared_ptr<HttpClient> http, const Clock& clock);
  std::string name() const override { return "service account " + key_.client_email; }
  std::expected<AccessToken, SecretError> load() override;

 private:
  GcpServiceAccountKey key_;
  std::string token_uri_;
  std::shared_ptr<HttpClient> http_;
  const Clock& clock_;
};

// The default service account of a Compute Engine VM, GKE workload (Workload Identity), Cloud
// Run service and the like: GET .../instance/service-accounts/default/token with
// Metadata-Flavor: Google.
class GcpMetadataTokenSource final : public GcpTokenSource {
 public:
  GcpMetadataTokenSource(std::string endpoint, std::shared_ptr<HttpClient> http,
                         const Clock& clock);
  std::string name() const override { return "metadata server"; }
  std::expected<AccessToken, SecretError> load() override;

 private:
  std::string endpoint_;
  std::shared_ptr<HttpClient> http_;
  const Clock& clock_;
};

// ${gcp-sm:projects/P/secrets/S/versions/V#field}; also projects/P/secrets/S (the latest
// version), and S alone when `project` is set (projects/PROJECT/secrets/S/versions/latest).
// The version the store answers with is the last segment of its version name. The payload's
// CRC32C is checked. Thread-safe.
class GcpSecretManagerProvider final : public SecretProvider {
 public:
  // Resolves config against env and picks the token source: the key file when one is given,
  // else the metadata server. Throws ConfigError (see resolveGcpConfig, and a key file that
  // cannot be read or used).
  GcpSecretManagerProvider(GcpConfig config, const Environment& env, const Clock& clock);
  // With a token source of the caller's.
  GcpSecretManagerProvider(GcpConfig config, const Environment& env, const Clock& clock,
                           std::unique_ptr<GcpTokenSource> tokens);

  std::string name() const override { return "gcp-sm"; }
  std::expected<FetchedSecret, SecretError> fetch(const SecretRef& ref) override;

  const GcpConfig& config() const { return config_; }
  std::string tokenSource() const { return token_source_->name(); }

 private:
  GcpConfig config_;
  std::shared_ptr<HttpClient> http_;
  const std::unique_ptr<GcpTokenSource> token_source_;  // loaded from by tokens_ only
  AccessTokenCache tokens_;
};

// --- helpers, public for tests ---

// The full version name a reference means (projects/P/secrets/S/versions/V). A version in
// ref.version applies when the path names none. The error says which forms are understood.
std::expected<std::string, std::string> gcpVersionName(const SecretRef& ref,
                                                       const std::string& project);

// A key file's JSON. Only "type": "service_account" keys are understood; the error says what is
// wrong (never the key).
std::expected<GcpServiceAccountKey, std::string> parseGcpServiceAccountKey(std::string_view json);

// The signed JWT (RS256) asking for the cloud-platform scope: iss = client_email, aud =
// audience, iat = now, exp = now + 1 hour; kid = private_key_id in the header.
std::expected<SecretValue, std::string> makeGcpJwtAssertion(
    const GcpServiceAccountKey& key, const std::string& audience,
    std::chrono::system_clock::time_point now);

// A token endpoint's or the metadata server's answer: access_token, expires_in (seconds).
std::expected<AccessToken, std::string> parseGcpTokenResponse(
    std::string_view json, std::chrono::system_clock::time_point now);

// AccessSecretVersion's answer: payload.data (base64) checked against payload.dataCrc32c, and
// the version (last segment of name). The error never holds the payload.
std::expected<FetchedSecret, std::string> parseGcpAccessResponse(std::string_view json);

}  // namespace outpost::secrets
