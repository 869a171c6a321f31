#include "tail.h"

#include <chrono>
#include <iostream>
#include <optional>
#include <set>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "json_lines.h"
#include "outpost/common/config.h"
#include "outpost/consumer/topic_reader.h"
#include "outpost/v1/event.pb.h"
#include "outpost/v1/run_state.h"

namespace outpost::app {
namespace {

using nlohmann::json;
using Steady = std::chrono::steady_clock;

// How long to go on reading after the run's terminal event, for its lineage record.
constexpr std::chrono::seconds kLinger{5};

// The partitions being read: every partition of the topics, each assigned once, from its
// beginning, the new ones added when asked again.
class Assignment {
 public:
  Assignment(consumer::TopicReader& reader, std::vector<std::string> topics, std::string bootstrap)
      : reader_(reader), topics_(std::move(topics)), bootstrap_(std::move(bootstrap)) {}

  // Adds the partitions found since the last call; false (said on stderr) when the metadata or
  // the partitions cannot be read.
  bool addNew() {
    auto found = reader_.partitions(std::chrono::seconds(10));
    if (!found) {
      std::cerr << "outpost tail: cannot read metadata from " << bootstrap_ << ": " << found.error()
                << "\n";
      return false;
    }
    std::vector<TopicPartition> added;
    for (const auto& topic : topics_) {
      auto it = found->find(topic);
      if (it == found->end()) continue;
      for (auto p : it->second) {
        if (TopicPartition tp{topic, p}; assigned_.insert(tp).second) added.push_back(tp);
      }
    }
    if (auto ok = reader_.readFromBeginning(added); !ok) {
      std::cerr << "outpost tail: cannot read " << added.size() << " partition(s): " << ok.error()
                << "\n";
      return false;
    }
    unfinished_ += static_cast<int>(added.size());
    return true;
  }

  // A partition's end was reached.
  void ended() { --unfinished_; }
  // Every partition assigned so far was read to its end (as far as it was written when reached).
  bool allEnded() const { return unfinished_ <= 0; }

 private:
  consumer::TopicReader& reader_;
  const std::vector<std::string> topics_;
  const std::string bootstrap_;
  std::set<TopicPartition> assigned_;
  int unfinished_ = 0;
};

// What the records printed so far said of the run's end.
struct RunEnd {
  bool terminal_event = false;
  bool terminal_lineage = false;
  // kLinger after the first terminal event printed, --until-done or not: the reading stops then,
  // whether the lineage came or not.
  std::optional<Steady::time_point> linger;
};

// The line of one record, or nullopt when it is not printed (not the --run's, or an event that
// does not decode).
std::optional<json> lineOf(const consumer::ReadRecord& m, const TopicsConfig& topics,
                           const std::string& run_id, RunEnd& end) {
  json line = {
      {"topic", m.tp.topic}, {"partition", m.tp.partition}, {"offset", m.offset}, {"key", m.key}};
  if (m.tp.topic == topics.events) {
    v1::RunEvent e;
    if (!e.ParseFromString(m.value)) return std::nullopt;
    if (!run_id.empty() && e.run_id() != run_id) return std::nullopt;
    line["value"] = json::parse(runEventJson(e));
    if (v1::isTerminal(e.state())) {
      end.terminal_event = true;
      if (!end.linger) end.linger = Steady::now() + kLinger;
    }
  } else if (m.tp.topic == topics.lineage) {
    auto doc = json::parse(m.value, nullptr, false);
    if (!run_id.empty() &&
        (doc.is_discarded() || doc.value("/run/runId"_json_pointer, "") != run_id)) {
      return std::nullopt;
    }
    line["value"] = doc.is_discarded() ? json(m.value) : doc;
    auto type = doc.is_discarded() ? "" : doc.value("eventType", "");
    if (type == "COMPLETE" || type == "FAIL" || type == "ABORT") end.terminal_lineage = true;
  } else {
    // A dead letter: its headers say why; the value is a command, shown by its size only.
    json h = json::object();
    for (const auto& [name, value] : m.headers) h[name] = value;
    line["headers"] = h;
    line["value_bytes"] = m.value.size();
  }
  return line;
}

}  // namespace

CLI::App* addTailCommand(CLI::App& app, TailOptions& o) {
  auto* sub = app.add_subcommand("tail", "Print run events and lineage records as JSON lines");
  addClientOptions(sub, o.client);
  sub->add_flag("-F,--follow", o.follow, "Keep reading new records");
  sub->add_option("--run", o.run_id, "Only this run");
  sub->add_flag("--dlq", o.dlq, "Also print the dead-letter topic (headers and sizes)");
  sub->add_flag("--until-done", o.until_done,
                "With --follow and --run: stop after the run's terminal event and lineage");
  sub->add_option("--timeout", o.timeout, "Stop after this long, e.g. 60s");
  return sub;
}

int cmdTail(const TailOptions& o) {
  std::optional<Millis> timeout;
  if (!o.timeout.empty() && !(timeout = parseDuration(o.timeout))) {
    throw ConfigError("--timeout must be a duration such as 60s or 5m, not '" + o.timeout + "'");
  }
  Config config = clientConfig(o.client);
  consumer::TopicReader reader(config.kafka, "", "outpost-tail");
  std::vector<std::string> topics = {config.topics.events, config.topics.lineage};
  if (o.dlq) topics.push_back(config.topics.dlq);

  // Every partition of every topic from the beginning, without joining a group. With --follow,
  // topics that do not exist yet (nothing written so far) are looked for again every second.
  Assignment assignment(reader, topics, config.kafka.bootstrap_servers);
  if (!assignment.addNew()) return 1;
  auto next_metadata = Steady::now() + std::chrono::seconds(1);

  const auto deadline = timeout ? Steady::now() + *timeout : Steady::time_point::max();
  RunEnd end;
  while (Steady::now() < deadline) {
    if (!o.follow && assignment.allEnded()) break;
    if (o.until_done && end.terminal_event && (end.terminal_lineage || !config.lineage.enabled)) {
      break;
    }
    if (end.linger && Steady::now() > *end.linger) break;
    if (o.follow && Steady::now() >= next_metadata) {
      assignment.addNew();
      next_metadata = Steady::now() + std::chrono::seconds(1);
    }
    auto r = reader.poll(std::chrono::milliseconds(200));
    if (r.kind == consumer::ReadResult::Kind::kNothing) continue;
    if (r.kind == consumer::ReadResult::Kind::kEnd) {
      assignment.ended();
      continue;
    }
    if (r.kind == consumer::ReadResult::Kind::kError) {
      std::cerr << "outpost tail: " << r.error << "\n";
      continue;
    }
    if (auto line = lineOf(r.record, config.topics, o.run_id, end)) {
      writeJsonLine(std::cout, *line);
      std::cout.flush();  // a line at a time, for whoever reads along
    }
  }
  return (o.until_done && !end.terminal_event) ? 1 : 0;
}

}  // namespace outpost::app
