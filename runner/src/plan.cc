#include "outpost/runner/plan.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include <re2/re2.h>

#include "outpost/common/clock.h"
#include "outpost/common/glob.h"
#include "outpost/common/utf8.h"

namespace outpost::runner {
namespace {

// A parameter's pattern, compiled once (a worker's templates have few). RE2 matches in time
// linear in the value and never recurses: the standard library's matcher recursed once per
// character, so a 200 KB argument overflowed the poll thread's stack and killed the worker, and a
// pattern with nested repeats could backtrack for ever on a crafted value. Any thread.
const re2::RE2& paramPattern(const std::string& pattern) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<re2::RE2>> compiled;
  std::lock_guard lock(mutex);
  auto& re = compiled[pattern];
  if (!re) {
    re2::RE2::Options options;
    options.set_log_errors(false);
    re = std::make_unique<re2::RE2>(pattern, options);
  }
  return *re;
}

// [A-Za-z_][A-Za-z0-9_]*
bool validEnvName(const std::string& name) {
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  return !name.empty() && !(name.front() >= '0' && name.front() <= '9') &&
         std::ranges::all_of(name, word);
}

}  // namespace

std::expected<LaunchPlan, std::string> planRun(const TemplateConfig& tmpl, const RunRequest& req,
                                               const Environment& worker_env,
                                               const std::string& work_dir) {
  // run_id names the run directory, so it must be a plain UUID and nothing that walks paths.
  if (!isUuid(req.run_id)) return std::unexpected("run_id is not a UUID");

  std::map<std::string, std::string> values;
  for (const auto& [name, value] : req.args) {
    auto spec = tmpl.params.find(name);
    if (spec == tmpl.params.end()) {
      return std::unexpected("argument '" + escapedExcerpt(name, 64) +
                             "' is not a parameter of template '" + tmpl.name + "'");
    }
    const auto& pattern = paramPattern(spec->second.pattern);
    if (!pattern.ok() || !re2::RE2::FullMatch(value, pattern)) {
      return std::unexpected("argument '" + name + "' does not match the pattern " +
                             spec->second.pattern + " of template '" + tmpl.name + "'");
    }
    values[name] = value;
  }
  for (const auto& [name, spec] : tmpl.params) {
    if (values.contains(name)) continue;
    if (!spec.default_value) {
      return std::unexpected("argument '" + name + "' is required by template '" + tmpl.name + "'");
    }
    values[name] = *spec.default_value;
  }

  LaunchPlan plan;
  plan.run_id = req.run_id;
  plan.run_dir = work_dir + "/" + req.run_id;
  plan.working_dir = tmpl.working_dir.empty() ? plan.run_dir : tmpl.working_dir;
  plan.recipe_delivery = tmpl.recipe;
  plan.recipe = req.recipe;
  plan.kill_grace = tmpl.kill_grace;
  plan.keep_run_dir_on_failure = tmpl.keep_run_dir_on_failure;
  plan.limits = tmpl.limits;
  plan.output = tmpl.output;
  if (req.timeout.count() < 0) return std::unexpected("timeout_ms is negative");
  plan.timeout =
      req.timeout.count() == 0 ? tmpl.default_timeout : std::min(req.timeout, tmpl.max_timeout);
  values["run_dir"] = plan.run_dir;
  values["run_id"] = req.run_id;
  values["recipe_file"] = plan.run_dir + "/recipe";

  // Placeholders are replaced in one pass, so a value that looks like {x} stays literal.
  static const re2::RE2 kPlaceholder(R"(\{([A-Za-z_][A-Za-z0-9_]*)\})", re2::RE2::Latin1);
  for (const auto& arg : tmpl.argv) {
    std::string out;
    const re2::StringPiece text(arg);
    re2::StringPiece match[2];  // the whole placeholder, its name
    std::size_t last = 0;
    while (kPlaceholder.Match(text, last, text.size(), re2::RE2::UNANCHORED, match, 2)) {
      const auto start = static_cast<std::size_t>(match[0].data() - text.data());
      out.append(arg, last, start - last);
      out += values.at(std::string(match[1]));  // checked when the config was loaded
      last = start + match[0].size();
    }
    out.append(arg, last);
    plan.argv.push_back(std::move(out));
  }

  std::map<std::string, std::string> env;
  for (const auto& name : tmpl.env_passthrough) {
    if (auto it = worker_env.find(name); it != worker_env.end()) env[name] = it->second;
  }
  for (const auto& [name, value] : tmpl.env) env[name] = value;
  for (const auto& [name, value] : req.env) {
    if (!validEnvName(name)) {
      return std::unexpected("env name '" + escapedExcerpt(name, 64) + "' is not valid");
    }
    if (!matchesAnyGlob(tmpl.accept_env, name)) {
      return std::unexpected("env '" + escapedExcerpt(name, 64) +
                             "' is not accepted by template '" + tmpl.name +
                             "' (see its accept_env)");
    }
    env[name] = value;
  }
  env["OUTPOST_RUN_ID"] = req.run_id;
  env["OUTPOST_RUN_DIR"] = plan.run_dir;
  env["OUTPOST_JOB_ID"] = req.job_id;
  env["OUTPOST_ATTEMPT"] = std::to_string(req.attempt);
  if (tmpl.recipe == RecipeDelivery::kEnv) env[tmpl.recipe_env] = req.recipe;
  if (tmpl.recipe == RecipeDelivery::kFile) env["OUTPOST_RECIPE_FILE"] = values["recipe_file"];
  for (const auto& [name, value] : env) plan.env.push_back(name + "=" + value);
  return plan;
}

void addLineageChannel(LaunchPlan& plan) {
  if (plan.lineage_channel) return;
  plan.lineage_channel = true;
  plan.env.push_back("OUTPOST_LINEAGE_FD=" + std::to_string(kLineageFd));
  plan.env.push_back("OUTPOST_LINEAGE_FILE=/dev/fd/" + std::to_string(kLineageFd));
}

}  // namespace outpost::runner
