// Signing on the client side: the --sign-key options of submit, cancel, drain and resume, the
// outpost-signature header they add, and `outpost keygen`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "outpost/common/clock.h"
#include "outpost/events/producer.h"
#include "outpost/security/command_token.h"

namespace outpost::app {

struct SignOptions {
  std::string key_file;  // PKCS#8 PEM (Ed25519 or P-256); none: unsigned
  std::string kid;
  std::string lifetime = "5m";
  std::string issuer;
  std::vector<std::string> pools;  // --sign-pool: the pools it may run in; default: see callers
  bool given() const { return !key_file.empty(); }
};

// Adds --sign-key, --kid, --sign-lifetime, --sign-issuer and --sign-pool.
void addSignOptions(CLI::App* sub, SignOptions& o);

// What a signed command record's token covers, besides its value.
struct SignedFacts {
  std::string topic;
  std::vector<std::string> pools;  // the pools it may run in (aud)
  security::CommandKind kind = security::CommandKind::kJob;
  std::string jti;  // run_id or command_id
  std::string cty;  // "protobuf", ...
};

// The outpost-signature header for `value`, or no header when no key is given; --sign-pool, when
// given, replaces facts.pools. Throws ConfigError for a key that cannot be read or a bad lifetime.
std::vector<events::Header> signatureHeaders(const SignOptions& o, std::string_view value,
                                             const SignedFacts& facts, const Clock& clock);

struct KeygenOptions {
  std::string kid;
  std::string private_key;  // written, mode 0600; never overwritten
  std::string jwks;         // the public key is added (the file is made when missing)
};
CLI::App* addKeygenCommand(CLI::App& app, KeygenOptions& o);
int cmdKeygen(const KeygenOptions& o);

}  // namespace outpost::app
