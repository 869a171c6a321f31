// `outpost replay` (replay.h), over 700 lines because it is one subcommand's steps in the order
// they run: the pure parts the unit tests check (bounds, run ids, selection, outcomes, the
// comparison, the tables), then the Kafka side as cmdReplay calls it: the options settled, the
// commands between the bounds read, how the originals ended added, the selection, and the plan,
// the local run (replay_local.cc) or the republishing.
#include "replay.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/common/failure.h"
#include "outpost/consumer/dead_letter.h"
#include "outpost/consumer/intake.h"
#include "outpost/consumer/topic_reader.h"
#include "outpost/dispatch/signatures.h"
#include "outpost/events/producer.h"
#include "outpost/v1/run_state.h"
#include "replay_local.h"
#include "run_wait.h"

namespace outpost::app {
namespace {

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string formatTime(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

std::string describe(const RecordedOutcome& o) {
  if (o.state == v1::RUN_STATE_UNSPECIFIED) return "no end recorded";
  std::string s = v1::RunState_Name(o.state);
  if ((o.state == v1::SUCCEEDED || o.state == v1::FAILED) && o.exit_code >= 0) {
    s += fmt::format(" (exit {})", o.exit_code);
  }
  return s;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

ReplayBound parseReplayBound(const std::string& text, std::int64_t now_ms) {
  ReplayBound b;
  if (auto colon = text.find(':'); colon != std::string::npos &&
                                   allDigits(std::string_view(text).substr(0, colon)) &&
                                   allDigits(std::string_view(text).substr(colon + 1))) {
    b.position = {static_cast<std::int32_t>(std::stol(text.substr(0, colon))),
                  std::stoll(text.substr(colon + 1))};
    return b;
  }
  if (allDigits(text) && text.size() >= 12) {
    b.time_ms = std::stoll(text);
    return b;
  }
  if (text.find('T') != std::string::npos) {
    if (auto t = parseRfc3339(text)) {
      b.time_ms = toUnixMillis(*t);
      return b;
    }
  } else if (auto d = parseDuration(text)) {
    b.time_ms = now_ms - d->count();
    return b;
  }
  throw ConfigError("'" + text +
                    "' is not a time (2026-12-05T10:00:00Z, Unix milliseconds), a duration back "
                    "from now (2h) or PARTITION:OFFSET");
}

std::string replayRunId(const std::string& original, unsigned n) {
  // The replay namespace: the UUIDv5 of the URL "urn:outpost:replay".
  static constexpr UuidBytes kNamespace = {0xc7, 0xe3, 0x7c, 0x2c, 0x9c, 0xe9, 0x57, 0xb0,
                                           0x9d, 0xe8, 0x41, 0x72, 0xbf, 0x00, 0xfd, 0x35};
  std::string name = original;
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return uuidV5(kNamespace, name + "/" + std::to_string(n));
}

bool replaySelects(const ReplayOptions& o, const ReplayCandidate& c) {
  const auto& cmd = c.command;
  if (!o.runs.empty() && std::find(o.runs.begin(), o.runs.end(), cmd.run_id()) == o.runs.end()) {
    return false;
  }
  if (!o.job_type.empty() && cmd.job_type() != o.job_type) return false;
  if (!o.job_id.empty() && cmd.job_id() != o.job_id) return false;
  if (!o.pool.empty() && cmd.pool() != o.pool) return false;
  if (!o.state.empty()) {
    const std::string recorded = c.recorded.state == v1::RUN_STATE_UNSPECIFIED
                                     ? "NONE"
                                     : v1::RunState_Name(c.recorded.state);
    if (upper(o.state) != recorded) return false;
  }
  return true;
}

v1::JobCommand replayCommand(const v1::JobCommand& original, unsigned n,
                             const std::string& replayed_by, const std::string& pool,
                             std::int64_t now_ms) {
  v1::JobCommand c = original;
  c.set_run_id(replayRunId(original.run_id(), n));
  c.set_attempt(1);
  c.clear_not_after_ms();  // the original's deadline has passed
  c.set_requested_at_ms(now_ms);
  (*c.mutable_labels())["outpost.replay_of"] = original.run_id();
  (*c.mutable_labels())["outpost.replayed_by"] = replayed_by;
  if (!pool.empty()) c.set_pool(pool);
  return c;
}

ReplayComparison compareReplay(const ReplayCandidate& original, const std::string& replay_id,
                               const std::optional<RecordedOutcome>& replayed,
                               double duration_factor) {
  ReplayComparison row;
  row.original = original.command.run_id();
  row.replay = replay_id;
  row.job_type = original.command.job_type();
  row.recorded = original.recorded;
  row.ended = replayed.has_value();
  if (!replayed) {
    row.differences.push_back("no end within --wait-timeout");
    return row;
  }
  row.replayed = *replayed;
  const auto& a = row.recorded;
  const auto& b = row.replayed;
  if (a.state != b.state) {
    row.differences.push_back(
        fmt::format("state {} -> {}", describe(a), v1::RunState_Name(b.state)));
  } else if ((a.state == v1::SUCCEEDED || a.state == v1::FAILED) && a.exit_code != b.exit_code) {
    row.differences.push_back(fmt::format("exit {} -> {}", a.exit_code, b.exit_code));
  }
  if (a.datasets != b.datasets) {
    std::vector<std::string> gone, added;
    std::ranges::set_difference(a.datasets, b.datasets, std::back_inserter(gone));
    std::ranges::set_difference(b.datasets, a.datasets, std::back_inserter(added));
    std::string d = "lineage datasets";
    for (const auto& x : gone) d += " -" + x;
    for (const auto& x : added) d += " +" + x;
    row.differences.push_back(d);
  }
  // Durations under a second are noise; beyond, a factor both ways.
  const auto lo = std::min(a.duration_ms, b.duration_ms);
  const auto hi = std::max(a.duration_ms, b.duration_ms);
  if (a.duration_ms > 0 && b.duration_ms > 0 && hi > 1000 &&
      static_cast<double>(hi) >
          duration_factor * static_cast<double>(std::max<std::int64_t>(lo, 1))) {
    row.differences.push_back(fmt::format("duration {:.3f} s -> {:.3f} s (more than x{})",
                                          a.duration_ms / 1000.0, b.duration_ms / 1000.0,
                                          duration_factor));
  }
  return row;
}

bool OutcomeBook::addEvent(const v1::RunEvent& e) {
  if (!v1::isTerminal(e.state()) || e.retrying()) return false;
  auto& o = runs[e.run_id()];
  o.state = e.state();
  o.exit_code = e.exit_code();
  o.duration_ms = e.duration_ms();
  o.message = e.message();
  return true;
}

std::string OutcomeBook::addLineage(std::string_view json, const std::set<std::string>* only) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (!doc.is_object()) return "";
  auto run_id = doc.value("/run/runId"_json_pointer, std::string());
  if (run_id.empty() || (only && !only->contains(run_id))) return run_id;
  auto& datasets = runs[run_id].datasets;
  for (const std::string side : {"inputs", "outputs"}) {
    if (!doc.contains(side) || !doc[side].is_array()) continue;
    for (const auto& d : doc[side]) {
      if (!d.is_object()) continue;
      datasets.insert((side == "inputs" ? "in:" : "out:") + d.value("namespace", "") + "/" +
                      d.value("name", ""));
    }
  }
  return run_id;
}

std::string formatPlan(const std::vector<ReplayCandidate>& selected, const std::string& source) {
  std::ostringstream out;
  out << fmt::format("{:<36}  {:<20}  {:<24}  {:<16}  {}\n", "RUN_ID", "JOB_TYPE", "SUBMITTED",
                     "SIGNED", "RECORDED");
  for (const auto& c : selected) {
    std::string recorded = describe(c.recorded);
    if (!c.recorded.message.empty() && c.recorded.state == v1::REJECTED) {
      recorded += ": " + c.recorded.message;
    }
    out << fmt::format("{:<36}  {:<20}  {:<24}  {:<16}  {}\n", c.command.run_id(),
                       c.command.job_type(), formatTime(c.timestamp_ms),
                       c.signature.empty() ? "unsigned" : c.signature, recorded);
  }
  out << selected.size() << " command(s) of " << source
      << " would be replayed (plan: nothing was written; `republish` replays them)\n";
  return out.str();
}

std::string formatComparison(const std::vector<ReplayComparison>& rows) {
  std::ostringstream out;
  out << fmt::format("{:<36}  {:<36}  {:<16}  {:<18}  {:<18}  {}\n", "ORIGINAL", "REPLAY",
                     "JOB_TYPE", "RECORDED", "REPLAYED", "VERDICT");
  std::size_t different = 0;
  for (const auto& r : rows) {
    std::string verdict = "same";
    if (!r.differences.empty()) {
      ++different;
      verdict = "DIFFERENT:";
      for (const auto& d : r.differences) verdict += " " + d + ";";
      verdict.pop_back();
    }
    out << fmt::format("{:<36}  {:<36}  {:<16}  {:<18}  {:<18}  {}\n", r.original, r.replay,
                       r.job_type, describe(r.recorded), r.ended ? describe(r.replayed) : "-",
                       verdict);
  }
  out << rows.size() << " replayed, " << rows.size() - different << " the same, " << different
      << " different\n";
  return out.str();
}

// ---------------------------------------------------------------------------------------------
// Reading and writing

namespace {

using Steady = std::chrono::steady_clock;
// A partition's offsets to read: [first, end).
using OffsetRanges = std::map<TopicPartition, std::pair<std::int64_t, std::int64_t>>;
using PartitionsByTopic = std::map<std::string, std::vector<std::int32_t>>;

struct Reading {
  consumer::TopicReader& reader;
  Steady::time_point deadline;
  std::chrono::milliseconds remaining() const {
    return std::max(
        std::chrono::milliseconds(1),
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now()));
  }
};

// Reads each partition of `ranges` from its first offset up to (not including) its end offset,
// handing each record to `take`. Throws KafkaUnavailable when the reading cannot finish in time.
void readRanges(Reading& r, const OffsetRanges& ranges,
                const std::function<void(const consumer::ReadRecord&)>& take) {
  std::vector<std::pair<TopicPartition, std::int64_t>> from;
  std::set<TopicPartition> pending;
  for (const auto& [tp, range] : ranges) {
    if (range.first >= range.second) continue;
    from.emplace_back(tp, range.first);
    pending.insert(tp);
  }
  if (pending.empty()) return;
  if (auto ok = r.reader.readFrom(from); !ok) throw KafkaUnavailable("cannot read: " + ok.error());
  while (!pending.empty()) {
    if (Steady::now() >= r.deadline) {
      throw KafkaUnavailable(fmt::format("did not reach the end of {}[{}] within --timeout",
                                         pending.begin()->topic, pending.begin()->partition));
    }
    auto got = r.reader.poll(std::chrono::milliseconds(200));
    if (got.kind == consumer::ReadResult::Kind::kEnd) {
      pending.erase(got.record.tp);
      continue;
    }
    if (got.kind != consumer::ReadResult::Kind::kRecord) continue;
    const auto& m = got.record;
    auto it = ranges.find(m.tp);
    if (it == ranges.end() || !pending.contains(m.tp)) continue;
    if (m.offset >= it->second.second) {
      pending.erase(m.tp);
      continue;
    }
    take(m);
    if (m.offset + 1 >= it->second.second) pending.erase(m.tp);
  }
}

// Every partition of `topic`, from the first record at or after `since_ms` to its end now.
OffsetRanges rangesSince(Reading& r, const PartitionsByTopic& found, const std::string& topic,
                         std::int64_t since_ms) {
  OffsetRanges ranges;
  auto it = found.find(topic);
  if (it == found.end()) return ranges;
  for (auto p : it->second) {
    TopicPartition tp{topic, p};
    auto start = r.reader.offsetForTime(tp, since_ms, r.remaining());
    auto marks = r.reader.watermarks(tp, r.remaining());
    if (!start || !marks) {
      throw KafkaUnavailable("cannot read the offsets of " + topic + ": " +
                             (start ? marks.error() : start.error()));
    }
    ranges[tp] = {*start, marks->second};
  }
  return ranges;
}

// How each run of `runs` ended according to the events topic (and its lineage datasets).
std::map<std::string, RecordedOutcome> readOutcomes(
    const KafkaConfig& kafka, const PartitionsByTopic& found, const std::string& events_topic,
    const std::string& lineage_topic, std::int64_t since_ms, const std::set<std::string>& runs,
    Steady::time_point deadline) {
  consumer::TopicReader reader(kafka, "", "outpost-replay-outcomes");
  Reading r{reader, deadline};
  OutcomeBook book;
  readRanges(r, rangesSince(r, found, events_topic, since_ms), [&](const consumer::ReadRecord& m) {
    if (!runs.contains(m.key)) return;
    v1::RunEvent e;
    if (e.ParseFromString(m.value)) book.addEvent(e);
  });
  if (lineage_topic.empty()) return book.runs;
  consumer::TopicReader lineage_reader(kafka, "", "outpost-replay-lineage");
  Reading l{lineage_reader, deadline};
  readRanges(l, rangesSince(l, found, lineage_topic, since_ms),
             [&](const consumer::ReadRecord& m) { book.addLineage(m.value, &runs); });
  return book.runs;
}

std::vector<events::Header> headersOf(const consumer::ReadRecord& m) {
  std::vector<events::Header> h;
  for (const auto& [name, value] : m.headers) h.push_back({name, value});
  return h;
}

}  // namespace

std::string describeSignature(const std::string& value, const std::vector<events::Header>& headers,
                              const std::string& topic, const std::string& pool,
                              const security::KeySet* keys, const SecurityConfig& security,
                              std::int64_t timestamp_ms) {
  auto settings = dispatch::SignatureSettings::from(security, nullptr);
  if (keys) settings.keys = std::shared_ptr<const security::KeySet>(keys, [](auto*) {});
  const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(timestamp_ms));
  auto verified = dispatch::checkSignature(
      dispatch::SignedRecord{.value = value,
                             .headers = &headers,
                             .topic = topic,
                             .kind = security::CommandKind::kJob,
                             .cty = consumer::contentTypeOf(consumer::encodingOf(value, headers))},
      pool, settings, at);
  if (verified) return verified->kid;
  if (verified.error().check == security::SignatureCheck::kMissing) return "unsigned";
  if (!keys) return "signed (not checked: no trusted keys configured)";
  return "INVALID: " + verified.error().message;
}

namespace {

// Compares each replayed run with its original; prints the table. 1 on any difference.
int compareAndPrint(const std::vector<ReplayCandidate>& originals,
                    const std::vector<std::string>& replay_ids,
                    const std::map<std::string, RecordedOutcome>& replayed,
                    const std::set<std::string>& ended, double duration_factor) {
  std::vector<ReplayComparison> rows;
  bool differs = false;
  for (std::size_t i = 0; i < originals.size(); ++i) {
    std::optional<RecordedOutcome> got;
    if (auto f = replayed.find(replay_ids[i]);
        f != replayed.end() && ended.contains(replay_ids[i])) {
      got = f->second;
    }
    rows.push_back(compareReplay(originals[i], replay_ids[i], got, duration_factor));
    differs = differs || !rows.back().differences.empty();
  }
  std::cout << formatComparison(rows) << std::flush;
  return differs ? 1 : 0;
}

// `replay local`: the selected commands run in this process (replay_local.h).
int replayLocally(const Config& config, const std::vector<ReplayCandidate>& selected,
                  const ReplayOptions& o, const std::string& replayed_by,
                  const std::atomic<bool>& stop) {
  const LocalReplayOptions local{o.out_dir, o.emit_prefix, o.no_secrets, o.dry_run};
  const std::int64_t now_ms = toUnixMillis(SystemClock().now());
  std::vector<ReplayCandidate> originals;
  std::vector<v1::JobCommand> commands;
  std::map<std::string, std::string> original_of;
  std::size_t not_run = 0;
  for (const auto& c : selected) {
    if (auto t = config.templates.find(c.command.job_type());
        o.dry_run && t != config.templates.end() && t->second.dry_run_args.empty()) {
      std::cout << c.command.run_id() << "  " << c.command.job_type()
                << "  not run: the template declares no dry_run_args\n";
      ++not_run;
      continue;
    }
    // This pool's, so that the local worker takes it whatever pool it was sent to.
    commands.push_back(
        replayCommand(c.command, o.replay_number, replayed_by, config.worker.pool, now_ms));
    original_of[commands.back().run_id()] = c.command.run_id();
    originals.push_back(c);
  }
  // The runs' private directories, apart from any worker's on this machine.
  const auto tmp = std::filesystem::temp_directory_path() / "outpost-replay-XXXXXX";
  std::string work_dir = tmp.string();
  if (!mkdtemp(work_dir.data())) {
    throw IoFailure("cannot make a run directory under " + tmp.parent_path().string() + ": " +
                    std::strerror(errno));
  }
  struct RemovedIfEmpty {  // unless a template kept a failed run's directory
    const std::string& dir;
    ~RemovedIfEmpty() {
      std::error_code ec;
      std::filesystem::remove(dir, ec);
    }
  } work_dir_removed{work_dir};
  auto outcomes = runLocally(localReplayConfig(config, local, work_dir), commands, local, stop,
                             [&](const std::string& run_id, const RecordedOutcome& outcome) {
                               std::string said = describe(outcome);
                               if (!outcome.message.empty() && outcome.state != v1::SUCCEEDED) {
                                 said += ": " + outcome.message;
                               }
                               std::cout << original_of[run_id] << " -> " << run_id << "  " << said
                                         << std::endl;
                             });
  std::set<std::string> ended;
  for (const auto& [id, outcome] : outcomes) {
    if (outcome.state != v1::RUN_STATE_UNSPECIFIED) ended.insert(id);
  }
  std::cout << commands.size() << " command(s) replayed here" << (o.dry_run ? " (dry run)" : "")
            << ", " << ended.size() << " ended";
  if (not_run > 0) std::cout << ", " << not_run << " not run";
  if (o.emit_prefix.empty()) {
    std::cout << "; events, lineage and logs in " << o.out_dir << "\n";
  } else {
    std::cout << "; records in " << o.emit_prefix << "events, " << o.emit_prefix << "lineage and "
              << o.emit_prefix << "dlq\n";
  }
  if (stop.load()) {
    std::cout << "interrupted: runs were stopped" << std::endl;
    return 1;
  }
  if (!o.compare) return ended.size() == commands.size() ? 0 : 1;
  std::vector<std::string> replay_ids;
  for (const auto& c : commands) replay_ids.push_back(c.run_id());
  return compareAndPrint(originals, replay_ids, outcomes, ended, o.duration_factor);
}

// What the options come to, once checked against each other and the configuration.
struct ReplaySettings {
  std::string source;                         // the topic the commands are taken from
  std::string target;                         // republish: the topic they are written to
  Millis timeout{0};                          // bounds each reading
  std::chrono::milliseconds wait_timeout{0};  // --compare
  ReplayBound from, to;
};

// The options that go with one mode only, and the checks of `local`. Throws ConfigError.
void checkModeOptions(const ReplayOptions& o, const Config& config) {
  if (o.compare && o.mode == ReplayMode::kPlan) {
    throw ConfigError("--compare goes with republish or local");
  }
  if (o.mode != ReplayMode::kLocal &&
      (!o.out_dir.empty() || !o.emit_prefix.empty() || o.no_secrets || o.dry_run)) {
    throw ConfigError("--out, --emit-prefix, --no-secrets and --dry-run go with local");
  }
  if (o.mode != ReplayMode::kLocal) return;
  if (o.client.config_path.empty()) {
    throw ConfigError(
        "replay local needs -c/--config: the templates and secret stores to run with");
  }
  if (o.out_dir.empty() == o.emit_prefix.empty()) {
    throw ConfigError(
        "replay local writes to --out DIR or to topics under --emit-prefix: one of them");
  }
  for (const auto& [name, production] : {std::pair{"events", config.topics.events},
                                         {"lineage", config.topics.lineage},
                                         {"dlq", config.topics.dlq}}) {
    if (!o.emit_prefix.empty() && o.emit_prefix + name == production && !o.allow_same_topic) {
      throw ConfigError("--emit-prefix " + o.emit_prefix + " would write into " + production +
                        ", a production topic; say --allow-same-topic if that is meant");
    }
  }
}

// The topic `republish` writes to. Throws ConfigError when none is named, or when it is the
// source without --allow-same-topic.
std::string republishTarget(const ReplayOptions& o, const Config& config,
                            const std::string& source) {
  const std::string target = !o.to_topic.empty()    ? o.to_topic
                             : !o.to_prefix.empty() ? o.to_prefix + "jobs"
                                                    : config.topics.jobs;
  if (o.to_topic.empty() && o.to_prefix.empty() && o.to_pool.empty()) {
    throw ConfigError("republish needs --to-topic, --to-prefix or --to-pool");
  }
  if (target == source && !o.allow_same_topic) {
    throw ConfigError("republish would write into " + source +
                      ", the topic it reads from; say --allow-same-topic if that is meant");
  }
  return target;
}

// Checks the options. Throws ConfigError naming what is wrong.
ReplaySettings checkedSettings(const ReplayOptions& o, const Config& config, std::int64_t now_ms) {
  ReplaySettings s;
  s.source = o.dlq ? config.topics.dlq : config.topics.jobs;
  auto timeout = parseDuration(o.timeout);
  if (!timeout) throw ConfigError("--timeout must be a duration such as 30s or 5m");
  s.timeout = *timeout;
  s.wait_timeout = parseWaitTimeout(o.wait_timeout);
  if (!o.from.empty()) s.from = parseReplayBound(o.from, now_ms);
  if (!o.to.empty()) s.to = parseReplayBound(o.to, now_ms);
  checkModeOptions(o, config);
  if (o.mode == ReplayMode::kRepublish) s.target = republishTarget(o, config, s.source);
  return s;
}

// Each partition of the source between the bounds: [from, to). A PARTITION:OFFSET bound names
// one partition; the others are left out.
OffsetRanges commandRanges(Reading& r, const PartitionsByTopic& found, const ReplaySettings& s) {
  auto it = found.find(s.source);
  if (it == found.end()) throw ConfigError("no topic " + s.source);
  OffsetRanges ranges;
  for (auto p : it->second) {
    if ((s.from.position && s.from.position->first != p) ||
        (s.to.position && s.to.position->first != p)) {
      continue;
    }
    TopicPartition tp{s.source, p};
    auto marks = r.reader.watermarks(tp, r.remaining());
    if (!marks) {
      throw KafkaUnavailable("cannot read the offsets of " + s.source + ": " + marks.error());
    }
    std::int64_t begin = marks->first, end = marks->second;
    auto at = [&](std::int64_t ms) {
      auto off = r.reader.offsetForTime(tp, ms, r.remaining());
      if (!off) {
        throw KafkaUnavailable("cannot find offsets by time in " + s.source + ": " + off.error());
      }
      return *off;
    };
    if (s.from.time_ms) begin = std::max(begin, at(*s.from.time_ms));
    if (s.from.position) begin = std::max(begin, s.from.position->second);
    if (s.to.time_ms) end = std::min(end, at(*s.to.time_ms));
    if (s.to.position) end = std::min(end, s.to.position->second + 1);
    ranges[tp] = {begin, end};
  }
  return ranges;
}

// The commands in `ranges`, in the order they were asked for; what is not a command is counted
// on stderr. Taken from the dead-letter topic, each is recorded as REJECTED with the reason its
// headers give.
std::vector<ReplayCandidate> readCandidates(Reading& r, const OffsetRanges& ranges,
                                            const std::string& source, bool dlq,
                                            const Config& config, const security::KeySet* keys) {
  std::vector<ReplayCandidate> candidates;
  std::size_t undecodable = 0;
  readRanges(r, ranges, [&](const consumer::ReadRecord& m) {
    auto decoded = consumer::decodeCommand(m.value, headersOf(m));
    if (!decoded) {
      ++undecodable;
      return;
    }
    ReplayCandidate c;
    c.partition = m.tp.partition;
    c.offset = m.offset;
    // When it was asked for: the command says, else the record's timestamp.
    c.timestamp_ms = decoded->requested_at_ms() > 0 ? decoded->requested_at_ms() : m.timestamp_ms;
    c.command = std::move(*decoded);
    const auto headers = headersOf(m);
    std::string topic = source;
    for (const auto& h : headers) {
      if (dlq && h.name == consumer::kDlqTopicHeader) topic = h.value;  // where it was first
    }
    c.signature = describeSignature(
        m.value, headers, topic, c.command.pool().empty() ? config.worker.pool : c.command.pool(),
        keys, config.security, m.timestamp_ms);
    if (dlq) {
      c.recorded.state = v1::REJECTED;
      for (const auto& [name, value] : m.headers) {
        if (name == "outpost.dlq.reason") c.recorded.message = value;
      }
    }
    candidates.push_back(std::move(c));
  });
  if (undecodable > 0) {
    std::cerr << "outpost replay: " << undecodable << " record(s) of " << source
              << " are not JobCommands and cannot be replayed\n";
  }
  std::ranges::stable_sort(candidates, {}, &ReplayCandidate::timestamp_ms);
  return candidates;
}

// How the originals ended (for --state, the plan and --compare): the events topic (and the
// lineage topic, `with_lineage`) from a minute before the earliest was asked for.
void addRecordedOutcomes(std::vector<ReplayCandidate>& candidates, const Config& config,
                         const PartitionsByTopic& found, bool with_lineage, std::int64_t now_ms,
                         Steady::time_point deadline) {
  if (candidates.empty()) return;
  std::set<std::string> original_ids;
  std::int64_t earliest = now_ms;
  for (const auto& c : candidates) {
    original_ids.insert(c.command.run_id());
    if (c.timestamp_ms > 0) earliest = std::min(earliest, c.timestamp_ms);
  }
  auto recorded = readOutcomes(config.kafka, found, config.topics.events,
                               with_lineage ? config.topics.lineage : "", earliest - 60'000,
                               original_ids, deadline);
  for (auto& c : candidates) {
    if (auto got = recorded.find(c.command.run_id()); got != recorded.end()) {
      c.recorded = got->second;
    }
  }
}

// The candidates the options select, at most --limit of them.
std::vector<ReplayCandidate> selectCandidates(const ReplayOptions& o,
                                              std::vector<ReplayCandidate> candidates) {
  std::vector<ReplayCandidate> selected;
  for (auto& c : candidates) {
    if (o.limit > 0 && selected.size() >= o.limit) break;
    if (replaySelects(o, c)) selected.push_back(std::move(c));
  }
  return selected;
}

// `replay republish`: the selected commands written again to the target; with --compare, the
// replayed runs waited for and compared with their originals.
int republish(const Config& config, const PartitionsByTopic& found,
              const std::vector<ReplayCandidate>& selected, const ReplayOptions& o,
              const ReplaySettings& s, const std::string& replayed_by) {
  const std::string events_topic =
      o.to_prefix.empty() ? config.topics.events : o.to_prefix + "events";
  const std::string lineage_topic =
      o.to_prefix.empty() ? config.topics.lineage : o.to_prefix + "lineage";
  std::unique_ptr<RunWaiter> waiter;
  if (o.compare) waiter = std::make_unique<RunWaiter>(config, events_topic);
  events::KafkaProducer producer(config.kafka, {});
  std::atomic<int> failed{0};
  std::vector<std::string> replay_ids;
  const std::int64_t republished_at = toUnixMillis(SystemClock().now());
  for (const auto& c : selected) {
    auto cmd = replayCommand(c.command, o.replay_number, replayed_by, o.to_pool, republished_at);
    replay_ids.push_back(cmd.run_id());
    const std::string value = cmd.SerializeAsString();
    const auto signature = signatureHeaders(
        o.sign, value,
        SignedFacts{.topic = s.target,
                    .pools = {cmd.pool().empty() ? config.worker.pool : cmd.pool()},
                    .kind = security::CommandKind::kJob,
                    .jti = cmd.run_id(),
                    .cty = "protobuf"},
        SystemClock());
    producer.produce(s.target, cmd.job_id(), value, signature,
                     [&](const events::DeliveryReport& d) {
                       if (!d.ok()) ++failed;
                     });
    std::cout << c.command.run_id() << " -> " << cmd.run_id() << "  " << cmd.job_type() << "\n";
  }
  if (!producer.flush(std::chrono::seconds(30)) || failed > 0) {
    std::cerr << "outpost replay: " << (failed > 0 ? failed.load() : 0)
              << " command(s) were not delivered to " << s.target << "\n";
    return kExitKafka;
  }
  std::cout << selected.size() << " command(s) republished to " << s.target << " (replay "
            << o.replay_number << ")" << std::endl;
  if (!o.compare) return 0;

  auto ends =
      waiter->waitAll(std::set<std::string>(replay_ids.begin(), replay_ids.end()), s.wait_timeout);
  std::set<std::string> ended_ids;
  for (const auto& [id, w] : ends) {
    if (w.kind == WaitResult::Kind::kEnded) ended_ids.insert(id);
  }
  auto replayed = readOutcomes(config.kafka, found, events_topic, lineage_topic,
                               republished_at - 60'000, ended_ids, Steady::now() + s.timeout);
  return compareAndPrint(selected, replay_ids, replayed, ended_ids, o.duration_factor);
}

}  // namespace

std::optional<ReplayMode> parseReplayMode(std::string_view text) {
  if (text == "plan") return ReplayMode::kPlan;
  if (text == "republish") return ReplayMode::kRepublish;
  if (text == "local") return ReplayMode::kLocal;
  return std::nullopt;
}

int cmdReplay(const ReplayOptions& o, const std::atomic<bool>& stop) {
  Config config = clientConfig(o.client);
  const std::int64_t now_ms = toUnixMillis(SystemClock().now());
  const ReplaySettings settings = checkedSettings(o, config, now_ms);
  const auto deadline = Steady::now() + settings.timeout;

  consumer::TopicReader reader(config.kafka, "", "outpost-replay");
  Reading r{reader, deadline};
  auto found = reader.partitions(r.remaining());
  if (!found) throw KafkaUnavailable("cannot read metadata: " + found.error());
  // The plan says how each command was signed, checked with the configuration's trusted keys.
  std::optional<security::KeySet> keys;
  if (!config.security.trusted_keys.empty()) {
    auto loaded = security::KeySet::loadJwksFile(config.security.trusted_keys);
    if (!loaded) throw ConfigError("'security.trusted_keys': " + loaded.error());
    keys = std::move(*loaded);
  }
  auto candidates = readCandidates(r, commandRanges(r, *found, settings), settings.source, o.dlq,
                                   config, keys ? &*keys : nullptr);
  addRecordedOutcomes(candidates, config, *found, o.compare, now_ms, deadline);
  const auto selected = selectCandidates(o, std::move(candidates));

  const std::string replayed_by = o.replayed_by.empty()
                                      ? (std::getenv("USER") ? std::getenv("USER") : "outpost")
                                      : o.replayed_by;
  switch (o.mode) {
    case ReplayMode::kPlan:
      std::cout << formatPlan(selected, settings.source) << std::flush;
      return 0;
    case ReplayMode::kLocal:
      return replayLocally(config, selected, o, replayed_by, stop);
    case ReplayMode::kRepublish:
      return republish(config, *found, selected, o, settings, replayed_by);
  }
  std::unreachable();
}

CLI::App* addReplayCommand(CLI::App& app, ReplayOptions& o) {
  auto* sub = app.add_subcommand(
      "replay",
      "Take commands again from the jobs (or dead-letter) topic for testing: plan (the default) "
      "prints what would be replayed; republish writes them again with new run ids; local runs "
      "them here with -c's templates");
  addClientOptions(sub, o.client);
  // The mode's name becomes the enum's number, which CLI11 stores into o.mode.
  const CLI::Validator mode_names(
      [](std::string& text) -> std::string {
        auto mode = parseReplayMode(text);
        if (!mode) return "'" + text + "' is not a mode: plan, republish or local";
        text = std::to_string(static_cast<int>(*mode));
        return {};
      },
      "plan|republish|local");
  sub->add_option("mode", o.mode, "plan (default), republish or local")->transform(mode_names);
  sub->add_option("--from", o.from,
                  "From: a time (2026-12-05T10:00:00Z, Unix ms), a duration back (2h), or "
                  "PARTITION:OFFSET");
  sub->add_option("--to", o.to, "Up to (same forms; a PARTITION:OFFSET is included)");
  sub->add_option("--run", o.runs, "Only this run (repeatable)");
  sub->add_option("--job-type", o.job_type, "Only commands of this template");
  sub->add_option("--job-id", o.job_id, "Only commands of this job");
  sub->add_option("--pool", o.pool, "Only commands naming this pool");
  sub->add_option("--state", o.state,
                  "Only runs whose recorded end was this (SUCCEEDED, FAILED, ..., NONE)");
  sub->add_option("--limit", o.limit, "At most this many commands");
  sub->add_flag("--dlq", o.dlq, "Take the commands from the dead-letter topic");
  sub->add_option("--to-topic", o.to_topic, "republish: into this topic");
  sub->add_option("--to-prefix", o.to_prefix,
                  "republish: into PREFIXjobs (and, with --compare, read PREFIXevents)");
  sub->add_option("--to-pool", o.to_pool, "republish: name this pool in the commands");
  addSignOptions(sub, o.sign);  // republish
  sub->add_flag("--allow-same-topic", o.allow_same_topic,
                "republish: allow writing into the topic read from");
  sub->add_option("--replay-number", o.replay_number,
                  "Which replay this is: the new run ids derive from it and the original's");
  sub->add_option("--replayed-by", o.replayed_by, "Who replays (default: $USER)");
  sub->add_option("--out", o.out_dir,
                  "local: write events.jsonl, lineage.jsonl, dlq.jsonl and logs/ into this "
                  "directory");
  sub->add_option("--emit-prefix", o.emit_prefix,
                  "local: write the records to PREFIXevents, PREFIXlineage and PREFIXdlq instead");
  sub->add_flag("--no-secrets", o.no_secrets,
                "local: refuse secret references instead of resolving them from this machine's "
                "stores");
  sub->add_flag("--dry-run", o.dry_run,
                "local: run each template with its dry_run_args appended; commands of templates "
                "without any are not run");
  sub->add_flag("--compare", o.compare,
                "republish, local: wait for the replayed runs and compare each with its "
                "original; exit 1 on any difference");
  sub->add_option("--wait-timeout", o.wait_timeout, "--compare: how long to wait (10m)");
  sub->add_option("--duration-factor", o.duration_factor,
                  "--compare: durations differ beyond this factor (3); under 1 s never");
  sub->add_option("--timeout", o.timeout, "Bound on the reading (60s)");
  return sub;
}

}  // namespace outpost::app
