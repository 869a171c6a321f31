#include "client_config.h"

#include "outpost/common/clock.h"
#include "outpost/secrets/resolver.h"

namespace outpost::app {

Config clientConfig(const ClientOptions& o) {
  Config c = o.config_path.empty() ? parseConfig("", processEnvironment(), "defaults")
                                   : loadConfig(o.config_path, processEnvironment());
  if (!o.bootstrap.empty()) c.kafka.bootstrap_servers = o.bootstrap;
  if (secrets::hasReferences(c.kafka)) {
    static const SystemClock clock;
    auto resolver = secrets::SecretResolver::fromConfig(c.secrets, processEnvironment(), clock);
    c.kafka = secrets::resolveKafkaSettings(*resolver, std::move(c.kafka));
  }
  return c;
}

}  // namespace outpost::app
