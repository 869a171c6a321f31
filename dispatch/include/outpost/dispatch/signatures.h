// Signed commands in the worker: the check of a command record's token before its value is
// decoded, and what each key may sign (security.keys). Pure: the record, the settings and the
// time come in as arguments.
#pragma once

#include <chrono>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/events/out_record.h"
#include "outpost/security/command_token.h"

namespace outpost::dispatch {

// The worker's signature settings with its trusted keys: one value, replaced whole when the
// configuration or the JWKS file is read again.
struct SignatureSettings {
  CommandSigning mode = CommandSigning::kOff;
  std::shared_ptr<const security::KeySet> keys;  // set unless mode is off
  security::TokenLimits limits;
  std::map<std::string, KeyPolicy> policies;  // security.keys, by kid

  // From the configuration, with the keys read from security.trusted_keys.
  static SignatureSettings from(const SecurityConfig& config,
                                std::shared_ptr<const security::KeySet> keys);
};

// A command record as the signature check sees it.
struct SignedRecord {
  std::string_view value;
  const std::vector<events::Header>* headers = nullptr;
  std::string_view topic;
  security::CommandKind kind = security::CommandKind::kJob;
  std::string_view cty;  // the encoding the value is found to be in (consumer::contentTypeOf)
};

// Checks the record's `outpost-signature` token for this worker's pool. Call it only when
// settings.mode is not off.
std::expected<security::VerifiedCommand, security::SignatureRefusal> checkSignature(
    const SignedRecord& record, std::string_view pool, const SignatureSettings& settings,
    std::chrono::system_clock::time_point now);

// May the key that signed `verified` sign `action` (run, cancel, drain, resume) of `job_type`
// (run only) for `pool`? nullopt when it may; else the kPolicy refusal ("signature: key k2 may
// not run template drop-db").
std::optional<security::SignatureRefusal> checkKeyPolicy(const security::VerifiedCommand& verified,
                                                         std::string_view action,
                                                         std::string_view job_type,
                                                         std::string_view pool,
                                                         const SignatureSettings& settings);

// The id inside the value must be the token's jti (kWrongId otherwise).
std::optional<security::SignatureRefusal> checkSignedId(const security::VerifiedCommand& verified,
                                                        std::string_view id);

// The ids of signed control commands this worker acted on, each remembered until its token
// expires: a copy of one read anywhere else within its lifetime is `replayed`. One owner thread.
class SingleUse {
 public:
  // True the first time `id` is seen, and when it is seen again at the same `where` (the same
  // record read again); false for a copy elsewhere while it is remembered (until `until`).
  bool use(const std::string& id, const std::string& where,
           std::chrono::system_clock::time_point until, std::chrono::system_clock::time_point now);
  std::size_t size() const { return used_.size(); }

 private:
  struct Use {
    std::string where;
    std::chrono::system_clock::time_point until;
  };
  std::map<std::string, Use> used_;
  std::multimap<std::chrono::system_clock::time_point, std::string> by_expiry_;
};

}  // namespace outpost::dispatch
