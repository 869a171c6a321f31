#include "provider_internal.h"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "outpost/common/fd.h"
#include "outpost/secrets/providers.h"

namespace outpost::secrets::provider_internal {

void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

std::string_view trimWhitespace(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::expected<std::string, std::string> readSmallFile(const std::string& path,
                                                      std::size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected("cannot read " + path + ": " + std::strerror(errno));
  std::string bytes;
  char buf[4096];
  for (;;) {
    auto n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      wipe(bytes);
      return std::unexpected("cannot read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<std::size_t>(n));
    if (bytes.size() > max_bytes) {
      wipe(bytes);
      return std::unexpected(path + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return bytes;
}

std::string forMessage(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
  }
  return out;
}

std::string envValue(const Environment& env, const char* name) {
  auto it = env.find(name);
  return it == env.end() ? std::string() : it->second;
}

std::string withoutTrailingSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t begin = 0;
  for (;;) {
    auto slash = path.find('/', begin);
    parts.push_back(path.substr(begin, slash == std::string_view::npos ? slash : slash - begin));
    if (slash == std::string_view::npos) return parts;
    begin = slash + 1;
  }
}

// --- answers ---

SecretError::Kind kindOfStatus(long status) {
  using K = SecretError::Kind;
  if (status == 404) return K::kNotFound;
  if (status == 401 || status == 403) return K::kDenied;
  if (status >= 500 || status == 429) return K::kUnavailable;
  return K::kInvalid;
}

const char* describe(SecretError::Kind kind) {
  switch (kind) {
    case SecretError::Kind::kNotFound:
      return "not found";
    case SecretError::Kind::kDenied:
      return "denied";
    case SecretError::Kind::kUnavailable:
      return "unavailable";
    case SecretError::Kind::kInvalid:
      return "refused";
  }
  return "failed";
}

std::string withAttempts(std::string msg, int attempts) {
  if (attempts > 1) msg += " (" + std::to_string(attempts) + " attempts)";
  return msg;
}

std::expected<FetchedSecret, SecretError> selectField(const SecretRef& ref, FetchedSecret secret) {
  if (ref.field.empty()) return secret;
  auto field = extractJsonField(ref, secret.value.reveal());  // its errors name the reference
  if (!field) return std::unexpected(field.error());
  secret.value = std::move(*field);
  return secret;
}

// --- settings ---

void checkServiceUrl(const std::string& url, std::string_view provider, const char* setting,
                     bool any_http, bool no_query) {
  auto u = parseUrl(url);
  const std::string prefix = std::string(provider) + ": " + setting;
  if (!u || (no_query && !u->query.empty())) {
    throw ConfigError(prefix + " '" + urlForMessages(url) +
                      "' is not an http:// or https:// URL with a host" +
                      (no_query ? " (and no query)" : ""));
  }
  if (u->scheme == "http" && !any_http && !isLoopbackHost(u->host)) {
    throw ConfigError(prefix + " '" + urlForMessages(url) +
                      "' must be https:// (plain http:// only to a loopback address): tokens and "
                      "secrets would cross the network unencrypted");
  }
}

}  // namespace outpost::secrets::provider_internal
