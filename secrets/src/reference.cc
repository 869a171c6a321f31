#include "outpost/secrets/reference.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "outpost/common/utf8.h"

namespace outpost::secrets {
namespace {

constexpr std::array<std::string_view, 6> kProviders = {"env",    "file",     "aws-sm",
                                                        "gcp-sm", "azure-kv", "vault"};

bool nameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

// Characters a secret:/ path may hold; it ends at anything else (space, quote, comma, ...).
bool collatePathChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' ||
         c == '.' || c == '+' || c == '=' || c == '@';
}

// Errors name where the reference starts and never quote it whole: it sits in a recipe or an
// environment value, which may hold credentials of their own. At most a short escaped excerpt.
std::string at(std::size_t pos) {
  return "the secret reference at byte " + std::to_string(pos);
}

std::expected<SecretRef, std::string> parseBody(std::string_view body, std::size_t pos) {
  SecretRef ref;
  ref.text = "${" + std::string(body) + "}";
  auto colon = body.find(':');
  if (colon == std::string_view::npos) {
    if (body.empty()) return std::unexpected(at(pos) + " is empty: ${}");
    for (std::size_t i = 0; i < body.size(); ++i) {
      if (!nameChar(body[i])) {
        return std::unexpected(at(pos) + " has a character that a name cannot hold ('" +
                               escapedExcerpt(body.substr(i, 1)) + "' at byte " +
                               std::to_string(pos + 2 + i) + ")");
      }
    }
    ref.provider = kChainProvider;
    ref.path = std::string(body);
    return ref;
  }
  auto provider = body.substr(0, colon);
  bool known = false;
  for (auto p : kProviders) known |= p == provider;
  if (!known) {
    // Quoted only when it looks like a provider's name (a mistyped one), never a longer text.
    const bool name_like =
        !provider.empty() && provider.size() <= 16 && std::ranges::all_of(provider, [](char c) {
          return std::islower(static_cast<unsigned char>(c)) ||
                 std::isdigit(static_cast<unsigned char>(c)) || c == '-';
        });
    return std::unexpected(at(pos) + " names an unknown provider" +
                           (name_like ? " '" + std::string(provider) + "'" : std::string()) +
                           " (known: env, file, aws-sm, gcp-sm, azure-kv, vault)");
  }
  ref.provider = std::string(provider);
  std::string rest(body.substr(colon + 1));
  if (auto hash = rest.find('#'); hash != std::string::npos) {
    ref.field = rest.substr(hash + 1);
    rest = rest.substr(0, hash);
    if (ref.field.empty()) return std::unexpected(at(pos) + " has an empty #field");
  }
  if (rest.empty()) return std::unexpected(at(pos) + " names no secret");
  if (ref.provider == "azure-kv") {
    if (auto slash = rest.find('/'); slash != std::string::npos) {
      ref.version = rest.substr(slash + 1);
      rest = rest.substr(0, slash);
    }
  }
  if (ref.provider == "vault") {
    // ${vault:MOUNT/PATH?version=N#field}: a KV v2 version is a number.
    if (auto q = rest.find("?version="); q != std::string::npos) {
      ref.version = rest.substr(q + 9);
      rest = rest.substr(0, q);
      if (ref.version.empty() || ref.version.find_first_not_of("0123456789") != std::string::npos)
        return std::unexpected(at(pos) + " has a ?version= that is not a number");
    }
  }
  if (ref.provider == "file" && (rest.front() == '/' || rest.find("..") != std::string::npos)) {
    return std::unexpected(at(pos) + " must name a file inside the secrets directory");
  }
  ref.path = std::move(rest);
  return ref;
}

}  // namespace

std::expected<std::vector<TextPart>, std::string> parseReferences(std::string_view text) {
  std::vector<TextPart> parts;
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) parts.push_back(TextPart{false, std::exchange(literal, {}), {}});
  };
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      literal += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") == 0) {
      auto close = text.find('}', i + 2);
      auto next_open = text.find("${", i + 2);
      if (close == std::string_view::npos ||
          (next_open != std::string_view::npos && next_open < close)) {
        return std::unexpected(at(i) + " is not closed with }; write $${ for a literal ${");
      }
      auto ref = parseBody(text.substr(i + 2, close - i - 2), i);
      if (!ref) return std::unexpected(ref.error());
      flush();
      parts.push_back(TextPart{true, {}, std::move(*ref)});
      i = close + 1;
      continue;
    }
    if (text.compare(i, 8, "secret:/") == 0) {
      std::size_t end = i + 8;
      while (end < text.size() && collatePathChar(text[end])) ++end;
      if (end == i + 8) return std::unexpected(at(i) + " (secret:/) names no secret");
      SecretRef ref;
      ref.provider = kDefaultCloudProvider;
      ref.path = std::string(text.substr(i + 8, end - i - 8));
      ref.text = std::string(text.substr(i, end - i));
      flush();
      parts.push_back(TextPart{true, {}, std::move(ref)});
      i = end;
      continue;
    }
    literal += text[i++];
  }
  flush();
  return parts;
}

std::string scopeName(const SecretRef& ref) {
  if (ref.provider == kChainProvider) return ref.path;
  if (ref.provider == kDefaultCloudProvider) return "secret:/" + ref.path;
  return ref.provider + ":" + ref.path;
}

}  // namespace outpost::secrets
