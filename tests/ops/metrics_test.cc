// ops::Metrics as a scrape shows it: names, bounded labels, values.
#include "outpost/ops/metrics.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace outpost::ops {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::optional<double> sample(const std::string& scrape, const std::string& series) {
  std::istringstream in(scrape);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

Metrics::Known known(std::set<std::string> templates) {
  Metrics::Known k;
  k.templates = std::move(templates);
  k.skips = {"other_pool", "already_ended"};
  k.refusals = {"undecodable", "unknown_template"};
  k.commit_failures = {"rebalance", "other"};
  return k;
}

TEST(Metrics, EveryFamilyIsThereBeforeAnyJobWithHelpAndType) {
  Metrics m(known({"ingest"}));
  auto s = m.scrape();
  for (const char* family :
       {"outpost_jobs", "outpost_jobs_total", "outpost_job_duration_seconds",
        "outpost_job_schedule_to_start_seconds", "outpost_slots", "outpost_commands_skipped_total",
        "outpost_rejected_total", "outpost_dlq_total", "outpost_paused_partitions",
        "outpost_events_buffered", "outpost_transactions_total", "outpost_rebalances_total",
        "outpost_secret_cache_hits_total", "outpost_lineage_http_failures_total",
        "outpost_redactions_total", "outpost_offset_commit_failures_total",
        "outpost_poll_thread_wait_seconds_total", "outpost_records_waited_for_room_total",
        "process_cpu_seconds_total", "process_resident_memory_bytes",
        "process_start_time_seconds", "process_open_fds"}) {
    EXPECT_THAT(s, HasSubstr(std::string("# HELP ") + family + " ")) << family;
    EXPECT_THAT(s, HasSubstr(std::string("# TYPE ") + family + " ")) << family;
  }
  // Every known label value, at zero.
  EXPECT_EQ(sample(s, "outpost_jobs{state=\"running\"}"), 0);
  EXPECT_EQ(sample(s, "outpost_transactions_total{outcome=\"aborted\"}"), 0);
  EXPECT_EQ(sample(s, "outpost_jobs_total{state=\"timed_out\",template=\"ingest\"}"), 0);
  EXPECT_EQ(sample(s, "outpost_jobs_total{state=\"rejected\",template=\"other\"}"), 0);
  EXPECT_EQ(sample(s, "outpost_job_duration_seconds_count{template=\"ingest\"}"), 0);
  EXPECT_EQ(sample(s, "outpost_rejected_total{reason=\"unknown_template\"}"), 0);
  EXPECT_EQ(sample(s, "outpost_commands_skipped_total{reason=\"already_ended\"}"), 0);
  EXPECT_EQ(sample(s, "outpost_rebalances_total{kind=\"lost\"}"), 0);
  EXPECT_EQ(sample(s, "outpost_offset_commit_failures_total{class=\"rebalance\"}"), 0);
  EXPECT_EQ(sample(s, "outpost_poll_thread_wait_seconds_total{wait=\"restore\"}"), 0);
  // Secret fetches appear per provider and outcome as they happen; lag per partition held.
  EXPECT_THAT(s, Not(HasSubstr("outpost_secret_fetches_total")));
  EXPECT_THAT(s, Not(HasSubstr("outpost_consumer_lag")));
}

TEST(Metrics, AJobTypeThatIsNotATemplateIsCountedAsOther) {
  Metrics m(known({"ingest"}));
  m.runEnded("ingest", "succeeded", 2.5);
  m.runEnded("ingest; rm -rf /", "rejected", -1);
  m.runEnded("another-unknown", "rejected", -1);
  auto s = m.scrape();
  EXPECT_EQ(sample(s, "outpost_jobs_total{state=\"succeeded\",template=\"ingest\"}"), 1);
  EXPECT_EQ(sample(s, "outpost_jobs_total{state=\"rejected\",template=\"other\"}"), 2);
  EXPECT_THAT(s, Not(HasSubstr("rm -rf"))) << "a command's text never becomes a label value";
  EXPECT_THAT(s, Not(HasSubstr("another-unknown")));
}

// A reload's new template gets its own series from then on; what was counted stays.
TEST(Metrics, TemplatesAddedByAReloadGetTheirOwnLabel) {
  Metrics m(known({"ingest"}));
  m.runEnded("profile", "succeeded", 1);
  m.addTemplates({"ingest", "profile"});
  EXPECT_EQ(sample(m.scrape(), "outpost_jobs_total{state=\"failed\",template=\"profile\"}"), 0)
      << "shown at zero once known";
  m.runEnded("profile", "succeeded", 1);
  auto s = m.scrape();
  EXPECT_EQ(sample(s, "outpost_jobs_total{state=\"succeeded\",template=\"profile\"}"), 1);
  EXPECT_EQ(sample(s, "outpost_jobs_total{state=\"succeeded\",template=\"other\"}"), 1);
  EXPECT_EQ(sample(s, "outpost_job_duration_seconds_count{template=\"profile\"}"), 1);
}

TEST(Metrics, DurationsAreObservedOnlyForRunsThatRan) {
  Metrics m(known({"ingest"}));
  m.runEnded("ingest", "succeeded", 2.5);
  m.runEnded("ingest", "expired", -1);
  auto s = m.scrape();
  EXPECT_EQ(sample(s, "outpost_job_duration_seconds_count{template=\"ingest\"}"), 1);
  EXPECT_EQ(sample(s, "outpost_job_duration_seconds_sum{template=\"ingest\"}"), 2.5);
  EXPECT_EQ(sample(s, "outpost_job_duration_seconds_bucket{template=\"ingest\",le=\"5\"}"), 1);
  EXPECT_EQ(sample(s, "outpost_job_duration_seconds_bucket{template=\"ingest\",le=\"1\"}"), 0);
}

TEST(Metrics, ScheduleToStartIsObservedAndANegativeGapCountsAsZero) {
  Metrics m(known({}));
  m.runStarted(0.02);
  m.runStarted(-0.5);  // clocks of producer and worker disagree
  auto s = m.scrape();
  EXPECT_EQ(sample(s, "outpost_job_schedule_to_start_seconds_count"), 2);
  EXPECT_EQ(sample(s, "outpost_job_schedule_to_start_seconds_bucket{le=\"0.005\"}"), 1);
}

TEST(Metrics, SlotsAndJobsAreWhatWasLastSet) {
  Metrics m(known({}));
  m.setSlots(3, 4);
  m.setJobs(3, 7);
  m.setSlots(1, 4);
  auto s = m.scrape();
  EXPECT_EQ(sample(s, "outpost_slots{state=\"used\"}"), 1);
  EXPECT_EQ(sample(s, "outpost_slots{state=\"available\"}"), 3);
  EXPECT_EQ(sample(s, "outpost_jobs{state=\"queued\"}"), 7);
}

TEST(Metrics, TotalsCopiedInOnlyEverMoveUp) {
  Metrics m(known({}));
  m.setTransactions(5, 1);
  m.setTransactions(3, 1);  // a total never goes back; a counter must not either
  m.setSecretFetches("vault", "ok", 2);
  m.setSecretFetches("vault", "ok", 4);
  m.setSecretCacheHits(10);
  m.setRedactions(3);
  m.setRedactions(2);
  auto s = m.scrape();
  EXPECT_EQ(sample(s, "outpost_redactions_total"), 3);
  EXPECT_EQ(sample(s, "outpost_transactions_total{outcome=\"committed\"}"), 5);
  EXPECT_EQ(sample(s, "outpost_secret_fetches_total{outcome=\"ok\",provider=\"vault\"}"), 4);
  EXPECT_EQ(sample(s, "outpost_secret_cache_hits_total"), 10);
}

TEST(Metrics, RefusalsSkipsDeadLettersAndRebalancesCountByReason) {
  Metrics m(known({}));
  m.commandRejected("unknown_template");
  m.commandRejected("unknown_template");
  m.commandSkipped("other_pool");
  m.deadLettered();
  m.rebalance("assigned");
  m.lineageHttpFailed();
  auto s = m.scrape();
  EXPECT_EQ(sample(s, "outpost_rejected_total{reason=\"unknown_template\"}"), 2);
  EXPECT_EQ(sample(s, "outpost_commands_skipped_total{reason=\"other_pool\"}"), 1);
  EXPECT_EQ(sample(s, "outpost_dlq_total"), 1);
  EXPECT_EQ(sample(s, "outpost_rebalances_total{kind=\"assigned\"}"), 1);
  EXPECT_EQ(sample(s, "outpost_lineage_http_failures_total"), 1);
}

TEST(Metrics, LagIsShownOnlyForThePartitionsHeldNow) {
  Metrics m(known({}));
  m.setConsumerLag({{0, 4}, {1, 0}});
  auto s = m.scrape();
  EXPECT_EQ(sample(s, "outpost_consumer_lag{partition=\"0\"}"), 4);
  EXPECT_EQ(sample(s, "outpost_consumer_lag{partition=\"1\"}"), 0);
  m.setConsumerLag({{1, 2}});  // partition 0 was revoked
  s = m.scrape();
  EXPECT_EQ(sample(s, "outpost_consumer_lag{partition=\"0\"}"), std::nullopt);
  EXPECT_EQ(sample(s, "outpost_consumer_lag{partition=\"1\"}"), 2);
}

TEST(Metrics, TheProcessReportsItsOwnMemoryAndStart) {
  Metrics m(known({}));
  auto s = m.scrape();
  EXPECT_GT(sample(s, "process_resident_memory_bytes").value_or(0), 1e5);
  EXPECT_GT(sample(s, "process_open_fds").value_or(0), 2);
  EXPECT_NEAR(sample(s, "process_start_time_seconds").value_or(0),
              static_cast<double>(std::time(nullptr)), 3600);
}

}  // namespace
}  // namespace outpost::ops
