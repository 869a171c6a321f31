#include "control.h"

#include <atomic>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "client_config.h"
#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/events/producer.h"
#include "outpost/v1/control.pb.h"
#include "run_wait.h"

namespace outpost::app {
namespace {

std::string requester(const ControlOptions& o) {
  if (!o.requested_by.empty()) return o.requested_by;
  const char* user = std::getenv("USER");
  return user ? user : "";
}

// Writes `cmd` keyed by `key` and prints its command_id; kExitKafka when the broker did not take
// it.
// Signed with o.sign when given, for `pool` (the drained pool, else the configuration's).
int send(const Config& config, const ControlOptions& o, const std::string& verb,
         const std::string& key, v1::ControlCommand cmd, const std::string& pool = "") {
  SystemClock clock;
  UuidGenerator uuids(clock);
  cmd.set_command_id(uuids.next());
  cmd.set_issued_at_ms(toUnixMillis(clock.now()));
  const std::string value = cmd.SerializeAsString();
  const auto headers =
      signatureHeaders(o.sign, value,
                       SignedFacts{.topic = config.topics.control,
                                   .pools = {pool.empty() ? config.worker.pool : pool},
                                   .kind = security::CommandKind::kControl,
                                   .jti = cmd.command_id(),
                                   .cty = "protobuf"},
                       clock);
  events::KafkaProducer producer(config.kafka, {});
  std::atomic<int> result{0};
  std::string error;
  producer.produce(config.topics.control, key, value, headers,
                   [&](const events::DeliveryReport& r) {
                     if (!r.ok()) error = r.why();
                     result = r.ok() ? 1 : 2;
                   });
  if (!producer.flush(std::chrono::seconds(30)) || result != 1) {
    std::cerr << "outpost " << verb << ": the command was not delivered to "
              << config.topics.control << ": " << (error.empty() ? "timed out after 30 s" : error)
              << "\n";
    return kExitKafka;
  }
  std::cout << cmd.command_id() << std::endl;
  return 0;
}

// --worker or --pool, exactly one; the selector and the message key.
std::string select(const ControlOptions& o, const std::string& verb, v1::WorkerSelector* w) {
  if (o.worker_id.empty() == o.pool.empty()) {
    throw ConfigError("outpost " + verb + " takes --worker ID or --pool NAME (one of them)");
  }
  if (!o.worker_id.empty()) {
    w->set_worker_id(o.worker_id);
    return "worker:" + o.worker_id;
  }
  w->set_pool(o.pool);
  return "pool:" + o.pool;
}

void addWorkers(CLI::App* sub, ControlOptions& o) {
  auto* worker = sub->add_option("--worker", o.worker_id, "One worker, by its worker.id");
  auto* pool = sub->add_option("--pool", o.pool, "Every worker of a pool");
  worker->excludes(pool);
  sub->add_option("--requested-by", o.requested_by, "Who asks (default: $USER)");
}

}  // namespace

CLI::App* addCancelCommand(CLI::App& app, ControlOptions& o) {
  auto* sub = app.add_subcommand(
      "cancel",
      "Ask the worker holding a run to stop it (it ends CANCELLED); prints the command_id");
  addClientOptions(sub, o.client);
  sub->add_option("--run", o.run_id, "Run id (UUID) to cancel")->required();
  sub->add_option("--reason", o.reason, "Why, in words; copied into the CANCELLED event");
  sub->add_option("--requested-by", o.requested_by, "Who asks (default: $USER)");
  auto* wait =
      sub->add_flag("-w,--wait", o.wait,
                    "Wait for the run's end: exit 0 when it ended CANCELLED, 9 when it "
                    "ended otherwise first, 7 no end within --wait-timeout, 8 Kafka error");
  sub->add_option("--wait-timeout", o.wait_timeout, "With --wait: give up after this long")
      ->needs(wait);
  addSignOptions(sub, o.sign);
  return sub;
}

CLI::App* addDrainCommand(CLI::App& app, ControlOptions& o) {
  auto* sub = app.add_subcommand(
      "drain",
      "Ask workers to take no new commands and finish their runs, without stopping; prints the "
      "command_id");
  addClientOptions(sub, o.client);
  addWorkers(sub, o);
  sub->add_flag("--handover", o.handover,
                "Leave the consumer group: the rest of the pool takes the partitions now");
  sub->add_option("--reason", o.reason, "Why, in words; shown in the workers' status");
  addSignOptions(sub, o.sign);
  return sub;
}

CLI::App* addResumeCommand(CLI::App& app, ControlOptions& o) {
  auto* sub = app.add_subcommand(
      "resume", "Undo a drain: the workers take commands again; prints the command_id");
  addClientOptions(sub, o.client);
  addWorkers(sub, o);
  addSignOptions(sub, o.sign);
  return sub;
}

int cmdCancel(const ControlOptions& o) {
  if (!isUuid(o.run_id)) {
    throw ConfigError("--run takes a run_id (a UUID), not '" + o.run_id + "'");
  }
  v1::ControlCommand cmd;
  auto* cancel = cmd.mutable_cancel();
  cancel->set_run_id(o.run_id);
  cancel->set_reason(o.reason);
  cancel->set_requested_by(requester(o));
  const Config config = clientConfig(o.client);
  const auto wait_timeout = parseWaitTimeout(o.wait_timeout);
  std::unique_ptr<RunWaiter> waiter;
  if (o.wait) waiter = std::make_unique<RunWaiter>(config);  // before the cancel is written
  // Keyed by run_id: every cancel of one run lands on one partition, in order.
  if (int sent = send(config, o, "cancel", o.run_id, std::move(cmd)); sent != 0 || !waiter) {
    return sent;
  }
  return waitAndReport(*waiter, o.run_id, wait_timeout, false, "cancel");
}

int cmdDrain(const ControlOptions& o) {
  v1::ControlCommand cmd;
  auto* drain = cmd.mutable_drain();
  auto key = select(o, "drain", drain->mutable_workers());
  drain->set_handover(o.handover);
  drain->set_reason(o.reason);
  drain->set_requested_by(requester(o));
  return send(clientConfig(o.client), o, "drain", key, std::move(cmd), o.pool);
}

int cmdResume(const ControlOptions& o) {
  v1::ControlCommand cmd;
  auto* resume = cmd.mutable_resume();
  auto key = select(o, "resume", resume->mutable_workers());
  resume->set_requested_by(requester(o));
  return send(clientConfig(o.client), o, "resume", key, std::move(cmd), o.pool);
}

}  // namespace outpost::app
