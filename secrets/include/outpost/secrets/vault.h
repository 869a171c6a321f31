// HashiCorp Vault's KV version 2 engine as a SecretProvider ("vault"), logged in with a token,
// a Kubernetes service account or an AppRole, with its token renewed before it expires.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/common/http_client.h"
#include "outpost/secrets/provider.h"

namespace outpost::secrets {

enum class VaultAuthMethod {
  kToken,       // a token from a file (a Vault Agent sink, say) or VAULT_TOKEN
  kKubernetes,  // the pod's service account JWT, exchanged at auth/<mount>/login
  kAppRole,     // role_id + secret_id, exchanged at auth/<mount>/login
};

// "token", "kubernetes", "approle"; nullopt for anything else.
std::optional<VaultAuthMethod> parseVaultAuthMethod(std::string_view name);
std::string_view vaultAuthMethodName(VaultAuthMethod method);

// Settings of the Vault provider. Empty strings mean "from the environment as the Vault CLI
// reads it", then the default; resolveVaultConfig() fills them in.
struct VaultConfig {
  // https://vault.example.com:8200. Plain http:// only for a loopback address (a dev server, a
  // local Vault Agent): anything else would send tokens and secrets across the network in clear.
  std::string address;
  // Vault Enterprise namespace, sent as X-Vault-Namespace on every request. Empty:
  // VAULT_NAMESPACE, then none.
  std::string vault_namespace;
  VaultAuthMethod auth = VaultAuthMethod::kToken;
  // token: the file holding the token (re-read when the token is refused). Empty: VAULT_TOKEN.
  std::string token_file;
  // kubernetes and approle: where the auth method is mounted. Empty: "kubernetes" / "approle".
  std::string auth_mount;
  // kubernetes: the Vault role and the service account token presented to it.
  std::string role;
  std::string jwt_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  // approle: the role id, and the file with the secret id. Empty file: VAULT_SECRET_ID.
  std::string role_id;
  std::string secret_id_file;
  // How Vault is reached. An empty ca_bundle: VAULT_CACERT, then the system's.
  StoreTransport transport;
  // The token is renewed when less than this is left of its lease. Zero: when less than a third
  // of the lease is left.
  std::chrono::seconds renew_before{0};
};

// Fills the empty settings from env as described above. Throws ConfigError naming the setting
// when the address is missing or not usable, or the chosen auth method lacks its settings.
VaultConfig resolveVaultConfig(VaultConfig config, const Environment& env);

// --- pieces of the provider, public for tests ---

// GET URL of a KV v2 read: {address}/v1/{mount}/data/{path}[?version=N], where the reference's
// path is MOUNT/PATH (the first segment is the mount). Each segment is percent-encoded; empty,
// "." and ".." segments and a version that is not a positive number are refused (kInvalid).
std::expected<std::string, SecretError> vaultKvReadUrl(std::string_view address,
                                                       const SecretRef& ref);

// The value a KV v2 read answer (its whole JSON body) holds for ref: data.data[field] (a key
// holding dots is matched whole first, then as a path into nested objects), or the only value
// when ref has no field. The version is data.metadata.version. Errors name the reference, never
// a value; body is wiped.
std::expected<FetchedSecret, SecretError> vaultSecretFromAnswer(const SecretRef& ref,
                                                                std::string& body);

// How long before its lease ends a token is renewed: renew_before, or a third of the lease when
// renew_before is zero; never more than half the lease, so that a short lease is not renewed on
// every fetch.
std::chrono::seconds vaultRenewThreshold(std::chrono::seconds lease,
                                         std::chrono::seconds renew_before);

// ${vault:MOUNT/PATH#field}, ${vault:MOUNT/PATH?version=N#field}. Thread-safe: fetches run in
// parallel; logging in and renewing are done by one caller at a time while the others wait for
// its token. No token is held until the first fetch.
class VaultProvider final : public SecretProvider {
 public:
  // Resolves config against env. Throws ConfigError (see resolveVaultConfig).
  VaultProvider(VaultConfig config, const Environment& env, const Clock& clock);
  ~VaultProvider() override;

  std::string name() const override { return "vault"; }
  std::expected<FetchedSecret, SecretError> fetch(const SecretRef& ref) override;

  const VaultConfig& config() const { return config_; }

 private:
  struct Token;
  struct Lease;
  // The token to use, logging in or renewing first when needed. Takes auth_mutex_.
  std::expected<Token, SecretError> currentToken();
  // After a read refused the token of generation `refused`: the token another caller has put in
  // its place, or one from a new login. nullopt when there is nothing new to try: the token can
  // still look itself up (the refusal is the policy's), or the token source holds the same one.
  // Takes auth_mutex_.
  std::optional<std::expected<Token, SecretError>> replaceRefused(std::uint64_t refused);
  // The network steps; auth_mutex_ held.
  std::expected<Lease, SecretError> loginLocked();
  std::expected<Lease, SecretError> renewLocked();
  void installLocked(Lease lease);

  VaultConfig config_;
  // VAULT_TOKEN and VAULT_SECRET_ID as they were when the provider was made: the fallbacks of
  // token_file and secret_id_file.
  const SecretValue env_token_;
  const SecretValue env_secret_id_;
  const Clock& clock_;
  std::unique_ptr<HttpClient> http_;

  std::mutex auth_mutex_;  // guards lease_ and generation_; held across login and renewal
  std::unique_ptr<Lease> lease_;
  std::uint64_t generation_ = 0;  // counts the tokens obtained
};

}  // namespace outpost::secrets
