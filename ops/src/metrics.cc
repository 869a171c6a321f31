#include "outpost/ops/metrics.h"

#include <iterator>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "process_metrics.h"

namespace outpost::ops {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

const std::string kOther = "other";

// Ingestion runs take from seconds to hours.
const prometheus::Histogram::BucketBoundaries kDurationBuckets = {
    0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600};
// From the command's record to its process: milliseconds when idle, minutes when queued.
const prometheus::Histogram::BucketBoundaries kScheduleBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900};

// Moves a counter up to `total` (a total kept elsewhere); never down.
void advance(prometheus::Counter& c, std::uint64_t total) {
  const double t = static_cast<double>(total);
  if (t > c.Value()) c.Increment(t - c.Value());
}

}  // namespace

Metrics::Metrics(Known known)
    : templates_(std::move(known.templates)),
      registry_(std::make_shared<prometheus::Registry>()),
      process_(std::make_unique<ProcessMetrics>()),
      jobs_(BuildGauge()
                .Name("outpost_jobs")
                .Help("Jobs on this worker now, by state (running, queued)")
                .Register(*registry_)),
      jobs_total_(BuildCounter()
                      .Name("outpost_jobs_total")
                      .Help("Jobs that ended, by template and terminal state")
                      .Register(*registry_)),
      duration_(BuildHistogram()
                    .Name("outpost_job_duration_seconds")
                    .Help("How long a job's process ran, by template")
                    .Register(*registry_)),
      schedule_to_start_(
          BuildHistogram()
              .Name("outpost_job_schedule_to_start_seconds")
              .Help("From the command's record timestamp to the start of the job's process")
              .Register(*registry_)
              .Add({}, kScheduleBuckets)),
      slots_(BuildGauge()
                 .Name("outpost_slots")
                 .Help("Job slots of this worker, by state (used, available)")
                 .Register(*registry_)),
      pool_workers_(BuildGauge()
                        .Name("outpost_pool_workers")
                        .Help("Other workers of this pool seen on the workers topic and not "
                              "stopped, by lease (held, lapsed: lost)")
                        .Register(*registry_)),
      skipped_(BuildCounter()
                   .Name("outpost_commands_skipped_total")
                   .Help("Commands read and not run, by reason (other_pool, already_ended)")
                   .Register(*registry_)),
      rejected_(BuildCounter()
                    .Name("outpost_rejected_total")
                    .Help("Commands refused (REJECTED, sent to the dead-letter topic), by reason")
                    .Register(*registry_)),
      signature_warnings_(BuildCounter()
                              .Name("outpost_signature_warnings_total")
                              .Help("Commands run although security.commands: require would have "
                                    "refused them (security.commands is warn), by reason")
                              .Register(*registry_)),
      dlq_(BuildCounter()
               .Name("outpost_dlq_total")
               .Help("Records written to the dead-letter topic")
               .Register(*registry_)
               .Add({})),
      paused_(
          BuildGauge()
              .Name("outpost_paused_partitions")
              .Help("Jobs partitions paused: every slot and the queue full, or the worker drained")
              .Register(*registry_)
              .Add({})),
      buffered_(BuildGauge()
                    .Name("outpost_events_buffered")
                    .Help("Records produced and not yet acknowledged by the broker")
                    .Register(*registry_)
                    .Add({})),
      transactions_(BuildCounter()
                        .Name("outpost_transactions_total")
                        .Help("Kafka transactions (exactly-once delivery), by outcome")
                        .Register(*registry_)),
      commit_failures_(BuildCounter()
                           .Name("outpost_offset_commit_failures_total")
                           .Help("Offset commits of the jobs consumer that failed, by class")
                           .Register(*registry_)),
      poll_thread_waits_(BuildCounter()
                             .Name("outpost_poll_thread_wait_seconds_total")
                             .Help("Seconds the poll thread spent in bounded waits, by wait "
                                   "(restore: the run state after a rebalance; reread: a lost "
                                   "worker's runs partitions read again; revoke: runs of "
                                   "revoked partitions)")
                             .Register(*registry_)),
      waited_for_room_(BuildCounter()
                           .Name("outpost_records_waited_for_room_total")
                           .Help("Records that waited in memory for room in the producer's queue")
                           .Register(*registry_)
                           .Add({})),
      rebalances_(BuildCounter()
                      .Name("outpost_rebalances_total")
                      .Help("Consumer group rebalances that reached this worker, by kind")
                      .Register(*registry_)),
      secret_fetches_(BuildCounter()
                          .Name("outpost_secret_fetches_total")
                          .Help("Secret fetches from a store (cache misses), by provider, outcome")
                          .Register(*registry_)),
      cache_hits_(BuildCounter()
                      .Name("outpost_secret_cache_hits_total")
                      .Help("Secret lookups answered from the cache")
                      .Register(*registry_)
                      .Add({})),
      lineage_http_failures_(BuildCounter()
                                 .Name("outpost_lineage_http_failures_total")
                                 .Help("Lineage records the HTTP transport could not deliver")
                                 .Register(*registry_)
                                 .Add({})),
      consumer_lag_(BuildGauge()
                        .Name("outpost_consumer_lag")
                        .Help("Commands on a jobs partition this worker holds not yet claimed "
                              "or ended (end offset from librdkafka statistics, minus the first "
                              "such command's)")
                        .Register(*registry_)),
      redactions_(BuildCounter()
                      .Name("outpost_redactions_total")
                      .Help("Secret values masked in output, events and lineage")
                      .Register(*registry_)
                      .Add({})) {
  // Present from the first scrape, so that rate() and absent() work before the first job.
  for (const char* state : {"running", "queued"}) jobs_.Add({{"state", state}});
  for (const char* state : {"used", "available"}) slots_.Add({{"state", state}});
  for (const char* lease : {"held", "lapsed"}) pool_workers_.Add({{"lease", lease}});
  for (const char* outcome : {"committed", "aborted"}) transactions_.Add({{"outcome", outcome}});
  for (const char* kind : {"assigned", "revoked", "lost"}) rebalances_.Add({{"kind", kind}});
  for (auto reason : known.skips) skipped_.Add({{"reason", std::string(reason)}});
  for (auto reason : known.refusals) rejected_.Add({{"reason", std::string(reason)}});
  for (auto reason : known.signature_checks) {
    rejected_.Add({{"reason", std::string(reason)}});
    signature_warnings_.Add({{"reason", std::string(reason)}});
  }
  for (auto c : known.commit_failures) commit_failures_.Add({{"class", std::string(c)}});
  for (const char* wait : {"restore", "reread", "revoke"}) poll_thread_waits_.Add({{"wait", wait}});
  auto all = std::move(templates_);
  all.insert(kOther);
  addTemplates(all);
}

void Metrics::addTemplates(const std::set<std::string>& templates) {
  for (const auto& t : templates) {
    if (!templates_.insert(t).second) continue;
    for (const char* state :
         {"succeeded", "failed", "timed_out", "cancelled", "rejected", "expired"}) {
      jobs_total_.Add({{"template", t}, {"state", state}});
    }
    duration_.Add({{"template", t}}, kDurationBuckets);
  }
}

Metrics::~Metrics() = default;

std::string Metrics::scrape() const {
  auto families = registry_->Collect();
  auto process = process_->Collect();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  return prometheus::TextSerializer().Serialize(families);
}

const std::string& Metrics::templateLabel(const std::string& tmpl) const {
  auto it = templates_.find(tmpl);
  return it == templates_.end() ? kOther : *it;
}

void Metrics::runStarted(double schedule_to_start) {
  schedule_to_start_.Observe(schedule_to_start < 0 ? 0 : schedule_to_start);
}

void Metrics::runEnded(const std::string& tmpl, std::string_view state, double duration) {
  const auto& t = templateLabel(tmpl);
  jobs_total_.Add({{"template", t}, {"state", std::string(state)}}).Increment();
  if (duration >= 0) duration_.Add({{"template", t}}, kDurationBuckets).Observe(duration);
}

void Metrics::commandSkipped(std::string_view reason) {
  skipped_.Add({{"reason", std::string(reason)}}).Increment();
}

void Metrics::signatureWarning(std::string_view reason) {
  signature_warnings_.Add({{"reason", std::string(reason)}}).Increment();
}

void Metrics::commandRejected(std::string_view reason) {
  rejected_.Add({{"reason", std::string(reason)}}).Increment();
}

void Metrics::deadLettered() {
  dlq_.Increment();
}

void Metrics::rebalance(std::string_view kind) {
  rebalances_.Add({{"kind", std::string(kind)}}).Increment();
}

void Metrics::setJobs(std::size_t running, std::size_t queued) {
  jobs_.Add({{"state", "running"}}).Set(static_cast<double>(running));
  jobs_.Add({{"state", "queued"}}).Set(static_cast<double>(queued));
}

void Metrics::setSlots(std::size_t used, std::size_t total) {
  slots_.Add({{"state", "used"}}).Set(static_cast<double>(used));
  slots_.Add({{"state", "available"}}).Set(static_cast<double>(total > used ? total - used : 0));
}

void Metrics::setPoolWorkers(std::size_t held, std::size_t lapsed) {
  pool_workers_.Add({{"lease", "held"}}).Set(static_cast<double>(held));
  pool_workers_.Add({{"lease", "lapsed"}}).Set(static_cast<double>(lapsed));
}

void Metrics::setPausedPartitions(std::size_t n) {
  paused_.Set(static_cast<double>(n));
}

void Metrics::setEventsBuffered(std::size_t n) {
  buffered_.Set(static_cast<double>(n));
}

void Metrics::setConsumerLag(const std::map<std::int32_t, std::int64_t>& lag) {
  for (auto it = lag_partitions_.begin(); it != lag_partitions_.end();) {
    if (lag.contains(*it)) {
      ++it;
      continue;
    }
    consumer_lag_.Remove(&consumer_lag_.Add({{"partition", std::to_string(*it)}}));
    it = lag_partitions_.erase(it);
  }
  for (auto [partition, n] : lag) {
    consumer_lag_.Add({{"partition", std::to_string(partition)}}).Set(static_cast<double>(n));
    lag_partitions_.insert(partition);
  }
}

void Metrics::setTransactions(std::uint64_t committed, std::uint64_t aborted) {
  advance(transactions_.Add({{"outcome", "committed"}}), committed);
  advance(transactions_.Add({{"outcome", "aborted"}}), aborted);
}

void Metrics::setOffsetCommitFailures(std::string_view failure_class, std::uint64_t total) {
  advance(commit_failures_.Add({{"class", std::string(failure_class)}}), total);
}

void Metrics::pollThreadWaited(std::string_view wait, double seconds) {
  poll_thread_waits_.Add({{"wait", std::string(wait)}}).Increment(seconds);
}

void Metrics::setRecordsWaitedForRoom(std::uint64_t total) {
  advance(waited_for_room_, total);
}

void Metrics::setSecretFetches(const std::string& provider, std::string_view outcome,
                               std::uint64_t total) {
  advance(secret_fetches_.Add({{"provider", provider}, {"outcome", std::string(outcome)}}), total);
}

void Metrics::setSecretCacheHits(std::uint64_t total) {
  advance(cache_hits_, total);
}

void Metrics::setRedactions(std::uint64_t total) {
  advance(redactions_, total);
}

void Metrics::lineageHttpFailed() {
  lineage_http_failures_.Increment();
}

}  // namespace outpost::ops
