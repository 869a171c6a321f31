// The configuration loader: the OUTPOST_* overrides, the top level, and the worker's own sections
// (worker, kafka, topics, output, runner, http, log, lineage), each parsed by a function of its
// own against its table of keys. Secrets and templates are parsed in config_secrets.cc and
// config_templates.cc; config_section.h reads one mapping against its table.
#include "outpost/common/config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include "config_section.h"

extern char** environ;

namespace outpost {
namespace config_impl {
namespace {

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

std::string defaultWorkerId() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "outpost");
  return std::string(host) + "-" + std::to_string(getpid());
}

// ---- worker ----

constexpr KeySpec kWorkerKeys[] = {{"id"},
                                   {"pool"},
                                   {"slots"},
                                   {"max_queued"},
                                   {"max_queued_bytes"},
                                   {"work_dir"},
                                   {"drain_timeout"},
                                   {"revoke_timeout"},
                                   {"status_interval"},
                                   {"lease_timeout"},
                                   {"heartbeat_interval"},
                                   {"cancel_memory"},
                                   {"max_attempts"},
                                   {"delivery"},
                                   {"log_level"}};
constexpr Schema kWorkerSchema{kWorkerKeys};

WorkerConfig parseWorker(Section w) {
  WorkerConfig c;
  w.read("id", c.id);
  w.read("pool", c.pool);
  w.read("slots", c.slots);
  w.read("max_queued", c.max_queued);
  w.readBytes("max_queued_bytes", c.max_queued_bytes);
  w.read("work_dir", c.work_dir);
  w.read("drain_timeout", c.drain_timeout);
  w.read("revoke_timeout", c.revoke_timeout);
  w.read("status_interval", c.status_interval);
  w.read("lease_timeout", c.lease_timeout);
  w.read("heartbeat_interval", c.heartbeat_interval);
  w.read("cancel_memory", c.cancel_memory);
  w.read("max_attempts", c.max_attempts);
  w.read("delivery", c.delivery);
  w.read("log_level", c.log_level);
  w.rejectUnknown();
  return c;
}

// The worker's, the kafka and the output section's values are checked once the whole file has
// been read, so that an unknown key in a later section is reported before them.
void finishWorker(WorkerConfig& c) {
  c.static_id = !c.id.empty();
  if (c.id.empty()) c.id = defaultWorkerId();
  if (c.work_dir.empty()) c.work_dir = "/tmp/outpost-runs";
  if (c.slots == 0) throw ConfigError("'worker.slots' must be at least 1");
  if (c.pool.empty()) throw ConfigError("'worker.pool' must not be empty");
  if (c.max_attempts == 0) throw ConfigError("'worker.max_attempts' must be at least 1");
  if (c.delivery != "exactly-once" && c.delivery != "at-least-once") {
    throw ConfigError("'worker.delivery' must be exactly-once or at-least-once, not '" +
                      c.delivery + "'");
  }
  if (c.heartbeat_interval < Millis(100)) {
    throw ConfigError("'worker.heartbeat_interval' must be at least 100ms");
  }
}

// ---- kafka ----

constexpr KeySpec kKafkaKeys[] = {{"bootstrap_servers"},
                                  {"properties", KeyKind::kPassThrough},
                                  {"consumer_properties", KeyKind::kPassThrough},
                                  {"producer_properties", KeyKind::kPassThrough}};
constexpr Schema kKafkaSchema{kKafkaKeys};

KafkaConfig parseKafka(Section k) {
  KafkaConfig c;
  k.read("bootstrap_servers", c.bootstrap_servers);
  k.read("properties", c.properties);
  k.read("consumer_properties", c.consumer_properties);
  k.read("producer_properties", c.producer_properties);
  k.rejectUnknown();
  return c;
}

void checkKafka(const KafkaConfig& c) {
  if (c.bootstrap_servers.empty()) {
    throw ConfigError("'kafka.bootstrap_servers' must name at least one broker (host:port)");
  }
}

// ---- topics ----

constexpr KeySpec kTopicsKeys[] = {{"prefix"},  {"jobs"}, {"control"}, {"events"},
                                   {"lineage"}, {"dlq"},  {"workers"}, {"runs"}};
constexpr Schema kTopicsSchema{kTopicsKeys};

TopicsConfig parseTopics(Section t) {
  TopicsConfig c;
  t.read("prefix", c.prefix);
  for (auto [key, field] : {std::pair{"jobs", &c.jobs},
                            {"control", &c.control},
                            {"events", &c.events},
                            {"lineage", &c.lineage},
                            {"dlq", &c.dlq},
                            {"workers", &c.workers},
                            {"runs", &c.runs}}) {
    t.read(key, *field);
    if (field->empty()) *field = c.prefix + key;
  }
  t.rejectUnknown();
  return c;
}

// ---- output ----

constexpr KeySpec kOutputKeys[] = {{"tail_bytes"},         {"line_max_bytes"}, {"log_batch_bytes"},
                                   {"log_batch_interval"}, {"log_rate_bytes"}, {"log_file_bytes"}};
constexpr Schema kOutputSchema{kOutputKeys};

OutputConfig parseOutput(Section o) {
  OutputConfig c;
  o.readBytes("tail_bytes", c.tail_bytes);
  o.readBytes("line_max_bytes", c.line_max_bytes);
  o.readBytes("log_batch_bytes", c.log_batch_bytes);
  o.read("log_batch_interval", c.log_batch_interval);
  o.readBytes("log_rate_bytes", c.log_rate_bytes);
  o.readBytes("log_file_bytes", c.log_file_bytes);
  o.rejectUnknown();
  return c;
}

// Settings that each parse but contradict one another: the poll thread's waits against what
// watches it (the liveness probe; the group, which drops a member that has not polled within
// max.poll.interval.ms).
void checkWaits(const Config& c) {
  if (c.http.live_timeout <= kLongestUnannouncedWait) {
    throw ConfigError(fmt::format(
        "'http.live_timeout' ({} ms) must be longer than {} ms, the longest wait of the poll "
        "thread that the probes are not told of (an offset commit waited for): /livez would fail "
        "a healthy worker",
        c.http.live_timeout.count(), kLongestUnannouncedWait.count()));
  }
  if (c.worker.lease_timeout < 3 * c.worker.status_interval) {
    throw ConfigError(fmt::format(
        "'worker.lease_timeout' ({} ms) must be at least three times 'worker.status_interval' "
        "({} ms): a worker whose status is a moment late would count as lost",
        c.worker.lease_timeout.count(), c.worker.status_interval.count()));
  }
  long long max_poll = 300'000;  // librdkafka's default
  for (const auto* props : {&c.kafka.properties, &c.kafka.consumer_properties}) {
    if (auto it = props->find("max.poll.interval.ms"); it != props->end()) {
      try {
        max_poll = std::stoll(it->second);
      } catch (const std::exception&) {
        // librdkafka refuses it with its own message when the worker starts.
      }
    }
  }
  if (c.worker.revoke_timeout.count() >= max_poll) {
    throw ConfigError(fmt::format(
        "'worker.revoke_timeout' ({} ms) must be shorter than the consumer's max.poll.interval.ms "
        "({} ms): the group would drop this worker while it waits for the runs of revoked "
        "partitions",
        c.worker.revoke_timeout.count(), max_poll));
  }
}

void checkOutput(const OutputConfig& c) {
  if (c.tail_bytes < 256) throw ConfigError("'output.tail_bytes' must be at least 256");
  if (c.line_max_bytes < 80) throw ConfigError("'output.line_max_bytes' must be at least 80");
}

// ---- runner ----

constexpr KeySpec kRunnerKeys[] = {{"cgroup"}};
constexpr Schema kRunnerSchema{kRunnerKeys};

RunnerConfig parseRunner(Section r) {
  RunnerConfig c;
  r.read("cgroup", c.cgroup);
  r.rejectUnknown();
  return c;
}

// ---- http ----

constexpr KeySpec kHttpKeys[] = {{"listen"}, {"live_timeout"}};
constexpr Schema kHttpSchema{kHttpKeys};

HttpConfig parseHttp(Section hs) {
  HttpConfig c;
  hs.read("listen", c.listen);
  hs.read("live_timeout", c.live_timeout);
  hs.rejectUnknown();
  if (c.listen == "off") {
    c.host.clear();
    c.port = 0;
  } else {
    auto colon = c.listen.rfind(':');
    std::string host = colon == std::string::npos ? "" : c.listen.substr(0, colon);
    std::string port = colon == std::string::npos ? "" : c.listen.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);  // [::1]:9464
    }
    const bool digits = !port.empty() && port.size() <= 5 &&
                        port.find_first_not_of("0123456789") == std::string::npos;
    if (host.empty() || !digits || std::stoi(port) > 65535) {
      throw ConfigError(hs.where("listen") +
                        " must be host:port (e.g. 0.0.0.0:9464) or off, not '" + c.listen + "'");
    }
    c.host = host;
    c.port = std::stoi(port);
  }
  return c;
}

// ---- log ----

constexpr KeySpec kLogKeys[] = {{"format"}};
constexpr Schema kLogSchema{kLogKeys};

LogConfig parseLog(Section lg) {
  LogConfig c;
  lg.read("format", c.format);
  lg.rejectUnknown();
  if (c.format != "auto" && c.format != "text" && c.format != "json") {
    throw ConfigError(lg.where("format") + " must be auto, text or json, not '" + c.format + "'");
  }
  return c;
}

// ---- lineage ----

constexpr KeySpec kLineageHttpKeys[] = {
    {"url"},          {"endpoint"},         {"token_file"}, {"token_env"},
    {"token"},        {"ca_bundle"},        {"proxy"},      {"timeout"},
    {"max_attempts"}, {"delivery_timeout"}, {"queue_size"}, {"flush_timeout"}};
constexpr Schema kLineageHttpSchema{kLineageHttpKeys};

LineageHttpConfig parseLineageHttp(Section lh) {
  LineageHttpConfig h;
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
  return h;
}

// The HTTP transport's settings, once the transport is known. `transport` is as the file says.
void checkLineageHttp(const LineageConfig& c, bool http_given, const std::string& transport) {
  const auto& h = c.http;
  if (c.toHttp()) {
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
}

constexpr KeySpec kLineageKeys[] = {{"enabled"},
                                    {"running_events"},
                                    {"job_namespace"},
                                    {"transport"},
                                    {"http", KeyKind::kSection, &kLineageHttpSchema}};
constexpr Schema kLineageSchema{kLineageKeys};

LineageConfig parseLineage(Section l) {
  LineageConfig c;
  l.read("enabled", c.enabled);
  l.read("running_events", c.running_events);
  l.read("job_namespace", c.job_namespace);
  std::string transport = "kafka";
  l.read("transport", transport);
  if (transport == "kafka") {
    c.transport = LineageTransport::kKafka;
  } else if (transport == "http") {
    c.transport = LineageTransport::kHttp;
  } else if (transport == "both") {
    c.transport = LineageTransport::kBoth;
  } else {
    throw ConfigError(l.where("transport") + " must be kafka, http or both, not '" + transport +
                      "'");
  }
  Section lh = l.section("http");
  const bool http_given = lh.given();
  c.http = parseLineageHttp(lh);
  l.rejectUnknown();
  checkLineageHttp(c, http_given, transport);
  return c;
}

// ---- the top level ----

constexpr KeySpec kConfigKeys[] = {
    {"worker", KeyKind::kSection, &kWorkerSchema},
    {"kafka", KeyKind::kSection, &kKafkaSchema},
    {"topics", KeyKind::kSection, &kTopicsSchema},
    {"output", KeyKind::kSection, &kOutputSchema},
    {"secrets", KeyKind::kSection, &kSecretsSchema},
    {"runner", KeyKind::kSection, &kRunnerSchema},
    {"http", KeyKind::kSection, &kHttpSchema},
    {"log", KeyKind::kSection, &kLogSchema},
    {"lineage", KeyKind::kSection, &kLineageSchema},
    {"security", KeyKind::kSection, &kSecuritySchema},
    {"templates", KeyKind::kNamedSections, &kTemplateSchema, "<name>"}};
constexpr Schema kConfigSchema{kConfigKeys};

// The sections in the order they have always been read, which decides which of several problems
// a file has is reported.
Config parseTopLevel(Section top) {
  Config c;
  c.worker = parseWorker(top.section("worker"));
  c.kafka = parseKafka(top.section("kafka"));
  c.topics = parseTopics(top.section("topics"));
  c.output = parseOutput(top.section("output"));
  c.secrets = parseSecrets(top.section("secrets"));
  c.runner = parseRunner(top.section("runner"));
  c.http = parseHttp(top.section("http"));
  c.log = parseLog(top.section("log"));
  c.lineage = parseLineage(top.section("lineage"));
  c.security = parseSecurity(top.section("security"));
  top.forEachEntry("templates", [&](const std::string& name, Section t) {
    c.templates[name] = parseTemplate(name, std::move(t));
  });
  top.rejectUnknown();
  finishWorker(c.worker);
  checkKafka(c.kafka);
  checkOutput(c.output);
  checkWaits(c);
  return c;
}

}  // namespace
}  // namespace config_impl

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
  // Spaces are the C locale's (\s of RE2 leaves out \v); Latin-1: the text is taken as bytes.
  static const re2::RE2 kSize(
      R"([ \t\n\v\f\r]*(\d+)[ \t\n\v\f\r]*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?[ \t\n\v\f\r]*)",
      re2::RE2::Latin1);
  std::string digits;
  std::string unit;
  if (!re2::RE2::FullMatch(text, kSize, &digits, &unit)) return std::nullopt;
  std::uint64_t n = 0;
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
  auto scale = kUnits.at(unit);
  if (n > std::numeric_limits<std::uint64_t>::max() / scale) return std::nullopt;
  return n * scale;
}

std::optional<Millis> parseDuration(const std::string& text) {
  static const re2::RE2 kDuration(R"([ \t\n\v\f\r]*(\d+)[ \t\n\v\f\r]*(ms|s|m|h|d)?[ \t\n\v\f\r]*)",
                                  re2::RE2::Latin1);
  std::string digits;
  std::string unit;
  if (!re2::RE2::FullMatch(text, kDuration, &digits, &unit)) return std::nullopt;
  long long n = 0;
  if (std::from_chars(digits.data(), digits.data() + digits.size(), n).ec != std::errc()) {
    return std::nullopt;  // out of range
  }
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
    config_impl::applyEnvOverrides(root, env);
    return config_impl::parseTopLevel(config_impl::Section(root, "", config_impl::kConfigSchema));
  } catch (const ConfigError& e) {
    throw ConfigError(source + ": " + e.what());
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ": " + e.what());
  }
}

std::set<std::string> acceptedConfigKeys() {
  std::set<std::string> keys;
  config_impl::listKeys(config_impl::kConfigSchema, "", keys);
  return keys;
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
