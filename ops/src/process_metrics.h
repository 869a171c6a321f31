// The process's own metrics, named as every Prometheus client library names them
// (process_cpu_seconds_total, process_resident_memory_bytes, ...), read from /proc/self at each
// scrape. prometheus-cpp has no such collector, so it is written here (about 60 lines).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace outpost::ops {

class ProcessMetrics final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace outpost::ops
