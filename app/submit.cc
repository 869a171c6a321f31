#include "submit.h"

#include <atomic>
#include <fstream>
#include <iostream>
#include <sstream>

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "outpost/common/config.h"
#include "outpost/events/producer.h"
#include "run_wait.h"

namespace outpost::app {
namespace {

using nlohmann::json;

std::pair<std::string, std::string> splitKeyValue(const std::string& kv, const std::string& flag) {
  auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError(flag + " takes NAME=VALUE, not '" + kv + "'");
  }
  return {kv.substr(0, eq), kv.substr(eq + 1)};
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json yamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json o = json::object();
      for (auto it = n.begin(); it != n.end(); ++it)
        o[it->first.as<std::string>()] = yamlToJson(it->second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& e : n) a.push_back(yamlToJson(e));
      return a;
    }
    case YAML::NodeType::Scalar: {
      // Keep numbers as numbers (protobuf's JSON accepts strings for int64 too).
      const auto& s = n.Scalar();
      if (n.Tag() != "!" && !s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
        return json::parse(s);
      }
      return s;
    }
    default:
      return nullptr;
  }
}

}  // namespace

v1::JobCommand buildCommand(const SubmitOptions& so, const Clock& clock) {
  UuidGenerator uuids(clock);
  v1::JobCommand cmd;
  if (!so.file.empty()) {
    json doc;
    try {
      doc = yamlToJson(YAML::LoadFile(so.file));  // YAML is a superset of JSON
    } catch (const YAML::Exception& e) {
      throw ConfigError(so.file + ": " + e.what());
    }
    // A recipe given inline as a YAML mapping or text goes into the bytes field as text.
    std::string recipe_text;
    if (doc.contains("recipe")) {
      recipe_text =
          doc["recipe"].is_string() ? doc["recipe"].get<std::string>() : doc["recipe"].dump();
      doc.erase("recipe");
    }
    google::protobuf::util::JsonParseOptions opts;
    auto st = google::protobuf::util::JsonStringToMessage(doc.dump(), &cmd, opts);
    if (!st.ok()) throw ConfigError(so.file + ": not a JobCommand: " + st.ToString());
    if (!recipe_text.empty()) cmd.set_recipe(recipe_text);
  }
  if (!so.job_type.empty()) cmd.set_job_type(so.job_type);
  if (!so.job_id.empty()) cmd.set_job_id(so.job_id);
  if (!so.run_id.empty()) cmd.set_run_id(so.run_id);
  if (!so.pool.empty()) cmd.set_pool(so.pool);
  if (!so.recipe_file.empty()) cmd.set_recipe(readFile(so.recipe_file));
  if (!so.timeout.empty()) {
    auto d = parseDuration(so.timeout);
    if (!d) throw ConfigError("--timeout must be a duration such as 30s or 5m");
    cmd.set_timeout_ms(d->count());
  }
  if (!so.not_after.empty()) {
    auto d = parseDuration(so.not_after);
    if (!d) throw ConfigError("--start-within must be a duration such as 30s or 5m");
    cmd.set_not_after_ms(toUnixMillis(clock.now()) + d->count());
  }
  auto put = [](google::protobuf::Map<std::string, std::string>* map,
                const std::vector<std::string>& pairs, const std::string& flag) {
    for (const auto& kv : pairs) {
      auto [k, v] = splitKeyValue(kv, flag);
      (*map)[k] = v;
    }
  };
  put(cmd.mutable_args(), so.args, "--arg");
  put(cmd.mutable_env(), so.env, "--env");
  put(cmd.mutable_labels(), so.labels, "--label");
  if (!so.job_namespace.empty()) cmd.mutable_lineage()->set_job_namespace(so.job_namespace);
  if (!so.job_name.empty()) cmd.mutable_lineage()->set_job_name(so.job_name);
  if (cmd.job_type().empty()) throw ConfigError("--job-type (or job_type in --file) is required");
  if (cmd.run_id().empty()) cmd.set_run_id(uuids.next());
  if (cmd.job_id().empty()) cmd.set_job_id(cmd.job_type());
  if (cmd.attempt() == 0) cmd.set_attempt(1);
  cmd.set_requested_at_ms(toUnixMillis(clock.now()));
  if (!so.requested_by.empty()) cmd.set_requested_by(so.requested_by);
  return cmd;
}

int cmdSubmit(const SubmitOptions& so) {
  Config config = clientConfig(so.client);
  SystemClock clock;
  const v1::JobCommand cmd = buildCommand(so, clock);
  const auto wait_timeout = parseWaitTimeout(so.wait_timeout);
  // Before the command is written: where the events topic ends now is where the run's events
  // will be found.
  std::unique_ptr<RunWaiter> waiter;
  if (so.wait) waiter = std::make_unique<RunWaiter>(config);
  events::KafkaProducer producer(config.kafka, {});
  std::atomic<int> result{0};
  std::string error;
  const std::string value = cmd.SerializeAsString();
  const auto headers =
      signatureHeaders(so.sign, value,
                       SignedFacts{.topic = config.topics.jobs,
                                   .pools = {cmd.pool().empty() ? config.worker.pool : cmd.pool()},
                                   .kind = security::CommandKind::kJob,
                                   .jti = cmd.run_id(),
                                   .cty = "protobuf"},
                       clock);
  producer.produce(config.topics.jobs, cmd.job_id(), value, headers,
                   [&](const events::DeliveryReport& r) {
                     if (!r.ok()) error = r.why();
                     result = r.ok() ? 1 : 2;
                   });
  if (!producer.flush(std::chrono::seconds(30)) || result != 1) {
    std::cerr << "outpost submit: the command was not delivered to " << config.topics.jobs << ": "
              << (error.empty() ? "timed out after 30 s" : error) << "\n";
    return kExitKafka;
  }
  std::cout << cmd.run_id() << std::endl;
  if (!waiter) return kExitSucceeded;
  return waitAndReport(*waiter, cmd.run_id(), wait_timeout, so.follow_logs, "submit");
}

CLI::App* addSubmitCommand(CLI::App& app, SubmitOptions& o) {
  auto* submit = app.add_subcommand("submit", "Produce a JobCommand and print its run_id");
  addClientOptions(submit, o.client);
  submit->add_option("-f,--file", o.file, "JobCommand as YAML or JSON (proto field names)");
  submit->add_option("-t,--job-type", o.job_type, "Template to run");
  submit->add_option("--job-id", o.job_id, "Job id (the message key); default: the job type");
  submit->add_option("--run-id", o.run_id, "Run id (UUID); default: a new UUIDv7");
  submit->add_option("-a,--arg", o.args, "Template argument NAME=VALUE (repeatable)");
  submit->add_option("-e,--env", o.env, "Environment NAME=VALUE the template accepts (repeatable)");
  submit->add_option("-l,--label", o.labels, "Label NAME=VALUE (repeatable)");
  submit->add_option("-r,--recipe-file", o.recipe_file, "File whose bytes become the recipe");
  submit->add_option("--timeout", o.timeout, "Run time limit, e.g. 30s, 10m");
  submit->add_option("--start-within", o.not_after, "Deadline to start, from now, e.g. 5m");
  submit->add_option("--pool", o.pool, "Worker pool");
  submit->add_option("--requested-by", o.requested_by, "Who asks");
  submit->add_option("--job-namespace", o.job_namespace, "OpenLineage job namespace");
  submit->add_option("--job-name", o.job_name, "OpenLineage job name");
  auto* wait = submit->add_flag(
      "-w,--wait", o.wait,
      "Wait for the run's end and exit with its status: 0 SUCCEEDED, 1 FAILED, 3 TIMED_OUT, "
      "4 CANCELLED, 5 REJECTED, 6 EXPIRED, 7 no end within --wait-timeout, 8 Kafka error");
  submit->add_option("--wait-timeout", o.wait_timeout, "With --wait: give up after this long")
      ->needs(wait);
  submit->add_flag("--follow-logs", o.follow_logs, "With --wait: print the run's output lines")
      ->needs(wait);
  addSignOptions(submit, o.sign);

  return submit;
}

}  // namespace outpost::app
