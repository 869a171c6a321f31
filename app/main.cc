// The `outpost` executable: the command line, and each subcommand handed to the file that does
// it: run (the worker; worker.h), submit (submit.h), cancel, drain and resume (control.h), workers
// (workers.h), tail (tail.h), ledger (ledger.h), replay (replay.h), topics (topics.h) and check
// (check.h); `secrets check` is here. Also the process's own concerns: signals (SIGTERM and
// SIGINT stop, SIGHUP reloads the worker's configuration), protobuf's log, and errors turned into
// exit statuses (2 for a bad option or configuration, a RuntimeFailure's own otherwise).
#include <malloc.h>
#include <signal.h>

#include <atomic>
#include <iostream>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "check.h"
#include "control.h"
#include "ledger.h"
#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/common/failure.h"
#include "outpost/common/log.h"
#include "replay.h"
#include "submit.h"
#include "tail.h"
#include "topics.h"
#include "worker.h"
#include "workers.h"

namespace {

using namespace outpost;
using namespace outpost::app;

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

  SubmitOptions so;
  auto* submit = addSubmitCommand(app, so);

  ControlOptions control_opts;
  auto* cancel = addCancelCommand(app, control_opts);
  auto* drain = addDrainCommand(app, control_opts);
  auto* resume = addResumeCommand(app, control_opts);
  WorkersOptions workers_opts;
  auto* workers = addWorkersCommand(app, workers_opts);

  TailOptions tail_opts;
  auto* tail = addTailCommand(app, tail_opts);

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

  KeygenOptions keygen_opts;
  auto* keygen = addKeygenCommand(app, keygen_opts);

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
    if (*tail) return cmdTail(tail_opts);
    if (*ledger) return cmdLedger(ledger_opts);
    if (*replay) {
      if (replay_opts.mode == ReplayMode::kLocal) onStopSignals();
      return cmdReplay(replay_opts, g_stop);
    }
    if (*topics) return cmdTopics(topics_opts);
    if (*check) return cmdSecretsCheck(secrets_config, secrets_template);
    if (*check_config) return cmdCheck(check_opts);
    if (*keygen) return cmdKeygen(keygen_opts);
  } catch (const ConfigError& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const RuntimeFailure& e) {
    spdlog::error("{}", e.what());
    return e.exitStatus();
  }
  return 0;
}
