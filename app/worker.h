// The worker: wires intake (consumer/), execution (runner/) and publishing (events/, lineage/)
// for `outpost run`. Threads: the caller's thread owns the consumer and all run state (the poll
// thread); the supervisor and the producer's delivery thread only post closures to the inbox.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "outpost/common/clock.h"
#include "outpost/common/config.h"
#include "outpost/consumer/control_listener.h"
#include "outpost/consumer/intake.h"
#include "outpost/consumer/job_consumer.h"
#include "outpost/consumer/offset_tracker.h"
#include "outpost/consumer/run_store.h"
#include "outpost/events/producer.h"
#include "outpost/events/transactional_publisher.h"
#include "outpost/lineage/child_events.h"
#include "outpost/lineage/http_transport.h"
#include "outpost/lineage/openlineage.h"
#include "outpost/runner/supervisor.h"
#include "outpost/secrets/resolver.h"
#include "outpost/v1/event.pb.h"
#include "outpost/v1/worker.pb.h"

namespace outpost {

class Worker final : public RebalanceListener {
 public:
  Worker(Config config, const Clock& clock);
  ~Worker() override;

  // Runs until `stop` becomes true, then drains and leaves the group. Returns the exit code.
  int run(const std::atomic<bool>& stop);

  void onAssigned(const std::vector<TopicPartition>& partitions) override;
  void onRevoked(const std::vector<TopicPartition>& partitions, bool lost) override;

 private:
  // kResolving: its secret references are being fetched off the poll thread.
  enum class Phase { kResolving, kQueued, kRunning, kFinished };
  // A cancel from the control topic, as remembered until cancel_memory passes. Poll thread.
  struct CancelRequest {
    std::string command_id;
    std::string requested_by;
    std::string reason;
    std::uint64_t notices = 0;  // NOTICE events written about the run while it was unknown here
  };
  // A run that ended here, remembered for cancel_memory to answer late cancels. Poll thread.
  struct EndedRun {
    v1::RunState state = v1::RUN_STATE_UNSPECIFIED;
    std::string job_id, job_type;
    std::uint32_t attempt = 1;
    std::uint64_t sequence = 0;  // of the last event written about it
  };
  // One taken message, from the moment it is read until its offset counts as done. Poll thread.
  struct Run {
    std::uint64_t id = 0;
    TopicPartition tp;
    std::int64_t offset = -1;
    v1::JobCommand command;
    const TemplateConfig* tmpl = nullptr;
    LaunchPlan plan;
    Phase phase = Phase::kQueued;
    std::uint64_t sequence = 0;
    int pending_acks = 0;
    bool tracked = true;  // false once its partition was revoked: the offset is not ours anymore
    bool handed_over = false;  // exactly-once: stopped because its partition went elsewhere
    v1::RunState terminal = v1::RUN_STATE_UNSPECIFIED;  // once its terminal event is published
    std::optional<CancelRequest> cancel;                // a control-topic cancel is stopping it
    std::optional<std::chrono::system_clock::time_point> started_at;  // of its process
    std::unique_ptr<ChildLineageProcessor> child_lineage;  // when it has a lineage channel
    // What the runs topic said of it: the attempt its events carry (the command's, plus starts
    // lost on other workers), how many times workers started it, and whether it is a rerun.
    Admission admission;
    // exactly-once: what is published from the terminal event on, written in one transaction
    // with the command's offset once everything before it is acknowledged.
    std::vector<OutRecord> finals;
    bool submitted = false;     // its transaction is on its way
    bool committed = false;     // its transaction committed (or there is nothing left to write)
    bool end_recorded = false;  // at-least-once: the runs topic's end record was produced
  };

  void handleMessage(ConsumedMessage message);
  // Resolves the plan's secret references on the resolver pool, then queues the run.
  void resolveSecrets(Run& run, std::vector<SecretRef> refs);
  void onResolved(std::uint64_t id,
                  std::expected<std::map<std::string, SecretValue>, std::string> values);
  void enqueue(Run& run);
  void reject(Run& run, const ConsumedMessage& message, const std::string& reason,
              bool publish_event = true);
  void dispatch();
  void start(Run& run);
  // Writes the runs topic's start record (and, for a redelivery, the lost attempt's FAILED
  // event), then launches the process once they are written.
  void recordStart(Run& run);
  void onStartRecorded(std::uint64_t id, bool written, const std::string& why);
  void launch(std::uint64_t id);
  // exactly-once: the run's finals and its offset in one transaction; and its outcome.
  void submitFinals(Run& run);
  // The runs topic's end record of a run that reached its terminal state, remembered by the run
  // store, as the message to write.
  OutRecord endRecord(const Run& run);
  void onCommitted(std::uint64_t id, const TxnOutcome& outcome);
  // Ends a run (never started, or lost elsewhere) with a terminal event here.
  void endWithoutRunning(Run& run, v1::RunState state, const std::string& message,
                         bool lineage_fail = false);
  bool pastDeadline(const v1::JobCommand& command) const;
  void onStarted(std::uint64_t id, std::chrono::system_clock::time_point started_at);
  void onFinished(std::uint64_t id, RunOutcome outcome);
  void onLog(std::uint64_t id, LogBatch batch);
  void onHeartbeat(std::uint64_t id, const Heartbeat& heartbeat);
  void onLineage(std::uint64_t id, std::string bytes, bool truncated);
  // Forwards or reports what the run's lineage processor made of the job's lines.
  void handleChildLineage(Run& run, std::vector<ChildLineageResult> results);
  v1::RunEvent newEvent(Run& run, v1::RunState state);
  void publishEvent(Run& run, const v1::RunEvent& event);
  void publishLineage(Run& run, LineageEventType type, LineageOutcome outcome = {});
  // One lineage record to every configured transport (Kafka, HTTP), acknowledged per transport.
  void sendLineage(Run& run, const std::string& key, std::string json);
  void acknowledged(std::uint64_t id);
  void maybeRetire(Run& run);
  void publishStatus(v1::WorkerState state);
  void updatePause();
  // The control topic (see control_listener.h).
  void pollControl();
  void handleCancel(const ControlMessage& message);
  void endCancelled(Run& run, const CancelRequest& cancel, const std::string& when);
  Run* findRun(const std::string& run_id);
  // Takes a run out of runs_ and by_run_id_.
  void eraseRun(std::uint64_t id);
  void eraseRunsIf(const std::function<bool(const Run&)>& pred);
  bool answersForPool() const;
  v1::RunEvent noticeEvent(const std::string& run_id, std::uint32_t attempt, std::uint64_t sequence,
                           const std::string& message);
  void publishNotice(const v1::RunEvent& event);
  void commit(bool sync);

  // Inbox: closures from other threads, run on the poll thread.
  void post(std::function<void()> fn);
  void drainInbox();
  bool waitInbox(std::chrono::milliseconds timeout);

  Config config_;
  const Clock& clock_;
  UuidGenerator uuids_;
  Environment worker_env_;
  LineageBuilder lineage_;
  std::chrono::system_clock::time_point started_at_;

  std::mutex inbox_mutex_;
  std::condition_variable inbox_cv_;
  std::deque<std::function<void()>> inbox_;

  std::unique_ptr<SecretResolver> resolver_;

  // Declared after the inbox: callbacks from these post into it, so they must go first.
  // Events, lineage, status, dead letters: lingers to batch (kEventsLinger).
  std::unique_ptr<KafkaProducer> producer_;
  // The runs topic's start records: a launch waits for one, so this one never lingers.
  std::unique_ptr<KafkaProducer> start_producer_;
  std::unique_ptr<TransactionalPublisher> txn_;  // exactly-once only
  std::unique_ptr<RunStore> run_store_;
  std::unique_ptr<HttpLineageTransport> lineage_http_;  // lineage.transport http or both
  std::unique_ptr<JobConsumer> consumer_;
  std::unique_ptr<ControlListener> control_;  // polled on the poll thread; posts nothing
  PosixLauncher launcher_;
  std::unique_ptr<Supervisor> supervisor_;
  // Threads that fetch secrets (a fetch may wait on the network); they post results to the inbox.
  std::mutex resolve_mutex_;
  std::condition_variable resolve_cv_;
  std::deque<std::function<void()>> resolve_tasks_;
  bool resolve_stop_ = false;
  std::vector<std::thread> resolve_threads_;

  // Poll thread only.
  OffsetTracker offsets_;
  std::map<std::uint64_t, Run> runs_;
  // runs_ by their command's run_id (a duplicate or a hand-over may share one), so that taking a
  // message does not look through every queued run.
  std::unordered_multimap<std::string, std::uint64_t> by_run_id_;
  std::deque<std::uint64_t> queue_;  // admitted, waiting for a slot, in arrival order
  std::map<std::string, unsigned> running_per_template_;
  std::size_t running_ = 0;
  std::uint64_t alone_ = 0;  // the rerun that runs alone (see dispatch), while it runs
  bool retired_ = false;     // a run retired since the loop last dispatched
  std::uint64_t next_id_ = 1;
  bool draining_ = false;
  std::uint64_t skipped_other_pool_ = 0;  // commands for another pool sharing the jobs topic
  // Bounded (and expiring after cancel_memory) so a flood of cancels cannot exhaust memory.
  static constexpr std::size_t kRememberedRuns = 100'000;
  RunMemory<EndedRun> ended_{kRememberedRuns};         // runs that ended here, by run_id
  RunMemory<CancelRequest> cancels_{kRememberedRuns};  // cancels received, by run_id
};

}  // namespace outpost
