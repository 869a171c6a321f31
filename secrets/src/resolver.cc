#include "outpost/secrets/resolver.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "outpost/secrets/aws.h"
#include "outpost/secrets/azure.h"
#include "outpost/secrets/gcp.h"
#include "outpost/secrets/providers.h"
#include "outpost/secrets/reference.h"
#include "outpost/secrets/vault.h"

namespace outpost::secrets {
namespace {

const char* outcomeWord(SecretError::Kind kind) {
  switch (kind) {
    case SecretError::Kind::kNotFound:
      return "not_found";
    case SecretError::Kind::kDenied:
      return "denied";
    case SecretError::Kind::kUnavailable:
      return "unavailable";
    case SecretError::Kind::kInvalid:
      return "invalid";
  }
  return "invalid";
}

std::string keyOf(const SecretRef& r) {
  return r.provider + '\x1f' + r.path + '\x1f' + r.field + '\x1f' + r.version;
}

// A store's section's transport settings over its provider's defaults (connect_timeout,
// no_proxy and the backoff stay the provider's).
void copyTransport(const StoreTransport& from, StoreTransport& to) {
  to.ca_bundle = from.ca_bundle;
  to.proxy = from.proxy;
  to.timeout = from.timeout;
  to.max_attempts = from.max_attempts;
}

}  // namespace

ResolverSettings SecretResolver::settingsFrom(const SecretsConfig& sc, const Environment& env,
                                              const Clock& clock) {
  std::map<std::string, std::shared_ptr<SecretProvider>> providers{
      {"env", std::make_shared<EnvSecretProvider>(env)},
      {"file", std::make_shared<FileSecretProvider>(sc.file_dir, sc.file_max_bytes)}};
  if (sc.uses("aws-sm")) {
    AwsConfig aws;
    aws.region = sc.aws.region;
    aws.profile = sc.aws.profile;
    aws.endpoint = sc.aws.endpoint;
    aws.sts_endpoint = sc.aws.sts_endpoint;
    copyTransport(sc.aws.transport, aws.transport);
    providers["aws-sm"] = std::make_shared<AwsSecretsManagerProvider>(aws, env, clock);
  }
  if (sc.uses("vault")) {
    VaultConfig vault;
    auto auth = parseVaultAuthMethod(sc.vault.auth);
    if (!auth) {
      throw ConfigError("'secrets.vault.auth' must be one of token, kubernetes, approle; not '" +
                        sc.vault.auth + "'");
    }
    vault.address = sc.vault.address;
    vault.vault_namespace = sc.vault.namespace_name;
    vault.auth = *auth;
    vault.token_file = sc.vault.token_file;
    vault.auth_mount = sc.vault.auth_mount;
    vault.role = sc.vault.role;
    if (!sc.vault.jwt_file.empty()) vault.jwt_file = sc.vault.jwt_file;
    vault.role_id = sc.vault.role_id;
    vault.secret_id_file = sc.vault.secret_id_file;
    copyTransport(sc.vault.transport, vault.transport);
    vault.renew_before = std::chrono::duration_cast<std::chrono::seconds>(sc.vault.renew_before);
    providers["vault"] = std::make_shared<VaultProvider>(vault, env, clock);
  }
  if (sc.uses("gcp-sm")) {
    GcpConfig gcp;
    gcp.project = sc.gcp.project;
    if (!sc.gcp.endpoint.empty()) gcp.endpoint = sc.gcp.endpoint;
    gcp.credentials_file = sc.gcp.credentials_file;
    gcp.token_uri = sc.gcp.token_uri;
    gcp.metadata_endpoint = sc.gcp.metadata_endpoint;
    copyTransport(sc.gcp.transport, gcp.transport);
    providers["gcp-sm"] = std::make_shared<GcpSecretManagerProvider>(gcp, env, clock);
  }
  if (sc.uses("azure-kv")) {
    AzureConfig azure;
    azure.vault_url = sc.azure.vault_url;
    if (sc.azure.auth == "managed_identity") {
      azure.auth = AzureAuth::kManagedIdentity;
    } else if (sc.azure.auth == "client_credentials") {
      azure.auth = AzureAuth::kClientCredentials;
    } else if (!sc.azure.auth.empty()) {
      throw ConfigError("'secrets.azure.auth' must be managed_identity or client_credentials, " +
                        std::string("not '") + sc.azure.auth + "'");
    }
    azure.tenant_id = sc.azure.tenant_id;
    azure.client_id = sc.azure.client_id;
    azure.client_secret_file = sc.azure.client_secret_file;
    azure.imds_endpoint = sc.azure.imds_endpoint;
    azure.authority_host = sc.azure.authority_host;
    copyTransport(sc.azure.transport, azure.transport);
    providers["azure-kv"] = std::make_shared<AzureKeyVaultProvider>(azure, env, clock);
  }
  // The configuration loader lets only known names through; a SecretsConfig made in code may not.
  for (const auto& cloud : sc.clouds) {
    if (!providers.contains(cloud)) {
      std::string known;
      for (auto p : kSecretProviders) known += (known.empty() ? "" : ", ") + std::string(p);
      throw ConfigError("secret provider '" + cloud + "' is not one this worker has (" + known +
                        ")");
    }
  }
  return ResolverSettings{std::move(providers), sc.chain, sc.default_cloud, sc.cache_ttl,
                          sc.mask_for};
}

std::unique_ptr<SecretResolver> SecretResolver::fromConfig(const SecretsConfig& sc,
                                                           const Environment& env,
                                                           const Clock& clock) {
  return std::make_unique<SecretResolver>(settingsFrom(sc, env, clock), clock);
}

SecretResolver::SecretResolver(ResolverSettings settings, const Clock& clock)
    : clock_(clock), settings_(std::make_shared<const ResolverSettings>(std::move(settings))) {}

SecretResolver::SecretResolver(std::map<std::string, std::shared_ptr<SecretProvider>> providers,
                               std::vector<std::string> chain, std::string default_cloud,
                               std::chrono::milliseconds ttl, std::chrono::milliseconds mask_for,
                               const Clock& clock)
    : SecretResolver(ResolverSettings{std::move(providers), std::move(chain),
                                      std::move(default_cloud), ttl, mask_for},
                     clock) {}

void SecretResolver::reconfigure(ResolverSettings settings) {
  std::lock_guard lock(mutex_);
  settings_ = std::make_shared<const ResolverSettings>(std::move(settings));
  ++generation_;
  // Entries being fetched stay, so that their askers are woken; resolve() drops them after.
  std::erase_if(cache_, [](const auto& kv) { return !kv.second.fetching; });
  for (auto& [key, e] : cache_) e.value.reset();
  masker_stale_ = true;  // mask_for may have changed
}

ResolverStats SecretResolver::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::expected<ResolvedSecret, SecretError> SecretResolver::resolve(const SecretRef& ref) {
  const auto key = keyOf(ref);
  std::unique_lock lock(mutex_);
  for (;;) {
    auto& e = cache_[key];
    if (e.value && clock_.steadyNow() < e.expires) {
      ResolvedSecret r = *e.value;
      r.cached = true;
      ++stats_.cache_hits;
      return r;
    }
    if (!e.fetching) break;
    fetched_.wait(lock);  // someone else is fetching this reference: share their answer
  }
  cache_[key].fetching = true;
  const auto settings = settings_;
  const auto generation = generation_;
  lock.unlock();
  auto result = fetchFrom(*settings, ref);
  lock.lock();
  auto& e = cache_[key];
  e.fetching = false;
  if (result) remember(result->value);  // masked whatever the settings are now
  if (result && generation == generation_) {
    e.value = *result;
    e.expires = clock_.steadyNow() + settings->ttl;
  } else {
    e.value.reset();  // errors are not cached: the next run asks again; nor stale settings' values
  }
  fetched_.notify_all();
  return result;
}

std::expected<ResolvedSecret, SecretError> SecretResolver::fetchFrom(
    const ResolverSettings& settings, const SecretRef& ref) {
  auto ask = [&](const std::string& provider_name,
                 const SecretRef& r) -> std::expected<ResolvedSecret, SecretError> {
    auto it = settings.providers.find(provider_name);
    if (it == settings.providers.end()) {
      return std::unexpected(SecretError{
          SecretError::Kind::kInvalid,
          ref.text + ": the provider '" + provider_name + "' is not configured on this worker"});
    }
    auto fetched = it->second->fetch(r);
    {
      std::lock_guard lock(mutex_);
      ++stats_.fetches[{provider_name, fetched ? "ok" : outcomeWord(fetched.error().kind)}];
    }
    if (!fetched) return std::unexpected(fetched.error());
    return ResolvedSecret{std::move(fetched->value), provider_name, std::move(fetched->version),
                          clock_.now(), false};
  };
  const auto& default_cloud = settings.default_cloud;
  if (ref.provider == kDefaultCloudProvider) {
    if (default_cloud.empty()) {
      return std::unexpected(
          SecretError{SecretError::Kind::kInvalid,
                      ref.text + ": secret:/ references need secrets.default_cloud"});
    }
    SecretRef r = ref;
    r.provider = default_cloud;
    return ask(default_cloud, r);
  }
  if (ref.provider != kChainProvider) return ask(ref.provider, ref);
  std::string tried;
  for (const auto& name : settings.chain) {
    SecretRef r = ref;
    r.provider = name;
    auto got = ask(name, r);
    if (got || got.error().kind != SecretError::Kind::kNotFound) return got;
    tried += (tried.empty() ? "" : ", ") + name;
  }
  return std::unexpected(
      SecretError{SecretError::Kind::kNotFound,
                  ref.text + ": not found in " + (tried.empty() ? "no provider" : tried)});
}

void SecretResolver::remember(const SecretValue& value) {
  if (value.size() < SecretMasker::kMinLength) {
    spdlog::warn("a resolved secret is shorter than {} bytes and cannot be masked in output",
                 SecretMasker::kMinLength);
    return;
  }
  auto [it, added] = seen_.insert_or_assign(std::string(value.reveal()), clock_.steadyNow());
  if (added) masker_stale_ = true;
}

std::shared_ptr<const SecretMasker> SecretResolver::masker() {
  std::lock_guard lock(mutex_);
  auto now = clock_.steadyNow();
  for (auto it = seen_.begin(); it != seen_.end();) {
    if (now - it->second > settings_->mask_for) {
      it = seen_.erase(it);
      masker_stale_ = true;
    } else {
      ++it;
    }
  }
  if (masker_stale_ || !masker_) {
    std::vector<SecretValue> values;
    for (const auto& [v, t] : seen_) values.emplace_back(v);
    std::vector<const SecretValue*> ptrs;
    for (const auto& v : values) ptrs.push_back(&v);
    masker_ = std::make_shared<const SecretMasker>(ptrs);
    masker_stale_ = false;
  }
  return masker_;
}

std::string resolveSetting(SecretResolver& resolver, const std::string& where,
                           const std::string& value) {
  auto parts = parseReferences(value);
  if (!parts) throw ConfigError("'" + where + "': " + parts.error());
  std::string out;
  for (const auto& p : *parts) {
    if (!p.is_reference) {
      out += p.literal;
      continue;
    }
    auto got = resolver.resolve(p.ref);
    if (!got) throw ConfigError("'" + where + "': " + got.error().message);
    out += got->value.reveal();
  }
  return out;
}

void resolveSettings(SecretResolver& resolver, const std::string& where,
                     std::map<std::string, std::string>& settings) {
  for (auto& [key, value] : settings) value = resolveSetting(resolver, where + "." + key, value);
}

KafkaConfig resolveKafkaSettings(SecretResolver& resolver, KafkaConfig kafka) {
  resolveSettings(resolver, "kafka.properties", kafka.properties);
  resolveSettings(resolver, "kafka.consumer_properties", kafka.consumer_properties);
  resolveSettings(resolver, "kafka.producer_properties", kafka.producer_properties);
  return kafka;
}

bool hasReferences(const KafkaConfig& kafka) {
  for (const auto* section :
       {&kafka.properties, &kafka.consumer_properties, &kafka.producer_properties}) {
    for (const auto& [key, value] : *section) {
      auto parts = parseReferences(value);
      if (!parts || std::ranges::any_of(*parts, [](const auto& p) { return p.is_reference; }))
        return true;
    }
  }
  return false;
}

}  // namespace outpost::secrets
