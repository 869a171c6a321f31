#include "signing.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include <openssl/crypto.h>

#include "outpost/common/config.h"
#include "outpost/common/fd.h"

namespace outpost::app {
namespace {

// Writes `text` to a new file, mode 0600, refusing one that exists.
void writeNewPrivateFile(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    throw ConfigError("cannot create '" + path + "': " + std::strerror(errno) +
                      (errno == EEXIST ? " (keygen never overwrites a key)" : ""));
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    auto n = ::write(fd.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw ConfigError("cannot write '" + path + "': " + std::strerror(errno));
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Replaces `path` with `text` whole (a temporary file renamed over it), so that a worker watching
// it never reads half of it.
void replaceFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw ConfigError("cannot write '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw ConfigError("cannot replace '" + path + "': " + std::strerror(errno));
  }
}

}  // namespace

void addSignOptions(CLI::App* sub, SignOptions& o) {
  auto* key = sub->add_option("--sign-key", o.key_file,
                              "Sign the command with this private key (PKCS#8 PEM, Ed25519 or "
                              "P-256; see outpost keygen)");
  sub->add_option("--kid", o.kid, "The key's id in the workers' trusted keys")->needs(key);
  sub->add_option("--sign-lifetime", o.lifetime,
                  "How long the signature is valid (at most security.max_command_lifetime)")
      ->needs(key);
  sub->add_option("--sign-issuer", o.issuer, "The signer's name (the token's iss)")->needs(key);
  sub->add_option("--sign-pool", o.pools,
                  "A pool the command may be read in (repeatable; default: the command's pool, "
                  "else the configuration's worker.pool)")
      ->needs(key);
}

std::vector<events::Header> signatureHeaders(const SignOptions& o, std::string_view value,
                                             const SignedFacts& facts, const Clock& clock) {
  if (!o.given()) return {};
  if (o.kid.empty()) throw ConfigError("--sign-key needs --kid (the key's id in the JWKS)");
  auto lifetime = parseDuration(o.lifetime);
  if (!lifetime || *lifetime < std::chrono::seconds(1)) {
    throw ConfigError("--sign-lifetime must be a duration of at least 1s, such as 5m");
  }
  auto key = security::SigningKey::loadPemFile(o.key_file);
  if (!key) throw ConfigError("--sign-key: " + key.error());
  auto claims = security::claimsFor(value, facts.topic, o.pools.empty() ? facts.pools : o.pools,
                                    facts.kind, facts.jti, facts.cty, o.issuer, clock.now(),
                                    std::chrono::duration_cast<std::chrono::seconds>(*lifetime));
  return {events::Header{std::string(security::kSignatureHeader),
                         security::signCommandToken(*key, o.kid, claims)}};
}

CLI::App* addKeygenCommand(CLI::App& app, KeygenOptions& o) {
  auto* k = app.add_subcommand(
      "keygen", "Make an Ed25519 key for signing commands; add its public half to a JWKS file");
  k->add_option("--kid", o.kid, "The key's id (e.g. scheduler-2026-12)")->required();
  k->add_option("--private-key", o.private_key, "Where the private key goes (mode 0600)")
      ->required();
  k->add_option("--jwks", o.jwks, "The JWKS file the workers trust (made when missing)")
      ->required();
  return k;
}

int cmdKeygen(const KeygenOptions& o) {
  std::string jwks;
  if (std::ifstream in(o.jwks, std::ios::binary); in) {
    std::stringstream ss;
    ss << in.rdbuf();
    jwks = ss.str();
  }
  auto key = security::SigningKey::generateEd25519();
  auto next = security::addToJwks(jwks, key.publicJwk(o.kid));
  if (!next) throw ConfigError(o.jwks + ": " + next.error());
  std::string pem = key.privatePem();
  writeNewPrivateFile(o.private_key, pem);
  OPENSSL_cleanse(pem.data(), pem.size());
  replaceFile(o.jwks, *next);
  std::cout << o.kid << "\n";
  std::cerr << "private key in " << o.private_key << " (keep it with the signer); public key "
            << o.kid << " added to " << o.jwks << "\n";
  return 0;
}

}  // namespace outpost::app
