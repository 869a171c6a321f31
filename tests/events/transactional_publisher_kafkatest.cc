// The transactional publisher against the real broker: what a read_committed reader sees and what
// the group has committed after commits, group commits, aborts, fencing and refused records.
#include "outpost/events/transactional_publisher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "harness.h"
#include "outpost/consumer/job_consumer.h"
#include "outpost/events/fence.h"

namespace outpost::events {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

KafkaConfig kafkaConfig() {
  KafkaConfig c;
  c.bootstrap_servers = test::bootstrap();
  return c;
}

// ---- Raw librdkafka clients the harness does not offer: deleting topics, a rival producer.

struct RawDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
  void operator()(rd_kafka_error_t* p) const { rd_kafka_error_destroy(p); }
};
using RawHandle = std::unique_ptr<rd_kafka_t, RawDeleter>;
using RawQueue = std::unique_ptr<rd_kafka_queue_t, RawDeleter>;
using RawEvent = std::unique_ptr<rd_kafka_event_t, RawDeleter>;
using RawError = std::unique_ptr<rd_kafka_error_t, RawDeleter>;

RawHandle rawClient(rd_kafka_type_t type, const std::map<std::string, std::string>& props) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  std::map<std::string, std::string> all = props;
  all["bootstrap.servers"] = test::bootstrap();
  all.emplace("log_level", "3");
  for (const auto& [k, v] : all) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("test client config " + k + ": " + err);
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("test client: ") + err);
  }
  return RawHandle(rk);
}

void deleteTopics(const std::vector<std::string>& names) {
  if (names.empty()) return;
  auto admin = rawClient(RD_KAFKA_PRODUCER, {});
  std::vector<rd_kafka_DeleteTopic_t*> topics;
  for (const auto& name : names) topics.push_back(rd_kafka_DeleteTopic_new(name.c_str()));
  RawQueue q(rd_kafka_queue_new(admin.get()));
  rd_kafka_DeleteTopics(admin.get(), topics.data(), topics.size(), nullptr, q.get());
  RawEvent ev(rd_kafka_queue_poll(q.get(), 30000));
  rd_kafka_DeleteTopic_destroy_array(topics.data(), topics.size());
}

// ---- Outcomes and group members.

// Collects the outcomes reported to each unit's `done`, counting calls (exactly one is expected).
class Outcomes {
 public:
  // The `done` of unit `i`. With `hold` the call blocks until release(): the publisher thread
  // waits there, so the units submitted meanwhile are pending together and batched together.
  std::function<void(const TxnOutcome&)> slot(std::size_t i, bool hold = false) {
    return [this, i, hold](const TxnOutcome& o) {
      std::unique_lock lock(mutex_);
      reported_[i].push_back(o);
      held_ = held_ || hold;
      cv_.notify_all();
      if (hold) cv_.wait_for(lock, 60s, [&] { return released_; });
    };
  }
  bool waitHeld() {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, 60s, [&] { return held_; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    cv_.notify_all();
  }
  // Waits (safety timeout, or `limit`) until `n` units have been reported.
  bool waitFor(std::size_t n, std::chrono::milliseconds limit = 120s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return reported_.size() >= n; });
  }
  TxnOutcome at(std::size_t i) {
    std::lock_guard lock(mutex_);
    auto it = reported_.find(i);
    if (it == reported_.end()) {
      ADD_FAILURE() << "unit " << i << " was never reported";
      return {};
    }
    EXPECT_EQ(it->second.size(), 1u) << "unit " << i << " was reported more than once";
    return it->second.front();
  }
  std::size_t count() {
    std::lock_guard lock(mutex_);
    return reported_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::size_t, std::vector<TxnOutcome>> reported_;
  bool held_ = false;
  bool released_ = false;
};

class IgnoreRebalances : public consumer::RebalanceListener {
 public:
  void onAssigned(const std::vector<TopicPartition>&) override {}
  void onRevoked(const std::vector<TopicPartition>&, consumer::Revocation) override {}
};

// A real member of a consumer group, whose metadata the units carry.
struct Member {
  Member(const std::string& group, const std::string& topic)
      : consumer(kafkaConfig(), group, topic, listener) {}
  ~Member() { consumer.close(); }
  IgnoreRebalances listener;
  consumer::JobConsumer consumer;
};

// Polls the members (as their poll thread would) until `done`; false after the safety timeout.
bool pollUntil(const std::vector<Member*>& members, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    for (auto* m : members) m->consumer.poll(100ms);
  }
  return true;
}

OutRecord record(const std::string& topic, const std::string& value, std::int32_t partition = -1,
                 std::vector<Header> headers = {}) {
  return OutRecord{topic, partition, "key-" + value, value, std::move(headers)};
}

TxnUnit unit(std::vector<OutRecord> records, std::function<void(const TxnOutcome&)> done) {
  TxnUnit u;
  u.records = std::move(records);
  u.done = std::move(done);
  return u;
}

// Unit `i` of a run of units on one jobs partition: record "unit-<i>" to `out`, and the jobs
// offset after command i, committed for the group of `metadata`.
TxnUnit numberedUnit(std::size_t i, const std::string& out, const std::string& jobs,
                     std::shared_ptr<const GroupMetadata> metadata,
                     std::function<void(const TxnOutcome&)> done) {
  TxnUnit u = unit({record(out, "unit-" + std::to_string(i))}, std::move(done));
  u.offsets = {{{jobs, 0}, static_cast<std::int64_t>(i + 1)}};
  u.group = std::move(metadata);
  return u;
}

std::vector<std::string> values(const std::vector<test::Record>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.value);
  return out;
}

bool hasValue(const std::vector<test::Record>& records, const std::string& v) {
  return std::ranges::any_of(records, [&](const test::Record& r) { return r.value == v; });
}

std::string randomBytes(std::size_t n) {
  std::mt19937_64 rng(42);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class TransactionalPublisherTest : public ::testing::Test {
 protected:
  // A topic of this test only, deleted at the end.
  std::string newTopic(const std::string& stem, int partitions,
                       const std::map<std::string, std::string>& config = {}) {
    std::string name = test::uniqueName("txn-" + stem);
    test::createTopic(name, partitions, config);
    topics_.push_back(name);
    return name;
  }
  void TearDown() override { deleteTopics(topics_); }

 private:
  std::vector<std::string> topics_;
};

// ---- The tests.

TEST_F(TransactionalPublisherTest, CommitsRecordsAndOffsetsInOneTransaction) {
  const auto jobs = newTopic("jobs", 1);
  const auto out = newTopic("out", 2);
  const auto group = test::uniqueName("txn-group");
  for (int i = 0; i < 3; ++i) test::produce(jobs, "job", "command-" + std::to_string(i));

  // The member consumes the three commands, as the worker would.
  Member member(group, jobs);
  std::int64_t last = -1;
  for (auto deadline = std::chrono::steady_clock::now() + 60s;
       last < 2 && std::chrono::steady_clock::now() < deadline;) {
    if (auto m = member.consumer.poll(100ms)) last = m->offset;
  }
  ASSERT_EQ(last, 2);
  auto metadata = member.consumer.groupMetadata();
  EXPECT_EQ(metadata, member.consumer.groupMetadata()) << "one generation, one pointer";

  Outcomes outcomes;
  TransactionalPublisher publisher(kafkaConfig(), test::uniqueName("txn-id"));
  TxnUnit u =
      unit({record(out, "terminal", 1, {{"run", "r1"}}), record(out, "lineage")}, outcomes.slot(0));
  u.offsets = {{{jobs, 0}, last + 1}};
  u.group = metadata;
  publisher.submit(std::move(u));

  ASSERT_TRUE(outcomes.waitFor(1));
  auto o = outcomes.at(0);
  EXPECT_TRUE(o.committed()) << o.reason;
  EXPECT_EQ(o.reason, "");

  test::TopicReader reader(out);
  ASSERT_TRUE(reader.readUntil([](const auto& r) { return r.size() >= 2; }));
  reader.readFor(500ms);  // anything more would be a duplicate
  ASSERT_EQ(reader.records().size(), 2u);
  for (const auto& r : reader.records()) {
    EXPECT_EQ(r.key, "key-" + r.value);
    if (r.value == "terminal") {
      EXPECT_EQ(r.partition, 1) << "an explicit partition is kept";
      EXPECT_EQ(r.headers, (std::map<std::string, std::string>{{"run", "r1"}}));
    } else {
      EXPECT_EQ(r.value, "lineage");
    }
  }
  EXPECT_EQ(test::committedOffsets(group, jobs, 1)[0], 3);

  auto s = publisher.stats();
  EXPECT_EQ(s.transactions_committed, 1u);
  EXPECT_EQ(s.units_committed, 1u);
  EXPECT_EQ(s.transactions_aborted, 0u);
  EXPECT_EQ(publisher.pending(), 0u);
}

TEST_F(TransactionalPublisherTest, GroupCommitsUnitsThatArePendingTogether) {
  const auto jobs = newTopic("jobs", 1);
  const auto out = newTopic("out", 1);
  const auto group = test::uniqueName("txn-group");
  Member member(group, jobs);
  ASSERT_TRUE(pollUntil({&member}, [&] { return member.consumer.assignment().size() == 1; }));
  auto metadata = member.consumer.groupMetadata();

  constexpr std::size_t kUnits = 300;
  Outcomes outcomes;
  TransactionalPublisherOptions options;
  options.max_batch_records = 100;
  TransactionalPublisher publisher(kafkaConfig(), test::uniqueName("txn-id"), options);
  auto make = [&](std::size_t i) {
    return numberedUnit(i, out, jobs, metadata, outcomes.slot(i, i == 0));
  };
  // Unit 0 commits alone and holds the publisher in its callback while the other 299 are
  // submitted back to back: they go in ceil(299 / 100) = 3 transactions.
  publisher.submit(make(0));
  ASSERT_TRUE(outcomes.waitHeld());
  for (std::size_t i = 1; i < kUnits; ++i) publisher.submit(make(i));
  EXPECT_EQ(publisher.pending(), kUnits);  // unit 0 is still being reported
  outcomes.release();

  ASSERT_TRUE(outcomes.waitFor(kUnits));
  for (std::size_t i = 0; i < kUnits; ++i) {
    auto o = outcomes.at(i);
    EXPECT_TRUE(o.committed()) << "unit " << i << ": " << o.reason;
  }
  auto s = publisher.stats();
  EXPECT_EQ(s.units_committed, kUnits);
  EXPECT_EQ(s.transactions_committed, 4u);
  EXPECT_EQ(s.transactions_aborted, 0u);

  test::TopicReader reader(out);
  ASSERT_TRUE(reader.readUntil([&](const auto& r) { return r.size() >= kUnits; }));
  reader.readFor(500ms);  // anything more would be a duplicate
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < kUnits; ++i) expected.push_back("unit-" + std::to_string(i));
  EXPECT_EQ(values(reader.records()), expected) << "each record once, in submission order";
  EXPECT_EQ(test::committedOffsets(group, jobs, 1)[0], static_cast<std::int64_t>(kUnits));
}

TEST_F(TransactionalPublisherTest, UnitsArrivingWithinTheMinIntervalShareTheNextTransaction) {
  const auto jobs = newTopic("jobs", 1);
  const auto out = newTopic("out", 1);
  const auto group = test::uniqueName("txn-group");
  Member member(group, jobs);
  ASSERT_TRUE(pollUntil({&member}, [&] { return member.consumer.assignment().size() == 1; }));
  auto metadata = member.consumer.groupMetadata();

  Outcomes outcomes;
  TransactionalPublisherOptions options;
  options.min_interval = 3s;  // far longer than a transaction takes on the test broker
  options.batch_target = 1;   // every batch counts as full: the whole interval each time
  TransactionalPublisher publisher(kafkaConfig(), test::uniqueName("txn-id"), options);
  auto make = [&](std::size_t i) { return numberedUnit(i, out, jobs, metadata, outcomes.slot(i)); };
  // Unit 0 finds the publisher idle and goes at once. Units 1-3 come one at a time after it
  // committed, when the publisher is idle again: without the interval each would begin a
  // transaction of its own; with it they wait for the interval and share one.
  publisher.submit(make(0));
  ASSERT_TRUE(outcomes.waitFor(1));
  EXPECT_EQ(publisher.stats().transactions_committed, 1u);
  for (std::size_t i = 1; i <= 3; ++i) {
    publisher.submit(make(i));
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(outcomes.waitFor(4));
  for (std::size_t i = 0; i <= 3; ++i) EXPECT_TRUE(outcomes.at(i).committed()) << "unit " << i;
  auto s = publisher.stats();
  EXPECT_EQ(s.units_committed, 4u);
  EXPECT_EQ(s.transactions_committed, 2u) << "units 1-3 went in one transaction";
  EXPECT_EQ(test::committedOffsets(group, jobs, 1)[0], 4);
}

TEST_F(TransactionalPublisherTest, AfterASmallBatchTheNextTransactionWaitsOnlyAQuarterInterval) {
  const auto jobs = newTopic("jobs", 1);
  const auto out = newTopic("out", 1);
  const auto group = test::uniqueName("txn-group");
  Member member(group, jobs);
  ASSERT_TRUE(pollUntil({&member}, [&] { return member.consumer.assignment().size() == 1; }));
  auto metadata = member.consumer.groupMetadata();

  Outcomes outcomes;
  TransactionalPublisherOptions options;
  options.min_interval = 8s;
  options.batch_target = 64;  // a batch of one unit: the interval after it is a quarter, 2 s
  constexpr auto kQuarter = 2s;
  TransactionalPublisher publisher(kafkaConfig(), test::uniqueName("txn-id"), options);
  auto make = [&](std::size_t i) { return numberedUnit(i, out, jobs, metadata, outcomes.slot(i)); };
  // A light load: each unit comes once the one before was reported (or, at the latest, a quarter
  // interval after it was submitted) and a quarter interval more has passed, so it finds the
  // interval after the one before over and goes in a transaction of its own. With the whole 8 s
  // interval after every batch, unit i + 1 would still wait when unit i + 2 comes, about 4 s
  // after it, and they would share a transaction. The waits are lower bounds on time: however
  // slow a commit, the next unit never comes early.
  for (std::size_t i = 0; i <= 3; ++i) {
    publisher.submit(make(i));
    if (i == 3) break;
    outcomes.waitFor(i + 1, kQuarter);  // no verdict: a slow commit only delays the next unit
    std::this_thread::sleep_for(kQuarter);
  }
  ASSERT_TRUE(outcomes.waitFor(4));
  for (std::size_t i = 0; i <= 3; ++i) EXPECT_TRUE(outcomes.at(i).committed()) << "unit " << i;
  EXPECT_EQ(publisher.stats().transactions_committed, 4u);
  EXPECT_EQ(test::committedOffsets(group, jobs, 1)[0], 4);
}

TEST_F(TransactionalPublisherTest, StaleGroupMetadataAbortsItsUnitsAndThoseWaitingBehind) {
  const auto jobs = newTopic("jobs", 2);
  const auto out = newTopic("out", 1);
  const auto group = test::uniqueName("txn-group");

  Member a(group, jobs);
  ASSERT_TRUE(pollUntil({&a}, [&] { return a.consumer.assignment().size() == 2; }));
  auto stale = a.consumer.groupMetadata();
  // A second member joins: the group rebalances to a new generation.
  Member b(group, jobs);
  ASSERT_TRUE(pollUntil({&a, &b}, [&] {
    return a.consumer.assignment().size() == 1 && b.consumer.assignment().size() == 1;
  }));
  auto fresh = a.consumer.groupMetadata();
  ASSERT_NE(stale, fresh) << "a new generation, a new pointer";
  const TopicPartition mine = a.consumer.assignment().front();

  Outcomes outcomes;
  TransactionalPublisher publisher(kafkaConfig(), test::uniqueName("txn-id"));
  publisher.submit(unit({record(out, "first")}, outcomes.slot(0, true)));
  ASSERT_TRUE(outcomes.waitHeld());
  // Pending together, but with different metadata: never in the same transaction.
  TxnUnit old_unit = unit({record(out, "stale")}, outcomes.slot(1));
  old_unit.offsets = {{mine, 7}};
  old_unit.group = stale;
  publisher.submit(std::move(old_unit));
  TxnUnit new_unit = unit({record(out, "fresh")}, outcomes.slot(2));
  new_unit.offsets = {{mine, 3}};
  new_unit.group = fresh;
  publisher.submit(std::move(new_unit));
  outcomes.release();

  ASSERT_TRUE(outcomes.waitFor(3));
  EXPECT_TRUE(outcomes.at(0).committed()) << outcomes.at(0).reason;
  auto aborted = outcomes.at(1);
  EXPECT_EQ(aborted.status, TxnOutcome::Status::kAborted) << aborted.reason;
  EXPECT_NE(aborted.reason, "");
  // The fresh unit waited behind it, with offsets that may count it as done: aborted too, so
  // that it cannot commit past an end that was not written. The owner resubmits it.
  EXPECT_EQ(outcomes.at(2).status, TxnOutcome::Status::kAborted);
  EXPECT_NE(outcomes.at(2).reason.find("a transaction before it aborted"), std::string::npos)
      << outcomes.at(2).reason;

  // And it goes on: a later unit commits too.
  TxnUnit later = unit({record(out, "later")}, outcomes.slot(3));
  later.offsets = {{mine, 5}};
  later.group = a.consumer.groupMetadata();
  publisher.submit(std::move(later));
  ASSERT_TRUE(outcomes.waitFor(4));
  EXPECT_TRUE(outcomes.at(3).committed()) << outcomes.at(3).reason;

  test::TopicReader reader(out);
  ASSERT_TRUE(reader.readUntil([](const auto& r) { return hasValue(r, "later"); }));
  EXPECT_EQ(values(reader.records()), (std::vector<std::string>{"first", "later"}))
      << "the aborted units' records are not visible";
  EXPECT_EQ(test::committedOffsets(group, jobs, 2)[mine.partition], 5);

  auto stats = publisher.stats();
  EXPECT_EQ(stats.transactions_committed, 2u);
  EXPECT_EQ(stats.transactions_aborted, 1u) << "the unit behind was never begun";
  EXPECT_EQ(stats.units_aborted, 2u);
  EXPECT_EQ(stats.producer_recreations, 0u);
}

TEST_F(TransactionalPublisherTest, FencedProducerIsRecreated) {
  const auto out = newTopic("out", 1);
  const auto transactional_id = test::uniqueName("txn-id");
  Outcomes outcomes;
  TransactionalPublisher publisher(kafkaConfig(), transactional_id);
  publisher.submit(unit({record(out, "before")}, outcomes.slot(0)));
  ASSERT_TRUE(outcomes.waitFor(1));
  ASSERT_TRUE(outcomes.at(0).committed()) << outcomes.at(0).reason;

  // Another producer takes the transactional.id over (what a restarted worker does).
  auto rival = rawClient(RD_KAFKA_PRODUCER, {{"transactional.id", transactional_id}});
  RawError e(rd_kafka_init_transactions(rival.get(), 30000));
  ASSERT_FALSE(e) << rd_kafka_error_string(e.get());

  publisher.submit(unit({record(out, "fenced")}, outcomes.slot(1)));
  ASSERT_TRUE(outcomes.waitFor(2));
  auto fenced = outcomes.at(1);
  EXPECT_EQ(fenced.status, TxnOutcome::Status::kAborted) << fenced.reason;
  EXPECT_NE(fenced.reason, "");
  EXPECT_EQ(publisher.stats().producer_recreations, 1u);

  publisher.submit(unit({record(out, "after")}, outcomes.slot(2)));
  ASSERT_TRUE(outcomes.waitFor(3));
  EXPECT_TRUE(outcomes.at(2).committed()) << outcomes.at(2).reason;

  test::TopicReader reader(out);
  ASSERT_TRUE(reader.readUntil([](const auto& r) { return hasValue(r, "after"); }));
  EXPECT_EQ(values(reader.records()), (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(publisher.stats().transactions_committed, 2u);
}

// A worker found lost is fenced by the one that runs its runs again: its publisher, told so by
// on_fenced, commits nothing any more (no terminal event, no claim), and says why.
TEST_F(TransactionalPublisherTest, WithOnFencedAFencedProducerStaysFencedAndRejectsEveryUnit) {
  const auto out = newTopic("out", 1);
  const auto transactional_id = test::uniqueName("txn-id");
  Outcomes outcomes;
  std::atomic<int> told{0};
  std::string why;  // written before `told` is incremented
  TransactionalPublisherOptions options;
  options.on_fenced = [&](const std::string& w) {
    why = w;
    ++told;
  };
  TransactionalPublisher publisher(kafkaConfig(), transactional_id, options);
  publisher.submit(unit({record(out, "before")}, outcomes.slot(0)));
  ASSERT_TRUE(outcomes.waitFor(1));
  ASSERT_TRUE(outcomes.at(0).committed()) << outcomes.at(0).reason;

  ASSERT_TRUE(fenceTransactionalId(kafkaConfig(), transactional_id, std::chrono::seconds(30)));

  publisher.submit(unit({record(out, "fenced")}, outcomes.slot(1)));
  ASSERT_TRUE(outcomes.waitFor(2));
  EXPECT_EQ(outcomes.at(1).status, TxnOutcome::Status::kRejected) << outcomes.at(1).reason;
  publisher.submit(unit({record(out, "later")}, outcomes.slot(2)));
  ASSERT_TRUE(outcomes.waitFor(3));
  EXPECT_EQ(outcomes.at(2).status, TxnOutcome::Status::kRejected);
  EXPECT_THAT(outcomes.at(2).reason, HasSubstr("fenced"));
  EXPECT_EQ(told.load(), 1);
  EXPECT_THAT(why, HasSubstr(transactional_id));
  EXPECT_EQ(publisher.stats().producer_recreations, 0u);

  // Until the committed record is read (a new reader may take a while to fetch on a busy broker),
  // then a while more: anything else would have been committed by the fenced producer.
  test::TopicReader reader(out);
  EXPECT_TRUE(reader.readUntil([](const auto& r) { return !r.empty(); }));
  reader.readFor(500ms);
  EXPECT_EQ(values(reader.records()), (std::vector<std::string>{"before"}));
}

// What a worker does to the producer of a worker it found lost: what the lost producer left open
// is aborted, and its commit afterwards is refused for good.
TEST_F(TransactionalPublisherTest, FencingAnIdAbortsWhatItsProducerLeftOpenAndRefusesItsCommit) {
  const auto out = newTopic("fenced-out", 1);
  const auto transactional_id = test::uniqueName("txn-lost");
  auto lost = rawClient(RD_KAFKA_PRODUCER, {{"transactional.id", transactional_id}});
  RawError init(rd_kafka_init_transactions(lost.get(), 30000));
  ASSERT_FALSE(init) << rd_kafka_error_string(init.get());
  RawError begin(rd_kafka_begin_transaction(lost.get()));
  ASSERT_FALSE(begin) << rd_kafka_error_string(begin.get());
  const std::string late = "written-by-the-lost-worker";
  ASSERT_EQ(rd_kafka_producev(lost.get(), RD_KAFKA_V_TOPIC(out.c_str()),
                              RD_KAFKA_V_VALUE(const_cast<char*>(late.data()), late.size()),
                              RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_flush(lost.get(), 30000);  // on the broker, in the open transaction

  auto fenced = fenceTransactionalId(kafkaConfig(), transactional_id, 30s);
  ASSERT_TRUE(fenced) << fenced.error();

  RawError commit(rd_kafka_commit_transaction(lost.get(), 30000));
  ASSERT_TRUE(commit) << "the lost producer committed after it was fenced";
  EXPECT_TRUE(rd_kafka_error_is_fatal(commit.get())) << rd_kafka_error_string(commit.get());

  // A read_committed reader reads past the aborted transaction to a record written after it.
  TransactionalPublisher after(kafkaConfig(), test::uniqueName("txn-after"));
  Outcomes outcomes;
  after.submit(unit({record(out, "after")}, outcomes.slot(0)));
  ASSERT_TRUE(outcomes.waitFor(1));
  ASSERT_TRUE(outcomes.at(0).committed()) << outcomes.at(0).reason;
  test::TopicReader reader(out);
  ASSERT_TRUE(reader.readUntil([](const auto& r) { return hasValue(r, "after"); }));
  EXPECT_EQ(values(reader.records()), (std::vector<std::string>{"after"}));
}

// message.max.bytes (1000000 by default) refuses the record as it is queued.
TEST_F(TransactionalPublisherTest, RecordTooLargeForTheClientRejectsOnlyItsUnit) {
  const auto jobs = newTopic("jobs", 1);
  const auto out = newTopic("out", 1);
  const auto group = test::uniqueName("txn-group");
  Member member(group, jobs);
  ASSERT_TRUE(pollUntil({&member}, [&] { return member.consumer.assignment().size() == 1; }));
  auto metadata = member.consumer.groupMetadata();

  Outcomes outcomes;
  TransactionalPublisher publisher(kafkaConfig(), test::uniqueName("txn-id"));
  publisher.submit(unit({record(out, "first")}, outcomes.slot(0, true)));
  ASSERT_TRUE(outcomes.waitHeld());
  // Three units pending together: the middle one cannot be written.
  const std::vector<std::string> payloads = {"small-1", std::string(2'000'000, 'x'), "small-2"};
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    TxnUnit u = unit({record(out, payloads[i])}, outcomes.slot(i + 1));
    u.offsets = {{{jobs, 0}, static_cast<std::int64_t>(i + 1)}};
    u.group = metadata;
    publisher.submit(std::move(u));
  }
  outcomes.release();

  ASSERT_TRUE(outcomes.waitFor(4));
  EXPECT_TRUE(outcomes.at(1).committed()) << outcomes.at(1).reason;
  auto rejected = outcomes.at(2);
  EXPECT_EQ(rejected.status, TxnOutcome::Status::kRejected) << rejected.reason;
  EXPECT_NE(rejected.reason.find("too large"), std::string::npos) << rejected.reason;
  EXPECT_NE(rejected.reason.find(out), std::string::npos) << rejected.reason;
  EXPECT_TRUE(outcomes.at(3).committed()) << outcomes.at(3).reason;

  test::TopicReader reader(out);
  ASSERT_TRUE(reader.readUntil([](const auto& r) { return hasValue(r, "small-2"); }));
  EXPECT_EQ(values(reader.records()), (std::vector<std::string>{"first", "small-1", "small-2"}));
  EXPECT_EQ(test::committedOffsets(group, jobs, 1)[0], 3);
  EXPECT_EQ(publisher.stats().units_rejected, 1u);
}

// The topic's max.message.bytes is below the record's size: the broker refuses it, and possibly
// the small records written in the same request with it.
TEST_F(TransactionalPublisherTest, RecordTooLargeForTheBrokerRejectsOnlyItsUnit) {
  const auto out = newTopic("out", 1, {{"max.message.bytes", "20000"}});
  Outcomes outcomes;
  TransactionalPublisher publisher(kafkaConfig(), test::uniqueName("txn-id"));
  publisher.submit(unit({record(out, "first")}, outcomes.slot(0, true)));
  ASSERT_TRUE(outcomes.waitHeld());
  const std::vector<std::string> payloads = {"small-1", randomBytes(50'000), "small-2"};
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    publisher.submit(unit({record(out, payloads[i])}, outcomes.slot(i + 1)));
  }
  outcomes.release();

  ASSERT_TRUE(outcomes.waitFor(4));
  EXPECT_TRUE(outcomes.at(1).committed()) << outcomes.at(1).reason;
  auto rejected = outcomes.at(2);
  EXPECT_EQ(rejected.status, TxnOutcome::Status::kRejected) << rejected.reason;
  EXPECT_NE(rejected.reason.find("too large"), std::string::npos) << rejected.reason;
  EXPECT_TRUE(outcomes.at(3).committed()) << outcomes.at(3).reason;

  // And it goes on.
  publisher.submit(unit({record(out, "later")}, outcomes.slot(4)));
  ASSERT_TRUE(outcomes.waitFor(5));
  EXPECT_TRUE(outcomes.at(4).committed()) << outcomes.at(4).reason;

  test::TopicReader reader(out);
  ASSERT_TRUE(reader.readUntil([](const auto& r) { return hasValue(r, "later"); }));
  EXPECT_EQ(values(reader.records()),
            (std::vector<std::string>{"first", "small-1", "small-2", "later"}));
  EXPECT_EQ(publisher.stats().units_rejected, 1u);
}

TEST_F(TransactionalPublisherTest, CloseDeliversWhatIsPendingAndRefusesLaterUnits) {
  const auto out = newTopic("out", 1);
  Outcomes outcomes;
  TransactionalPublisher publisher(kafkaConfig(), test::uniqueName("txn-id"));
  constexpr std::size_t kUnits = 50;
  for (std::size_t i = 0; i < kUnits; ++i) {
    publisher.submit(unit({record(out, "unit-" + std::to_string(i))}, outcomes.slot(i)));
  }
  publisher.close(60s);
  ASSERT_EQ(outcomes.count(), kUnits) << "close() returns once every unit is reported";
  for (std::size_t i = 0; i < kUnits; ++i) EXPECT_TRUE(outcomes.at(i).committed());

  publisher.submit(unit({record(out, "too-late")}, outcomes.slot(kUnits)));
  ASSERT_EQ(outcomes.count(), kUnits + 1) << "reported at once";
  EXPECT_EQ(outcomes.at(kUnits).status, TxnOutcome::Status::kAborted);

  test::TopicReader reader(out);
  ASSERT_TRUE(reader.readUntil([&](const auto& r) { return r.size() >= kUnits; }));
  reader.readFor(500ms);
  EXPECT_EQ(reader.records().size(), kUnits);
  EXPECT_FALSE(hasValue(reader.records(), "too-late"));
}

// A unit that names offsets must say whose they are.
TEST_F(TransactionalPublisherTest, OffsetsWithoutGroupMetadataAreRejected) {
  const auto out = newTopic("out", 1);
  Outcomes outcomes;
  TransactionalPublisher publisher(kafkaConfig(), test::uniqueName("txn-id"));
  TxnUnit u = unit({record(out, "orphan")}, outcomes.slot(0));
  u.offsets = {{{out, 0}, 1}};
  publisher.submit(std::move(u));
  ASSERT_TRUE(outcomes.waitFor(1));
  EXPECT_EQ(outcomes.at(0).status, TxnOutcome::Status::kRejected);
  EXPECT_EQ(publisher.stats().transactions_aborted, 0u) << "no transaction was begun for it";
}

}  // namespace
}  // namespace outpost::events
