#include "run_wait.h"

#include <iostream>

#include <fmt/format.h>

#include "outpost/common/failure.h"
#include "outpost/consumer/topic_reader.h"
#include "outpost/v1/run_state.h"

namespace outpost::app {

int exitStatusOf(v1::RunState terminal) {
  switch (terminal) {
    case v1::SUCCEEDED:
      return kExitSucceeded;
    case v1::TIMED_OUT:
      return kExitTimedOut;
    case v1::CANCELLED:
      return kExitCancelled;
    case v1::REJECTED:
      return kExitRejected;
    case v1::EXPIRED:
      return kExitExpired;
    default:
      return kExitFailed;
  }
}

namespace {

// The state named by a worker's "cancel ignored: run already ended STATE" NOTICE.
std::optional<v1::RunState> endedBefore(const v1::RunEvent& notice) {
  static constexpr std::string_view kSaid = "cancel ignored: run already ended ";
  const auto& m = notice.message();
  if (!m.starts_with(kSaid)) return std::nullopt;
  v1::RunState state;
  if (!v1::RunState_Parse(m.substr(kSaid.size()), &state) || !v1::isTerminal(state)) {
    return std::nullopt;
  }
  return state;
}

}  // namespace

struct RunWaiter::Impl {
  consumer::TopicReader reader;
  std::vector<std::pair<TopicPartition, std::int64_t>> from;
  explicit Impl(const Config& c) : reader(c.kafka, "", "outpost-wait") {}
};

RunWaiter::RunWaiter(const Config& config, const std::string& events_topic)
    : impl_(std::make_unique<Impl>(config)) {
  const auto& topic = events_topic.empty() ? config.topics.events : events_topic;
  auto found = impl_->reader.partitions(std::chrono::seconds(30));
  if (!found) throw KafkaUnavailable("cannot read the events topic's metadata: " + found.error());
  auto it = found->find(topic);
  if (it == found->end() || it->second.empty()) {
    throw KafkaUnavailable("no topic '" + topic + "' to wait on (outpost topics creates it)");
  }
  for (auto p : it->second) {
    TopicPartition tp{topic, p};
    auto marks = impl_->reader.watermarks(tp, std::chrono::seconds(30));
    if (!marks) throw KafkaUnavailable("cannot read where " + topic + " ends: " + marks.error());
    impl_->from.emplace_back(tp, marks->second);
  }
}

RunWaiter::~RunWaiter() = default;

WaitResult RunWaiter::wait(const std::string& run_id, std::chrono::milliseconds timeout,
                           const std::function<void(const v1::RunEvent&)>& on_event) {
  return waitAll({run_id}, timeout, on_event).at(run_id);
}

std::map<std::string, WaitResult> RunWaiter::waitAll(
    const std::set<std::string>& run_ids, std::chrono::milliseconds timeout,
    const std::function<void(const v1::RunEvent&)>& on_event) {
  std::map<std::string, WaitResult> results;
  for (const auto& id : run_ids) results[id];  // kTimedOut until it ends
  if (auto ok = impl_->reader.readFrom(impl_->from); !ok) {
    for (auto& [id, r] : results) {
      r.kind = WaitResult::Kind::kError;
      r.error = ok.error();
    }
    return results;
  }
  std::size_t open = run_ids.size();
  // No limit: milliseconds::max() would overflow the clock's arithmetic.
  const auto start = std::chrono::steady_clock::now();
  const bool unlimited = timeout == std::chrono::milliseconds::max();
  while (open > 0 && (unlimited || std::chrono::steady_clock::now() - start < timeout)) {
    auto r = impl_->reader.poll(std::chrono::milliseconds(200));
    if (r.kind != consumer::ReadResult::Kind::kRecord) continue;
    auto it = results.find(r.record.key);
    if (it == results.end() || it->second.kind == WaitResult::Kind::kEnded) continue;
    v1::RunEvent e;
    if (!e.ParseFromString(r.record.value) || e.run_id() != it->first) continue;
    if (on_event) on_event(e);
    auto before = e.state() == v1::NOTICE ? endedBefore(e) : std::nullopt;
    // A lost attempt's FAILED (retrying) is not the run's end: the next attempt's terminal is.
    if ((v1::isTerminal(e.state()) && !e.retrying()) || before) {
      auto& result = it->second;
      result.kind = WaitResult::Kind::kEnded;
      result.state = before ? *before : e.state();
      result.ended_before = before.has_value();
      result.event = std::move(e);
      --open;
    }
  }
  return results;
}

std::string describeEnd(const WaitResult& r) {
  const auto& e = r.event;
  std::string line = fmt::format("run {} {}", e.run_id(), v1::RunState_Name(r.state));
  if (r.ended_before) return line + " before the cancel (" + e.message() + ")";
  if (e.duration_ms() > 0) line += fmt::format(" in {:.3f} s", e.duration_ms() / 1000.0);
  if (!e.worker_id().empty()) line += " on worker " + e.worker_id();
  if (e.exit_code() >= 0 && (r.state == v1::SUCCEEDED || r.state == v1::FAILED)) {
    line += fmt::format(": exit {}", e.exit_code());
  }
  if (!e.message().empty()) line += ": " + e.message();
  return line;
}

std::chrono::milliseconds parseWaitTimeout(const std::string& text) {
  if (text.empty()) return std::chrono::milliseconds::max();
  auto d = parseDuration(text);
  if (!d || d->count() <= 0) {
    throw ConfigError("--wait-timeout must be a duration such as 30s or 2h, not '" + text + "'");
  }
  return *d;
}

int waitAndReport(RunWaiter& waiter, const std::string& run_id, std::chrono::milliseconds timeout,
                  bool follow_logs, const std::string& verb) {
  auto result = waiter.wait(run_id, timeout, [&](const v1::RunEvent& e) {
    if (!follow_logs || e.state() != v1::LOG) return;
    for (const auto& line : e.log_lines()) std::cout << line << "\n";
    std::cout.flush();
  });
  switch (result.kind) {
    case WaitResult::Kind::kError:
      std::cerr << "outpost " << verb << ": cannot read the run's events: " << result.error << "\n";
      return kExitKafka;
    case WaitResult::Kind::kTimedOut:
      std::cerr << "outpost " << verb << ": run " << run_id
                << " did not end within --wait-timeout; it may still end (outpost tail --run "
                << run_id << ")\n";
      return kExitWaitTimedOut;
    case WaitResult::Kind::kEnded:
      break;
  }
  std::cerr << describeEnd(result) << "\n";
  if (!follow_logs && result.state != v1::SUCCEEDED && !result.event.log_tail().empty()) {
    std::cerr << "---- the end of its output ----\n" << result.event.log_tail();
    if (!result.event.log_tail().ends_with('\n')) std::cerr << "\n";
  }
  if (verb == "cancel") {
    return result.state == v1::CANCELLED && !result.ended_before ? kExitSucceeded
                                                                 : kExitAlreadyEnded;
  }
  return exitStatusOf(result.state);
}

}  // namespace outpost::app
