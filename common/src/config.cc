#include "outpost/common/config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include "outpost/common/http_client.h"  // parseUrl, isLoopbackHost

extern char** environ;

namespace outpost {
namespace {

// Reads one YAML mapping, remembering which keys were used so that the rest can be reported as
// unknown with their full path.
class Section {
 public:
  Section(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {
    if (node_ && !node_.IsNull() && !node_.IsMap()) {
      throw ConfigError(where() + " must be a mapping");
    }
  }

  std::string where(const std::string& key = "") const {
    if (key.empty()) return path_.empty() ? "the top level" : "'" + path_ + "'";
    return "'" + (path_.empty() ? key : path_ + "." + key) + "'";
  }
  std::string child(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  YAML::Node get(const std::string& key) {
    used_.insert(key);
    if (!node_ || !node_.IsMap()) return YAML::Node();
    return node_[key];
  }

  void read(const std::string& key, std::string& out) {
    if (auto n = get(key); n && !n.IsNull()) out = scalar(n, key);
  }
  void read(const std::string& key, bool& out) {
    if (auto n = get(key); n && !n.IsNull()) {
      auto s = scalar(n, key);
      if (s == "true" || s == "yes" || s == "on" || s == "1") {
        out = true;
      } else if (s == "false" || s == "no" || s == "off" || s == "0") {
        out = false;
      } else {
        throw ConfigError(where(key) + " must be true or false, not '" + s + "'");
      }
    }
  }
  void read(const std::string& key, unsigned& out) {
    if (auto n = get(key); n && !n.IsNull()) {
      out = static_cast<unsigned>(number(n, key, std::numeric_limits<unsigned>::max()));
    }
  }
  void read(const std::string& key, std::size_t& out) {
    if (auto n = get(key); n && !n.IsNull()) {
      out = static_cast<std::size_t>(number(n, key, std::numeric_limits<long long>::max()));
    }
  }
  // Sizes: a number of bytes, or with KiB, MiB, GiB (also KB, MB, GB as powers of 1000).
  void readBytes(const std::string& key, std::uint64_t& out) {
    if (auto n = get(key); n && !n.IsNull()) {
      auto s = scalar(n, key);
      auto b = parseBytes(s);
      if (!b) {
        throw ConfigError(where(key) + " must be a size such as 1048576, 512MiB or 2GiB, not '" +
                          s + "'");
      }
      out = *b;
    }
  }
  void read(const std::string& key, Millis& out) {
    if (auto n = get(key); n && !n.IsNull()) {
      auto s = scalar(n, key);
      auto d = parseDuration(s);
      if (!d) {
        throw ConfigError(where(key) + " must be a duration such as 500ms, 30s, 5m or 2h, not '" +
                          s + "'");
      }
      out = *d;
    }
  }
  void read(const std::string& key, std::vector<std::string>& out) {
    auto n = get(key);
    if (!n || n.IsNull()) return;
    if (!n.IsSequence()) throw ConfigError(where(key) + " must be a list");
    out.clear();
    for (std::size_t i = 0; i < n.size(); ++i) {
      out.push_back(scalar(n[i], key + "[" + std::to_string(i) + "]"));
    }
  }
  void read(const std::string& key, std::map<std::string, std::string>& out) {
    auto n = get(key);
    if (!n || n.IsNull()) return;
    if (!n.IsMap()) throw ConfigError(where(key) + " must be a mapping");
    for (auto it = n.begin(); it != n.end(); ++it) {
      auto k = it->first.as<std::string>();
      out[k] = scalar(it->second, key + "." + k);
    }
  }

  // Throws for every key present but never asked for.
  void rejectUnknown() const {
    if (!node_ || !node_.IsMap()) return;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      auto k = it->first.as<std::string>();
      if (!used_.contains(k)) {
        throw ConfigError("unknown setting " + where(k) +
                          " (check its spelling against the configuration reference in README.md)");
      }
    }
  }

 private:
  std::string scalar(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) throw ConfigError(where(key) + " must be a single value");
    return n.Scalar();
  }
  long long number(const YAML::Node& n, const std::string& key, long long max) const {
    auto s = scalar(n, key);
    long long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v < 0 || v > max) {
      throw ConfigError(where(key) + " must be a whole number from 0 to " + std::to_string(max) +
                        ", not '" + s + "'");
    }
    return v;
  }

  YAML::Node node_;
  std::string path_;
  std::set<std::string> used_;
};

// A cloud secret store's transport settings (StoreTransport): read and checked the same way in
// each store's section.
void readTransport(Section& s, StoreTransport& t) {
  s.read("ca_bundle", t.ca_bundle);
  s.read("proxy", t.proxy);
  s.read("timeout", t.timeout);
  s.read("max_attempts", t.max_attempts);
  t.check([&](const char* key) { return s.where(key); });
}

std::string lower(std::string s) {
  std::ranges::transform(s, s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool isPropertiesSection(const std::string& name) {
  return name == "properties" || name == "consumer_properties" || name == "producer_properties";
}

// OUTPOST_KAFKA__BOOTSTRAP_SERVERS=x sets kafka.bootstrap_servers. Inside a *properties section,
// '_' stands for '.', so OUTPOST_KAFKA__PROPERTIES__SECURITY_PROTOCOL sets security.protocol.
void applyEnvOverrides(YAML::Node& root, const Environment& env) {
  static const std::string kPrefix = "OUTPOST_";
  for (const auto& [name, value] : env) {
    if (!name.starts_with(kPrefix) || name.find("__") == std::string::npos) continue;
    std::vector<std::string> parts;
    std::string rest = name.substr(kPrefix.size());
    for (std::size_t pos; (pos = rest.find("__")) != std::string::npos;) {
      parts.push_back(lower(rest.substr(0, pos)));
      rest = rest.substr(pos + 2);
    }
    parts.push_back(lower(rest));
    if (std::ranges::any_of(parts, [](const std::string& p) { return p.empty(); })) {
      throw ConfigError("environment variable " + name + " has an empty path segment");
    }
    if (parts.size() >= 2 && isPropertiesSection(parts[parts.size() - 2])) {
      std::ranges::replace(parts.back(), '_', '.');
    }
    // yaml-cpp's operator[] on a non-const node creates the path; nodes are handles.
    std::vector<YAML::Node> chain{root};
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node next = chain.back()[parts[i]];
      if (next.IsDefined() && !next.IsNull() && !next.IsMap()) {
        throw ConfigError("environment variable " + name + " overrides inside '" + parts[i] +
                          "', which is not a mapping");
      }
      chain.push_back(next);
    }
    chain.back()[parts.back()] = value;
  }
}

RecipeDelivery parseRecipeDelivery(const std::string& s, const std::string& where) {
  if (s == "none") return RecipeDelivery::kNone;
  if (s == "file") return RecipeDelivery::kFile;
  if (s == "stdin") return RecipeDelivery::kStdin;
  if (s == "env") return RecipeDelivery::kEnv;
  throw ConfigError(where + " must be one of none, file, stdin, env; not '" + s + "'");
}

std::string defaultWorkerId() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "outpost");
  return std::string(host) + "-" + std::to_string(getpid());
}

bool isShell(const std::string& program) {
  static const std::set<std::string> kShells = {"sh",  "bash", "dash", "zsh",     "ksh",
                                                "csh", "tcsh", "fish", "busybox", "ash"};
  auto slash = program.rfind('/');
  return kShells.contains(slash == std::string::npos ? program : program.substr(slash + 1));
}

void checkTemplate(const TemplateConfig& t, const std::string& where) {
  if (t.argv.empty()) throw ConfigError(where + ".argv must name a program to run");
  if (isShell(t.argv.front()) && !t.allow_shell) {
    throw ConfigError(where + ".argv starts a shell ('" + t.argv.front() +
                      "'), which turns arguments into code; run the program directly, or set " +
                      where + ".allow_shell: true if a shell is really needed");
  }
  static const std::regex kPlaceholder(R"(\{([A-Za-z_][A-Za-z0-9_]*)\})");
  for (const auto* key : {"argv", "dry_run_args"}) {
    for (const auto& arg : key == std::string("argv") ? t.argv : t.dry_run_args) {
      for (auto it = std::sregex_iterator(arg.begin(), arg.end(), kPlaceholder);
           it != std::sregex_iterator(); ++it) {
        auto name = (*it)[1].str();
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

TemplateConfig parseTemplate(const std::string& name, YAML::Node node, const std::string& path) {
  Section s(node, path);
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
  if (auto limits = s.get("limits"); limits && !limits.IsNull()) {
    Section l(limits, s.child("limits"));
    l.readBytes("address_space", t.limits.address_space_bytes);
    l.read("open_files", t.limits.open_files);
    l.read("processes", t.limits.processes);
    Millis cpu{static_cast<long long>(t.limits.cpu_time_seconds) * 1000};
    l.read("cpu_time", cpu);
    t.limits.cpu_time_seconds = static_cast<std::uint64_t>((cpu.count() + 999) / 1000);
    l.readBytes("file_size", t.limits.file_size_bytes);
    l.read("core_dumps", t.limits.core_dumps);
    l.rejectUnknown();
  }
  if (auto output = s.get("output"); output && !output.IsNull()) {
    Section o(output, s.child("output"));
    o.readBytes("tail_bytes", t.output.tail_bytes);
    o.readBytes("log_rate_bytes", t.output.log_rate_bytes);
    o.readBytes("log_file_bytes", t.output.log_file_bytes);
    o.rejectUnknown();
  }
  s.read("recipe_env", t.recipe_env);
  s.read("working_dir", t.working_dir);
  s.read("timeout", t.default_timeout);
  s.read("max_timeout", t.max_timeout);
  s.read("kill_grace", t.kill_grace);
  s.read("secrets", t.secrets);
  s.read("concurrency", t.concurrency);
  s.read("keep_run_dir_on_failure", t.keep_run_dir_on_failure);
  s.read("child_lineage", t.child_lineage);
  if (auto params = s.get("params"); params && !params.IsNull()) {
    Section ps(params, s.child("params"));
    for (auto it = params.begin(); it != params.end(); ++it) {
      auto pname = it->first.as<std::string>();
      Section p(ps.get(pname), ps.child(pname));
      ParamSpec spec;
      p.read("pattern", spec.pattern);
      std::string def;
      if (auto d = p.get("default"); d && !d.IsNull()) {
        p.read("default", def);
        spec.default_value = def;
      }
      p.rejectUnknown();
      t.params[pname] = spec;
    }
  }
  s.rejectUnknown();
  checkTemplate(t, "'" + path + "'");
  return t;
}

}  // namespace

Environment processEnvironment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

std::optional<std::uint64_t> parseBytes(const std::string& text) {
  static const std::regex kSize(R"(^\s*(\d+)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, kSize)) return std::nullopt;
  std::uint64_t n = 0;
  auto digits = m[1].str();
  if (std::from_chars(digits.data(), digits.data() + digits.size(), n).ec != std::errc()) {
    return std::nullopt;
  }
  static const std::map<std::string, std::uint64_t> kUnits = {{"", 1},
                                                              {"B", 1},
                                                              {"KiB", 1ULL << 10},
                                                              {"MiB", 1ULL << 20},
                                                              {"GiB", 1ULL << 30},
                                                              {"TiB", 1ULL << 40},
                                                              {"KB", 1000},
                                                              {"MB", 1000'000},
                                                              {"GB", 1000'000'000},
                                                              {"TB", 1000'000'000'000}};
  auto scale = kUnits.at(m[2].str());
  if (n > std::numeric_limits<std::uint64_t>::max() / scale) return std::nullopt;
  return n * scale;
}

std::optional<Millis> parseDuration(const std::string& text) {
  static const std::regex kDuration(R"(^\s*(\d+)\s*(ms|s|m|h|d)?\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, kDuration)) return std::nullopt;
  long long n = 0;
  auto digits = m[1].str();
  if (std::from_chars(digits.data(), digits.data() + digits.size(), n).ec != std::errc()) {
    return std::nullopt;  // out of range
  }
  auto unit = m[2].str();
  long long scale = unit == "ms"                ? 1
                    : unit == "" || unit == "s" ? 1000
                    : unit == "m"               ? 60'000
                    : unit == "h"               ? 3'600'000
                                                : 86'400'000;
  if (n > std::numeric_limits<long long>::max() / scale) return std::nullopt;
  return Millis(n * scale);
}

Config parseConfig(const std::string& yaml_text, const Environment& env,
                   const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ": not valid YAML: " + e.what());
  }
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  try {
    applyEnvOverrides(root, env);
    Config c;
    Section top(root, "");

    Section w(top.get("worker"), "worker");
    w.read("id", c.worker.id);
    w.read("pool", c.worker.pool);
    w.read("slots", c.worker.slots);
    w.read("max_queued", c.worker.max_queued);
    w.readBytes("max_queued_bytes", c.worker.max_queued_bytes);
    w.read("work_dir", c.worker.work_dir);
    w.read("drain_timeout", c.worker.drain_timeout);
    w.read("revoke_timeout", c.worker.revoke_timeout);
    w.read("status_interval", c.worker.status_interval);
    w.read("heartbeat_interval", c.worker.heartbeat_interval);
    w.read("cancel_memory", c.worker.cancel_memory);
    w.read("max_attempts", c.worker.max_attempts);
    w.read("delivery", c.worker.delivery);
    w.read("log_level", c.worker.log_level);
    w.rejectUnknown();

    Section k(top.get("kafka"), "kafka");
    k.read("bootstrap_servers", c.kafka.bootstrap_servers);
    k.read("properties", c.kafka.properties);
    k.read("consumer_properties", c.kafka.consumer_properties);
    k.read("producer_properties", c.kafka.producer_properties);
    k.rejectUnknown();

    Section t(top.get("topics"), "topics");
    t.read("prefix", c.topics.prefix);
    for (auto [key, field] : {std::pair{"jobs", &c.topics.jobs},
                              {"control", &c.topics.control},
                              {"events", &c.topics.events},
                              {"lineage", &c.topics.lineage},
                              {"dlq", &c.topics.dlq},
                              {"workers", &c.topics.workers},
                              {"runs", &c.topics.runs}}) {
      t.read(key, *field);
      if (field->empty()) *field = c.topics.prefix + key;
    }
    t.rejectUnknown();

    Section o(top.get("output"), "output");
    o.readBytes("tail_bytes", c.output.tail_bytes);
    o.readBytes("line_max_bytes", c.output.line_max_bytes);
    o.readBytes("log_batch_bytes", c.output.log_batch_bytes);
    o.read("log_batch_interval", c.output.log_batch_interval);
    o.readBytes("log_rate_bytes", c.output.log_rate_bytes);
    o.readBytes("log_file_bytes", c.output.log_file_bytes);
    o.rejectUnknown();

    Section sc(top.get("secrets"), "secrets");
    sc.read("chain", c.secrets.chain);
    sc.read("default_cloud", c.secrets.default_cloud);
    sc.read("cache_ttl", c.secrets.cache_ttl);
    sc.read("mask_for", c.secrets.mask_for);
    sc.read("file_dir", c.secrets.file_dir);
    sc.readBytes("file_max_bytes", c.secrets.file_max_bytes);
    // Each cloud store's own section; giving one turns its provider on.
    if (auto aws = sc.get("aws"); aws && !aws.IsNull()) {
      Section a(aws, "secrets.aws");
      a.read("region", c.secrets.aws.region);
      a.read("profile", c.secrets.aws.profile);
      a.read("endpoint", c.secrets.aws.endpoint);
      a.read("sts_endpoint", c.secrets.aws.sts_endpoint);
      readTransport(a, c.secrets.aws.transport);
      a.rejectUnknown();
      c.secrets.clouds.insert("aws-sm");
    }
    if (auto vault = sc.get("vault"); vault && !vault.IsNull()) {
      Section v(vault, "secrets.vault");
      auto& vs = c.secrets.vault;
      for (auto [key, field] : {std::pair{"address", &vs.address},
                                {"namespace", &vs.namespace_name},
                                {"auth", &vs.auth},
                                {"token_file", &vs.token_file},
                                {"auth_mount", &vs.auth_mount},
                                {"role", &vs.role},
                                {"jwt_file", &vs.jwt_file},
                                {"role_id", &vs.role_id},
                                {"secret_id_file", &vs.secret_id_file}}) {
        v.read(key, *field);
      }
      readTransport(v, vs.transport);
      v.read("renew_before", vs.renew_before);
      v.rejectUnknown();
      const auto url = parseUrl(vs.address);
      if (!url) {
        throw ConfigError(
            v.where("address") +
            " must be the https:// URL of Vault (like https://vault.example.com:8200)");
      }
      if (url->scheme == "http" && !isLoopbackHost(url->host)) {
        throw ConfigError(v.where("address") +
                          " may be plain http:// only for a loopback address (127.0.0.1, ::1, "
                          "localhost); anything else needs https://");
      }
      if (vs.auth != "token" && vs.auth != "kubernetes" && vs.auth != "approle") {
        throw ConfigError(v.where("auth") + " must be one of token, kubernetes, approle; not '" +
                          vs.auth + "'");
      }
      if (vs.auth == "kubernetes" && vs.role.empty()) {
        throw ConfigError(v.where("role") + " is required with auth kubernetes");
      }
      if (vs.auth == "approle" && vs.role_id.empty()) {
        throw ConfigError(v.where("role_id") + " is required with auth approle");
      }
      c.secrets.clouds.insert("vault");
    }
    // A URL setting of the Google and Azure providers: plain http:// only to this machine, but
    // for the metadata services, which are plain http at a link-local address by design.
    const auto checkCloudUrl = [](const Section& s, const char* key, const std::string& url,
                                  bool any_http) {
      if (url.empty()) return;
      const auto u = parseUrl(url);
      if (!u || !u->query.empty()) {
        throw ConfigError(s.where(key) + " must be an https:// URL with a host and no query, " +
                          "not '" + urlForMessages(url) + "'");
      }
      if (u->scheme == "http" && !any_http && !isLoopbackHost(u->host)) {
        throw ConfigError(s.where(key) +
                          " may be plain http:// only for a loopback address (127.0.0.1, ::1, "
                          "localhost); anything else needs https://");
      }
    };
    if (auto gcp = sc.get("gcp"); gcp && !gcp.IsNull()) {
      Section g(gcp, "secrets.gcp");
      auto& gs = c.secrets.gcp;
      for (auto [key, field] : {std::pair{"project", &gs.project},
                                {"endpoint", &gs.endpoint},
                                {"credentials_file", &gs.credentials_file},
                                {"token_uri", &gs.token_uri},
                                {"metadata_endpoint", &gs.metadata_endpoint}}) {
        g.read(key, *field);
      }
      readTransport(g, gs.transport);
      g.rejectUnknown();
      checkCloudUrl(g, "endpoint", gs.endpoint, false);
      checkCloudUrl(g, "token_uri", gs.token_uri, false);
      checkCloudUrl(g, "metadata_endpoint", gs.metadata_endpoint, true);
      c.secrets.clouds.insert("gcp-sm");
    }
    if (auto azure = sc.get("azure"); azure && !azure.IsNull()) {
      Section z(azure, "secrets.azure");
      auto& zs = c.secrets.azure;
      for (auto [key, field] : {std::pair{"vault_url", &zs.vault_url},
                                {"auth", &zs.auth},
                                {"tenant_id", &zs.tenant_id},
                                {"client_id", &zs.client_id},
                                {"client_secret_file", &zs.client_secret_file},
                                {"imds_endpoint", &zs.imds_endpoint},
                                {"authority_host", &zs.authority_host}}) {
        z.read(key, *field);
      }
      readTransport(z, zs.transport);
      z.rejectUnknown();
      if (zs.vault_url.empty()) {
        throw ConfigError(z.where("vault_url") + " is required (https://NAME.vault.azure.net)");
      }
      checkCloudUrl(z, "vault_url", zs.vault_url, false);
      checkCloudUrl(z, "authority_host", zs.authority_host, false);
      checkCloudUrl(z, "imds_endpoint", zs.imds_endpoint, true);
      if (!zs.auth.empty() && zs.auth != "managed_identity" && zs.auth != "client_credentials") {
        throw ConfigError(z.where("auth") +
                          " must be managed_identity or client_credentials, not '" + zs.auth + "'");
      }
      c.secrets.clouds.insert("azure-kv");
    }
    sc.rejectUnknown();
    const auto known = [](const std::string& p) {
      return std::ranges::find(kSecretProviders, p) != kSecretProviders.end();
    };
    std::string known_list;
    for (auto p : kSecretProviders) known_list += (known_list.empty() ? "" : ", ") + std::string(p);
    for (const auto& p : c.secrets.chain) {
      if (!known(p)) {
        throw ConfigError("'secrets.chain' names '" + p +
                          "', which is not a provider this worker has (" + known_list + ")");
      }
      if (p != "env" && p != "file") c.secrets.clouds.insert(p);
    }
    if (!c.secrets.default_cloud.empty()) {
      if (!known(c.secrets.default_cloud) || c.secrets.default_cloud == "env" ||
          c.secrets.default_cloud == "file") {
        throw ConfigError("'secrets.default_cloud' must be a cloud provider (" + known_list +
                          " without env and file), not '" + c.secrets.default_cloud + "'");
      }
      c.secrets.clouds.insert(c.secrets.default_cloud);
    }

    Section r(top.get("runner"), "runner");
    r.read("cgroup", c.runner.cgroup);
    r.rejectUnknown();

    Section hs(top.get("http"), "http");
    hs.read("listen", c.http.listen);
    hs.read("live_timeout", c.http.live_timeout);
    hs.rejectUnknown();
    if (c.http.listen == "off") {
      c.http.host.clear();
      c.http.port = 0;
    } else {
      auto colon = c.http.listen.rfind(':');
      std::string host = colon == std::string::npos ? "" : c.http.listen.substr(0, colon);
      std::string port = colon == std::string::npos ? "" : c.http.listen.substr(colon + 1);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);  // [::1]:9464
      }
      const bool digits = !port.empty() && port.size() <= 5 &&
                          port.find_first_not_of("0123456789") == std::string::npos;
      if (host.empty() || !digits || std::stoi(port) > 65535) {
        throw ConfigError(hs.where("listen") +
                          " must be host:port (e.g. 0.0.0.0:9464) or off, not '" + c.http.listen +
                          "'");
      }
      c.http.host = host;
      c.http.port = std::stoi(port);
    }
    if (c.http.live_timeout < std::chrono::seconds(1)) {
      throw ConfigError(hs.where("live_timeout") + " must be at least 1s");
    }

    Section lg(top.get("log"), "log");
    lg.read("format", c.log.format);
    lg.rejectUnknown();
    if (c.log.format != "auto" && c.log.format != "text" && c.log.format != "json") {
      throw ConfigError(lg.where("format") + " must be auto, text or json, not '" + c.log.format +
                        "'");
    }

    Section l(top.get("lineage"), "lineage");
    l.read("enabled", c.lineage.enabled);
    l.read("running_events", c.lineage.running_events);
    l.read("job_namespace", c.lineage.job_namespace);
    std::string transport = "kafka";
    l.read("transport", transport);
    if (transport == "kafka") {
      c.lineage.transport = LineageTransport::kKafka;
    } else if (transport == "http") {
      c.lineage.transport = LineageTransport::kHttp;
    } else if (transport == "both") {
      c.lineage.transport = LineageTransport::kBoth;
    } else {
      throw ConfigError(l.where("transport") + " must be kafka, http or both, not '" + transport +
                        "'");
    }
    auto http_node = l.get("http");
    const bool http_given = http_node && !http_node.IsNull();
    Section lh(http_node, "lineage.http");
    auto& h = c.lineage.http;
    lh.read("url", h.url);
    lh.read("endpoint", h.endpoint);
    lh.read("token_file", h.token_file);
    lh.read("token_env", h.token_env);
    lh.read("token", h.token);
    lh.read("ca_bundle", h.ca_bundle);
    lh.read("proxy", h.proxy);
    lh.read("timeout", h.timeout);
    lh.read("max_attempts", h.max_attempts);
    lh.read("delivery_timeout", h.delivery_timeout);
    lh.read("queue_size", h.queue_size);
    lh.read("flush_timeout", h.flush_timeout);
    lh.rejectUnknown();
    l.rejectUnknown();
    if (c.lineage.toHttp()) {
      if (!h.url.starts_with("http://") && !h.url.starts_with("https://")) {
        throw ConfigError(
            "'lineage.http.url' must be the http:// or https:// URL of the lineage "
            "server (e.g. http://marquez:5000) when 'lineage.transport' is " +
            transport);
      }
      if (h.url.find_first_of("?# \t\r\n") != std::string::npos) {
        throw ConfigError(
            "'lineage.http.url' must be a base URL without query, fragment or "
            "spaces; the path goes in 'lineage.http.endpoint'");
      }
    } else if (http_given) {
      throw ConfigError(
          "'lineage.http' is set but 'lineage.transport' is kafka: set it to http "
          "or both, or remove 'lineage.http'");
    }
    if (!h.endpoint.starts_with('/')) {
      throw ConfigError("'lineage.http.endpoint' must start with '/', e.g. /api/v1/lineage");
    }
    if (!h.token_file.empty() + !h.token_env.empty() + !h.token.empty() > 1) {
      throw ConfigError(
          "more than one of 'lineage.http.token_file', 'lineage.http.token_env' and "
          "'lineage.http.token' is set: keep one");
    }
    if (!h.token.empty() && h.token.find("${") == std::string::npos &&
        !h.token.starts_with("secret:/")) {
      // Never echo it: it may be the token itself.
      throw ConfigError(
          "'lineage.http.token' must be a secret reference such as ${vault:lineage#token}, "
          "not the token itself (a literal token belongs in token_file)");
    }
    if (h.max_attempts == 0) throw ConfigError("'lineage.http.max_attempts' must be at least 1");
    if (h.queue_size == 0) throw ConfigError("'lineage.http.queue_size' must be at least 1");
    if (h.timeout < Millis(1)) throw ConfigError("'lineage.http.timeout' must be at least 1ms");

    if (auto templates = top.get("templates"); templates && !templates.IsNull()) {
      Section ts(templates, "templates");
      for (auto it = templates.begin(); it != templates.end(); ++it) {
        auto name = it->first.as<std::string>();
        c.templates[name] = parseTemplate(name, ts.get(name), ts.child(name));
      }
    }
    top.rejectUnknown();

    c.worker.static_id = !c.worker.id.empty();
    if (c.worker.id.empty()) c.worker.id = defaultWorkerId();
    if (c.worker.work_dir.empty()) c.worker.work_dir = "/tmp/outpost-runs";
    if (c.worker.slots == 0) throw ConfigError("'worker.slots' must be at least 1");
    if (c.worker.pool.empty()) throw ConfigError("'worker.pool' must not be empty");
    if (c.worker.max_attempts == 0) {
      throw ConfigError("'worker.max_attempts' must be at least 1");
    }
    if (c.worker.delivery != "exactly-once" && c.worker.delivery != "at-least-once") {
      throw ConfigError("'worker.delivery' must be exactly-once or at-least-once, not '" +
                        c.worker.delivery + "'");
    }
    if (c.kafka.bootstrap_servers.empty()) {
      throw ConfigError("'kafka.bootstrap_servers' must name at least one broker (host:port)");
    }
    if (c.output.tail_bytes < 256) throw ConfigError("'output.tail_bytes' must be at least 256");
    if (c.output.line_max_bytes < 80) {
      throw ConfigError("'output.line_max_bytes' must be at least 80");
    }
    if (c.worker.heartbeat_interval < Millis(100)) {
      throw ConfigError("'worker.heartbeat_interval' must be at least 100ms");
    }
    return c;
  } catch (const ConfigError& e) {
    throw ConfigError(source + ": " + e.what());
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ": " + e.what());
  }
}

Config loadConfig(const std::string& path, const Environment& env) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw ConfigError("the configuration file '" + path + "' is a directory");
  }
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read the configuration file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parseConfig(ss.str(), env, path);
}

}  // namespace outpost
