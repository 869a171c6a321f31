// outpost_bench: end-to-end figures for the worker against a real broker, with the floors they
// should be compared with, measured on the same machine in the same run. bench/run builds it,
// starts a broker and calls it; see bench/README.md for what each figure means.
//
// Prints one figure a line, `name: value unit`, on stdout; comments start with '#'; progress goes
// to stderr. Never fails because a figure is bad: the exit status is non-zero only when the
// benchmark itself could not run (no broker, no binary).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kafka_client.h"
#include "outpost/common/clock.h"
#include "outpost/v1/event.pb.h"
#include "outpost/v1/job.pb.h"
#include "outpost/v1/run_state.h"
#include "worker_process.h"

namespace outpost::bench {
namespace {

using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---- options and output ----------------------------------------------------------------------

struct Options {
  std::string bootstrap;
  std::string outpost = OUTPOST_BINARY;
  std::string noop = NOOP_BINARY;
  std::string chatter = CHATTER_BINARY;
  pid_t broker_pid = -1;
  bool quick = false;
  std::set<std::string> only;  // empty: everything
  std::vector<unsigned> slots = {1, 4, 16};
  long jobs = 0;  // 0: by slot count
  unsigned latency_slots = 16;
  std::chrono::seconds warm_up{0};  // 0: 45 s (10 s with --quick)
  unsigned rounds = 2;              // of the comparison with the reference executor

  bool wants(const std::string& what) const { return only.empty() || only.contains(what); }
};

const char kUsage[] =
    "usage: outpost_bench --bootstrap HOST:PORT [--quick] [--outpost BIN] [--noop BIN]\n"
    "                     [--broker-pid PID]\n"
    "                     [--only spawn,kafka,jobs,latency,compare,flood,output,scale,failover]\n"
    "                     [--slots 1,4,16] [--jobs N] [--warm-up SECONDS] [--rounds N]\n";

// Figures on stdout, one a line; kept so that ratios and the summary can use them. A quiet report
// (one round of the comparison) prints nothing and keeps its notes for later.
class Report {
 public:
  explicit Report(bool quiet = false) : quiet_(quiet) {}
  void figure(const std::string& name, double value, const std::string& unit, int decimals = 2) {
    values_[name] = value;
    if (quiet_) return;
    std::printf("%s: %.*f %s\n", name.c_str(), decimals, value, unit.c_str());
    std::fflush(stdout);
  }
  void note(const std::string& text) {
    if (quiet_) {
      notes_.push_back(text);
      return;
    }
    std::printf("# %s\n", text.c_str());
    std::fflush(stdout);
  }
  std::optional<double> get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  bool quiet_;
  std::map<std::string, double> values_;
  std::vector<std::string> notes_;
};

void progress(const std::string& text) {
  std::cerr << "bench: " << text << std::endl;
}

std::int64_t nowUs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

double seconds(Steady::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Nearest-rank percentile of unsorted samples.
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

std::string uniqueStem(const std::string& what) {
  static std::mt19937_64 rng(std::random_device{}());
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(rng()));
  return "bench-" + what + "-" + hex;
}

// ---- floors ------------------------------------------------------------------------------------

// posix_spawn + read its output + waitpid, one after another: how fast this machine can run the
// no-op program at all, with no Kafka and no bookkeeping.
double spawnFloor(const std::string& noop, int iterations) {
  char* const argv[] = {const_cast<char*>(noop.c_str()), nullptr};
  char path_env[] = "PATH=/usr/local/bin:/usr/bin:/bin";
  char* const envp[] = {path_env, nullptr};
  auto once = [&] {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, noop.c_str(), &fa, nullptr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    char buf[256];
    while (rc == 0 && ::read(fds[0], buf, sizeof buf) > 0) {
    }
    ::close(fds[0]);
    if (rc != 0) throw std::runtime_error("cannot start " + noop);
    int status = 0;
    ::waitpid(pid, &status, 0);
  };
  for (int i = 0; i < 50; ++i) once();  // page cache and the dynamic loader warm
  // The best of three rounds: a floor is what the machine can do, not what it did while someone
  // else's build had the cores.
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    auto t0 = Steady::now();
    for (int i = 0; i < iterations / 3; ++i) once();
    best = std::max(best, (iterations / 3) / seconds(Steady::now() - t0));
  }
  return best;
}

// The size of the JobCommands the job benchmarks send, so the bare Kafka figures move the same
// bytes.
std::string commandSizedPayload() {
  v1::JobCommand c;
  c.set_run_id("01890a5d-ac96-774b-bcce-b302099a8057");
  c.set_job_id("bench-123456");
  c.set_job_type("noop");
  c.set_attempt(1);
  c.set_requested_at_ms(1'700'000'000'000);
  (*c.mutable_labels())["sent_us"] = "1700000000000000";
  return std::string(c.ByteSizeLong(), 'x');
}

// A producer with the settings a control plane would use (acks=all) and no lingering, so that a
// single message leaves at once.
HandlePtr benchProducer(const std::string& bootstrap) {
  return makeClient(RD_KAFKA_PRODUCER, bootstrap,
                    {{"acks", "all"}, {"linger.ms", "0"}, {"enable.idempotence", "true"}});
}

// Waits until `reader` returns a message with `key` (skipping others); false after the timeout.
bool readKey(TopicReader& reader, const std::string& key, std::chrono::milliseconds timeout) {
  auto deadline = Steady::now() + timeout;
  while (Steady::now() < deadline) {
    auto m = reader.next(100ms);
    if (m && m->key == key) return true;
  }
  return false;
}

void kafkaFloors(const Options& o, Report& report, int roundtrips, int pipeline_messages) {
  const std::string payload = commandSizedPayload();
  auto stem = uniqueStem("kafka");
  const std::string rt_topic = stem + ".roundtrip", pipe_topic = stem + ".pipeline";
  createTopics(o.bootstrap, {rt_topic, pipe_topic});
  auto producer = benchProducer(o.bootstrap);

  // Round trip: one message at a time, the reader already assigned and fetching.
  {
    TopicReader reader(o.bootstrap, rt_topic);
    produce(producer.get(), rt_topic, "warm-up", payload);
    if (!readKey(reader, "warm-up", 30s)) throw std::runtime_error("round-trip warm-up not read");
    std::vector<double> ms;
    for (int i = 0; i < roundtrips; ++i) {
      auto key = std::to_string(i);
      auto t0 = Steady::now();
      produce(producer.get(), rt_topic, key, payload);
      if (!readKey(reader, key, 10s)) throw std::runtime_error("round-trip message lost");
      ms.push_back(seconds(Steady::now() - t0) * 1000);
      rd_kafka_poll(producer.get(), 0);
    }
    report.figure("kafka_roundtrip_p50_ms", percentile(ms, 50), "ms", 3);
    report.figure("kafka_roundtrip_p99_ms", percentile(ms, 99), "ms", 3);
  }

  // Pipeline: as many messages as fast as possible, until the reader has them all.
  {
    TopicReader reader(o.bootstrap, pipe_topic);
    produce(producer.get(), pipe_topic, "warm-up", payload);
    if (!readKey(reader, "warm-up", 30s)) throw std::runtime_error("pipeline warm-up not read");
    auto t0 = Steady::now();
    for (int i = 0; i < pipeline_messages; ++i) {
      produce(producer.get(), pipe_topic, std::to_string(i), payload);
      if (i % 1000 == 0) rd_kafka_poll(producer.get(), 0);
    }
    int read = 0;
    auto deadline = t0 + 120s;
    while (read < pipeline_messages && Steady::now() < deadline) {
      if (reader.next(100ms)) ++read;
      rd_kafka_poll(producer.get(), 0);
    }
    report.figure("kafka_produce_consume_per_s", read / seconds(Steady::now() - t0), "msg/s", 0);
  }
  rd_kafka_flush(producer.get(), 10000);
}

// ---- CPU accounting ----------------------------------------------------------------------------

// Where the CPU went during one measured phase: the worker (per thread), the jobs it ran, the
// broker, this benchmark, and everything else on the machine (other users' builds and tests make
// figures noisy; this says how much).
class CpuWindow {
 public:
  CpuWindow(pid_t worker, pid_t broker) : worker_(worker), broker_(broker) { take(start_); }
  void stop() { take(end_); }
  // The worker's CPU time over the phase (all threads), ms.
  double workerMs() const { return end_.worker.self_ms - start_.worker.self_ms; }

  void report(Report& report, const std::string& suffix, long jobs) const {
    double wall_ms = seconds(end_.at - start_.at) * 1000;
    double worker = end_.worker.self_ms - start_.worker.self_ms;
    double children = end_.worker.children_ms - start_.worker.children_ms;
    double broker = end_.broker.self_ms - start_.broker.self_ms;
    double bench = end_.bench.self_ms - start_.bench.self_ms;
    double tick_ms = 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
    double machine_total = static_cast<double>(end_.machine.total - start_.machine.total) * tick_ms;
    double machine_busy = static_cast<double>(end_.machine.busy - start_.machine.busy) * tick_ms;
    if (jobs > 0) {
      report.figure("worker_cpu_per_job" + suffix, worker / jobs, "ms", 3);
      report.figure("jobs_cpu_per_job" + suffix, children / jobs, "ms", 3);
      if (broker_ > 0) report.figure("broker_cpu_per_job" + suffix, broker / jobs, "ms", 3);
      report.figure("bench_cpu_per_job" + suffix, bench / jobs, "ms", 3);
    }
    if (machine_total <= 0) return;
    report.figure("machine_cpu_busy" + suffix, 100 * machine_busy / machine_total, "%", 0);
    double others = machine_busy - worker - children - bench - (broker_ > 0 ? broker : 0);
    report.figure("other_cpu_busy" + suffix, std::max(0.0, 100 * others / machine_total), "%", 0);
    report.note(busiest("worker threads", start_.threads, end_.threads, wall_ms, 8));
    // The broker's too: its JIT compiler threads show when it was still compiling.
    if (broker_ > 0) {
      report.note(
          busiest("broker threads", start_.broker_threads, end_.broker_threads, wall_ms, 5));
    }
  }

 private:
  struct Snapshot {
    Steady::time_point at;
    MachineCpu machine;
    CpuTimes worker, broker, bench;
    std::vector<ThreadCpu> threads, broker_threads;
  };
  // The `most` busiest threads over the phase, as a share of one core.
  static std::string busiest(const std::string& what, const std::vector<ThreadCpu>& before,
                             const std::vector<ThreadCpu>& after, double wall_ms,
                             std::size_t most) {
    std::vector<std::pair<double, std::string>> busy;
    for (const auto& t : after) {
      double was = 0;
      for (const auto& s : before)
        if (s.tid == t.tid) was = s.ms;
      busy.push_back({t.ms - was, t.name + "/" + std::to_string(t.tid)});
    }
    std::sort(busy.rbegin(), busy.rend());
    std::string line = what + ", share of one core:";
    for (std::size_t i = 0; i < busy.size() && i < most; ++i) {
      char pct[32];
      std::snprintf(pct, sizeof pct, " %.0f%%", 100 * busy[i].first / wall_ms);
      line += " " + busy[i].second + pct;
    }
    return line;
  }
  void take(Snapshot& s) const {
    s.at = Steady::now();
    s.machine = machineCpu();
    s.worker = processCpu(worker_);
    s.threads = threadCpu(worker_);
    if (broker_ > 0) {
      s.broker = processCpu(broker_);
      s.broker_threads = threadCpu(broker_);
    }
    s.bench = processCpu(::getpid());
  }

  pid_t worker_, broker_;
  Snapshot start_, end_;
};

// ---- jobs through a real worker ----------------------------------------------------------------

// Outpost with its defaults (exactly-once, lineage, per-run cgroups, run directories, masking);
// at-least-once only; with everything optional off; and the Python reference executor.
const ExecutorKind kOutpost{"outpost", false, "exactly-once", true};
const ExecutorKind kOutpostAtLeastOnce{"at_least_once", false, "at-least-once", true};
const ExecutorKind kOutpostMinimal{"outpost_minimal", false, "at-least-once", false};
const ExecutorKind kReference{"reference", true, "", false};

// One worker with fresh topics, a producer of commands and a reader of its events topic.
class JobBench {
 public:
  struct RunRecord {
    std::int64_t sent_us = 0;      // when the command was handed to the producer
    std::int64_t child_us = -1;    // what the no-op printed at the start of its main
    std::int64_t seen_us = 0;      // when the (first) terminal event was read
    Steady::time_point seen_at{};  // the same, on the steady clock
    int terminals = 0;             // terminal events read for this run
    v1::RunState state = v1::RUN_STATE_UNSPECIFIED;  // of the first terminal event
  };

  // `extra`: its templates_yaml, extra_yaml and reference_args go to the executor.
  JobBench(const Options& o, unsigned slots, const ExecutorKind& kind,
           const WorkerProcess::Options& extra = {})
      : uuids_(clock_) {
    auto stem = uniqueStem(std::to_string(slots) + "-slots");
    prefix_ = stem + ".";
    jobs_topic_ = prefix_ + "jobs";
    // The jobs topic has one partition: one worker reads it, and every command goes through
    // that worker's one consumer either way. The runs topic is the worker's run state: compacted,
    // as many partitions as jobs (the worker refuses to start without it).
    createTopics(o.bootstrap,
                 {prefix_ + "jobs", prefix_ + "control", prefix_ + "events", prefix_ + "lineage",
                  prefix_ + "dlq", prefix_ + "workers", prefix_ + "runs"},
                 {}, {{prefix_ + "runs", {{"cleanup.policy", "compact,delete"}}}});
    reader_ = std::make_unique<TopicReader>(o.bootstrap, prefix_ + "events");
    producer_ = benchProducer(o.bootstrap);
    WorkerProcess::Options w = extra;
    w.binary = o.outpost;
    w.noop = o.noop;
    w.bootstrap = o.bootstrap;
    w.prefix = prefix_;
    w.pool = stem;
    w.slots = slots;
    w.kind = kind;
    worker_ = std::make_unique<WorkerProcess>(std::move(w));
  }

  WorkerProcess& worker() { return *worker_; }

  // Waits until the worker has its partition, then runs a few commands through it so that its
  // producer knows the events and lineage topics before anything is timed.
  bool ready() {
    // The assignment is logged at info; with a quieter log level (an OUTPOST_WORKER__LOG_LEVEL
    // override) the warm-up jobs alone tell that the worker reads its partition.
    const char* level = std::getenv("OUTPOST_WORKER__LOG_LEVEL");
    bool logs_info = !level || std::string_view(level) == "info" ||
                     std::string_view(level) == "debug" || std::string_view(level) == "trace";
    if (logs_info && !worker_->waitForLog("partitions assigned", 60s)) {
      progress("the worker did not get its partition; its log:\n" + worker_->log());
      return false;
    }
    std::vector<std::string> warm;
    for (int i = 0; i < 5; ++i) warm.push_back(send());
    if (!waitFor(warm, 60s)) {
      progress("warm-up jobs did not finish; the worker's log:\n" + worker_->log());
      return false;
    }
    return true;
  }

  // Produces one command (not waiting for the broker) and returns its run_id.
  std::string send(const std::string& job_type = "noop", const std::string& recipe = {}) {
    v1::JobCommand c;
    c.set_run_id(uuids_.next());
    c.set_job_id("bench-" + std::to_string(next_job_++));
    c.set_job_type(job_type);
    c.set_attempt(1);
    if (!recipe.empty()) c.set_recipe(recipe);
    std::int64_t sent = nowUs();
    c.set_requested_at_ms(sent / 1000);
    (*c.mutable_labels())["sent_us"] = std::to_string(sent);
    runs_[c.run_id()].sent_us = sent;
    produce(producer_.get(), jobs_topic_, c.job_id(), c.SerializeAsString());
    return c.run_id();
  }

  // Produces bytes as they are (bad commands), keyed `key`.
  void sendRaw(const std::string& key, const std::string& bytes) {
    produce(producer_.get(), jobs_topic_, key, bytes);
  }
  std::string newRunId() { return uuids_.next(); }

  // Reads events for up to `timeout`, recording terminal events.
  void poll(std::chrono::milliseconds timeout) {
    rd_kafka_poll(producer_.get(), 0);
    auto m = reader_->next(timeout);
    if (!m || m->value.empty()) return;
    v1::RunEvent e;
    if (!e.ParseFromString(m->value)) return;
    if (on_event_) on_event_(e);
    if (!v1::isTerminal(e.state())) return;
    auto now = Steady::now();
    auto it = runs_.find(e.run_id());
    if (it == runs_.end()) return;
    RunRecord& r = it->second;
    if (r.terminals++ > 0) return;
    ++finished_;
    r.seen_at = now;
    r.seen_us = nowUs();
    r.state = e.state();
    std::string tail = e.log_tail();
    char* end = nullptr;
    long long child = std::strtoll(tail.c_str(), &end, 10);
    if (end != tail.c_str()) r.child_us = child;
  }

  // Polls until every run in `ids` has a terminal event; false after the timeout.
  bool waitFor(const std::vector<std::string>& ids, std::chrono::seconds timeout) {
    auto deadline = Steady::now() + timeout;
    std::size_t i = 0;  // runs before i are known to be done
    while (Steady::now() < deadline) {
      while (i < ids.size() && runs_.at(ids[i]).terminals > 0) ++i;
      if (i == ids.size()) return true;
      poll(100ms);
    }
    return false;
  }

  // Keeps reading for a while, to catch a second terminal event for any run.
  void readFor(std::chrono::milliseconds window) {
    auto until = Steady::now() + window;
    while (Steady::now() < until) poll(50ms);
  }

  // Called with every event read (before the terminal bookkeeping).
  void onEvent(std::function<void(const v1::RunEvent&)> fn) { on_event_ = std::move(fn); }

  const RunRecord& run(const std::string& id) const { return runs_.at(id); }
  // Runs sent by this bench (warm-up included) that have a terminal event.
  long finished() const { return finished_; }
  long sent() const { return next_job_; }

 private:
  SystemClock clock_;
  UuidGenerator uuids_;
  std::string prefix_, jobs_topic_;
  std::unique_ptr<TopicReader> reader_;
  HandlePtr producer_;
  std::unique_ptr<WorkerProcess> worker_;
  std::unordered_map<std::string, RunRecord> runs_;
  long next_job_ = 0;
  long finished_ = 0;
  std::function<void(const v1::RunEvent&)> on_event_;
};

long defaultJobs(const Options& o, unsigned slots) {
  if (o.jobs > 0) return o.jobs;
  long n = slots <= 1 ? 300 : slots <= 4 ? 1000 : 3000;
  return o.quick ? n / 3 : n;
}

// A freshly started broker is a cold JVM: until its request paths (produce with acks=all, fetch,
// offset commits, group membership) are compiled it spends several times more CPU per job, on the
// same cores as the worker, and the first figures come out at half of what later ones do. So a
// worker runs no-op jobs for `duration` first, at most 200 outstanding; nothing of it is reported.
void warmUp(const Options& o, std::chrono::seconds duration) {
  JobBench b(o, 16, kOutpost);
  if (!b.ready()) return;
  auto deadline = Steady::now() + duration;
  while (Steady::now() < deadline) {
    while (b.sent() - b.finished() < 200) b.send();
    b.poll(50ms);
  }
  b.worker().stop(60s);
}

struct Outcomes {
  long unfinished = 0, failed = 0;  // failed: not exactly one terminal event, or not SUCCEEDED
};

Outcomes outcomes(const JobBench& b, const std::vector<std::string>& ids) {
  Outcomes out;
  for (const auto& id : ids) {
    const auto& r = b.run(id);
    if (r.terminals == 0) {
      ++out.unfinished;
    } else if (r.terminals != 1 || r.state != v1::SUCCEEDED) {
      ++out.failed;
    }
  }
  return out;
}

// Figures are named `..._<slots>_slots` for Outpost's defaults and
// `..._<slots>_slots_at_least_once` for worker.delivery: at-least-once; `peak_rss_mb` is the most
// the executor ever held, read at the end.
void jobThroughput(const Options& o, Report& report, unsigned slots, const ExecutorKind& kind) {
  const long n = defaultJobs(o, slots);
  const std::string suffix =
      "_" + std::to_string(slots) + "_slots" + (kind.name == "outpost" ? "" : "_" + kind.name);
  progress("throughput: " + std::to_string(n) + " no-op jobs through a " + std::to_string(slots) +
           "-slot " + kind.name);
  JobBench b(o, slots, kind);
  if (!b.ready()) {
    report.note("jobs" + suffix + ": the worker never became ready; no figure");
    return;
  }
  CpuWindow cpu(b.worker().pid(), o.broker_pid);

  std::vector<std::string> ids;
  ids.reserve(static_cast<std::size_t>(n));
  auto t0 = Steady::now();
  for (long i = 0; i < n; ++i) ids.push_back(b.send());
  // A time limit keeps a slow worker from making the whole benchmark slow: the rate is then
  // taken over the jobs that finished, and the rest are reported as unfinished.
  const auto limit = o.quick ? 15s : 30s;
  bool all = b.waitFor(ids, limit);
  Steady::time_point last = t0;
  for (const auto& id : ids) last = std::max(last, b.run(id).seen_at);
  cpu.stop();
  b.readFor(500ms);

  auto out = outcomes(b, ids);
  long finished = n - out.unfinished;
  report.figure("jobs_per_s" + suffix, finished / seconds(last - t0), "jobs/s", 1);
  if (out.failed > 0) report.figure("jobs_failed" + suffix, out.failed, "jobs", 0);
  if (!all) {
    report.figure("jobs_unfinished" + suffix, out.unfinished, "jobs", 0);
    report.note(std::to_string(out.unfinished) + " of " + std::to_string(n) +
                " jobs had no terminal event after " + std::to_string(limit.count()) +
                " s; the rate above is over the ones that did");
  }
  cpu.report(report, suffix, finished);
  report.figure("peak_rss_mb" + suffix, processStatus(b.worker().pid()).peak_rss_mb, "MB", 1);
  {
    // Terminal events read per 250 ms since the first produce: a ramp or a stall shows here.
    std::vector<long> buckets;
    for (const auto& id : ids) {
      const auto& r = b.run(id);
      if (r.terminals == 0) continue;
      auto k = static_cast<std::size_t>((r.seen_at - t0) / 250ms);
      if (buckets.size() <= k) buckets.resize(k + 1);
      ++buckets[k];
    }
    std::string line =
        "jobs" + suffix + ": terminal events read per 250 ms from the first command:";
    for (long c : buckets) line += " " + std::to_string(c);
    report.note(line);
  }
  int rc = b.worker().stop(60s);
  if (rc != 0)
    report.note("the " + std::to_string(slots) + "-slot " + kind.name + " exited with " +
                std::to_string(rc) + " after SIGTERM");
}

void dispatchLatency(const Options& o, Report& report, const ExecutorKind& kind) {
  const long n = o.quick ? 100 : 300;
  const auto gap = 10ms;
  progress("latency: " + std::to_string(n) + " no-op jobs, one every 10 ms, to a " +
           std::to_string(o.latency_slots) + "-slot " + kind.name);
  JobBench b(o, o.latency_slots, kind);
  if (!b.ready()) {
    report.note("dispatch latency: the worker never became ready; no figure");
    return;
  }
  CpuWindow cpu(b.worker().pid(), o.broker_pid);
  std::vector<std::string> ids;
  auto next = Steady::now();
  for (long i = 0; i < n; ++i) {
    while (Steady::now() < next)
      b.poll(std::chrono::ceil<std::chrono::milliseconds>(next - Steady::now()));
    ids.push_back(b.send());
    next += gap;
  }
  b.waitFor(ids, 60s);
  cpu.stop();
  b.readFor(500ms);

  std::vector<double> dispatch, report_ms, total;
  for (const auto& id : ids) {
    const auto& r = b.run(id);
    if (r.terminals == 0 || r.child_us < 0) continue;
    dispatch.push_back(static_cast<double>(r.child_us - r.sent_us) / 1000.0);
    report_ms.push_back(static_cast<double>(r.seen_us - r.child_us) / 1000.0);
    total.push_back(static_cast<double>(r.seen_us - r.sent_us) / 1000.0);
  }
  auto out = outcomes(b, ids);
  if (out.failed + out.unfinished > 0)
    report.figure("latency_jobs_failed", out.failed + out.unfinished, "jobs", 0);
  report.figure("dispatch_latency_p50_ms", percentile(dispatch, 50), "ms", 3);
  report.figure("dispatch_latency_p99_ms", percentile(dispatch, 99), "ms", 3);
  report.figure("completion_latency_p50_ms", percentile(report_ms, 50), "ms", 3);
  report.figure("completion_latency_p99_ms", percentile(report_ms, 99), "ms", 3);
  report.figure("end_to_end_latency_p50_ms", percentile(total, 50), "ms", 3);
  report.figure("end_to_end_latency_p99_ms", percentile(total, 99), "ms", 3);
  cpu.report(report, "_latency", 0);
  b.worker().stop(60s);
}

// An idle executor: started with 4 slots, ready, 5 jobs run, then 2 s of nothing: its resident
// memory and threads.
void idleFootprint(const Options& o, Report& report, const ExecutorKind& kind) {
  progress("idle: a 4-slot " + kind.name);
  JobBench b(o, 4, kind);
  if (!b.ready()) {
    report.note("idle " + kind.name + ": never became ready; no figure");
    return;
  }
  std::this_thread::sleep_for(2s);
  auto st = processStatus(b.worker().pid());
  report.figure("idle_rss_mb", st.rss_mb, "MB", 1);
  report.figure("idle_threads", st.threads, "threads", 0);
  b.worker().stop(60s);
}

// One executor's reports, one per round of a comparison, by executor name.
using Rounds = std::map<std::string, std::vector<Report>>;

// A figure of a comparison: its name in a round's report, whether jobThroughput suffixed that
// with the executor's name (all but Outpost's defaults), the name printed, its unit.
struct ComparedFigure {
  std::string in_round;
  bool by_kind;
  std::string printed, unit;
  int decimals;
};

// Prints `<prefix><figure>_<executor>`, the median over the rounds, for each executor, and each
// one's ratio to the reference's as `<prefix><figure>_<executor>_vs_reference`.
void printMedians(Report& report, const std::string& prefix, const std::vector<ExecutorKind>& kinds,
                  const Rounds& rounds, const std::vector<ComparedFigure>& figures) {
  for (const auto& f : figures) {
    std::map<std::string, double> m;
    for (const auto& kind : kinds) {
      const std::string name =
          f.in_round + (f.by_kind && kind.name != "outpost" ? "_" + kind.name : "");
      std::vector<double> v;
      if (auto it = rounds.find(kind.name); it != rounds.end()) {
        for (const auto& round : it->second) {
          if (auto x = round.get(name)) v.push_back(*x);
        }
      }
      if (v.empty()) continue;
      m[kind.name] = percentile(v, 50);
      report.figure(prefix + f.printed + "_" + kind.name, m[kind.name], f.unit, f.decimals);
    }
    for (const auto& kind : kinds) {
      if (kind.reference || !m.contains(kind.name) || !m.contains("reference") ||
          m["reference"] <= 0)
        continue;
      report.figure(prefix + f.printed + "_" + kind.name + "_vs_reference",
                    m[kind.name] / m["reference"], "ratio", 3);
    }
  }
}

// Where each executor's CPU went in the last round's first measured phase (the throughput or
// the output phase): its busiest threads, and the broker's.
void printThreads(Report& report, const std::string& what, const std::vector<ExecutorKind>& kinds,
                  const Rounds& rounds) {
  for (const auto& kind : kinds) {
    auto it = rounds.find(kind.name);
    if (it == rounds.end() || it->second.empty()) continue;
    int printed = 0;
    for (const auto& n : it->second.back().notes()) {
      if (n.find("threads, share") == std::string::npos || printed++ >= 2) continue;
      report.note(what + kind.name + ": " + n);
    }
  }
}

// Memory under a flood: commands of 100-900 KB (a recipe each) arrive far faster than a 4-slot
// worker runs them (each job sleeps 50 ms). The worker's resident memory is sampled every 100 ms:
// idle before, the peak while the backlog is on the topic, and 5 s after the last job ended.
void memoryUnderFlood(const Options& o, Report& report) {
  const long n = o.quick ? 200 : 600;
  progress("flood: " + std::to_string(n) + " commands of 100-900 KB to a 4-slot worker");
  WorkerProcess::Options extra;
  extra.templates_yaml = "  flood:\n    argv: [/bin/sleep, \"0.05\"]\n    recipe: file\n";
  JobBench b(o, 4, kOutpost, extra);
  if (!b.ready()) {
    report.note("flood: the worker never became ready; no figure");
    return;
  }
  std::this_thread::sleep_for(2s);
  const pid_t pid = b.worker().pid();
  report.figure("flood_idle_rss_mb", processStatus(pid).rss_mb, "MB", 1);
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::size_t> size(100 * 1024, 900 * 1024);
  std::vector<std::string> ids;
  double mb = 0, peak = 0;
  auto sample = [&] { peak = std::max(peak, processStatus(pid).rss_mb); };
  auto next_sample = Steady::now();
  for (long i = 0; i < n; ++i) {
    std::string recipe(size(rng), 'r');
    mb += static_cast<double>(recipe.size()) / (1024 * 1024);
    ids.push_back(b.send("flood", recipe));
    if (Steady::now() >= next_sample) {
      sample();
      b.poll(0ms);
      next_sample = Steady::now() + 100ms;
    }
  }
  auto deadline = Steady::now() + 180s;
  std::size_t done = 0;
  while (Steady::now() < deadline && done < ids.size()) {
    b.poll(100ms);
    sample();
    while (done < ids.size() && b.run(ids[done]).terminals > 0) ++done;
  }
  auto out = outcomes(b, ids);
  report.figure("flood_commands_mb", mb, "MB", 0);
  report.figure("flood_peak_rss_mb", peak, "MB", 1);
  if (out.unfinished + out.failed > 0)
    report.figure("flood_jobs_failed", out.unfinished + out.failed, "jobs", 0);
  std::this_thread::sleep_for(5s);
  report.figure("flood_after_rss_mb", processStatus(pid).rss_mb, "MB", 1);

  // Then bad commands among good ones: each is dead-lettered with its original bytes, which wait
  // for the broker like the good commands wait for a slot (worker.max_queued_bytes bounds both).
  // Six kinds: random bytes of 100-900 KB, a truncated command, broken JSON, an empty record, a
  // command for an unknown template with a 100-900 KB recipe (refused after decoding), and one
  // without a run id; one good command of 100-900 KB every seventh record.
  const long bad = o.quick ? 200 : 600;
  progress("flood of bad commands: " + std::to_string(bad) + " among " + std::to_string(bad / 6) +
           " good ones");
  std::vector<std::string> good;
  double bad_mb = 0, bad_peak = 0;
  next_sample = Steady::now();
  for (long i = 0; i < bad + bad / 6; ++i) {
    if (i % 7 == 6) {
      good.push_back(b.send("flood", std::string(size(rng), 'r')));
    } else {
      std::string bytes;
      switch (i % 6) {
        case 0: {
          bytes.resize(size(rng));
          for (auto& c : bytes) c = static_cast<char>(rng());
          break;
        }
        case 1: {
          v1::JobCommand c;
          c.set_run_id(b.newRunId());
          c.set_job_type("flood");
          c.set_recipe(std::string(4096, 'r'));
          bytes = c.SerializeAsString().substr(0, 2000);
          break;
        }
        case 2:
          bytes = "{\"run_id\": \"" + b.newRunId() + "\", \"job_type\": ";
          break;
        case 3:
          break;
        case 4: {
          v1::JobCommand c;
          c.set_run_id(b.newRunId());
          c.set_job_type("no-such-template");
          c.set_recipe(std::string(size(rng), 'x'));
          bytes = c.SerializeAsString();
          break;
        }
        default: {
          v1::JobCommand c;
          c.set_job_type("flood");
          bytes = c.SerializeAsString();
          break;
        }
      }
      bad_mb += static_cast<double>(bytes.size()) / (1024 * 1024);
      b.sendRaw("bad-" + std::to_string(i), bytes);
    }
    if (Steady::now() >= next_sample) {
      bad_peak = std::max(bad_peak, processStatus(pid).rss_mb);
      b.poll(0ms);
      next_sample = Steady::now() + 100ms;
    }
  }
  deadline = Steady::now() + 180s;
  done = 0;
  while (Steady::now() < deadline && done < good.size()) {
    b.poll(100ms);
    bad_peak = std::max(bad_peak, processStatus(pid).rss_mb);
    while (done < good.size() && b.run(good[done]).terminals > 0) ++done;
  }
  report.figure("flood_bad_commands_mb", bad_mb, "MB", 0);
  report.figure("flood_bad_peak_rss_mb", bad_peak, "MB", 1);
  if (done < good.size()) report.figure("flood_bad_good_unfinished", good.size() - done, "jobs", 0);
  b.worker().stop(60s);
}

// Output-heavy runs: 64 jobs at once, each writing ~100-byte lines at 1 MB/s for 20 s
// (outpost-bench-chatter), with 100 secrets resolved for masking. The executor's CPU per MB of
// output, how long a line takes from being written to being readable in a LOG event on the
// events topic (p50, p99), and its resident memory at the start, at its peak and at the end.
// Outpost's log_rate_bytes is raised to 2 MiB/s so that, like the reference, it publishes every
// line.
void outputHeavy(const Options& o, Report& report, const ExecutorKind& kind,
                 const std::vector<std::string>& secrets, const std::string& secrets_file) {
  const unsigned jobs = o.quick ? 16 : 64;
  const int seconds_each = o.quick ? 10 : 20;
  const std::string chatter = o.chatter + " 1048576 " + std::to_string(seconds_each);
  progress("output: " + std::to_string(jobs) + " jobs writing 1 MB/s for " +
           std::to_string(seconds_each) + " s through " + kind.name);
  WorkerProcess::Options extra;
  if (kind.reference) {
    extra.reference_args = {"--template", "chatter=" + chatter, "--secrets-file", secrets_file,
                            "--log-events"};
  } else {
    std::string env = "    env:\n      BENCH_SECRET: \"${env:BENCH_SECRET_0}\"\n";
    for (std::size_t i = 1; i < secrets.size(); ++i) {
      env += "      BENCH_S" + std::to_string(i) + ": \"${env:BENCH_SECRET_" + std::to_string(i) +
             "}\"\n";
    }
    extra.templates_yaml = "  chatter:\n    argv: [" + o.chatter + ", \"1048576\", \"" +
                           std::to_string(seconds_each) +
                           "\"]\n    recipe: none\n    secrets: [\"env:BENCH_SECRET_*\"]\n" + env;
    extra.extra_yaml = "output:\n  log_rate_bytes: 2MiB\n";
  }
  JobBench b(o, jobs, kind, extra);
  if (!b.ready()) {
    report.note("output " + kind.name + ": never became ready; no figure");
    return;
  }
  const pid_t pid = b.worker().pid();
  const double rss_start = processStatus(pid).rss_mb;
  double peak = rss_start, bytes = 0;
  std::vector<double> delays;
  std::size_t lines = 0;
  b.onEvent([&](const v1::RunEvent& e) {
    if (e.state() != v1::LOG || e.log_lines_size() == 0) return;
    const auto now = nowUs();
    for (const auto& l : e.log_lines()) bytes += static_cast<double>(l.size() + 1);
    lines += static_cast<std::size_t>(e.log_lines_size());
    // One delay per event: its first line's stamp (the oldest line in it).
    char* end = nullptr;
    long long stamp = std::strtoll(e.log_lines(0).c_str(), &end, 10);
    if (end != e.log_lines(0).c_str()) delays.push_back(static_cast<double>(now - stamp) / 1000);
  });
  CpuWindow cpu(pid, o.broker_pid);
  std::vector<std::string> ids;
  for (unsigned i = 0; i < jobs; ++i) ids.push_back(b.send("chatter"));
  auto deadline = Steady::now() + std::chrono::seconds(seconds_each * 4 + 30);
  auto next_sample = Steady::now();
  std::size_t done = 0;
  while (Steady::now() < deadline && done < ids.size()) {
    b.poll(50ms);
    if (Steady::now() >= next_sample) {
      peak = std::max(peak, processStatus(pid).rss_mb);
      next_sample = Steady::now() + 250ms;
    }
    while (done < ids.size() && b.run(ids[done]).terminals > 0) ++done;
  }
  cpu.stop();
  b.readFor(1s);  // LOG events written just before the last terminal event
  const double mb = bytes / (1024 * 1024);
  report.figure("mb_published", mb, "MB", 0);
  report.figure("lines_published", static_cast<double>(lines), "lines", 0);
  if (mb > 0) report.figure("executor_cpu_per_mb", cpu.workerMs() / mb, "ms/MB", 2);
  report.figure("log_delay_p50_ms", percentile(delays, 50), "ms", 0);
  report.figure("log_delay_p99_ms", percentile(delays, 99), "ms", 0);
  report.figure("rss_start_mb", rss_start, "MB", 1);
  report.figure("rss_peak_mb", peak, "MB", 1);
  report.figure("rss_end_mb", processStatus(pid).rss_mb, "MB", 1);
  auto out = outcomes(b, ids);
  report.figure("jobs_failed", static_cast<double>(out.unfinished + out.failed), "jobs", 0);
  cpu.report(report, "_output", 0);
  b.worker().stop(60s);
}

// The output phase for Outpost and the reference, interleaved, with 100 secrets in the
// environment (BENCH_SECRET_0..99, which both executors' jobs see masked) and in a file for the
// reference; then Outpost's CPU per MB as a ratio of the reference's.
void compareOutput(const Options& o, Report& report) {
  std::mt19937_64 rng(std::random_device{}());
  const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::vector<std::string> secrets;
  char tmpl[] = "/tmp/outpost-bench-secrets.XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  ::close(fd);
  const std::string secrets_file = tmpl;
  {
    std::ofstream f(secrets_file);
    for (int i = 0; i < 100; ++i) {
      std::string s(24, 'x');
      for (auto& c : s) c = alphabet[rng() % (sizeof alphabet - 1)];
      secrets.push_back(s);
      ::setenv(("BENCH_SECRET_" + std::to_string(i)).c_str(), s.c_str(), 1);
      f << s << "\n";
    }
  }
  // The reference's jobs inherit its environment: they print this one.
  ::setenv("BENCH_SECRET", secrets[0].c_str(), 1);
  const std::vector<ExecutorKind> kinds = {kOutpost, kReference};
  Rounds rounds;
  for (unsigned r = 0; r < o.rounds; ++r) {
    for (const auto& kind : kinds) {
      progress("output round " + std::to_string(r + 1) + " of " + std::to_string(o.rounds));
      outputHeavy(o, rounds[kind.name].emplace_back(/*quiet=*/true), kind, secrets, secrets_file);
    }
  }
  ::unlink(secrets_file.c_str());
  printMedians(report, "output_", kinds, rounds,
               {{"executor_cpu_per_mb", false, "executor_cpu_per_mb", "ms/MB", 2},
                {"log_delay_p50_ms", false, "log_delay_p50", "ms", 0},
                {"log_delay_p99_ms", false, "log_delay_p99", "ms", 0},
                {"rss_start_mb", false, "rss_start", "MB", 1},
                {"rss_peak_mb", false, "rss_peak", "MB", 1},
                {"rss_end_mb", false, "rss_end", "MB", 1},
                {"mb_published", false, "mb_published", "MB", 0},
                {"jobs_failed", false, "jobs_failed", "jobs", 0}});
  printThreads(report, "output ", kinds, rounds);
}

// Outpost and the reference executor side by side on the same broker, interleaved (A B C A B C):
// each round measures, for each executor, the idle footprint, 16-slot throughput (CPU per job of
// the executor and the broker, peak memory) and dispatch latency. The medians over the rounds are
// printed as cmp_<figure>_<executor>, with each Outpost figure's ratio to the reference's.
void compareExecutors(const Options& o, Report& report) {
  const std::vector<ExecutorKind> kinds = {kOutpost, kOutpostMinimal, kReference};
  const unsigned slots = 16;
  const std::string s = "_" + std::to_string(slots) + "_slots";
  const std::vector<ComparedFigure> figures = {
      {"jobs_per_s" + s, true, "jobs_per_s", "jobs/s", 1},
      {"worker_cpu_per_job" + s, true, "executor_cpu_per_job", "ms", 3},
      {"broker_cpu_per_job" + s, true, "broker_cpu_per_job", "ms", 3},
      {"peak_rss_mb" + s, true, "peak_rss", "MB", 1},
      {"dispatch_latency_p50_ms", false, "dispatch_latency_p50", "ms", 3},
      {"dispatch_latency_p99_ms", false, "dispatch_latency_p99", "ms", 3},
      {"completion_latency_p50_ms", false, "completion_latency_p50", "ms", 3},
      {"idle_rss_mb", false, "idle_rss", "MB", 1},
      {"idle_threads", false, "idle_threads", "threads", 0},
      // Printed only when some did not succeed: then the figures above are not of no-op runs.
      {"jobs_failed" + s, true, "jobs_failed", "jobs", 0},
      {"latency_jobs_failed", false, "latency_jobs_failed", "jobs", 0},
  };
  Rounds rounds;
  for (unsigned r = 0; r < o.rounds; ++r) {
    for (const auto& kind : kinds) {
      progress("comparison round " + std::to_string(r + 1) + " of " + std::to_string(o.rounds) +
               ": " + kind.name);
      Report& round = rounds[kind.name].emplace_back(/*quiet=*/true);
      idleFootprint(o, round, kind);
      jobThroughput(o, round, slots, kind);
      dispatchLatency(o, round, kind);
    }
  }
  printMedians(report, "cmp_", kinds, rounds, figures);
  printThreads(report, "", kinds, rounds);
}

// ---- main --------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Pools: workers that join while long runs are in flight (scale), and a worker lost under them
// (failover).

// librdkafka handles of a process (each has one "rdk:main" thread), and its TCP connections to
// the brokers of `bootstrap` (host:port,...), from /proc.
struct KafkaFootprint {
  int handles = 0;
  int connections = 0;
};
KafkaFootprint kafkaFootprint(pid_t pid, const std::string& bootstrap) {
  KafkaFootprint f;
  for (const auto& t : threadCpu(pid)) f.handles += t.name == "rdk:main";
  std::set<unsigned> ports;
  std::istringstream servers(bootstrap);
  for (std::string server; std::getline(servers, server, ',');) {
    auto colon = server.rfind(':');
    if (colon != std::string::npos) ports.insert(std::stoul(server.substr(colon + 1)));
  }
  std::set<std::string> inodes;  // of the process's sockets
  const auto fds = "/proc/" + std::to_string(pid) + "/fd";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(fds, ec)) {
    auto target = std::filesystem::read_symlink(e.path(), ec).string();
    if (target.starts_with("socket:[")) inodes.insert(target.substr(8, target.size() - 9));
  }
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/net/" + table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      fields >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >>
          inode;
      auto colon = remote.rfind(':');
      if (state != "01" || colon == std::string::npos || !inodes.contains(inode)) continue;
      if (ports.contains(std::stoul(remote.substr(colon + 1), nullptr, 16))) ++f.connections;
    }
  }
  return f;
}

// Workers of one pool (each its own id) on one set of topics (`partitions` jobs partitions), with
// a template `hold` whose first attempt sleeps {secs} and whose later attempts end at once. Reads
// the events: per run and attempt, when it started, on which worker, how it ended.
class PoolBench {
 public:
  struct Attempt {
    Steady::time_point started{};
    std::string worker;
    int started_events = 0;
    int terminals = 0;
    v1::RunState state = v1::RUN_STATE_UNSPECIFIED;
  };
  struct Run {
    std::map<std::uint32_t, Attempt> attempts;
    int notices = 0;
  };

  PoolBench(const Options& o, int partitions, unsigned slots, std::string worker_yaml,
            std::string kafka_yaml)
      : o_(o), uuids_(clock_) {
    stem_ = uniqueStem("pool");
    const std::string prefix = stem_ + ".";
    jobs_topic_ = prefix + "jobs";
    createTopics(o.bootstrap,
                 {prefix + "jobs", prefix + "control", prefix + "events", prefix + "lineage",
                  prefix + "dlq", prefix + "workers", prefix + "runs"},
                 {{prefix + "jobs", partitions}, {prefix + "runs", partitions}},
                 {{prefix + "runs", {{"cleanup.policy", "compact,delete"}}}});
    reader_ = std::make_unique<TopicReader>(o.bootstrap, prefix + "events");
    producer_ = benchProducer(o.bootstrap);
    base_.binary = o.outpost;
    base_.noop = o.noop;
    base_.bootstrap = o.bootstrap;
    base_.prefix = prefix;
    base_.pool = stem_;
    base_.slots = slots;
    base_.kind = kOutpost;
    base_.worker_yaml = std::move(worker_yaml);
    base_.kafka_yaml = std::move(kafka_yaml);
    base_.templates_yaml =
        "  hold:\n"
        "    argv: [sh, -c, 'if [ \"$OUTPOST_ATTEMPT\" = 1 ]; then exec sleep \"$0\"; fi', "
        "'{secs}']\n"
        "    params: {secs: {pattern: '[0-9]+'}}\n"
        "    allow_shell: true\n"
        "    recipe: none\n"
        "    timeout: 1h\n";
  }

  // Starts a worker and waits until it has been given its partitions (or none); nullptr if it
  // never was.
  WorkerProcess* add(const std::string& id) {
    auto w = base_;
    w.id = stem_ + "-" + id;
    workers_.push_back(std::make_unique<WorkerProcess>(std::move(w)));
    if (!workers_.back()->waitForLog("partitions assigned", 60s)) {
      progress("worker " + id + " never got its partitions; its log:\n" + workers_.back()->log());
      return nullptr;
    }
    return workers_.back().get();
  }

  std::string send(int secs) {
    v1::JobCommand c;
    c.set_run_id(uuids_.next());
    c.set_job_id("pool-" + std::to_string(next_job_++));
    c.set_job_type("hold");
    c.set_attempt(1);
    (*c.mutable_args())["secs"] = std::to_string(secs);
    runs_[c.run_id()];
    produce(producer_.get(), jobs_topic_, c.job_id(), c.SerializeAsString());
    rd_kafka_flush(producer_.get(), 10000);
    return c.run_id();
  }

  // Reads events until `done` holds; false after `timeout`.
  bool readUntil(const std::function<bool()>& done, std::chrono::seconds timeout) {
    auto deadline = Steady::now() + timeout;
    while (!done()) {
      if (Steady::now() >= deadline) return false;
      poll(100ms);
    }
    return true;
  }
  void readFor(std::chrono::milliseconds window) {
    auto until = Steady::now() + window;
    while (Steady::now() < until) poll(50ms);
  }

  const Run& run(const std::string& id) const { return runs_.at(id); }
  const std::map<std::string, Run>& runs() const { return runs_; }
  const std::string& bootstrap() const { return o_.bootstrap; }

 private:
  void poll(std::chrono::milliseconds timeout) {
    auto m = reader_->next(timeout);
    if (!m || m->value.empty()) return;
    v1::RunEvent e;
    if (!e.ParseFromString(m->value)) return;
    auto it = runs_.find(e.run_id());
    if (it == runs_.end()) return;
    if (e.state() == v1::NOTICE) ++it->second.notices;
    Attempt& a = it->second.attempts[e.attempt()];
    if (e.state() == v1::STARTED) {
      if (a.started_events++ == 0) a.started = Steady::now();
      a.worker = e.worker_id();
    }
    if (v1::isTerminal(e.state())) {
      ++a.terminals;
      a.state = e.state();
    }
  }

  const Options& o_;
  SystemClock clock_;
  UuidGenerator uuids_;
  std::string stem_, jobs_topic_;
  WorkerProcess::Options base_;
  std::unique_ptr<TopicReader> reader_;
  HandlePtr producer_;
  std::vector<std::unique_ptr<WorkerProcess>> workers_;
  std::map<std::string, Run> runs_;
  long next_job_ = 0;
};

// Leases and sessions short enough for a benchmark to see several failovers; the figures are read
// against them (printed with them).
const std::string kFastLeases = "  status_interval: 1s\n  lease_timeout: 3s\n";
const std::string kFastSessions =
    "  consumer_properties:\n"
    "    session.timeout.ms: \"6000\"\n"
    "    heartbeat.interval.ms: \"1000\"\n";

// A worker holding four long runs is SIGKILLed while another worker of its pool idles: the time
// from the kill to each run's next attempt starting on the other worker.
void failover(const Options& o, Report& report) {
  const int rounds = o.quick ? 2 : 4;
  progress("failover: " + std::to_string(rounds) +
           " rounds of a worker holding 4 runs SIGKILLed beside an idle one");
  std::vector<double> waits;
  int unfinished = 0;
  for (int round = 0; round < rounds; ++round) {
    PoolBench pool(o, 4, 4, kFastLeases, kFastSessions);
    WorkerProcess* victim = pool.add("a");
    if (!victim) return report.note("failover: a worker never got its partitions; no figure");
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) ids.push_back(pool.send(600));
    auto attempt = [&](const std::string& id, std::uint32_t n) {
      const auto& a = pool.run(id).attempts;
      auto it = a.find(n);
      return it == a.end() ? nullptr : &it->second;
    };
    auto all = [&](std::uint32_t n) {
      return std::ranges::all_of(ids, [&](const auto& id) { return attempt(id, n) != nullptr; });
    };
    if (!pool.readUntil([&] { return all(1); }, 60s) || !pool.add("b")) {
      return report.note("failover: the runs never started; no figure");
    }
    std::this_thread::sleep_for(2s);  // b's statuses flow
    const auto killed = Steady::now();
    ::kill(victim->pid(), SIGKILL);
    pool.readUntil([&] { return all(2); }, 120s);
    for (const auto& id : ids) {
      if (const PoolBench::Attempt* a = attempt(id, 2)) {
        waits.push_back(seconds(a->started - killed));
      } else {
        ++unfinished;
      }
    }
  }
  report.note("failover with worker.status_interval 1s, worker.lease_timeout 3s, "
              "session.timeout.ms 6000 (reruns run one at a time)");
  report.figure("failover_rerun_start_p50_s", percentile(waits, 50), "s", 2);
  report.figure("failover_rerun_start_max_s", percentile(waits, 100), "s", 2);
  if (unfinished > 0) report.figure("failover_runs_not_rerun", unfinished, "runs", 0);
}

// One worker runs 8 long runs; two more join (eager assignment, static members): runs disturbed
// (stopped, run again, or a NOTICE about them), goal 0; and each worker's librdkafka handles and
// broker connections at idle.
void scaleOut(const Options& o, Report& report) {
  const int runs = 8;
  progress("scale: 2 workers join one running " + std::to_string(runs) + " runs of 20 s");
  PoolBench pool(o, 6, runs, "", "");
  WorkerProcess* first = pool.add("a");
  if (!first) return report.note("scale: the first worker never got its partitions; no figure");
  std::this_thread::sleep_for(2s);
  auto idle = kafkaFootprint(first->pid(), pool.bootstrap());
  report.note("broker(s) at " + pool.bootstrap() + ": connections counted to any of them");
  report.figure("worker_kafka_handles_idle", idle.handles, "handles", 0);
  report.figure("worker_broker_connections_idle", idle.connections, "connections", 0);
  std::vector<std::string> ids;
  for (int i = 0; i < runs; ++i) ids.push_back(pool.send(20));
  auto started = [&] {
    return std::ranges::all_of(ids, [&](const auto& id) {
      return pool.run(id).attempts.contains(1);
    });
  };
  if (!pool.readUntil(started, 60s) || !pool.add("b") || !pool.add("c")) {
    return report.note("scale: the runs or the new workers never started; no figure");
  }
  auto ended = [&] {
    return std::ranges::all_of(ids, [&](const auto& id) {
      for (const auto& [n, a] : pool.run(id).attempts) {
        if (a.terminals > 0) return true;
      }
      return false;
    });
  };
  pool.readUntil(ended, 120s);
  pool.readFor(1s);
  int disturbed = 0;
  for (const auto& id : ids) {
    const auto& r = pool.run(id);
    const auto first_attempt = r.attempts.find(1);
    const bool clean = r.attempts.size() == 1 && r.notices == 0 &&
                       first_attempt != r.attempts.end() &&
                       first_attempt->second.started_events == 1 &&
                       first_attempt->second.terminals == 1 &&
                       first_attempt->second.state == v1::SUCCEEDED;
    disturbed += !clean;
  }
  report.figure("scale_runs_disturbed", disturbed, "runs", 0);
}

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::optional<Options> parseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--bootstrap")
      o.bootstrap = value();
    else if (a == "--outpost")
      o.outpost = value();
    else if (a == "--noop")
      o.noop = value();
    else if (a == "--broker-pid")
      o.broker_pid = std::stoi(value());
    else if (a == "--quick")
      o.quick = true;
    else if (a == "--jobs")
      o.jobs = std::stol(value());
    else if (a == "--warm-up")
      o.warm_up = std::chrono::seconds(std::stol(value()));
    else if (a == "--rounds")
      o.rounds = static_cast<unsigned>(std::stoul(value()));
    else if (a == "--only") {
      for (auto& w : splitList(value())) o.only.insert(w);
    } else if (a == "--slots") {
      o.slots.clear();
      for (auto& s : splitList(value())) o.slots.push_back(static_cast<unsigned>(std::stoul(s)));
    } else {
      std::cerr << kUsage;
      return std::nullopt;
    }
  }
  if (o.bootstrap.empty()) {
    std::cerr << kUsage;
    return std::nullopt;
  }
  // Workers run in their own directories: a relative path would name nothing there, and every
  // job would fail to start (and still be counted, fast).
  o.outpost = std::filesystem::absolute(o.outpost).string();
  o.noop = std::filesystem::absolute(o.noop).string();
  return o;
}

void onSignal(int sig) {
  test_support::OutpostProcess::killAll();
  ::_exit(128 + sig);
}

int run(const Options& o) {
  Report report;
  report.note(std::string("outpost_bench") + (o.quick ? " --quick" : "") + ", broker " +
              o.bootstrap + ", " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores");
  {
    std::ifstream loadavg("/proc/loadavg");
    std::string one, five;
    loadavg >> one >> five;
    report.note("load average before the run: " + one + " (1 min), " + five + " (5 min)");
  }
  if (o.wants("spawn")) {
    progress("spawn floor");
    report.figure("spawn_floor_per_s", spawnFloor(o.noop, o.quick ? 1000 : 3000), "spawns/s", 0);
  }
  if (o.wants("kafka") || o.wants("jobs") || o.wants("latency") || o.wants("compare") ||
      o.wants("flood") || o.wants("output")) {
    progress("warm-up: no-op jobs through a worker, not measured");
    warmUp(o, o.warm_up.count() > 0 ? o.warm_up : o.quick ? 10s : 45s);
  }
  if (o.wants("kafka")) {
    progress("kafka floors");
    kafkaFloors(o, report, o.quick ? 200 : 500, o.quick ? 5000 : 20000);
  }
  if (o.wants("jobs")) {
    for (unsigned slots : o.slots) jobThroughput(o, report, slots, kOutpost);
    // What exactly-once costs: the same run without transactions, at the most slots asked for.
    if (!o.slots.empty()) {
      jobThroughput(o, report, *std::ranges::max_element(o.slots), kOutpostAtLeastOnce);
    }
  }
  if (o.wants("latency")) dispatchLatency(o, report, kOutpost);
  if (o.wants("compare")) compareExecutors(o, report);
  if (o.wants("flood")) memoryUnderFlood(o, report);
  if (o.wants("output")) compareOutput(o, report);
  if (o.wants("scale")) scaleOut(o, report);
  if (o.wants("failover")) failover(o, report);

  auto jobs16 = report.get("jobs_per_s_16_slots");
  auto spawn = report.get("spawn_floor_per_s");
  auto dispatch = report.get("dispatch_latency_p50_ms");
  auto roundtrip = report.get("kafka_roundtrip_p50_ms");
  if (jobs16 && spawn)
    report.figure("jobs_per_s_16_slots_vs_spawn_floor", *jobs16 / *spawn, "ratio", 3);
  if (auto alo16 = report.get("jobs_per_s_16_slots_at_least_once"); jobs16 && alo16 && *alo16 > 0)
    report.figure("jobs_per_s_16_slots_vs_at_least_once", *jobs16 / *alo16, "ratio", 3);
  if (dispatch && roundtrip)
    report.figure("dispatch_p50_vs_kafka_roundtrip_p50", *dispatch / *roundtrip, "ratio", 2);

  auto verdict = [](bool met) { return met ? "met" : "MISSED"; };
  if (jobs16)
    report.note(std::string("target: >= 1000 no-op jobs/s with 16 slots, exactly-once: ") +
                verdict(*jobs16 >= 1000));
  if (jobs16 && spawn)
    report.note(std::string("target: >= 0.5 of the spawn floor with 16 slots, exactly-once: ") +
                verdict(*jobs16 >= 0.5 * *spawn));
  if (dispatch)
    report.note(std::string("target: dispatch latency p50 <= 5 ms: ") + verdict(*dispatch <= 5));
  return 0;
}

}  // namespace
}  // namespace outpost::bench

int main(int argc, char** argv) {
  using namespace outpost::bench;
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  try {
    auto o = parseArgs(argc, argv);
    if (!o) return 2;
    return run(*o);
  } catch (const std::exception& e) {
    outpost::test_support::OutpostProcess::killAll();
    std::cerr << "outpost_bench: " << e.what() << std::endl;
    return 1;
  }
}
