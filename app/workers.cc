#include "workers.h"

#include <algorithm>
#include <iostream>
#include <set>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "client_config.h"
#include "outpost/common/clock.h"
#include "outpost/consumer/topic_reader.h"

namespace outpost::app {
namespace {

using std::chrono::milliseconds;

std::string ageText(milliseconds age) {
  auto s = std::max<long long>(0, age.count() / 1000);
  if (s < 120) return fmt::format("{}s ago", s);
  if (s < 7200) return fmt::format("{}m ago", s / 60);
  if (s < 172800) return fmt::format("{}h ago", s / 3600);
  return fmt::format("{}d ago", s / 86400);
}

std::string stateText(const WorkerRow& r) {
  auto name = v1::WorkerState_Name(r.status.state());
  if (name.empty()) name = "UNKNOWN";
  return r.stale ? "STALE (was " + name + ")" : name;
}

}  // namespace

std::vector<WorkerRow> workerRows(const std::map<std::string, v1::WorkerStatus>& latest,
                                  std::chrono::system_clock::time_point now,
                                  milliseconds default_interval, const std::string& pool,
                                  bool all) {
  std::vector<WorkerRow> rows;
  const auto now_ms = toUnixMillis(now);
  for (const auto& [id, s] : latest) {
    if (!pool.empty() && s.pool() != pool) continue;
    WorkerRow r;
    r.status = s;
    r.age = milliseconds(std::max<std::int64_t>(0, now_ms - s.last_seen_ms()));
    const milliseconds interval =
        s.status_interval_ms() > 0 ? milliseconds(s.status_interval_ms()) : default_interval;
    // A LOST status is another worker's last word about it: it is not expected to speak again.
    const bool stopped = s.state() == v1::STOPPED || s.state() == v1::LOST;
    r.stale = !stopped && r.age > kStaleAfter * interval;
    if (stopped && !all && r.age > std::chrono::hours(1)) continue;
    rows.push_back(std::move(r));
  }
  std::ranges::sort(rows, [](const WorkerRow& a, const WorkerRow& b) {
    return std::tie(a.status.pool(), a.status.worker_id()) <
           std::tie(b.status.pool(), b.status.worker_id());
  });
  return rows;
}

std::string formatWorkers(const std::vector<WorkerRow>& rows) {
  std::vector<std::vector<std::string>> cells = {
      {"WORKER", "POOL", "STATE", "SLOTS", "QUEUED", "VERSION", "LAST SEEN", "HOST", "REASON"}};
  for (const auto& r : rows) {
    const auto& s = r.status;
    cells.push_back({s.worker_id(), s.pool(), stateText(r),
                     fmt::format("{}/{}", s.slots_busy(), s.slots_total()),
                     std::to_string(s.queued()), s.version(), ageText(r.age), s.host(),
                     s.state_reason()});
  }
  std::vector<std::size_t> width(cells[0].size(), 0);
  for (const auto& row : cells) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : cells) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], width[i]) : row[i];
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  std::size_t ready = 0, stale = 0;
  for (const auto& r : rows) {
    ready += !r.stale && r.status.state() == v1::READY;
    stale += r.stale;
  }
  out += fmt::format("{} worker(s): {} ready, {} stale\n", rows.size(), ready, stale);
  return out;
}

std::string workersJson(const std::vector<WorkerRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  for (const auto& r : rows) {
    std::string js;
    (void)google::protobuf::util::MessageToJsonString(r.status, &js, opts);
    auto o = nlohmann::json::parse(js);
    o["age_ms"] = r.age.count();
    o["stale"] = r.stale;
    out.push_back(std::move(o));
  }
  return out.dump(2) + "\n";
}

CLI::App* addWorkersCommand(CLI::App& app, WorkersOptions& o) {
  auto* sub = app.add_subcommand(
      "workers", "List the workers by their last status: state, slots, version, last seen, host");
  addClientOptions(sub, o.client);
  sub->add_option("--pool", o.pool, "Only this pool");
  sub->add_flag("--json", o.json, "JSON instead of a table");
  sub->add_flag("--all", o.all, "Also workers that stopped more than an hour ago");
  return sub;
}

int cmdWorkers(const WorkersOptions& o) {
  Config config = clientConfig(o.client);
  const auto& topic = config.topics.workers;
  consumer::TopicReader reader(config.kafka, "", "outpost-workers");
  auto found = reader.partitions(std::chrono::seconds(10));
  if (!found) {
    std::cerr << "outpost workers: cannot read metadata from " << config.kafka.bootstrap_servers
              << ": " << found.error() << "\n";
    return 1;
  }
  std::map<std::string, v1::WorkerStatus> latest;
  auto it = found->find(topic);
  if (it != found->end()) {
    std::vector<TopicPartition> tps;
    for (auto p : it->second) tps.push_back({topic, p});
    std::set<TopicPartition> pending(tps.begin(), tps.end());
    if (auto ok = reader.readFromBeginning(tps); !ok) {
      std::cerr << "outpost workers: cannot read " << topic << ": " << ok.error() << "\n";
      return 1;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!pending.empty()) {
      if (std::chrono::steady_clock::now() >= deadline) {
        std::cerr << "outpost workers: did not reach the end of " << topic << " within 30 s\n";
        return 1;
      }
      auto r = reader.poll(std::chrono::milliseconds(200));
      if (r.kind == consumer::ReadResult::Kind::kEnd) pending.erase(r.record.tp);
      if (r.kind == consumer::ReadResult::Kind::kError)
        std::cerr << "outpost workers: " << r.error << "\n";
      if (r.kind != consumer::ReadResult::Kind::kRecord) continue;
      v1::WorkerStatus s;
      // A record without a value deletes the key in a compacted topic.
      if (r.record.value.empty()) {
        latest.erase(r.record.key);
      } else if (s.ParseFromString(r.record.value)) {
        latest[r.record.key] = std::move(s);
      }
    }
  }
  auto rows = workerRows(latest, std::chrono::system_clock::now(), config.worker.status_interval,
                         o.pool, o.all);
  std::cout << (o.json ? workersJson(rows) : formatWorkers(rows));
  return 0;
}

}  // namespace outpost::app
