// The worker's Prometheus metrics: one registry (prometheus-cpp) with the families below, plus the
// process's own (process_*), in the text exposition format. Names follow what operators of runners
// know (GitLab Runner's gitlab_runner_jobs and ..._job_duration_seconds, Temporal's
// worker_task_slots_*). Label values are bounded: a template label is one of the configured
// templates or "other", reasons and states are fixed words; never a run id, never a secret.
//
// The poll thread writes; the HTTP endpoint's thread scrapes. prometheus-cpp's metrics are safe
// for that.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Registry;
class Collectable;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace outpost::ops {

class Metrics {
 public:
  // The label values known up front, each shown at zero from the first scrape (so that rate()
  // and alerts work before anything happened).
  struct Known {
    std::set<std::string> templates;      // the only values the template label takes, with "other"
    std::vector<std::string_view> skips;  // commandSkipped's reasons
    std::vector<std::string_view> refusals;  // commandRejected's reasons
    // The reasons a signature is refused for (commandRejected, signatureWarning).
    std::vector<std::string_view> signature_checks;
    std::vector<std::string_view> commit_failures;  // setOffsetCommitFailures' classes
  };
  explicit Metrics(Known known);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // More values of the template label (a reload's new templates), shown at zero from now on.
  // Values are never removed: their series stay. Poll thread.
  void addTemplates(const std::set<std::string>& templates);

  // Everything, in the Prometheus text format (version 0.0.4).
  std::string scrape() const;

  // --- The run lifecycle, as it happens.
  // A run's process started, `schedule_to_start` seconds after its command's record timestamp.
  void runStarted(double schedule_to_start);
  // A run ended in `state` (succeeded, failed, timed_out, cancelled, rejected, expired), after
  // `duration` seconds of running (negative when it never started: no duration is observed).
  void runEnded(const std::string& tmpl, std::string_view state, double duration);
  // A command was read and not run, for `reason` (other_pool, already_ended).
  void commandSkipped(std::string_view reason);
  // security.commands is warn and a command that `require` would refuse for `reason` ran.
  void signatureWarning(std::string_view reason);
  // A command was refused (REJECTED, to the dead-letter topic), for a fixed-word `reason`.
  void commandRejected(std::string_view reason);
  // A record went to the dead-letter topic.
  void deadLettered();
  // The group's rebalance gave (`assigned`) or took (`revoked`, `lost`) partitions.
  void rebalance(std::string_view kind);

  // --- Now: set from the poll loop.
  void setJobs(std::size_t running, std::size_t queued);
  void setSlots(std::size_t used, std::size_t total);
  void setPausedPartitions(std::size_t n);
  // The other workers of the pool that have not stopped, by whether their lease holds.
  void setPoolWorkers(std::size_t held, std::size_t lapsed);
  // Records produced and not yet acknowledged by the broker (events, lineage, status).
  void setEventsBuffered(std::size_t n);
  // Commands not yet finished on each jobs partition this worker holds now; partitions it no
  // longer holds leave the scrape.
  void setConsumerLag(const std::map<std::int32_t, std::int64_t>& lag);

  // A lineage record the HTTP transport gave up on.
  void lineageHttpFailed();

  // --- Totals kept elsewhere (the transactional publisher, the secret resolver), copied in: each
  // counter moves up to the total it is given.
  void setTransactions(std::uint64_t committed, std::uint64_t aborted);
  // Offset commits of the jobs consumer that failed, by class (rebalance, coordinator, timeout,
  // other).
  void setOffsetCommitFailures(std::string_view failure_class, std::uint64_t total);
  // Records that had to wait in memory for room in the producer's queue (a long broker outage).
  void setRecordsWaitedForRoom(std::uint64_t total);
  // The poll thread spent `seconds` in a bounded wait of its own (restore, revoke).
  void pollThreadWaited(std::string_view wait, double seconds);
  void setSecretFetches(const std::string& provider, std::string_view outcome, std::uint64_t total);
  void setSecretCacheHits(std::uint64_t total);
  // Secret values masked in what left the worker (run output, events, lineage).
  void setRedactions(std::uint64_t total);

 private:
  const std::string& templateLabel(const std::string& tmpl) const;

  std::set<std::string> templates_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Collectable> process_;  // process_*
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Counter>& jobs_total_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Histogram& schedule_to_start_;
  prometheus::Family<prometheus::Gauge>& slots_;
  prometheus::Family<prometheus::Gauge>& pool_workers_;
  prometheus::Family<prometheus::Counter>& skipped_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Counter>& signature_warnings_;
  prometheus::Counter& dlq_;
  prometheus::Gauge& paused_;
  prometheus::Gauge& buffered_;
  prometheus::Family<prometheus::Counter>& transactions_;
  prometheus::Family<prometheus::Counter>& commit_failures_;
  prometheus::Family<prometheus::Counter>& poll_thread_waits_;
  prometheus::Counter& waited_for_room_;
  prometheus::Family<prometheus::Counter>& rebalances_;
  prometheus::Family<prometheus::Counter>& secret_fetches_;
  prometheus::Counter& cache_hits_;
  prometheus::Counter& lineage_http_failures_;
  prometheus::Family<prometheus::Gauge>& consumer_lag_;
  std::set<std::int32_t> lag_partitions_;  // those consumer_lag_ has a gauge for
  prometheus::Counter& redactions_;
};

}  // namespace outpost::ops
