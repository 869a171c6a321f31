#include "outpost/secrets/providers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "outpost/common/fd.h"
#include "provider_internal.h"

namespace outpost::secrets {

std::expected<SecretValue, SecretError> extractJsonField(const SecretRef& ref,
                                                         std::string_view json) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return std::unexpected(SecretError{
        SecretError::Kind::kInvalid,
        ref.text + ": the secret is not a JSON object, so it has no field '" + ref.field + "'"});
  }
  const nlohmann::json* node = &doc;
  std::size_t begin = 0;
  while (begin <= ref.field.size()) {
    auto dot = ref.field.find('.', begin);
    auto key = ref.field.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin);
    if (!node->is_object() || !node->contains(key)) {
      return std::unexpected(
          SecretError{SecretError::Kind::kNotFound,
                      ref.text + ": the secret has no field '" + ref.field + "'"});
    }
    node = &(*node)[key];
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  return SecretValue(node->is_string() ? node->get<std::string>() : node->dump());
}

std::expected<FetchedSecret, SecretError> EnvSecretProvider::fetch(const SecretRef& ref) {
  auto it = env_.find(ref.path);
  if (it == env_.end()) {
    return std::unexpected(
        SecretError{SecretError::Kind::kNotFound, ref.text + ": env has no variable " + ref.path});
  }
  return provider_internal::selectField(ref, FetchedSecret{SecretValue(it->second), {}});
}

std::expected<FetchedSecret, SecretError> FileSecretProvider::fetch(const SecretRef& ref) {
  if (ref.path.empty() || ref.path.front() == '/' || ref.path.find("..") != std::string::npos) {
    return std::unexpected(SecretError{SecretError::Kind::kInvalid,
                                       ref.text + ": file must name a file inside " + dir_});
  }
  auto path = dir_ + "/" + ref.path;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    auto kind = errno == ENOENT   ? SecretError::Kind::kNotFound
                : errno == EACCES ? SecretError::Kind::kDenied
                                  : SecretError::Kind::kUnavailable;
    return std::unexpected(
        SecretError{kind, ref.text + ": file: cannot read " + path + ": " + std::strerror(errno)});
  }
  std::string bytes;
  char buf[8192];
  for (;;) {
    auto n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return std::unexpected(
          SecretError{SecretError::Kind::kUnavailable,
                      ref.text + ": file: cannot read " + path + ": " + std::strerror(errno)});
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<std::size_t>(n));
    if (bytes.size() > max_bytes_) {
      return std::unexpected(SecretError{SecretError::Kind::kInvalid,
                                         ref.text + ": file: " + path + " is larger than " +
                                             std::to_string(max_bytes_) +
                                             " bytes (secrets.file_max_bytes)"});
    }
  }
  if (!bytes.empty() && bytes.back() == '\n') bytes.pop_back();
  if (!bytes.empty() && bytes.back() == '\r') bytes.pop_back();
  return provider_internal::selectField(ref, FetchedSecret{SecretValue(std::move(bytes)), {}});
}

}  // namespace outpost::secrets
