// Azure Key Vault secrets as a SecretProvider ("azure-kv"): Get Secret over HTTPS, with a
// Microsoft Entra ID access token from a managed identity (IMDS) or a service principal's client
// secret.
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/common/http_client.h"
#include "outpost/secrets/access_token.h"
#include "outpost/secrets/provider.h"

namespace outpost::secrets {

// How the provider gets its access token (secrets.azure.auth: managed_identity,
// client_credentials, or nothing for kDefault).
enum class AzureAuth { kDefault, kManagedIdentity, kClientCredentials };

// Settings of the Azure provider. Empty strings mean "from the environment, as Azure's SDKs read
// it", then the default; resolveAzureConfig() fills them in.
struct AzureConfig {
  // https://NAME.vault.azure.net (or a sovereign cloud's vault, a test server). Required. Only a
  // loopback address may be plain http://.
  std::string vault_url;
  // kDefault: client credentials when a client secret is given (client_secret_file or
  // AZURE_CLIENT_SECRET), else the managed identity.
  AzureAuth auth = AzureAuth::kDefault;
  // The service principal's tenant. Empty: AZURE_TENANT_ID.
  std::string tenant_id;
  // The service principal's application id, or the user-assigned managed identity's client id.
  // Empty: AZURE_CLIENT_ID (and for a managed identity, none: the system-assigned one).
  std::string client_id;
  // A file holding the client secret, read at every token request (so it may be rotated).
  // Empty: AZURE_CLIENT_SECRET.
  std::string client_secret_file;
  // The instance metadata service. Empty: http://169.254.169.254.
  std::string imds_endpoint;
  // Microsoft Entra ID. Empty: AZURE_AUTHORITY_HOST, then https://login.microsoftonline.com. Only
  // a loopback address may be plain http://.
  std::string authority_host;
  // How Key Vault and the authority are reached. IMDS never goes through the proxy.
  // retry_max_delay is also the longest Retry-After waited for (Key Vault says how long to back
  // off when it throttles, with 429 and Retry-After).
  StoreTransport transport = [] {
    StoreTransport t;
    t.retry_max_delay = std::chrono::seconds(10);
    return t;
  }();
  // IMDS is local and quick, or absent: short limits.
  std::chrono::milliseconds metadata_timeout{2000};
  int metadata_attempts = 3;
  // Access tokens are renewed this long before they expire (at most half their lifetime).
  std::chrono::seconds refresh_before_expiry{std::chrono::minutes(5)};
  // How to wait between tries; empty: sleep. A seam for tests.
  std::function<void(std::chrono::milliseconds)> sleep;
};

// Fills the empty settings from env as described above and settles `auth`. Throws ConfigError
// naming the setting: no vault_url, a URL that is not http(s) or is plain http:// to anything
// but a loopback address (IMDS excepted), client credentials without a tenant, client id or
// secret, max_attempts below 1.
AzureConfig resolveAzureConfig(AzureConfig config, const Environment& env);

// Where access tokens come from.
class AzureTokenSource {
 public:
  virtual ~AzureTokenSource() = default;
  virtual std::string name() const = 0;
  // Called by one thread at a time (the provider's AccessTokenCache holds its lock). May block on
  // the network. The error names the source, never a token or a client secret.
  virtual std::expected<AccessToken, SecretError> load() = 0;
};

// The VM's (or VM scale set's, AKS node's) managed identity through IMDS: GET
// /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...[&client_id=...] with
// Metadata: true.
class AzureManagedIdentityTokenSource final : public AzureTokenSource {
 public:
  // client_id empty: the system-assigned identity.
  AzureManagedIdentityTokenSource(std::string imds_endpoint, std::string resource,
                                  std::string client_id, std::shared_ptr<HttpClient> http,
                                  const Clock& clock);
  std::string name() const override;
  std::expected<AccessToken, SecretError> load() override;

 private:
  std::string endpoint_, resource_, client_id_;
  std::shared_ptr<HttpClient> http_;
  const Clock& clock_;
};

// A service principal's client secret, exchanged at AUTHORITY/TENANT/oauth2/v2.0/token
// (grant_type=client_credentials).
class AzureClientCredentialsTokenSource final : public AzureTokenSource {
 public:
  // The secret comes from secret_file when it is not empty (read at every load), else `secret`.
  AzureClientCredentialsTokenSource(std::string authority_host, std::string tenant_id,
                                    std::string client_id, SecretValue secret,
                                    std::string secret_file, std::string scope,
                                    std::shared_ptr<HttpClient> http, const Clock& clock);
  std::string name() const override { return "service principal " + client_id_; }
  std::expected<AccessToken, SecretError> load() override;

 private:
  std::string token_url_, client_id_;
  SecretValue secret_;
  std::string secret_file_, scope_;
  std::shared_ptr<HttpClient> http_;
  const Clock& clock_;
};

// ${azure-kv:NAME[/VERSION]#field} (secret:/NAME[/VERSION] as the default cloud): the secret's
// value, and its version (the last segment of its id). Thread-safe.
class AzureKeyVaultProvider final : public SecretProvider {
 public:
  // Resolves config against env and builds the token source it names. Throws ConfigError (see
  // resolveAzureConfig, and a client secret file that cannot be read).
  AzureKeyVaultProvider(AzureConfig config, const Environment& env, const Clock& clock);
  // With a token source of the caller's.
  AzureKeyVaultProvider(AzureConfig config, const Environment& env, const Clock& clock,
                        std::unique_ptr<AzureTokenSource> tokens);

  std::string name() const override { return "azure-kv"; }
  std::expected<FetchedSecret, SecretError> fetch(const SecretRef& ref) override;

  const AzureConfig& config() const { return config_; }
  std::string tokenSource() const { return token_source_->name(); }

 private:
  AzureConfig config_;
  std::shared_ptr<HttpClient> http_;
  const std::unique_ptr<AzureTokenSource> token_source_;  // loaded from by tokens_ only
  AccessTokenCache tokens_;
};

// --- helpers, public for tests ---

inline constexpr const char* kAzureKeyVaultApiVersion = "7.4";

// The token resource of a vault: https://vault.azure.net for NAME.vault.azure.net, the sovereign
// clouds' own (vault.azure.cn, vault.usgovcloudapi.net, ...) for theirs; https://vault.azure.net
// for any other host (a private endpoint alias, a test server).
std::string azureVaultResource(std::string_view vault_url);

// "/secrets/NAME" or "/secrets/NAME/VERSION" for a reference (NAME/VERSION in the path, or the
// version in ref.version). The error says what a name and a version may hold.
std::expected<std::string, std::string> azureSecretPath(const SecretRef& ref);

// A token answer of IMDS or Entra ID: access_token, and expires_in (seconds, a number or a
// string) and/or expires_on (Unix seconds, a number or a string); with both, the earlier.
std::expected<AccessToken, std::string> parseAzureTokenResponse(
    std::string_view json, std::chrono::system_clock::time_point now);

// Get Secret's answer: value, and the version from id (.../secrets/NAME/VERSION). The error never
// holds the value.
std::expected<FetchedSecret, std::string> parseAzureSecretResponse(std::string_view json);

}  // namespace outpost::secrets
