#include "outpost/dispatch/signatures.h"

#include <algorithm>

#include "outpost/common/glob.h"
#include "outpost/common/utf8.h"

namespace outpost::dispatch {

SignatureSettings SignatureSettings::from(const SecurityConfig& config,
                                          std::shared_ptr<const security::KeySet> keys) {
  SignatureSettings s;
  s.mode = config.commands;
  s.keys = std::move(keys);
  s.limits.max_lifetime =
      std::chrono::duration_cast<std::chrono::seconds>(config.max_command_lifetime);
  s.limits.leeway = std::chrono::duration_cast<std::chrono::seconds>(config.clock_leeway);
  s.policies = config.keys;
  return s;
}

std::expected<security::VerifiedCommand, security::SignatureRefusal> checkSignature(
    const SignedRecord& record, std::string_view pool, const SignatureSettings& settings,
    std::chrono::system_clock::time_point now) {
  // The last header of the name counts, as for every header the intake reads.
  const std::string* token = nullptr;
  if (record.headers) {
    for (const auto& h : *record.headers) {
      if (h.name == security::kSignatureHeader) token = &h.value;
    }
  }
  if (!token || token->empty()) {
    return std::unexpected(security::SignatureRefusal{
        security::SignatureCheck::kMissing,
        "signature: unsigned (no " + std::string(security::kSignatureHeader) + " header)"});
  }
  static const security::KeySet kNoKeys;
  return security::verifyCommandToken(*token,
                                      security::RecordFacts{.value = record.value,
                                                            .topic = record.topic,
                                                            .pool = pool,
                                                            .kind = record.kind,
                                                            .cty = record.cty},
                                      settings.keys ? *settings.keys : kNoKeys, settings.limits,
                                      now);
}

std::optional<security::SignatureRefusal> checkKeyPolicy(const security::VerifiedCommand& verified,
                                                         std::string_view action,
                                                         std::string_view job_type,
                                                         std::string_view pool,
                                                         const SignatureSettings& settings) {
  auto p = settings.policies.find(verified.kid);
  if (p == settings.policies.end()) return std::nullopt;  // a key without a policy signs anything
  const KeyPolicy& policy = p->second;
  auto refuse = [&](std::string what) {
    return security::SignatureRefusal{
        security::SignatureCheck::kPolicy,
        "signature: key " + escapedExcerpt(verified.kid, 64) + " may not " + std::move(what)};
  };
  if (std::find(policy.actions.begin(), policy.actions.end(), action) == policy.actions.end()) {
    return refuse(action == "run" ? std::string("run templates") : std::string(action));
  }
  if (!matchesAnyGlob(policy.pools, pool)) {
    return refuse("sign for pool " + escapedExcerpt(pool, 64));
  }
  if (action == "run" && !matchesAnyGlob(policy.templates, job_type)) {
    return refuse("run template " + escapedExcerpt(job_type, 64));
  }
  return std::nullopt;
}

std::optional<security::SignatureRefusal> checkSignedId(const security::VerifiedCommand& verified,
                                                        std::string_view id) {
  if (verified.claims.jti == id) return std::nullopt;
  return security::SignatureRefusal{security::SignatureCheck::kWrongId,
                                    "signature: signed for id " +
                                        escapedExcerpt(verified.claims.jti, 40) +
                                        ", the command is " + escapedExcerpt(id, 40)};
}

bool SingleUse::use(const std::string& id, const std::string& where,
                    std::chrono::system_clock::time_point until,
                    std::chrono::system_clock::time_point now) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first < now) {
    auto it = used_.find(by_expiry_.begin()->second);
    if (it != used_.end() && it->second.until < now) used_.erase(it);
    by_expiry_.erase(by_expiry_.begin());
  }
  auto [it, first] = used_.try_emplace(id, Use{where, until});
  if (first) {
    by_expiry_.emplace(until, id);
    return true;
  }
  return it->second.where == where;
}

}  // namespace outpost::dispatch
