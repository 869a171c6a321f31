#include "outpost/dispatch/admission.h"

#include <set>

#include "outpost/common/glob.h"
#include "outpost/common/utf8.h"

namespace outpost::dispatch {
namespace {

bool holdsReference(const std::string& value) {
  return value.find("${") != std::string::npos || value.find("secret:/") != std::string::npos;
}

}  // namespace

std::expected<Admitted, Refusal> admit(const v1::JobCommand& command, std::uint32_t attempt,
                                       const AdmissionPolicy& policy) {
  Admitted a;
  auto t = policy.templates->find(command.job_type());
  if (t == policy.templates->end()) {
    return std::unexpected(Refusal{Refusal::kUnknownTemplate,
                                   "unknown job_type '" + escapedExcerpt(command.job_type(), 64) +
                                       "': no such template on this worker"});
  }
  a.tmpl = &t->second;
  runner::RunRequest req;
  req.run_id = command.run_id();
  req.job_id = command.job_id();
  req.attempt = attempt;
  req.args = {command.args().begin(), command.args().end()};
  req.env = {command.env().begin(), command.env().end()};
  req.recipe = command.recipe();
  req.timeout = Millis(command.timeout_ms());
  // Secret references never go in arguments: those end up on a command line.
  for (const auto& [name, value] : req.args) {
    if (holdsReference(value)) {
      return std::unexpected(Refusal{
          Refusal::kSecretInArguments,
          "argument '" + escapedExcerpt(name, 64) +
              "' holds a secret reference; secrets never go on a command line (use env or the "
              "recipe)"});
    }
  }
  auto plan = runner::planRun(*a.tmpl, req, *policy.worker_env, policy.work_dir);
  if (!plan) return std::unexpected(Refusal{Refusal::kInvalidArguments, plan.error()});
  a.plan = std::move(*plan);

  auto badReference = [](std::string message) {
    return std::unexpected(Refusal{Refusal::kBadSecretReference, std::move(message)});
  };
  auto collect = [&](const std::string& where,
                     std::string_view text) -> std::optional<std::string> {
    auto parts = secrets::parseReferences(text);
    if (!parts) return where + ": " + parts.error();
    for (auto& p : *parts) {
      if (p.is_reference) a.secrets.push_back(std::move(p.ref));
    }
    return std::nullopt;
  };
  for (const auto& [name, value] : a.tmpl->env) {
    if (auto err = collect("template env " + name, value)) return badReference(*err);
  }
  for (const auto& [name, value] : req.env) {
    if (auto err = collect("env " + escapedExcerpt(name, 64), value)) {
      return badReference(*err);
    }
  }
  if (a.tmpl->recipe != RecipeDelivery::kNone) {
    if (auto err = collect("recipe", req.recipe)) return badReference(*err);
  }
  std::string refused;
  for (const auto& ref : a.secrets) {
    const auto quoted = escapedExcerpt(ref.text, 128);
    if (!matchesAnyGlob(a.tmpl->secrets, secrets::scopeName(ref)) &&
        refused.find(quoted) == std::string::npos) {
      refused += (refused.empty() ? "" : ", ") + quoted;
    }
  }
  if (!refused.empty()) {
    return std::unexpected(Refusal{Refusal::kSecretNotAllowed,
                                   "template '" + a.tmpl->name + "' may not use the secret(s) " +
                                       refused + " (see its secrets list)"});
  }
  return a;
}

void resolveInto(Admitted& a, const v1::JobCommand& command,
                 const std::map<std::string, secrets::SecretValue>& values) {
  auto render = [&](std::string_view text) {
    std::string out;
    auto parts = secrets::parseReferences(text);  // parsed fine at admission
    for (const auto& p : *parts) {
      out += p.is_reference ? std::string(values.at(p.ref.text).reveal()) : p.literal;
    }
    return out;
  };
  std::set<std::string> names;
  for (const auto& [name, value] : a.tmpl->env) names.insert(name);
  for (const auto& [name, value] : command.env()) names.insert(name);
  for (auto& kv : a.plan.env) {
    auto eq = kv.find('=');
    if (names.contains(kv.substr(0, eq))) kv = kv.substr(0, eq + 1) + render(kv.substr(eq + 1));
  }
  if (a.tmpl->recipe != RecipeDelivery::kNone) a.plan.recipe = render(a.plan.recipe);
}

}  // namespace outpost::dispatch
