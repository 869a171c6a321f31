// Secret references inside recipes and environment values:
//   ${NAME}                       DataHub's form: through the configured providers, in order
//   secret:/path/to/secret        Collate's form: through the default cloud provider
//   ${env:VAR} ${file:name} ${aws-sm:name-or-arn#json.field}
//   ${gcp-sm:projects/P/secrets/S/versions/V}
//   ${azure-kv:name[/version]} ${vault:mount/path#field}
// and $${ for a literal "${". A malformed reference is an error naming its position.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/secrets/provider.h"

namespace outpost::secrets {

// Provider name of ${NAME} references: resolved through the provider chain.
inline constexpr const char* kChainProvider = "";
// Provider name of secret:/ references: resolved by the default cloud provider.
inline constexpr const char* kDefaultCloudProvider = "secret";

// A piece of text: literal bytes, or a reference to substitute.
struct TextPart {
  bool is_reference = false;
  std::string literal;
  SecretRef ref;
};

// Splits text into literals and references. Errors say what is wrong and at which byte offset.
std::expected<std::vector<TextPart>, std::string> parseReferences(std::string_view text);

// The name a template's `secrets` allowlist is matched against: NAME for ${NAME}, "env:VAR",
// "aws-sm:prod/db" (without #field), "secret:/path" for Collate's form.
std::string scopeName(const SecretRef& ref);

}  // namespace outpost::secrets
