// The `security` section: whether commands must be signed, the trusted keys, token lifetimes, and
// what each key may sign (security.keys.<kid>).
#include <algorithm>

#include "config_section.h"

namespace outpost {

const char* nameOf(CommandSigning mode) {
  switch (mode) {
    case CommandSigning::kOff:
      return "off";
    case CommandSigning::kWarn:
      return "warn";
    case CommandSigning::kRequire:
      return "require";
  }
  return "?";
}

namespace config_impl {
namespace {

constexpr KeySpec kKeyPolicyKeys[] = {{"templates"}, {"actions"}, {"pools"}};
constexpr Schema kKeyPolicySchema{kKeyPolicyKeys};

KeyPolicy parseKeyPolicy(Section k) {
  KeyPolicy p;
  k.read("templates", p.templates);
  k.read("actions", p.actions);
  k.read("pools", p.pools);
  k.rejectUnknown();
  for (const auto& a : p.actions) {
    if (std::find(kSignedActions.begin(), kSignedActions.end(), a) == kSignedActions.end()) {
      throw ConfigError(k.where("actions") + " may hold run, cancel, drain and resume; not '" + a +
                        "'");
    }
  }
  return p;
}

}  // namespace

constexpr KeySpec kSecurityKeys[] = {
    {"commands"},         {"trusted_keys"},
    {"trusted_keys_env"}, {"max_command_lifetime"},
    {"clock_leeway"},     {"keys", KeyKind::kNamedSections, &kKeyPolicySchema, "<kid>"}};
const Schema kSecuritySchema{kSecurityKeys};

SecurityConfig parseSecurity(Section s) {
  SecurityConfig c;
  std::string mode = nameOf(c.commands);
  s.read("commands", mode);
  if (mode == "off") {
    c.commands = CommandSigning::kOff;
  } else if (mode == "warn") {
    c.commands = CommandSigning::kWarn;
  } else if (mode == "require") {
    c.commands = CommandSigning::kRequire;
  } else {
    throw ConfigError(s.where("commands") + " must be off, warn or require; not '" + mode + "'");
  }
  s.read("trusted_keys", c.trusted_keys);
  s.read("trusted_keys_env", c.trusted_keys_env);
  s.read("max_command_lifetime", c.max_command_lifetime);
  s.read("clock_leeway", c.clock_leeway);
  s.forEachEntry("keys", [&](const std::string& kid, Section k) {
    c.keys[kid] = parseKeyPolicy(std::move(k));
  });
  s.rejectUnknown();
  if (!c.trusted_keys.empty() && !c.trusted_keys_env.empty()) {
    throw ConfigError(s.where("trusted_keys") + " and " + s.where("trusted_keys_env") +
                      " are both set: keep one");
  }
  if (c.commands != CommandSigning::kOff && c.trusted_keys.empty() && c.trusted_keys_env.empty()) {
    throw ConfigError(s.where("trusted_keys") +
                      " must name a JWKS file of the keys that sign commands (or " +
                      s.where("trusted_keys_env") + " a variable holding one) when " +
                      s.where("commands") + " is " + nameOf(c.commands));
  }
  if (c.max_command_lifetime < Millis(1000)) {
    throw ConfigError(s.where("max_command_lifetime") + " must be at least 1s");
  }
  if (c.clock_leeway > Millis(10 * 60 * 1000)) {
    throw ConfigError(s.where("clock_leeway") + " must be at most 10m");
  }
  return c;
}

}  // namespace config_impl
}  // namespace outpost
