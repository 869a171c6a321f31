// RunStore against the real broker: restoring run state from the runs topic for the partitions a
// worker is assigned (only those, latest record per run_id, read_committed), the partition-count
// check, and attempts carrying across workers that are lost one after the other.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"
#include "kafka_testing.h"
#include "outpost/consumer/run_store.h"

namespace outpost::consumer {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Verdict = AttemptDecision::Verdict;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kRestoreTimeout = seconds(30);

struct Deleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
  void operator()(rd_kafka_topic_partition_list_t* p) const {
    rd_kafka_topic_partition_list_destroy(p);
  }
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
  void operator()(rd_kafka_error_t* p) const { rd_kafka_error_destroy(p); }
};
using Handle = std::unique_ptr<rd_kafka_t, Deleter>;
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, Deleter>;

Handle client(rd_kafka_type_t type, const std::map<std::string, std::string>& props,
              void (*on_delivery)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr,
              void* opaque = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("test client config " + k + ": " + err);
    }
  };
  set("bootstrap.servers", test::bootstrap());
  set("log_level", "3");
  for (const auto& [k, v] : props) set(k, v);
  if (on_delivery) rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  if (opaque) rd_kafka_conf_set_opaque(conf, opaque);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("test client: ") + err);
  }
  return Handle(rk);
}

// Waits until the broker's metadata shows `topic` with `partitions` partitions, each with a
// leader (creation returns before that), so that tests see the topic as a worker would later.
void waitUntilVisible(const std::string& topic, int partitions) {
  auto rk = client(RD_KAFKA_PRODUCER, {});
  EXPECT_EQ(kafka_testing::readablePartitions(rk.get(), topic).size(),
            static_cast<std::size_t>(partitions))
      << "topic " << topic;
}

// Topics one test creates, deleted when it ends.
class ScopedTopics {
 public:
  ~ScopedTopics() {
    if (names_.empty()) return;
    try {
      auto admin = client(RD_KAFKA_PRODUCER, {});
      std::vector<rd_kafka_DeleteTopic_t*> topics;
      for (const auto& n : names_) topics.push_back(rd_kafka_DeleteTopic_new(n.c_str()));
      std::unique_ptr<rd_kafka_queue_t, Deleter> q(rd_kafka_queue_new(admin.get()));
      rd_kafka_DeleteTopics(admin.get(), topics.data(), topics.size(), nullptr, q.get());
      std::unique_ptr<rd_kafka_event_t, Deleter> ev(rd_kafka_queue_poll(q.get(), 30000));
      rd_kafka_DeleteTopic_destroy_array(topics.data(), topics.size());
    } catch (const std::exception&) {
      // Left behind: unique names, so no other test trips over them.
    }
  }
  std::string create(const std::string& stem, int partitions, bool compacted = false) {
    auto name = test::uniqueName("ct-runs-" + stem);
    test::createTopic(name, partitions,
                      compacted ? std::map<std::string, std::string>{{"cleanup.policy", "compact"}}
                                : std::map<std::string, std::string>{});
    names_.push_back(name);
    waitUntilVisible(name, partitions);
    return name;
  }

 private:
  std::vector<std::string> names_;
};

// A producer writing RunStore records where they say (explicit partition), plain or
// transactional; every write is acknowledged or fails the test.
class RecordWriter {
 public:
  explicit RecordWriter(const std::string& transactional_id = "") {
    std::map<std::string, std::string> props = {{"linger.ms", "0"}};
    if (!transactional_id.empty()) props["transactional.id"] = transactional_id;
    rk_ = client(RD_KAFKA_PRODUCER, props, &RecordWriter::onDelivery, this);
    if (!transactional_id.empty()) check(rd_kafka_init_transactions(rk_.get(), 30000), "init");
  }

  void write(const events::OutRecord& r) { send(r.topic, r.partition, r.key, &r.value); }
  void tombstone(const std::string& topic, std::int32_t partition, const std::string& key) {
    send(topic, partition, key, nullptr);
  }
  void writeRaw(const std::string& topic, std::int32_t partition, const std::string& key,
                const std::string& value) {
    send(topic, partition, key, &value);
  }
  // Waits for every acknowledgement (plain producer).
  void flush() {
    ASSERT_EQ(rd_kafka_flush(rk_.get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_EQ(failed_.load(), 0) << "a record was not delivered";
  }
  void begin() { check(rd_kafka_begin_transaction(rk_.get()), "begin"); }
  void commit() { check(rd_kafka_commit_transaction(rk_.get(), 30000), "commit"); }
  void abort() { check(rd_kafka_abort_transaction(rk_.get(), 30000), "abort"); }

 private:
  static void onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err) static_cast<RecordWriter*>(opaque)->failed_++;
  }
  void send(const std::string& topic, std::int32_t partition, const std::string& key,
            const std::string* value) {
    auto err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(value ? const_cast<char*>(value->data()) : nullptr,
                         value ? value->size() : 0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
  }
  static void check(rd_kafka_error_t* raw, const char* what) {
    ErrorPtr e(raw);
    ASSERT_FALSE(e) << "transaction " << what << ": " << rd_kafka_error_string(e.get());
  }

  Handle rk_;
  std::atomic<int> failed_{0};
};

// Commits `offsets` of `topic` for `group`, as the jobs consumer does once commands are done.
void commitGroupOffsets(const std::string& group, const std::string& topic,
                        const std::map<std::int32_t, std::int64_t>& offsets) {
  auto rk = client(RD_KAFKA_CONSUMER, {{"group.id", group}, {"enable.auto.commit", "false"}});
  std::unique_ptr<rd_kafka_topic_partition_list_t, Deleter> list(
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [p, o] : offsets)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = o;
  ASSERT_EQ(rd_kafka_commit(rk.get(), list.get(), 0), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_consumer_close(rk.get());
}

v1::JobCommand command(const std::string& run_id, std::uint32_t attempt = 1) {
  v1::JobCommand c;
  c.set_run_id(run_id);
  c.set_job_id("job-" + run_id);
  c.set_job_type("echo");
  c.set_attempt(attempt);
  return c;
}

const auto kNow = std::chrono::system_clock::time_point(milliseconds(1'700'000'000'000));

class RunStoreTest : public ::testing::Test {
 protected:
  // Creates a jobs topic and a runs topic with these partition counts.
  void makeTopics(int jobs_partitions, int runs_partitions) {
    jobs_ = topics_.create("jobs", jobs_partitions);
    runs_ = topics_.create("runs", runs_partitions, /*compacted=*/true);
  }

  std::unique_ptr<RunStore> store(const std::string& client = "test") {
    KafkaConfig kafka;
    kafka.bootstrap_servers = test::bootstrap();
    kafka.properties["log_level"] = "3";
    return std::make_unique<RunStore>(kafka, RunStoreOptions{runs_, jobs_, group_, client});
  }

  // The record a worker writes before starting `run_id`, read from jobs[partition]@offset.
  v1::RunRecord started(const std::string& run_id, std::int32_t partition, std::int64_t offset,
                        std::uint32_t starts = 1, const std::string& worker = "w-1") {
    AttemptDecision a;
    a.starts = starts;
    return RunStore::startRecord(command(run_id), a, {jobs_, partition}, offset, worker, kNow);
  }
  v1::RunRecord ended(const std::string& run_id, std::int32_t partition, std::int64_t offset,
                      v1::RunState state, std::uint32_t starts = 1,
                      const std::string& worker = "w-1") {
    return RunStore::endRecord(command(run_id), starts, state, {jobs_, partition}, offset, worker,
                               kNow);
  }

  ScopedTopics topics_;
  std::string jobs_, runs_;
  std::string group_ = test::uniqueName("outpost.ct-runs");
};

TEST_F(RunStoreTest, RestoresOnlyTheAssignedPartitions) {
  makeTopics(3, 3);
  auto s = store();
  RecordWriter w;
  w.write(s->toOutRecord(started("run-a", 0, 10)));
  w.write(s->toOutRecord(started("run-b", 1, 11)));
  w.write(s->toOutRecord(ended("run-c", 2, 12, v1::SUCCEEDED)));
  w.flush();

  auto stats = s->restore({0, 2}, kRestoreTimeout);
  ASSERT_TRUE(stats) << stats.error();
  EXPECT_EQ(stats->partitions, 2u);
  EXPECT_EQ(stats->records, 2u);
  EXPECT_EQ(stats->kept, 2u);
  ASSERT_NE(s->find("run-a"), nullptr);
  EXPECT_EQ(s->find("run-a")->state(), v1::STARTED);
  EXPECT_EQ(s->find("run-a")->source().offset(), 10);
  EXPECT_EQ(s->find("run-b"), nullptr) << "partition 1 was not assigned";
  ASSERT_NE(s->find("run-c"), nullptr);
  EXPECT_EQ(s->find("run-c")->state(), v1::SUCCEEDED);

  // Partition 0 goes away; 2 stays. Then 1 comes.
  s->forget({0});
  EXPECT_EQ(s->find("run-a"), nullptr);
  EXPECT_NE(s->find("run-c"), nullptr);
  {
    auto r = s->restore({1}, kRestoreTimeout);
    ASSERT_TRUE(r) << r.error();
  }
  EXPECT_NE(s->find("run-b"), nullptr);
  EXPECT_NE(s->find("run-c"), nullptr);
  EXPECT_EQ(s->size(), 2u);
}

TEST_F(RunStoreTest, TheLastRecordOfARunWinsAndTombstonesAndGarbageAreNotRuns) {
  makeTopics(1, 1);
  auto s = store();
  auto out = s->toOutRecord(started("run-x", 0, 5));
  EXPECT_EQ(out.topic, runs_);
  EXPECT_EQ(out.partition, 0);
  EXPECT_EQ(out.key, "run-x");
  RecordWriter w;
  w.write(out);
  w.write(s->toOutRecord(started("run-x", 0, 5, /*starts=*/2, "w-2")));
  w.write(s->toOutRecord(ended("run-x", 0, 5, v1::TIMED_OUT, 2, "w-2")));
  w.write(s->toOutRecord(started("run-y", 0, 6)));
  w.write(s->toOutRecord(started("run-z", 0, 7)));
  w.tombstone(runs_, 0, "run-z");
  w.writeRaw(runs_, 0, "junk", "\xff\xff\xff not a RunRecord");
  w.flush();

  auto stats = s->restore({0}, kRestoreTimeout);
  ASSERT_TRUE(stats) << stats.error();
  EXPECT_EQ(stats->records, 7u);
  EXPECT_EQ(stats->undecodable, 1u);
  EXPECT_EQ(stats->kept, 2u);
  const auto* x = s->find("run-x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->state(), v1::TIMED_OUT);
  EXPECT_EQ(x->starts(), 2u);
  EXPECT_EQ(x->worker_id(), "w-2");
  ASSERT_NE(s->find("run-y"), nullptr);
  EXPECT_EQ(s->find("run-y")->state(), v1::STARTED);
  EXPECT_EQ(s->find("run-z"), nullptr) << "tombstoned";
  EXPECT_EQ(s->find("junk"), nullptr);
}

TEST_F(RunStoreTest, EmptyPartitionsRestoreToNothing) {
  makeTopics(3, 3);
  auto s = store();
  auto none = s->restore({}, kRestoreTimeout);
  ASSERT_TRUE(none) << none.error();
  EXPECT_EQ(none->partitions, 0u);

  auto empty = s->restore({0, 1, 2}, kRestoreTimeout);
  ASSERT_TRUE(empty) << empty.error();
  EXPECT_EQ(empty->partitions, 3u);
  EXPECT_EQ(empty->records, 0u);
  EXPECT_EQ(s->size(), 0u);

  // One partition written, the others still empty (their end is 0).
  RecordWriter w;
  w.write(s->toOutRecord(started("run-1", 1, 0)));
  w.flush();
  auto some = s->restore({0, 1, 2}, kRestoreTimeout);
  ASSERT_TRUE(some) << some.error();
  EXPECT_EQ(some->records, 1u);
  EXPECT_NE(s->find("run-1"), nullptr);
}

TEST_F(RunStoreTest, AbortedAndOpenTransactionsAreNotRestored) {
  makeTopics(1, 1);
  auto s = store();
  RecordWriter tx(test::uniqueName("ct-runs-tx"));
  tx.begin();
  tx.write(s->toOutRecord(started("run-kept", 0, 1)));
  tx.commit();
  tx.begin();
  tx.write(s->toOutRecord(ended("run-kept", 0, 1, v1::SUCCEEDED)));
  tx.write(s->toOutRecord(started("run-aborted", 0, 2)));
  ASSERT_NO_FATAL_FAILURE(tx.flush());  // on the broker, so there is something to leave out
  tx.abort();

  // The partition now ends with an abort marker, which is never delivered as a message.
  auto stats = s->restore({0}, kRestoreTimeout);
  ASSERT_TRUE(stats) << stats.error();
  ASSERT_NE(s->find("run-kept"), nullptr);
  EXPECT_EQ(s->find("run-kept")->state(), v1::STARTED) << "the aborted end record was restored";
  EXPECT_EQ(s->find("run-aborted"), nullptr);
  EXPECT_EQ(stats->records, 1u);

  // A transaction still open: not visible, and the restore does not wait for it.
  tx.begin();
  tx.write(s->toOutRecord(started("run-open", 0, 3)));
  ASSERT_NO_FATAL_FAILURE(tx.flush());  // on the broker, not committed
  auto open = s->restore({0}, kRestoreTimeout);
  ASSERT_TRUE(open) << open.error();
  EXPECT_EQ(s->find("run-open"), nullptr);
  EXPECT_NE(s->find("run-kept"), nullptr);
  tx.commit();
  auto after = s->restore({0}, kRestoreTimeout);
  ASSERT_TRUE(after) << after.error();
  EXPECT_NE(s->find("run-open"), nullptr);
}

// Ends of commands below the committed offset are not needed; claims are, wherever their command
// was: their runs are running (or their worker was lost).
TEST_F(RunStoreTest, EndsBelowTheCommittedOffsetAreNotKeptClaimsAre) {
  makeTopics(2, 2);
  commitGroupOffsets(group_, jobs_, {{0, 5}});
  auto s = store();
  RecordWriter w;
  w.write(s->toOutRecord(ended("run-done", 0, 3, v1::SUCCEEDED)));
  w.write(s->toOutRecord(started("run-claimed", 0, 2)));
  w.write(s->toOutRecord(ended("run-late", 0, 7, v1::FAILED)));
  w.write(s->toOutRecord(ended("run-p1", 1, 0, v1::FAILED)));  // partition 1: nothing committed
  w.flush();

  auto stats = s->restore({0, 1}, kRestoreTimeout);
  ASSERT_TRUE(stats) << stats.error();
  EXPECT_EQ(stats->committed, 1u);
  EXPECT_EQ(stats->kept, 3u);
  EXPECT_EQ(s->find("run-done"), nullptr);
  EXPECT_NE(s->find("run-claimed"), nullptr);
  EXPECT_NE(s->find("run-late"), nullptr);

  // The worker commits past run-late: its record is no longer needed; partition 1 is untouched.
  s->forgetCommitted(0, 8);
  EXPECT_EQ(s->find("run-late"), nullptr);
  EXPECT_NE(s->find("run-claimed"), nullptr);
  EXPECT_NE(s->find("run-p1"), nullptr);
}

TEST_F(RunStoreTest, ClaimsAreTheStartedRecordsWithTheirCommandButThisIncarnations) {
  makeTopics(2, 2);
  auto s = store();
  RecordWriter w;
  auto mine = started("run-mine", 0, 1, 1, "w-self");
  mine.set_incarnation("inc-now");
  auto earlier = started("run-earlier", 0, 2, 1, "w-self");
  earlier.set_incarnation("inc-before");
  auto legacy = started("run-legacy", 1, 3, 1, "w-2");
  legacy.clear_command();
  for (const auto& r : {mine, earlier, legacy, started("run-other", 1, 4, 1, "w-2"),
                        ended("run-ended", 0, 5, v1::SUCCEEDED)}) {
    w.write(s->toOutRecord(r));
  }
  w.flush();
  ASSERT_TRUE(s->restore({0, 1}, kRestoreTimeout));
  std::vector<std::string> ids;
  for (const auto& c : s->claims("w-self", "inc-now")) ids.push_back(c.run_id + "@" + c.worker_id);
  EXPECT_THAT(ids, ElementsAre("run-earlier@w-self", "run-other@w-2"));

  // A run that went on after its partition went away: its end is the next owner's to read.
  s->forget({1});
  s->remember(ended("run-other", 1, 4, v1::SUCCEEDED));
  EXPECT_EQ(s->find("run-other"), nullptr);
}

TEST_F(RunStoreTest, ARunsTopicWithFewerPartitionsThanJobsIsAnErrorNamingTheFix) {
  makeTopics(3, 2);
  auto s = store();
  auto check = s->checkTopics(kRestoreTimeout);
  ASSERT_FALSE(check);
  EXPECT_THAT(check.error(), AllOf(HasSubstr("'" + runs_ + "'"), HasSubstr("'" + jobs_ + "'"),
                                   HasSubstr("2 partition(s)"), HasSubstr("the 3 of"),
                                   HasSubstr("--partitions 3"), HasSubstr("topics.runs")));

  // Jobs partition 2 has no runs partition to restore from.
  s->remember(started("run-2", 2, 0));
  auto restored = s->restore({2}, kRestoreTimeout);
  ASSERT_FALSE(restored);
  EXPECT_THAT(restored.error(), AllOf(HasSubstr("no partition 2"), HasSubstr(runs_)));
  EXPECT_EQ(s->find("run-2"), nullptr) << "what was known for the partition stays unknown";
}

TEST_F(RunStoreTest, CheckTopicsAcceptsEnoughPartitionsAndNamesAMissingRunsTopic) {
  makeTopics(2, 3);
  EXPECT_TRUE(store()->checkTopics(kRestoreTimeout));

  // Waited for (it may be on its way) as long as the timeout allows, then reported.
  runs_ = test::uniqueName("ct-runs-missing");
  auto missing = store()->checkTopics(seconds(1));
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error(), AllOf(HasSubstr(runs_), HasSubstr("does not exist"),
                                     HasSubstr("cleanup.policy=compact"), HasSubstr("(2)")));
}

TEST_F(RunStoreTest, ARestoreThatCannotFinishLeavesItsPartitionsUnknown) {
  makeTopics(2, 2);
  auto s = store();
  RecordWriter w;
  w.write(s->toOutRecord(started("run-0", 0, 0)));
  w.flush();
  s->remember(started("run-old", 0, 1));
  s->remember(started("run-other", 1, 1));
  auto r = s->restore({0}, milliseconds(0));
  ASSERT_FALSE(r);
  EXPECT_EQ(s->find("run-old"), nullptr);
  EXPECT_EQ(s->find("run-0"), nullptr);
  EXPECT_NE(s->find("run-other"), nullptr) << "partition 1 was not part of the restore";
}

// The issue's story: each worker that takes the partition finds the run STARTED by one that died,
// runs it again as the next attempt, and dies too; after max_attempts lost starts the next one
// gives it up FAILED, and the one after that does not touch it.
TEST_F(RunStoreTest, AttemptsCarryAcrossWorkersUntilTheRunIsGivenUp) {
  makeTopics(1, 1);
  const auto cmd = command("run-doomed");
  const TopicPartition source{jobs_, 0};
  const std::int64_t offset = 4;
  RecordWriter w;
  std::vector<AttemptDecision> seen;
  for (int worker = 1; worker <= 3; ++worker) {
    auto s = store("w-" + std::to_string(worker));
    auto restored = s->restore({0}, kRestoreTimeout);
    ASSERT_TRUE(restored) << restored.error();
    auto a = s->decide(cmd, 3, /*holder_lost=*/true);  // each worker dies
    seen.push_back(a);
    if (a.verdict != Verdict::kRun && a.verdict != Verdict::kRerun) break;
    auto rec = RunStore::startRecord(cmd, a, source, offset, "w-" + std::to_string(worker), kNow);
    w.write(s->toOutRecord(rec));
    w.flush();
    s->remember(rec);
    // ... and the worker dies here, before the run ends.
  }
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].verdict, Verdict::kRun);
  EXPECT_EQ(seen[0].attempt, 1u);
  EXPECT_EQ(seen[1].verdict, Verdict::kRerun);
  EXPECT_EQ(seen[1].attempt, 2u);
  EXPECT_EQ(seen[1].reason, "redelivery: attempt 2 after worker w-1 was lost");
  EXPECT_EQ(seen[2].verdict, Verdict::kRerun);
  EXPECT_EQ(seen[2].attempt, 3u);
  EXPECT_EQ(seen[2].lost_worker, "w-2");

  auto fourth = store("w-4");
  {
    auto r = fourth->restore({0}, kRestoreTimeout);
    ASSERT_TRUE(r) << r.error();
  }
  auto give_up = fourth->decide(cmd, 3, /*holder_lost=*/true);
  EXPECT_EQ(give_up.verdict, Verdict::kGiveUp);
  EXPECT_EQ(give_up.state, v1::FAILED);
  EXPECT_THAT(give_up.reason, HasSubstr("worker lost 3 times"));
  auto end = RunStore::endRecord(cmd, give_up.starts, v1::FAILED, source, offset, "w-4", kNow);
  w.write(fourth->toOutRecord(end));
  w.flush();

  auto fifth = store("w-5");
  {
    auto r = fifth->restore({0}, kRestoreTimeout);
    ASSERT_TRUE(r) << r.error();
  }
  auto skip = fifth->decide(cmd, 3);
  EXPECT_EQ(skip.verdict, Verdict::kSkip);
  EXPECT_EQ(skip.state, v1::FAILED);
}

}  // namespace
}  // namespace outpost::consumer
