#include "chaos.h"

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include <gtest/gtest.h>

namespace outpost::test {
namespace {

std::string lastLines(const std::string& text, std::size_t lines) {
  // The newline that ends the last line does not count; the one before the first wanted does.
  std::size_t pos = text.size();
  for (std::size_t n = 0; n <= lines; ++n) {
    if (pos == 0) return text;
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

// Runs a command line; returns its stdout and sets `status` to its exit status.
std::string capture(const std::string& command, int& status) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  std::array<char, 4096> buf;
  while (p && fgets(buf.data(), buf.size(), p)) out += buf.data();
  int raw = p ? pclose(p) : -1;
  status = raw >= 0 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

}  // namespace

std::string knobText(const std::string& name, const std::string& fallback) {
  const std::string var = "OUTPOST_CHAOS_" + name;
  const char* v = std::getenv(var.c_str());
  std::string value = v && *v ? v : fallback;
  static std::set<std::string> printed;
  if (printed.insert(var).second) std::cout << "[chaos] " << var << "=" << value << std::endl;
  return value;
}

long knob(const std::string& name, long fallback) {
  auto text = knobText(name, std::to_string(fallback));
  try {
    return std::stol(text);
  } catch (const std::exception&) {
    ADD_FAILURE() << "OUTPOST_CHAOS_" << name << " must be a number, not '" << text << "'";
    return fallback;
  }
}

std::function<v1::JobCommand()> sleeper() {
  return [secs = knobText("JOB_SECS", "0.2")] { return makeCommand("sleep", {{"secs", secs}}); };
}

WorkerProcess::Options chaosOptions(const std::string& pool) {
  WorkerProcess::Options o;
  o.pool = pool;
  o.slots = static_cast<unsigned>(knob("SLOTS", 4));
  o.consumer_properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "1000"}};
  // The assignor under test: librdkafka's default (eager range,roundrobin) or, for the comparison,
  // cooperative-sticky.
  if (auto assignor = knobText("ASSIGNOR", ""); !assignor.empty()) {
    o.consumer_properties["partition.assignment.strategy"] = assignor;
  }
  o.worker_yaml = "  log_level: " + knobText("LOG_LEVEL", "warn") + "\n";
  return o;
}

Fleet::Fleet(const Topics& topics, int size, WorkerProcess::Options options)
    : topics_(topics), options_(std::move(options)), workers_(size) {
  for (int i = 0; i < size; ++i) start(i);
}

void Fleet::start(int i) {
  auto o = options_;
  // The same id for the same place: a restarted worker is the same static group member (no
  // rebalance) and fences its predecessor's transactions.
  o.id = options_.pool + "-w" + std::to_string(i);
  workers_[i].reset();  // the old one (reaped already) and its directory go first
  workers_[i] = std::make_unique<WorkerProcess>(topics_, o);
}

bool Fleet::waitUntilStable(std::chrono::seconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto [state, members] = groupState(group());
    if (state == "Stable" && members == size()) return true;
    if (std::chrono::steady_clock::now() > deadline) {
      std::cout << "[chaos] group " << group() << " is " << state << " with " << members
                << " member(s) after " << timeout.count() << " s" << std::endl;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

void Fleet::crashAndRestart(int i) {
  std::cout << "[chaos] SIGKILL " << workers_[i]->id() << std::endl;
  workers_[i]->crash();
  start(i);
}

int Fleet::terminateAndRestart(int i) {
  std::cout << "[chaos] SIGTERM " << workers_[i]->id() << std::endl;
  int status = workers_[i]->terminate();
  start(i);
  return status;
}

int Fleet::restartExited() {
  int n = 0;
  for (int i = 0; i < size(); ++i) {
    if (workers_[i]->running()) continue;
    std::cout << "[chaos] " << workers_[i]->id() << " died; restarting it" << std::endl;
    start(i);
    ++n;
  }
  return n;
}

int Fleet::terminateAll() {
  int failed = 0;
  for (auto& w : workers_) {
    if (!w->running()) continue;
    if (w->terminate() != 0) ++failed;
  }
  return failed;
}

std::string Fleet::logTails(std::size_t lines) const {
  std::ostringstream out;
  for (const auto& w : workers_) {
    out << "---- last lines of " << w->id() << " ----\n" << lastLines(w->log(), lines);
  }
  return out.str();
}

Load::Load(const Topics& topics, std::function<v1::JobCommand()> make, std::size_t limit,
           double per_second) {
  thread_ = std::thread([this, topics, make = std::move(make), limit, per_second] {
    auto next = std::chrono::steady_clock::now();
    const auto gap = per_second > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::duration<double>(1.0 / per_second))
                                    : std::chrono::nanoseconds(0);
    for (std::size_t i = 0; i < limit && !stop_.load(); ++i) {
      if (gap.count() > 0) {
        std::this_thread::sleep_until(next);
        next += gap;
      }
      auto c = make();
      submit(topics, c);
      std::lock_guard lock(mutex_);
      run_ids_.push_back(c.run_id());
    }
    finished_ = true;
  });
}

Load::~Load() {
  stop();
}

void Load::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> Load::runIds() const {
  std::lock_guard lock(mutex_);
  return run_ids_;
}

void RunWatch::poll(std::chrono::milliseconds window) {
  reader_.readFor(window);
  const auto& records = reader_.records();
  const auto ended_before = ended_.size();
  for (; seen_ < records.size(); ++seen_) {
    v1::RunEvent e;
    // A FAILED that says the run goes on as the next attempt is not its end.
    if (e.ParseFromString(records[seen_].value) && v1::isTerminal(e.state()) && !e.retrying()) {
      ended_.insert(e.run_id());
    }
  }
  if (ended_.size() == ended_before) return;
  const auto now = std::chrono::steady_clock::now();
  if (last_end_read_) {
    longest_gap_ = std::max(longest_gap_, std::chrono::duration_cast<std::chrono::milliseconds>(
                                              now - *last_end_read_));
  }
  last_end_read_ = now;
}

std::size_t RunWatch::endedOf(const std::vector<std::string>& runs) const {
  std::size_t n = 0;
  for (const auto& r : runs) n += ended_.contains(r) ? 1 : 0;
  return n;
}

bool waitForAllEnded(RunWatch& watch, const Load& load,
                     std::chrono::steady_clock::time_point until,
                     const std::function<void()>& tick) {
  using Clock = std::chrono::steady_clock;
  auto report = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    watch.poll();
    auto runs = load.runIds();
    auto ended = watch.endedOf(runs);
    if (load.finished() && ended == runs.size()) return true;
    if (Clock::now() > until) {
      std::cout << "[chaos] deadline: " << ended << " of " << runs.size() << " runs ended"
                << std::endl;
      return false;
    }
    if (Clock::now() > report) {
      std::cout << "[chaos] " << ended << " of " << runs.size() << " runs ended" << std::endl;
      report = Clock::now() + std::chrono::seconds(10);
    }
    tick();
  }
}

nlohmann::json ledger(const Topics& topics, const std::string& group,
                      const std::vector<std::string>& runs) {
  // The prefix names the runs and workers topics too (the claims).
  std::string command = "OUTPOST_TOPICS__PREFIX='" + topics.prefix + "' " +
                        std::string(OUTPOST_BINARY) + " ledger --bootstrap " + bootstrap() +
                        " --jobs-topic " + topics.jobs + " --events-topic " + topics.events +
                        " --dlq-topic " + topics.dlq + " --group " + group + " --timeout 180s";
  for (const auto& r : runs) command += " --run " + r;
  int status = 0;
  std::cout << "[chaos] ---- outpost ledger ----\n"
            << capture(command, status) << "[chaos] ----" << std::endl;
  EXPECT_EQ(status, 0) << command;
  auto json_text = capture(command + " --json", status);
  EXPECT_EQ(status, 0) << command << " --json";
  auto doc = nlohmann::json::parse(json_text, nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << "outpost ledger --json printed: " << json_text;
  return doc.is_discarded() ? nlohmann::json::object() : doc;
}

}  // namespace outpost::test
