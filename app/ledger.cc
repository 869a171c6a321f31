#include "ledger.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <sstream>
#include <unordered_map>
#include <utility>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/consumer/intake.h"
#include "outpost/consumer/run_store.h"
#include "outpost/consumer/topic_reader.h"
#include "outpost/consumer/use_ledger.h"
#include "outpost/v1/job.pb.h"
#include "outpost/v1/run_record.pb.h"
#include "outpost/v1/run_state.h"
#include "outpost/v1/worker.pb.h"

namespace outpost::app {
namespace {

using nlohmann::json;

// What the events say about one run_id.
struct RunTally {
  int commands = 0;
  bool uncommitted = false;
  int starts = 0;
  std::vector<v1::RunState> terminal;
  std::map<std::uint32_t, int> terminal_per_attempt;
  bool ended = false;  // a terminal event that is not a retrying one
  std::set<std::pair<std::string, std::uint32_t>> sources;  // (worker, attempt)
  std::set<std::uint32_t> attempts;
  std::set<std::string> workers;
  bool has_events = false;  // NOTICE aside
};

void sample(std::vector<std::string>& out, const std::string& run_id) {
  if (out.size() < kLedgerSamples) out.push_back(run_id);
}

std::string joined(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

template <typename Set>
std::string joinedSet(const Set& items) {
  std::ostringstream s;
  bool first = true;
  for (const auto& i : items) {
    s << (first ? "" : ", ") << i;
    first = false;
  }
  return s.str();
}

}  // namespace

LedgerFigures countLedger(const LedgerInput& in) {
  LedgerFigures f;
  f.commands = static_cast<std::int64_t>(in.commands.size());
  f.dlq = in.dlq_records;

  std::map<std::int32_t, std::int64_t> committed;
  for (const auto& p : in.partitions) committed[p.partition] = p.committed;

  std::unordered_map<std::string, RunTally> runs;
  for (const auto& c : in.commands) {
    if (c.run_id.empty()) {
      ++f.undecodable;
      continue;
    }
    auto& t = runs[c.run_id];
    ++t.commands;
    auto it = committed.find(c.partition);
    // The committed offset is the next one the group reads: everything below it is done.
    if (it == committed.end() || it->second <= c.offset) t.uncommitted = true;
  }
  for (const auto& e : in.events) {
    ++f.events;
    f.max_attempt = std::max(f.max_attempt, e.attempt);
    // A NOTICE changes nothing about a run, and any worker may write one (a cancel's answer).
    if (e.state == v1::NOTICE) continue;
    auto& t = runs[e.run_id];
    t.has_events = true;
    if (e.state == v1::STARTED) ++t.starts;
    if (v1::isTerminal(e.state)) {
      t.terminal.push_back(e.state);
      ++t.terminal_per_attempt[e.attempt];
      t.ended |= !e.retrying;
    }
    t.sources.emplace(e.worker_id, e.attempt);
    t.attempts.insert(e.attempt);
    t.workers.insert(e.worker_id);
  }

  // Sorted, so that the samples are stable.
  std::map<std::string, const RunTally*> sorted;
  for (const auto& [id, t] : runs) sorted.emplace(id, &t);
  for (const auto& [id, tp] : sorted) {
    const RunTally& t = *tp;
    if (t.commands == 0) {
      if (t.has_events) ++f.unknown_runs;
      continue;
    }
    ++f.submitted;
    if (t.commands > 1) ++f.resubmitted;
    bool no_terminal = !t.ended;
    if (!no_terminal) {
      ++f.terminal;
      ++f.terminal_by_state[v1::RunState_Name(t.terminal.back())];
      if (t.terminal.back() == v1::REJECTED) ++f.rejected;
    }
    if (no_terminal) ++f.lost_no_terminal;
    if (t.uncommitted) ++f.lost_uncommitted;
    if (no_terminal || t.uncommitted) {
      ++f.lost;
      sample(f.lost_sample, id);
    }
    // One terminal event per attempt: a run whose worker was lost ends that attempt (FAILED)
    // and ends again as the next one.
    std::int64_t extra = 0;
    for (const auto& [attempt, n] : t.terminal_per_attempt) extra += n - 1;
    if (extra > 0) {
      ++f.duplicate_terminal;
      f.duplicate_terminal_extra += extra;
      sample(f.duplicate_sample, id);
    }
    if (t.starts > 1 || t.sources.size() > 1) {
      ++f.reruns;
      sample(f.rerun_sample, id);
    }
    if (t.starts > 1) f.rerun_extra_starts += t.starts - 1;
  }

  for (const auto& c : in.claims) {
    auto w = in.workers.find(c.worker_id);
    const bool gone = w == in.workers.end() || w->second.state == v1::LOST ||
                      w->second.state == v1::STOPPED ||
                      (!c.incarnation.empty() && w->second.incarnation != c.incarnation);
    if (!c.released) {
      ++f.claims;
      ++f.claims_by_worker[c.worker_id];
    }
    if (c.released || gone) {
      ++f.claims_lost;
      sample(f.claims_lost_sample, c.run_id);
    }
  }
  std::ranges::sort(f.claims_lost_sample);

  f.partitions = in.partitions;
  std::ranges::sort(f.partitions, {}, &LedgerPartition::partition);
  for (const auto& p : f.partitions) {
    f.uncommitted += std::max<std::int64_t>(0, p.end - std::max(p.committed, p.low));
  }

  for (const auto& id : in.watch) {
    LedgerRun r;
    if (auto it = runs.find(id); it != runs.end()) {
      const RunTally& t = it->second;
      r.submitted = t.commands > 0;
      r.committed = r.submitted && !t.uncommitted;
      r.starts = t.starts;
      for (auto s : t.terminal) r.terminal.push_back(v1::RunState_Name(s));
      r.attempts = t.attempts;
      r.workers = t.workers;
    }
    f.runs.emplace(id, std::move(r));
  }
  return f;
}

std::string formatLedgerText(const LedgerSource& src, const LedgerFigures& f) {
  std::ostringstream o;
  o << "ledger of " << src.jobs_topic << " and " << src.events_topic << " (group " << src.group
    << ", bootstrap " << src.bootstrap << ")\n";
  o << "commands: " << f.commands << "\n";
  o << "undecodable: " << f.undecodable << "\n";
  o << "submitted: " << f.submitted << "\n";
  o << "resubmitted: " << f.resubmitted << "\n";
  o << "events: " << f.events << "\n";
  std::string states;
  for (const auto& [state, n] : f.terminal_by_state)
    states += (states.empty() ? "" : ", ") + state + " " + std::to_string(n);
  o << "terminal: " << f.terminal << (states.empty() ? "" : " (" + states + ")") << "\n";
  o << "lost: " << f.lost << " (no terminal event " << f.lost_no_terminal
    << ", command not committed " << f.lost_uncommitted << ")\n";
  o << "duplicate_terminal: " << f.duplicate_terminal << " runs (" << f.duplicate_terminal_extra
    << " extra terminal events)\n";
  o << "reruns: " << f.reruns << " runs (" << f.rerun_extra_starts << " extra STARTED events)\n";
  o << "max_attempt: " << f.max_attempt << "\n";
  o << "rejected: " << f.rejected << "\n";
  o << "dlq: " << f.dlq << "\n";
  o << "unknown_runs: " << f.unknown_runs << "\n";
  o << "uncommitted: " << f.uncommitted << "\n";
  std::string holders;
  for (const auto& [worker, n] : f.claims_by_worker)
    holders += (holders.empty() ? "" : ", ") + worker + " " + std::to_string(n);
  o << "claims: " << f.claims << (holders.empty() ? "" : " (" + holders + ")") << "\n";
  o << "claims_lost: " << f.claims_lost
    << " (released, or their worker is gone: run again by the owner of their partition)\n";
  for (const auto& p : f.partitions) {
    o << "partition " << p.partition << ": committed " << p.committed << ", end " << p.end
      << ", uncommitted " << std::max<std::int64_t>(0, p.end - std::max(p.committed, p.low))
      << "\n";
  }
  if (!f.lost_sample.empty()) o << "lost sample: " << joined(f.lost_sample) << "\n";
  if (!f.duplicate_sample.empty())
    o << "duplicate_terminal sample: " << joined(f.duplicate_sample) << "\n";
  if (!f.rerun_sample.empty()) o << "reruns sample: " << joined(f.rerun_sample) << "\n";
  if (!f.claims_lost_sample.empty())
    o << "claims_lost sample: " << joined(f.claims_lost_sample) << "\n";
  for (const auto& [id, r] : f.runs) {
    o << "run " << id << ": submitted " << (r.submitted ? "yes" : "no") << ", committed "
      << (r.committed ? "yes" : "no") << ", starts " << r.starts << ", terminal ["
      << joined(r.terminal) << "], attempts [" << joinedSet(r.attempts) << "], workers ["
      << joinedSet(r.workers) << "]\n";
  }
  return o.str();
}

std::string formatLedgerJson(const LedgerSource& src, const LedgerFigures& f) {
  json partitions = json::array();
  for (const auto& p : f.partitions) {
    partitions.push_back(
        {{"partition", p.partition},
         {"low", p.low},
         {"end", p.end},
         {"committed", p.committed},
         {"uncommitted", std::max<std::int64_t>(0, p.end - std::max(p.committed, p.low))}});
  }
  json runs = json::object();
  for (const auto& [id, r] : f.runs) {
    runs[id] = {{"submitted", r.submitted}, {"committed", r.committed}, {"starts", r.starts},
                {"terminal", r.terminal},   {"attempts", r.attempts},   {"workers", r.workers}};
  }
  json doc = {
      {"bootstrap", src.bootstrap},
      {"jobs_topic", src.jobs_topic},
      {"events_topic", src.events_topic},
      {"dlq_topic", src.dlq_topic},
      {"group", src.group},
      {"commands", f.commands},
      {"undecodable", f.undecodable},
      {"submitted", f.submitted},
      {"resubmitted", f.resubmitted},
      {"events", f.events},
      {"terminal", f.terminal},
      {"terminal_by_state", f.terminal_by_state},
      {"lost", f.lost},
      {"lost_no_terminal", f.lost_no_terminal},
      {"lost_uncommitted", f.lost_uncommitted},
      {"duplicate_terminal", f.duplicate_terminal},
      {"duplicate_terminal_extra", f.duplicate_terminal_extra},
      {"reruns", f.reruns},
      {"rerun_extra_starts", f.rerun_extra_starts},
      {"max_attempt", f.max_attempt},
      {"rejected", f.rejected},
      {"dlq", f.dlq},
      {"unknown_runs", f.unknown_runs},
      {"uncommitted", f.uncommitted},
      {"claims", f.claims},
      {"claims_by_worker", f.claims_by_worker},
      {"claims_lost", f.claims_lost},
      {"claims_lost_sample", f.claims_lost_sample},
      {"partitions", partitions},
      {"lost_sample", f.lost_sample},
      {"duplicate_sample", f.duplicate_sample},
      {"rerun_sample", f.rerun_sample},
      {"runs", runs},
  };
  return doc.dump() + "\n";
}

CLI::App* addLedgerCommand(CLI::App& app, LedgerOptions& o) {
  auto* sub = app.add_subcommand(
      "ledger",
      "Count submitted, terminal, lost, twice-ended and re-run runs from the jobs and events "
      "topics and the group's committed offsets");
  sub->add_option("-c,--config", o.config_path,
                  "Configuration file: brokers, topics and the group outpost.<worker.pool>");
  sub->add_option("-b,--bootstrap", o.bootstrap, "Kafka bootstrap servers (overrides the config)");
  sub->add_option("--jobs-topic", o.jobs_topic, "Jobs topic (overrides the config)");
  sub->add_option("--events-topic", o.events_topic, "Events topic (overrides the config)");
  sub->add_option("--dlq-topic", o.dlq_topic, "Dead-letter topic (overrides the config)");
  sub->add_option("--group", o.group,
                  "Consumer group whose committed offsets of the jobs topic count (overrides "
                  "outpost.<worker.pool>)");
  sub->add_option("--run", o.runs, "Also report this run one by one (repeatable)");
  sub->add_flag("--json", o.json, "Print one JSON object instead of name: value lines");
  sub->add_option("--timeout", o.timeout, "Give up reading after this long (default 60s)");
  return sub;
}

int cmdLedger(const LedgerOptions& o) {
  Config config = o.config_path.empty() ? parseConfig("", processEnvironment(), "defaults")
                                        : loadConfig(o.config_path, processEnvironment());
  LedgerSource src;
  src.bootstrap = o.bootstrap.empty() ? config.kafka.bootstrap_servers : o.bootstrap;
  src.jobs_topic = o.jobs_topic.empty() ? config.topics.jobs : o.jobs_topic;
  src.events_topic = o.events_topic.empty() ? config.topics.events : o.events_topic;
  src.dlq_topic = o.dlq_topic.empty() ? config.topics.dlq : o.dlq_topic;
  src.group = o.group.empty() ? "outpost." + config.worker.pool : o.group;
  src.runs_topic = config.topics.runs;
  src.workers_topic = config.topics.workers;
  auto timeout = parseDuration(o.timeout);
  if (!timeout) throw ConfigError("--timeout must be a duration such as 30s or 5m");
  const auto deadline = std::chrono::steady_clock::now() + *timeout;
  auto remaining = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()));
  };

  consumer::TopicReader reader(config.kafka, src.bootstrap, "outpost-ledger");
  auto found = reader.partitions(remaining());
  if (!found) {
    std::cerr << "outpost ledger: cannot read metadata from " << src.bootstrap << ": "
              << found.error() << "\n";
    return 1;
  }
  std::vector<TopicPartition> all;
  for (const auto& name :
       {src.jobs_topic, src.events_topic, src.dlq_topic, src.runs_topic, src.workers_topic}) {
    auto it = found->find(name);
    if (it == found->end()) {
      std::cerr << "outpost ledger: topic " << name << " does not exist; counted as empty\n";
      continue;
    }
    for (auto p : it->second) all.push_back({name, p});
  }

  LedgerInput in;
  in.watch.insert(o.runs.begin(), o.runs.end());

  // The jobs topic's partitions: their ends now, and the group's committed offsets.
  std::vector<TopicPartition> jobs;
  std::ranges::copy_if(all, std::back_inserter(jobs),
                       [&](const TopicPartition& tp) { return tp.topic == src.jobs_topic; });
  auto committed =
      consumer::committedOffsets(config.kafka, src.bootstrap, src.group, jobs, remaining());
  if (!committed) {
    std::cerr << "outpost ledger: cannot read the committed offsets of group " << src.group << ": "
              << committed.error() << "\n";
    return 1;
  }
  for (const auto& tp : jobs) {
    LedgerPartition lp;
    lp.partition = tp.partition;
    lp.committed = committed->contains(tp) ? committed->at(tp) : -1;
    auto marks = reader.watermarks(tp, remaining());
    if (!marks) {
      std::cerr << "outpost ledger: cannot read the end of " << src.jobs_topic << "["
                << lp.partition << "]: " << marks.error() << "\n";
      return 1;
    }
    std::tie(lp.low, lp.end) = *marks;
    in.partitions.push_back(lp);
  }

  // Every partition from the beginning to its end (end of the committed part, for the events):
  // a partition is done at its first end-of-partition report.
  std::set<TopicPartition> pending(all.begin(), all.end());
  if (auto ok = reader.readFromBeginning(all); !ok) {
    std::cerr << "outpost ledger: cannot assign partitions: " << ok.error() << "\n";
    return 1;
  }
  std::int64_t bad_events = 0;
  std::map<std::string, v1::RunRecord> last_records;  // the runs topic, by run_id
  while (!pending.empty()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "outpost ledger: did not reach the end of " << pending.size()
                << " partition(s) within " << o.timeout << ", e.g. " << pending.begin()->topic
                << "[" << pending.begin()->partition << "]\n";
      return 1;
    }
    auto r = reader.poll(std::chrono::milliseconds(200));
    if (r.kind == consumer::ReadResult::Kind::kNothing) continue;
    const auto& m = r.record;
    if (r.kind == consumer::ReadResult::Kind::kEnd) {
      pending.erase(m.tp);
      continue;
    }
    if (r.kind == consumer::ReadResult::Kind::kError) {
      std::cerr << "outpost ledger: " << r.error << "\n";
      continue;
    }
    if (!pending.contains(m.tp)) continue;  // read past its end already
    if (m.tp.topic == src.jobs_topic) {
      LedgerCommand c{m.tp.partition, m.offset, {}};
      // As the worker sees it (in any encoding it reads): without a UUID run_id no event can
      // ever name the command.
      std::vector<events::Header> headers;
      for (const auto& [name, value] : m.headers) headers.push_back({name, value});
      auto decoded = consumer::decodeCommand(m.value, headers);
      const auto& cmd = decoded ? *decoded : decoded.error().partial;
      if (isUuid(cmd.run_id())) c.run_id = cmd.run_id();
      in.commands.push_back(std::move(c));
    } else if (m.tp.topic == src.events_topic) {
      v1::RunEvent e;
      if (m.value.empty() || !e.ParseFromString(m.value)) {
        ++bad_events;
        continue;
      }
      in.events.push_back({e.run_id(), e.state(), e.attempt(), e.worker_id(), e.retrying()});
    } else if (m.tp.topic == src.dlq_topic) {
      ++in.dlq_records;
    } else if (m.tp.topic == src.runs_topic) {
      // Single-use records of signed commands say where a command was read, not how its run went.
      if (m.key.starts_with(consumer::kUseKeyPrefix)) continue;
      // The last record of each run wins (the topic is compacted by run_id).
      v1::RunRecord rec;
      if (m.value.empty() || !rec.ParseFromString(m.value) || rec.run_id().empty()) {
        last_records.erase(m.key);
      } else {
        last_records.insert_or_assign(rec.run_id(), std::move(rec));
      }
    } else if (m.tp.topic == src.workers_topic) {
      v1::WorkerStatus s;
      if (m.value.empty() || !s.ParseFromString(m.value)) {
        in.workers.erase(m.key);
      } else {
        in.workers.insert_or_assign(s.worker_id(), LedgerWorker{s.incarnation(), s.state()});
      }
    }
  }
  for (const auto& [run_id, r] : last_records) {
    if (!consumer::holdsRun(r)) continue;
    in.claims.push_back({run_id, r.worker_id(), r.incarnation(), r.released()});
  }
  if (bad_events > 0) {
    std::cerr << "outpost ledger: " << bad_events << " record(s) of " << src.events_topic
              << " are not RunEvents; not counted\n";
  }

  auto figures = countLedger(in);
  std::cout << (o.json ? formatLedgerJson(src, figures) : formatLedgerText(src, figures))
            << std::flush;
  return 0;
}

}  // namespace outpost::app
