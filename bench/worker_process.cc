#include "worker_process.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "outpost/common/proc_stat.h"

namespace outpost::bench {
namespace {

namespace fs = std::filesystem;

double ticksToMs(unsigned long long ticks) {
  return static_cast<double>(ticks) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

namespace {

CpuTimes cpuFromStat(const std::string& path) {
  const auto f = procStatFields(path);
  if (f.size() < 15) return {};
  // utime, stime, cutime, cstime are fields 14-17, i.e. f[11..14].
  CpuTimes t;
  t.self_ms = ticksToMs(std::stoull(f[11]) + std::stoull(f[12]));
  t.children_ms = ticksToMs(std::stoull(f[13]) + std::stoull(f[14]));
  return t;
}

}  // namespace

CpuTimes processCpu(pid_t pid) {
  return cpuFromStat("/proc/" + std::to_string(pid) + "/stat");
}

std::vector<ThreadCpu> threadCpu(pid_t pid) {
  std::vector<ThreadCpu> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    ThreadCpu t;
    t.tid = static_cast<pid_t>(std::stoi(entry.path().filename().string()));
    std::ifstream comm(entry.path() / "comm");
    std::getline(comm, t.name);
    t.ms = cpuFromStat((entry.path() / "stat").string()).self_ms;
    out.push_back(std::move(t));
  }
  return out;
}

ProcessStatus processStatus(pid_t pid) {
  ProcessStatus st;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    auto value = [&] { return std::stod(line.substr(line.find(':') + 1)); };
    if (line.starts_with("VmRSS:")) st.rss_mb = value() / 1024;
    if (line.starts_with("VmHWM:")) st.peak_rss_mb = value() / 1024;
    if (line.starts_with("Threads:")) st.threads = static_cast<int>(value());
  }
  return st;
}

MachineCpu machineCpu() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;  // "cpu": the sum over all cores
  unsigned long long v[8] = {};
  for (auto& x : v) in >> x;
  MachineCpu m;
  for (auto x : v) m.total += x;
  m.busy = m.total - v[3] - v[4];  // minus idle and iowait
  return m;
}

WorkerProcess::WorkerProcess(Options o) {
  char tmpl[] = "/tmp/outpost-bench-worker.XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  if (o.kind.reference) {
    // The same topics, group, slots and template, through `env` so that the pid is Python's.
    std::vector<std::string> args = {"PYTHONPATH=" PROTO_PYTHON_DIR,
                                     "/usr/bin/python3",
                                     REFERENCE_EXECUTOR,
                                     "--bootstrap",
                                     o.bootstrap,
                                     "--prefix",
                                     o.prefix,
                                     "--group",
                                     "outpost." + o.pool,
                                     "--worker-id",
                                     o.pool,
                                     "--slots",
                                     std::to_string(o.slots),
                                     "--template",
                                     "noop=" + o.noop};
    args.insert(args.end(), o.reference_args.begin(), o.reference_args.end());
    process_ = std::make_unique<test_support::OutpostProcess>(test_support::OutpostProcess::Options{
        .binary = "/usr/bin/env",
        .args = std::move(args),
        .log_path = dir_ + "/worker.log",
        .wrapper = {},
    });
    return;
  }
  {
    // The worker's defaults except what the benchmark needs: its topics, its pool, the slots, the
    // delivery mode, lineage on or off, and one template that runs the no-op program directly
    // (no shell), without a recipe file.
    std::ofstream cfg(dir_ + "/outpost.yaml");
    cfg << "worker:\n"
        << "  id: " << (o.id.empty() ? o.pool : o.id) << "\n"
        << "  pool: " << o.pool << "\n"
        << "  slots: " << o.slots << "\n"
        << "  delivery: " << o.kind.delivery << "\n"
        << "  work_dir: " << dir_ << "/runs\n"
        << "  drain_timeout: 30s\n"
        << o.worker_yaml << "kafka:\n"
        << "  bootstrap_servers: " << o.bootstrap << "\n"
        << o.kafka_yaml
        << "topics:\n"
        << "  prefix: " << o.prefix << "\n"
        << "http:\n"
        << "  listen: 127.0.0.1:0\n"
        << "log:\n"
        << "  format: text\n"
        << "lineage:\n"
        << "  enabled: " << (o.kind.lineage ? "true" : "false") << "\n"
        << "templates:\n"
        << "  noop:\n"
        << "    argv: [" << o.noop << "]\n"
        << "    recipe: none\n"
        << "    timeout: 1m\n"
        << o.templates_yaml << o.extra_yaml;
  }
  std::vector<std::string> wrapper;
  if (const char* prefix = std::getenv("OUTPOST_BENCH_WORKER_PREFIX")) {
    std::istringstream ss(prefix);
    for (std::string w; ss >> w;) wrapper.push_back(w);
  }
  // The benchmark's environment goes through, so OUTPOST_* overrides reach the worker.
  process_ = std::make_unique<test_support::OutpostProcess>(test_support::OutpostProcess::Options{
      .binary = o.binary,
      .args = {"run", "-c", dir_ + "/outpost.yaml"},
      .log_path = dir_ + "/worker.log",
      .wrapper = std::move(wrapper),
  });
}

WorkerProcess::~WorkerProcess() {
  process_.reset();  // kills it if it still runs
  if (!std::getenv("OUTPOST_BENCH_KEEP")) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

}  // namespace outpost::bench
