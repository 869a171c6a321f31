// The providers that need no network: the worker's environment, and a directory of files (such
// as a mounted Kubernetes secret volume).
#pragma once

#include <string>

#include "outpost/common/config.h"
#include "outpost/secrets/provider.h"

namespace outpost::secrets {

// ${env:VAR}, and ${VAR} through the chain.
class EnvSecretProvider final : public SecretProvider {
 public:
  explicit EnvSecretProvider(Environment env) : env_(std::move(env)) {}
  std::string name() const override { return "env"; }
  std::expected<FetchedSecret, SecretError> fetch(const SecretRef& ref) override;

 private:
  Environment env_;
};

// ${file:name}: <dir>/<name>, at most max_bytes, one trailing newline stripped.
class FileSecretProvider final : public SecretProvider {
 public:
  FileSecretProvider(std::string dir, std::size_t max_bytes)
      : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  std::string name() const override { return "file"; }
  std::expected<FetchedSecret, SecretError> fetch(const SecretRef& ref) override;

 private:
  std::string dir_;
  std::size_t max_bytes_;
};

// Takes `field` out of a JSON object secret (dots walk into nested objects). Shared by providers.
std::expected<SecretValue, SecretError> extractJsonField(const SecretRef& ref,
                                                         std::string_view json);

}  // namespace outpost::secrets
