// Resolving references: the provider chain, a per-reference cache with a TTL (so a rotated
// secret reaches the next runs without a restart), one fetch for concurrent askers, and the set
// of recently resolved values that output is masked against.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/secrets/masker.h"
#include "outpost/secrets/provider.h"

namespace outpost::secrets {

struct ResolvedSecret {
  SecretValue value;
  std::string provider;  // the one that answered
  std::string version;
  std::chrono::system_clock::time_point fetched_at;
  bool cached = false;
};

// What the resolver did since it was made, for metrics.
struct ResolverStats {
  // Fetches from a store, by provider and outcome: ok, not_found, denied, unavailable, invalid.
  std::map<std::pair<std::string, std::string>, std::uint64_t> fetches;
  std::uint64_t cache_hits = 0;
};

// What a configuration's secrets section decides: the stores, the chain, the default cloud, how
// long a value is cached and how long a value is masked after it was last resolved.
struct ResolverSettings {
  std::map<std::string, std::shared_ptr<SecretProvider>> providers;
  std::vector<std::string> chain;
  std::string default_cloud;
  std::chrono::milliseconds ttl{0};
  std::chrono::milliseconds mask_for{0};
};

// Thread-safe. resolve() may block on a provider; keep it off the poll thread.
class SecretResolver {
 public:
  // The providers the configuration names: env and file always; aws-sm, vault, gcp-sm and
  // azure-kv when used (SecretsConfig::uses). Throws ConfigError.
  static ResolverSettings settingsFrom(const SecretsConfig& config, const Environment& env,
                                       const Clock& clock);
  static std::unique_ptr<SecretResolver> fromConfig(const SecretsConfig& config,
                                                    const Environment& env, const Clock& clock);

  SecretResolver(ResolverSettings settings, const Clock& clock);
  SecretResolver(std::map<std::string, std::shared_ptr<SecretProvider>> providers,
                 std::vector<std::string> chain, std::string default_cloud,
                 std::chrono::milliseconds ttl, std::chrono::milliseconds mask_for,
                 const Clock& clock);

  std::expected<ResolvedSecret, SecretError> resolve(const SecretRef& ref);

  // New settings for what is resolved from now on (a reload): the cache is emptied, and a fetch
  // in progress under the old settings answers its askers but is not cached. Values resolved
  // before stay masked (for the new mask_for), and the stats go on counting.
  void reconfigure(ResolverSettings settings);

  // A masker over every value resolved within mask_for (current and rotated-out ones). Rebuilt
  // only when that set changes.
  std::shared_ptr<const SecretMasker> masker();

  ResolverStats stats() const;

 private:
  struct Entry {
    bool fetching = false;
    std::optional<ResolvedSecret> value;
    std::chrono::steady_clock::time_point expires{};
  };
  std::expected<ResolvedSecret, SecretError> fetchFrom(const ResolverSettings& settings,
                                                       const SecretRef& ref);
  void remember(const SecretValue& value);

  const Clock& clock_;

  mutable std::mutex mutex_;
  std::condition_variable fetched_;
  std::shared_ptr<const ResolverSettings> settings_;
  std::uint64_t generation_ = 0;  // moves on each reconfigure
  ResolverStats stats_;
  std::map<std::string, Entry> cache_;                                 // by reference key
  std::map<std::string, std::chrono::steady_clock::time_point> seen_;  // value -> last resolved
  std::shared_ptr<const SecretMasker> masker_;
  bool masker_stale_ = true;
};

// The worker's own settings that may hold secret references (kafka.properties' passwords, the
// lineage HTTP token): each reference resolved now, on this thread, and substituted; the values
// are remembered for masking like any other. Throws ConfigError naming the setting (`where` and
// the key) and the reference, never a value.
std::string resolveSetting(SecretResolver& resolver, const std::string& where,
                           const std::string& value);
void resolveSettings(SecretResolver& resolver, const std::string& where,
                     std::map<std::string, std::string>& settings);
// kafka.properties, kafka.consumer_properties and kafka.producer_properties, resolved.
KafkaConfig resolveKafkaSettings(SecretResolver& resolver, KafkaConfig kafka);
// Whether any value of kafka's property sections holds a reference (a client that has none
// needs no resolver).
bool hasReferences(const KafkaConfig& kafka);

}  // namespace outpost::secrets
