// The `secrets` section: the chain, the cache and the file store, and one function per cloud store
// (secrets.aws, .vault, .gcp, .azure), each with its table of keys.
#include <algorithm>

#include "config_section.h"
#include "outpost/common/http_client.h"  // parseUrl, isLoopbackHost, urlForMessages

namespace outpost::config_impl {
namespace {

// A cloud store's transport settings (StoreTransport): the same keys, read and checked the same
// way, in each store's section.
constexpr KeySpec kTransportKeys[] = {{"ca_bundle"}, {"proxy"}, {"timeout"}, {"max_attempts"}};
constexpr Schema kTransportSchema{kTransportKeys};

StoreTransport readTransport(Section& s) {
  StoreTransport t;
  s.read("ca_bundle", t.ca_bundle);
  s.read("proxy", t.proxy);
  s.read("timeout", t.timeout);
  s.read("max_attempts", t.max_attempts);
  t.check([&](const char* key) { return s.where(key); });
  return t;
}

// A URL setting of the Google and Azure stores: plain http:// only to this machine, but for the
// metadata services (`any_http`), which are plain http at a link-local address by design.
void checkCloudUrl(const Section& s, const char* key, const std::string& url, bool any_http) {
  if (url.empty()) return;
  const auto u = parseUrl(url);
  if (!u || !u->query.empty()) {
    throw ConfigError(s.where(key) + " must be an https:// URL with a host and no query, " +
                      "not '" + urlForMessages(url) + "'");
  }
  if (u->scheme == "http" && !any_http && !isLoopbackHost(u->host)) {
    throw ConfigError(s.where(key) +
                      " may be plain http:// only for a loopback address (127.0.0.1, ::1, "
                      "localhost); anything else needs https://");
  }
}

// ---- secrets.aws ----

constexpr KeySpec kAwsKeys[] = {{"region"}, {"profile"}, {"endpoint"}, {"sts_endpoint"}};
constexpr Schema kAwsSchema{kAwsKeys, &kTransportSchema};

AwsSecretsSettings parseAws(Section a) {
  AwsSecretsSettings c;
  a.read("region", c.region);
  a.read("profile", c.profile);
  a.read("endpoint", c.endpoint);
  a.read("sts_endpoint", c.sts_endpoint);
  c.transport = readTransport(a);
  a.rejectUnknown();
  return c;
}

// ---- secrets.vault ----

constexpr KeySpec kVaultKeys[] = {{"address"},        {"namespace"},   {"auth"},     {"token_file"},
                                  {"auth_mount"},     {"role"},        {"jwt_file"}, {"role_id"},
                                  {"secret_id_file"}, {"renew_before"}};
constexpr Schema kVaultSchema{kVaultKeys, &kTransportSchema};

VaultSecretsSettings parseVault(Section v) {
  VaultSecretsSettings c;
  for (auto [key, field] : {std::pair{"address", &c.address},
                            {"namespace", &c.namespace_name},
                            {"auth", &c.auth},
                            {"token_file", &c.token_file},
                            {"auth_mount", &c.auth_mount},
                            {"role", &c.role},
                            {"jwt_file", &c.jwt_file},
                            {"role_id", &c.role_id},
                            {"secret_id_file", &c.secret_id_file}}) {
    v.read(key, *field);
  }
  c.transport = readTransport(v);
  v.read("renew_before", c.renew_before);
  v.rejectUnknown();
  const auto url = parseUrl(c.address);
  if (!url) {
    throw ConfigError(v.where("address") +
                      " must be the https:// URL of Vault (like https://vault.example.com:8200)");
  }
  if (url->scheme == "http" && !isLoopbackHost(url->host)) {
    throw ConfigError(v.where("address") +
                      " may be plain http:// only for a loopback address (127.0.0.1, ::1, "
                      "localhost); anything else needs https://");
  }
  if (c.auth != "token" && c.auth != "kubernetes" && c.auth != "approle") {
    throw ConfigError(v.where("auth") + " must be one of token, kubernetes, approle; not '" +
                      c.auth + "'");
  }
  if (c.auth == "kubernetes" && c.role.empty()) {
    throw ConfigError(v.where("role") + " is required with auth kubernetes");
  }
  if (c.auth == "approle" && c.role_id.empty()) {
    throw ConfigError(v.where("role_id") + " is required with auth approle");
  }
  return c;
}

// ---- secrets.gcp ----

constexpr KeySpec kGcpKeys[] = {
    {"project"}, {"endpoint"}, {"credentials_file"}, {"token_uri"}, {"metadata_endpoint"}};
constexpr Schema kGcpSchema{kGcpKeys, &kTransportSchema};

GcpSecretsSettings parseGcp(Section g) {
  GcpSecretsSettings c;
  for (auto [key, field] : {std::pair{"project", &c.project},
                            {"endpoint", &c.endpoint},
                            {"credentials_file", &c.credentials_file},
                            {"token_uri", &c.token_uri},
                            {"metadata_endpoint", &c.metadata_endpoint}}) {
    g.read(key, *field);
  }
  c.transport = readTransport(g);
  g.rejectUnknown();
  checkCloudUrl(g, "endpoint", c.endpoint, false);
  checkCloudUrl(g, "token_uri", c.token_uri, false);
  checkCloudUrl(g, "metadata_endpoint", c.metadata_endpoint, true);
  return c;
}

// ---- secrets.azure ----

constexpr KeySpec kAzureKeys[] = {
    {"vault_url"},          {"auth"},          {"tenant_id"},     {"client_id"},
    {"client_secret_file"}, {"imds_endpoint"}, {"authority_host"}};
constexpr Schema kAzureSchema{kAzureKeys, &kTransportSchema};

AzureSecretsSettings parseAzure(Section z) {
  AzureSecretsSettings c;
  for (auto [key, field] : {std::pair{"vault_url", &c.vault_url},
                            {"auth", &c.auth},
                            {"tenant_id", &c.tenant_id},
                            {"client_id", &c.client_id},
                            {"client_secret_file", &c.client_secret_file},
                            {"imds_endpoint", &c.imds_endpoint},
                            {"authority_host", &c.authority_host}}) {
    z.read(key, *field);
  }
  c.transport = readTransport(z);
  z.rejectUnknown();
  if (c.vault_url.empty()) {
    throw ConfigError(z.where("vault_url") + " is required (https://NAME.vault.azure.net)");
  }
  checkCloudUrl(z, "vault_url", c.vault_url, false);
  checkCloudUrl(z, "authority_host", c.authority_host, false);
  checkCloudUrl(z, "imds_endpoint", c.imds_endpoint, true);
  if (!c.auth.empty() && c.auth != "managed_identity" && c.auth != "client_credentials") {
    throw ConfigError(z.where("auth") + " must be managed_identity or client_credentials, not '" +
                      c.auth + "'");
  }
  return c;
}

// The providers secrets.chain and secrets.default_cloud name must be ones this worker has; the
// cloud ones among them are built.
void checkProviders(SecretsConfig& c) {
  const auto known = [](const std::string& p) {
    return std::ranges::find(kSecretProviders, p) != kSecretProviders.end();
  };
  std::string known_list;
  for (auto p : kSecretProviders) known_list += (known_list.empty() ? "" : ", ") + std::string(p);
  for (const auto& p : c.chain) {
    if (!known(p)) {
      throw ConfigError("'secrets.chain' names '" + p +
                        "', which is not a provider this worker has (" + known_list + ")");
    }
    if (p != "env" && p != "file") c.clouds.insert(p);
  }
  if (!c.default_cloud.empty()) {
    if (!known(c.default_cloud) || c.default_cloud == "env" || c.default_cloud == "file") {
      throw ConfigError("'secrets.default_cloud' must be a cloud provider (" + known_list +
                        " without env and file), not '" + c.default_cloud + "'");
    }
    c.clouds.insert(c.default_cloud);
  }
}

constexpr KeySpec kSecretsKeys[] = {{"chain"},
                                    {"default_cloud"},
                                    {"cache_ttl"},
                                    {"mask_for"},
                                    {"file_dir"},
                                    {"file_max_bytes"},
                                    {"aws", KeyKind::kSection, &kAwsSchema},
                                    {"vault", KeyKind::kSection, &kVaultSchema},
                                    {"gcp", KeyKind::kSection, &kGcpSchema},
                                    {"azure", KeyKind::kSection, &kAzureSchema}};

}  // namespace

constexpr Schema kSecretsSchema{kSecretsKeys};

SecretsConfig parseSecrets(Section sc) {
  SecretsConfig c;
  sc.read("chain", c.chain);
  sc.read("default_cloud", c.default_cloud);
  sc.read("cache_ttl", c.cache_ttl);
  sc.read("mask_for", c.mask_for);
  sc.read("file_dir", c.file_dir);
  sc.readBytes("file_max_bytes", c.file_max_bytes);
  // Each cloud store's own section; giving one turns its provider on.
  if (auto a = sc.section("aws"); a.given()) {
    c.aws = parseAws(a);
    c.clouds.insert("aws-sm");
  }
  if (auto v = sc.section("vault"); v.given()) {
    c.vault = parseVault(v);
    c.clouds.insert("vault");
  }
  if (auto g = sc.section("gcp"); g.given()) {
    c.gcp = parseGcp(g);
    c.clouds.insert("gcp-sm");
  }
  if (auto z = sc.section("azure"); z.given()) {
    c.azure = parseAzure(z);
    c.clouds.insert("azure-kv");
  }
  sc.rejectUnknown();
  checkProviders(c);
  return c;
}

}  // namespace outpost::config_impl
