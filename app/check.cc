#include "check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>

#include "outpost/common/clock.h"
#include "outpost/consumer/topic_reader.h"
#include "outpost/events/connection.h"
#include "outpost/events/write_probe.h"
#include "outpost/secrets/reference.h"
#include "outpost/secrets/resolver.h"
#include "outpost/security/keys.h"

namespace outpost::app {
namespace {

void row(std::ostream& out, const std::string& what, std::string_view status,
         const std::string& details) {
  out << what << std::string(what.size() < 10 ? 10 - what.size() : 1, ' ') << status << "  "
      << details << "\n";
}

void line(std::ostream& out, const std::string& what, bool ok, const std::string& details) {
  row(out, what, ok ? "ok  " : "FAIL", details);
}

// Passes, but a security team would want to know.
void warning(std::ostream& out, const std::string& what, const std::string& details) {
  row(out, what, "warn", details);
}

// The executable `name` resolves to on `path` (colon-separated), or empty.
std::string findOnPath(const std::string& name, const std::string& path) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    auto candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace

int checkExecutables(const Config& config, std::ostream& out) {
  int failed = 0;
  const char* worker_path = std::getenv("PATH");
  for (const auto& [name, t] : config.templates) {
    if (t.argv.empty()) continue;  // the config refuses it already
    const auto& program = t.argv.front();
    if (program.find('{') != std::string::npos) {
      line(out, "template", true, name + ": " + program + " is set per command; not checked");
      continue;
    }
    auto env_path = t.env.find("PATH");
    const std::string path =
        env_path != t.env.end() ? env_path->second : (worker_path ? worker_path : "");
    auto found = findOnPath(program, path);
    if (found.empty()) {
      ++failed;
      line(out, "template", false,
           name + ": " + program + " is not an executable on PATH (" + path + ")");
    } else {
      line(out, "template", true, name + ": " + program + " -> " + found);
    }
  }
  return failed;
}

std::vector<SecretCheck> checkSecrets(const Config& config, const std::string& only_template) {
  SystemClock clock;
  auto resolver = secrets::SecretResolver::fromConfig(config.secrets, processEnvironment(), clock);
  std::vector<SecretCheck> checks;
  for (const auto& [name, t] : config.templates) {
    if (!only_template.empty() && name != only_template) continue;
    std::map<std::string, secrets::SecretRef> refs;  // by text, so each is asked once
    for (const auto& [var, value] : t.env) {
      auto parts = secrets::parseReferences(value);
      if (!parts) {
        checks.push_back({name, "env " + var, false, "", "", 0, parts.error()});
        continue;
      }
      for (auto& p : *parts) {
        if (p.is_reference) refs.emplace(p.ref.text, p.ref);
      }
    }
    for (const auto& allowed : t.secrets) {
      if (allowed.find_first_of("*?[:/") != std::string::npos)
        continue;  // patterns: nothing to ask
      refs.emplace("${" + allowed + "}", secrets::SecretRef{secrets::kChainProvider, allowed, "",
                                                            "", "${" + allowed + "}"});
    }
    for (const auto& [text, ref] : refs) {
      auto got = resolver->resolve(ref);
      if (got) {
        checks.push_back({name, text, true, got->provider, got->version, got->value.size(), ""});
      } else {
        checks.push_back({name, text, false, "", "", 0, got.error().message});
      }
    }
  }
  return checks;
}

namespace {

// Topics exist; those the worker reads can be read, those it writes can be written; the group's
// offsets can be read.
int checkKafka(Config config, std::ostream& out) {
  int failed = 0;
  const auto& t = config.topics;
  try {
    SystemClock clock;
    auto resolver =
        secrets::SecretResolver::fromConfig(config.secrets, processEnvironment(), clock);
    config.kafka = secrets::resolveKafkaSettings(*resolver, std::move(config.kafka));
  } catch (const ConfigError& e) {
    line(out, "kafka", false, e.what());
    return 1;
  }
  if (auto ok = events::checkConnection(config.kafka, std::chrono::seconds(15)); !ok) {
    line(out, "kafka", false, ok.error());
    return 1;
  }
  consumer::TopicReader reader(config.kafka, "", "outpost-check");
  auto found = reader.partitions(std::chrono::seconds(10));
  if (!found) {
    line(out, "kafka", false,
         "no metadata from " + config.kafka.bootstrap_servers + ": " + found.error());
    return 1;
  }
  line(out, "kafka", true,
       config.kafka.bootstrap_servers + ": " + std::to_string(found->size()) + " topic(s) visible");
  std::map<std::string, std::string> roles;  // topic -> "jobs, ..."
  for (const auto& [role, name] :
       std::vector<std::pair<std::string, std::string>>{{"jobs", t.jobs},
                                                        {"control", t.control},
                                                        {"events", t.events},
                                                        {"lineage", t.lineage},
                                                        {"dlq", t.dlq},
                                                        {"workers", t.workers},
                                                        {"runs", t.runs}}) {
    roles[name] += (roles[name].empty() ? "" : ", ") + role;
  }
  std::vector<std::string> writable;
  for (const auto& [name, role] : roles) {
    auto it = found->find(name);
    if (it == found->end() || it->second.empty()) {
      ++failed;
      line(out, "topic", false,
           name + " (" + role + "): does not exist (outpost topics creates it)");
      continue;
    }
    // Read: the first record of partition 0, or its end.
    std::string read_error;
    if (auto ok = reader.readFromBeginning({{name, it->second.front()}}); !ok) {
      read_error = ok.error();
    } else {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      for (;;) {
        auto r = reader.poll(std::chrono::milliseconds(200));
        if (r.kind == consumer::ReadResult::Kind::kRecord ||
            r.kind == consumer::ReadResult::Kind::kEnd)
          break;
        if (r.kind == consumer::ReadResult::Kind::kError) {
          read_error = r.error;
          break;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
          read_error = "nothing read within 10 s";
          break;
        }
      }
    }
    if (!read_error.empty()) ++failed;
    line(out, "topic", read_error.empty(),
         name + " (" + role + "): " + std::to_string(it->second.size()) + " partition(s), " +
             (read_error.empty() ? "readable" : "cannot be read: " + read_error));
    if (role != "jobs" && role != "control") writable.push_back(name);
  }
  if (!writable.empty()) {
    const auto id = "outpost." + config.worker.pool + ".check." + config.worker.id;
    for (const auto& [topic, error] :
         events::probeWrites(config.kafka, id, writable, std::chrono::seconds(15))) {
      if (!error.empty()) ++failed;
      line(out, "topic", error.empty(),
           topic + ": " + (error.empty() ? "writable" : "cannot be written: " + error));
    }
  }
  if (auto it = found->find(t.jobs); it != found->end()) {
    std::vector<TopicPartition> tps;
    for (auto p : it->second) tps.push_back({t.jobs, p});
    const auto group = "outpost." + config.worker.pool;
    auto committed =
        consumer::committedOffsets(config.kafka, "", group, tps, std::chrono::seconds(10));
    if (!committed) ++failed;
    line(out, "group", committed.has_value(),
         group + ": " +
             (committed ? "committed offsets readable"
                        : "cannot read offsets: " + committed.error()));
  }
  return failed;
}

}  // namespace

int checkSecurity(const Config& config, const std::string& config_path, std::ostream& out) {
  const auto& s = config.security;
  struct stat st {};
  if (::stat(config_path.c_str(), &st) == 0 && (st.st_mode & S_IROTH)) {
    warning(out, "security",
            config_path +
                " is readable by every local user (chmod o-r): it names the secret "
                "stores and the templates");
  }
  if (s.commands == CommandSigning::kOff) {
    warning(out, "security",
            "security.commands is off: commands are not checked for a signature; whoever can "
            "write to " +
                config.topics.jobs + " or " + config.topics.control +
                " can run any template and cancel or drain");
    return 0;
  }
  auto keys = s.trusted_keys.empty()
                  ? security::KeySet::parseJwks(processEnvironment()[s.trusted_keys_env])
                  : security::KeySet::loadJwksFile(s.trusted_keys);
  if (!keys) {
    line(out, "security", false,
         (s.trusted_keys.empty() ? "security.trusted_keys_env: $" + s.trusted_keys_env
                                 : "security.trusted_keys: ") +
             keys.error());
    return 1;
  }
  std::string kids;
  for (const auto& kid : keys->kids()) kids += (kids.empty() ? "" : ", ") + kid;
  line(out, "security", true,
       std::string("security.commands is ") + nameOf(s.commands) + ": " +
           std::to_string(keys->size()) + " trusted key(s) (" + kids + ") from " +
           (s.trusted_keys.empty() ? "$" + s.trusted_keys_env : s.trusted_keys));
  for (const auto& [kid, policy] : s.keys) {
    if (!keys->find(kid)) {
      warning(out, "security", "security.keys." + kid + " names a key that is not trusted");
    }
  }
  return 0;
}

CLI::App* addCheckCommand(CLI::App& app, CheckOptions& o) {
  auto* sub = app.add_subcommand(
      "check",
      "Check a configuration: its settings, each template's executable, its secrets (never "
      "printed) and, with --connect, the topics and group; exit 0 when all pass");
  sub->add_option("-c,--config", o.config_path, "Configuration file (YAML)")->required();
  sub->add_flag("--connect", o.connect,
                "Also check that the topics exist and can be read and written (a write is made "
                "in a transaction that is aborted) and that the group's offsets can be read");
  return sub;
}

int cmdCheck(const CheckOptions& o) {
  Config config;
  try {
    config = loadConfig(o.config_path, processEnvironment());
  } catch (const ConfigError& e) {
    line(std::cout, "config", false, e.what());
    std::cout << "the configuration is refused; nothing else checked\n";
    return 1;
  }
  line(std::cout, "config", true,
       o.config_path + ": pool " + config.worker.pool + ", " +
           std::to_string(config.templates.size()) + " template(s), " + config.worker.delivery);
  int failed = checkExecutables(config, std::cout);
  failed += checkSecurity(config, o.config_path, std::cout);
  for (const auto& c : checkSecrets(config, "")) {
    failed += !c.found;
    line(std::cout, "secret", c.found,
         c.template_name + " " + c.text + ": " +
             (c.found ? "found (provider " + c.provider + ", version " +
                            (c.version.empty() ? "-" : c.version) + ", " + std::to_string(c.bytes) +
                            " bytes)"
                      : c.error));
  }
  if (o.connect) failed += checkKafka(config, std::cout);
  std::cout << (failed == 0 ? "all checks passed\n"
                            : std::to_string(failed) + " check(s) failed\n");
  return failed == 0 ? 0 : 1;
}

}  // namespace outpost::app
