#include "process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "outpost/common/proc_stat.h"

namespace outpost::ops {
namespace {

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return {std::move(name), std::move(help), type, {m}};
}

// Seconds since the epoch at which the machine booted (btime in /proc/stat).
double bootTime() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double t = 0;
      in >> t;
      return t;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessMetrics::Collect() const {
  const auto f = procStatFields("/proc/self/stat");
  if (f.size() < 22) return {};
  // Field n of proc(5) is f[n - 3]: utime 14, stime 15, num_threads 20, starttime 22, vsize 23,
  // rss 24 (pages).
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  const double start = bootTime() + std::stod(f[19]) / ticks;
  const double vsize = std::stod(f[20]);
  const double rss = std::stod(f[21]) * static_cast<double>(sysconf(_SC_PAGESIZE));
  std::error_code ec;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);

  using prometheus::MetricType;
  return {
      family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
             MetricType::Counter, cpu),
      family("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
             rss),
      family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
             vsize),
      family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
             MetricType::Gauge, start),
      family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, fds),
      family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
             static_cast<double>(limit.rlim_cur)),
      family("process_threads", "Number of OS threads in the process.", MetricType::Gauge,
             std::stod(f[17])),
  };
}

}  // namespace outpost::ops
