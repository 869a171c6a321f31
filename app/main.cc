// The `outpost` executable: subcommands run (the worker), submit (produce a JobCommand), cancel,
// drain and resume (produce a ControlCommand; control.h), workers (the pool's status; workers.h),
// check (a configuration before it runs; check.h), secrets check,
// tail (print events and lineage as JSON lines), ledger (count what
// was delivered, lost, ended twice or run twice; see ledger.h) and topics (create the config's
// topics). Wiring only.
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "check.h"
#include "client_config.h"
#include "control.h"
#include "ledger.h"
#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/common/failure.h"
#include "outpost/common/log.h"
#include "outpost/consumer/topic_reader.h"
#include "outpost/secrets/reference.h"
#include "outpost/secrets/resolver.h"
#include "outpost/v1/control.pb.h"
#include "outpost/v1/event.pb.h"
#include "outpost/v1/run_state.h"
#include "outpost/v1/worker.pb.h"
#include "replay.h"
#include "submit.h"
#include "topics.h"
#include "worker.h"
#include "workers.h"

namespace {

using namespace outpost;
using namespace outpost::app;
using nlohmann::json;

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void onStopSignal(int) {
  g_stop.store(true);
}

void onReloadSignal(int) {
  g_reload.store(true);
}

// Protobuf's own warnings (e.g. invalid UTF-8 in a garbage command) go to our log at debug level.
void protobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  if (level >= google::protobuf::LOGLEVEL_FATAL)
    spdlog::critical("protobuf {}:{}: {}", file, line, message);
  spdlog::debug("protobuf: {}", message);
}

// SIGTERM and SIGINT set g_stop; a broken pipe to a run is an error, not the end.
void onStopSignals() {
  struct sigaction sa {};
  sa.sa_handler = onStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int cmdRun(const std::string& config_path) {
  // Buffers of 128 KiB and more (commands with recipes, fetched batches) are mapped and unmapped
  // on their own: setting the threshold turns off glibc's raising of it after the first such
  // free, which made them come from the arenas, where a flood's worth of them stayed resident.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  Config config = loadConfig(config_path, processEnvironment());
  setLogLevel(config.worker.log_level);
  setLogFormat(config.log.format);
  onStopSignals();
  struct sigaction reload {};
  reload.sa_handler = onReloadSignal;
  sigemptyset(&reload.sa_mask);
  sigaction(SIGHUP, &reload, nullptr);
  SystemClock clock;
  Worker worker(std::move(config), clock);
  return worker.run(g_stop, g_reload,
                    [&] { return loadConfig(config_path, processEnvironment()); });
}

struct TailOptions {
  bool follow = false;
  std::string run_id;
  bool dlq = false;
  bool until_done = false;
  std::string timeout;
};

int cmdTail(const ClientOptions& co, const TailOptions& to) {
  std::optional<Millis> timeout;
  if (!to.timeout.empty() && !(timeout = parseDuration(to.timeout))) {
    throw ConfigError("--timeout must be a duration such as 60s or 5m, not '" + to.timeout + "'");
  }
  Config config = clientConfig(co);
  consumer::TopicReader reader(config.kafka, "", "outpost-tail");
  std::vector<std::string> topics = {config.topics.events, config.topics.lineage};
  if (to.dlq) topics.push_back(config.topics.dlq);

  // Every partition of every topic from the beginning, without joining a group. With --follow,
  // topics that do not exist yet (nothing written so far) are looked for again every second.
  std::set<TopicPartition> assigned;
  int remaining_eof = 0;
  auto assignNew = [&]() -> bool {
    auto found = reader.partitions(std::chrono::seconds(10));
    if (!found) {
      std::cerr << "outpost tail: cannot read metadata from " << config.kafka.bootstrap_servers
                << ": " << found.error() << "\n";
      return false;
    }
    std::vector<TopicPartition> added;
    for (const auto& topic : topics) {
      auto it = found->find(topic);
      if (it == found->end()) continue;
      for (auto p : it->second) {
        if (TopicPartition tp{topic, p}; assigned.insert(tp).second) added.push_back(tp);
      }
    }
    if (auto ok = reader.readFromBeginning(added); !ok) {
      std::cerr << "outpost tail: cannot read " << added.size() << " partition(s): " << ok.error()
                << "\n";
      return false;
    }
    remaining_eof += static_cast<int>(added.size());
    return true;
  };
  if (!assignNew()) return 1;
  auto next_metadata = std::chrono::steady_clock::now() + std::chrono::seconds(1);

  auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                          : std::chrono::steady_clock::time_point::max();
  bool terminal_event = false, terminal_lineage = false;
  std::optional<std::chrono::steady_clock::time_point> linger;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!to.follow && remaining_eof <= 0) break;
    if (to.until_done && terminal_event && (terminal_lineage || !config.lineage.enabled)) break;
    if (linger && std::chrono::steady_clock::now() > *linger) break;
    if (to.follow && std::chrono::steady_clock::now() >= next_metadata) {
      assignNew();
      next_metadata = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
    auto r = reader.poll(std::chrono::milliseconds(200));
    if (r.kind == consumer::ReadResult::Kind::kNothing) continue;
    if (r.kind == consumer::ReadResult::Kind::kEnd) {
      --remaining_eof;
      continue;
    }
    if (r.kind == consumer::ReadResult::Kind::kError) {
      std::cerr << "outpost tail: " << r.error << "\n";
      continue;
    }
    const auto& m = r.record;
    json line = {
        {"topic", m.tp.topic}, {"partition", m.tp.partition}, {"offset", m.offset}, {"key", m.key}};
    if (m.tp.topic == config.topics.events) {
      v1::RunEvent e;
      if (!e.ParseFromString(m.value)) continue;
      if (!to.run_id.empty() && e.run_id() != to.run_id) continue;
      line["value"] = json::parse(runEventJson(e));
      if (v1::isTerminal(e.state())) {
        terminal_event = true;
        if (!linger) linger = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      }
    } else if (m.tp.topic == config.topics.lineage) {
      auto doc = json::parse(m.value, nullptr, false);
      if (!to.run_id.empty() &&
          (doc.is_discarded() || doc.value("/run/runId"_json_pointer, "") != to.run_id))
        continue;
      line["value"] = doc.is_discarded() ? json(m.value) : doc;
      auto type = doc.is_discarded() ? "" : doc.value("eventType", "");
      if (type == "COMPLETE" || type == "FAIL" || type == "ABORT") terminal_lineage = true;
    } else {
      json h = json::object();
      for (const auto& [name, value] : m.headers) h[name] = value;
      line["headers"] = h;
      line["value_bytes"] = m.value.size();
    }
    std::cout << line.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
  }
  return (to.until_done && !terminal_event) ? 1 : 0;
}

// `outpost secrets check`: where each secret of the templates is found (check.h), one
// tab-separated line each, never a value. Exit 1 if any cannot be resolved.
int cmdSecretsCheck(const std::string& config_path, const std::string& only_template) {
  Config config = loadConfig(config_path, processEnvironment());
  if (!only_template.empty() && !config.templates.contains(only_template)) {
    std::cerr << "outpost secrets check: no template '" << only_template << "' in " << config_path
              << "\n";
    return 2;
  }
  int missing = 0;
  auto checks = checkSecrets(config, only_template);
  for (const auto& c : checks) {
    if (c.found) {
      std::cout << c.template_name << "\t" << c.text << "\tfound\tprovider=" << c.provider
                << "\tversion=" << (c.version.empty() ? "-" : c.version) << "\tbytes=" << c.bytes
                << "\n";
    } else {
      ++missing;
      std::cout << c.template_name << "\t" << c.text << "\t"
                << (c.text.starts_with("env ") ? "INVALID" : "NOT FOUND") << "\t" << c.error
                << "\n";
    }
  }
  std::cout << checks.size() << " checked, " << missing << " not resolved\n";
  return missing == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  google::protobuf::SetLogHandler(&protobufLog);
  CLI::App app{"Outpost: a remote job executor that runs jobs from Kafka inside your network"};
  app.require_subcommand(1);
  app.set_version_flag("--version", OUTPOST_VERSION);

  std::string run_config;
  auto* run = app.add_subcommand("run", "Run a worker: consume commands, run jobs, publish events");
  run->add_option("-c,--config", run_config, "Configuration file (YAML)")->required();

  ClientOptions co;

  SubmitOptions so;
  auto* submit = addSubmitCommand(app, so);

  ControlOptions control_opts;
  auto* cancel = addCancelCommand(app, control_opts);
  auto* drain = addDrainCommand(app, control_opts);
  auto* resume = addResumeCommand(app, control_opts);
  WorkersOptions workers_opts;
  auto* workers = addWorkersCommand(app, workers_opts);

  TailOptions to;
  auto* tail = app.add_subcommand("tail", "Print run events and lineage records as JSON lines");
  addClientOptions(tail, co);
  tail->add_flag("-F,--follow", to.follow, "Keep reading new records");
  tail->add_option("--run", to.run_id, "Only this run");
  tail->add_flag("--dlq", to.dlq, "Also print the dead-letter topic (headers and sizes)");
  tail->add_flag("--until-done", to.until_done,
                 "With --follow and --run: stop after the run's terminal event and lineage");
  tail->add_option("--timeout", to.timeout, "Stop after this long, e.g. 60s");

  LedgerOptions ledger_opts;
  auto* ledger = addLedgerCommand(app, ledger_opts);

  ReplayOptions replay_opts;
  auto* replay = addReplayCommand(app, replay_opts);

  std::string secrets_config, secrets_template;
  auto* secrets = app.add_subcommand("secrets", "Secret resolution");
  auto* check = secrets->add_subcommand(
      "check", "Resolve every secret the templates use; print where each was found, never a value");
  check->add_option("-c,--config", secrets_config, "Configuration file (YAML)")->required();
  check->add_option("-t,--template", secrets_template, "Only this template");
  secrets->require_subcommand(1);

  CheckOptions check_opts;
  auto* check_config = addCheckCommand(app, check_opts);

  TopicsOptions topics_opts;
  auto* topics = addTopicsCommand(app, topics_opts);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11's own statuses (105 for a refused value, ...) become the one documented for bad
    // options; --help and --version stay 0.
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    initLogging("info");
    if (*run) return cmdRun(run_config);
    if (*submit) return cmdSubmit(so);
    if (*cancel) return cmdCancel(control_opts);
    if (*drain) return cmdDrain(control_opts);
    if (*resume) return cmdResume(control_opts);
    if (*workers) return cmdWorkers(workers_opts);
    if (*tail) return cmdTail(co, to);
    if (*ledger) return cmdLedger(ledger_opts);
    if (*replay) {
      if (replay_opts.mode == "local") onStopSignals();
      return cmdReplay(replay_opts, g_stop);
    }
    if (*topics) return cmdTopics(topics_opts);
    if (*check) return cmdSecretsCheck(secrets_config, secrets_template);
    if (*check_config) return cmdCheck(check_opts);
  } catch (const ConfigError& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const RuntimeFailure& e) {
    spdlog::error("{}", e.what());
    return e.exitStatus();
  }
  return 0;
}
