// A template (templates.<name>): its keys, its limits, output limits and parameters, and the
// checks that make it safe to run: no shell unless asked for, every placeholder declared.
#include <set>

#include <re2/re2.h>

#include "config_section.h"

namespace outpost::config_impl {
namespace {

RecipeDelivery parseRecipeDelivery(const std::string& s, const std::string& where) {
  if (s == "none") return RecipeDelivery::kNone;
  if (s == "file") return RecipeDelivery::kFile;
  if (s == "stdin") return RecipeDelivery::kStdin;
  if (s == "env") return RecipeDelivery::kEnv;
  throw ConfigError(where + " must be one of none, file, stdin, env; not '" + s + "'");
}

bool isShell(const std::string& program) {
  static const std::set<std::string> kShells = {"sh",  "bash", "dash", "zsh",     "ksh",
                                                "csh", "tcsh", "fish", "busybox", "ash"};
  auto slash = program.rfind('/');
  return kShells.contains(slash == std::string::npos ? program : program.substr(slash + 1));
}

// The {name} placeholders of one argument, in order.
std::vector<std::string> placeholdersOf(const std::string& arg) {
  static const re2::RE2 kPlaceholder(R"(\{([A-Za-z_][A-Za-z0-9_]*)\})", re2::RE2::Latin1);
  std::vector<std::string> names;
  re2::StringPiece rest(arg);
  for (std::string name; re2::RE2::FindAndConsume(&rest, kPlaceholder, &name);) {
    names.push_back(name);
  }
  return names;
}

void checkTemplate(const TemplateConfig& t, const std::string& where) {
  if (t.argv.empty()) throw ConfigError(where + ".argv must name a program to run");
  if (isShell(t.argv.front()) && !t.allow_shell) {
    throw ConfigError(where + ".argv starts a shell ('" + t.argv.front() +
                      "'), which turns arguments into code; run the program directly, or set " +
                      where + ".allow_shell: true if a shell is really needed");
  }
  for (const auto* key : {"argv", "dry_run_args"}) {
    for (const auto& arg : key == std::string("argv") ? t.argv : t.dry_run_args) {
      for (const auto& name : placeholdersOf(arg)) {
        if (name != "recipe_file" && name != "run_dir" && name != "run_id" &&
            !t.params.contains(name)) {
          throw ConfigError(where + "." + key + " uses {" + name +
                            "}, which is not declared under " + where + ".params");
        }
        if (name == "recipe_file" && t.recipe != RecipeDelivery::kFile) {
          throw ConfigError(where + "." + key + " uses {recipe_file} but " + where +
                            ".recipe is not 'file'");
        }
      }
    }
  }
  for (const auto& [name, p] : t.params) {
    re2::RE2::Options options;
    options.set_log_errors(false);
    re2::RE2 re(p.pattern, options);
    if (!re.ok()) {
      throw ConfigError(where + ".params." + name +
                        ".pattern is not a valid regular expression (RE2 syntax): " + re.error());
    }
    if (p.default_value && !re2::RE2::FullMatch(*p.default_value, re)) {
      throw ConfigError(where + ".params." + name + ".default does not match its pattern");
    }
  }
  if (t.default_timeout > t.max_timeout) {
    throw ConfigError(where + ".timeout is longer than " + where + ".max_timeout");
  }
  if (t.default_timeout <= Millis(0)) throw ConfigError(where + ".timeout must be positive");
}

// ---- templates.<name>.limits ----

constexpr KeySpec kLimitsKeys[] = {{"address_space"}, {"open_files"}, {"processes"},
                                   {"cpu_time"},      {"file_size"},  {"core_dumps"}};
constexpr Schema kLimitsSchema{kLimitsKeys};

ResourceLimits parseLimits(Section l) {
  ResourceLimits c;
  l.readBytes("address_space", c.address_space_bytes);
  l.read("open_files", c.open_files);
  l.read("processes", c.processes);
  Millis cpu{static_cast<long long>(c.cpu_time_seconds) * 1000};
  l.read("cpu_time", cpu);
  c.cpu_time_seconds = static_cast<std::uint64_t>((cpu.count() + 999) / 1000);
  l.readBytes("file_size", c.file_size_bytes);
  l.read("core_dumps", c.core_dumps);
  l.rejectUnknown();
  return c;
}

// ---- templates.<name>.output ----

constexpr KeySpec kOutputLimitsKeys[] = {{"tail_bytes"}, {"log_rate_bytes"}, {"log_file_bytes"}};
constexpr Schema kOutputLimitsSchema{kOutputLimitsKeys};

OutputLimits parseOutputLimits(Section o) {
  OutputLimits c;
  o.readBytes("tail_bytes", c.tail_bytes);
  o.readBytes("log_rate_bytes", c.log_rate_bytes);
  o.readBytes("log_file_bytes", c.log_file_bytes);
  o.rejectUnknown();
  return c;
}

// ---- templates.<name>.params.<param> ----

constexpr KeySpec kParamKeys[] = {{"pattern"}, {"default"}};
constexpr Schema kParamSchema{kParamKeys};

ParamSpec parseParam(Section p) {
  ParamSpec c;
  p.read("pattern", c.pattern);
  p.read("default", c.default_value);
  p.rejectUnknown();
  return c;
}

constexpr KeySpec kTemplateKeys[] = {{"argv"},
                                     {"dry_run_args"},
                                     {"env", KeyKind::kPassThrough},
                                     {"env_passthrough"},
                                     {"accept_env"},
                                     {"recipe"},
                                     {"allow_shell"},
                                     {"limits", KeyKind::kSection, &kLimitsSchema},
                                     {"output", KeyKind::kSection, &kOutputLimitsSchema},
                                     {"recipe_env"},
                                     {"working_dir"},
                                     {"timeout"},
                                     {"max_timeout"},
                                     {"kill_grace"},
                                     {"secrets"},
                                     {"concurrency"},
                                     {"keep_run_dir_on_failure"},
                                     {"child_lineage"},
                                     {"params", KeyKind::kNamedSections, &kParamSchema, "<param>"}};

}  // namespace

constexpr Schema kTemplateSchema{kTemplateKeys};

TemplateConfig parseTemplate(const std::string& name, Section s) {
  TemplateConfig t;
  t.name = name;
  s.read("argv", t.argv);
  s.read("dry_run_args", t.dry_run_args);
  s.read("env", t.env);
  s.read("env_passthrough", t.env_passthrough);
  s.read("accept_env", t.accept_env);
  std::string recipe = "file";
  s.read("recipe", recipe);
  t.recipe = parseRecipeDelivery(recipe, s.where("recipe"));
  s.read("allow_shell", t.allow_shell);
  if (auto limits = s.section("limits"); limits.given()) t.limits = parseLimits(limits);
  if (auto output = s.section("output"); output.given()) t.output = parseOutputLimits(output);
  s.read("recipe_env", t.recipe_env);
  s.read("working_dir", t.working_dir);
  s.read("timeout", t.default_timeout);
  s.read("max_timeout", t.max_timeout);
  s.read("kill_grace", t.kill_grace);
  s.read("secrets", t.secrets);
  s.read("concurrency", t.concurrency);
  s.read("keep_run_dir_on_failure", t.keep_run_dir_on_failure);
  s.read("child_lineage", t.child_lineage);
  s.forEachEntry("params", [&](const std::string& pname, Section p) {
    t.params[pname] = parseParam(std::move(p));
  });
  s.rejectUnknown();
  checkTemplate(t, s.where());
  return t;
}

}  // namespace outpost::config_impl
