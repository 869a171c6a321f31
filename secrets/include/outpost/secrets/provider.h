// The seam between secret resolution and the stores: one SecretProvider per kind of store.
#pragma once

#include <chrono>
#include <expected>
#include <string>

#include "outpost/secrets/secret_value.h"

namespace outpost::secrets {

// What a reference names, once parsed. For ${aws-sm:prod/db#password}: provider "aws-sm",
// path "prod/db", field "password". version is the store's version id or label, when given.
struct SecretRef {
  std::string provider;
  std::string path;
  std::string field;    // a JSON field inside the secret, or empty for the whole value
  std::string version;  // empty: the current one
  // The reference as written (e.g. "${aws-sm:prod/db#password}"), for messages. Never the value.
  std::string text;
};

struct FetchedSecret {
  SecretValue value;
  std::string version;  // the store's version id, when it says; empty otherwise
};

// Why a fetch failed. The message names the provider and the reference, never a value.
struct SecretError {
  enum class Kind { kNotFound, kDenied, kUnavailable, kInvalid };
  Kind kind = Kind::kUnavailable;
  std::string message;
};

class SecretProvider {
 public:
  virtual ~SecretProvider() = default;
  // "env", "file", "aws-sm", "gcp-sm", "azure-kv", "vault".
  virtual std::string name() const = 0;
  // Thread-safe; may block on the network (never called from the poll thread). Extracts
  // ref.field from a JSON secret when given.
  virtual std::expected<FetchedSecret, SecretError> fetch(const SecretRef& ref) = 0;
};

}  // namespace outpost::secrets
