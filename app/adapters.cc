#include "adapters.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "outpost/events/fence.h"

namespace outpost::app {
namespace {

// Keeps the masker alive as long as the run's output stream uses it.
class MaskedOutput final : public StreamRedactor {
 public:
  explicit MaskedOutput(std::shared_ptr<const secrets::SecretMasker> m)
      : m_(std::move(m)), s_(m_->stream()) {}
  std::string feed(std::string_view chunk) override { return s_->feed(chunk); }
  std::string flush() override { return s_->flush(); }

 private:
  std::shared_ptr<const secrets::SecretMasker> m_;
  std::unique_ptr<StreamRedactor> s_;
};

}  // namespace

RunStoreAttempts::RunStoreAttempts(consumer::RunStore& store, std::string worker_id,
                                   std::string incarnation, const Clock& clock,
                                   events::TransactionalPublisher* txn, BoundedWait announce)
    : store_(store),
      worker_id_(std::move(worker_id)),
      incarnation_(std::move(incarnation)),
      clock_(clock),
      txn_(txn),
      announce_(std::move(announce)) {}

events::OutRecord RunStoreAttempts::recordStart(const v1::JobCommand& command,
                                                const consumer::AttemptDecision& admission,
                                                const TopicPartition& source, std::int64_t offset) {
  auto record =
      consumer::RunStore::startRecord(command, admission, source, offset, worker_id_, clock_.now());
  record.set_incarnation(incarnation_);
  auto out = store_.toOutRecord(record);
  store_.remember(std::move(record));
  return out;
}

events::OutRecord RunStoreAttempts::recordEnd(const v1::JobCommand& command, std::uint32_t starts,
                                              v1::RunState terminal, const TopicPartition& source,
                                              std::int64_t offset, std::uint32_t releases,
                                              bool released) {
  auto record = consumer::RunStore::endRecord(command, starts, terminal, source, offset, worker_id_,
                                              clock_.now(), releases, released);
  record.set_incarnation(incarnation_);
  auto out = store_.toOutRecord(record);
  store_.remember(std::move(record));
  return out;
}

bool RunStoreAttempts::restore(const std::vector<std::int32_t>& partitions,
                               const std::map<std::int32_t, std::int64_t>& read_past) {
  bool restored = false;
  const bool reread = !read_past.empty();
  announce_(reread ? "reread" : "restore",
            reread ? fmt::format("reading the run state of {} partition(s) again for the runs of "
                                 "a lost worker",
                                 partitions.size())
                   : fmt::format("restoring the run state of {} partition(s)", partitions.size()),
            kRestoreTimeout + std::chrono::seconds(1),
            [&] { restored = restoreNow(partitions, read_past); });
  return restored;
}

bool RunStoreAttempts::restoreNow(const std::vector<std::int32_t>& partitions,
                                  const std::map<std::int32_t, std::int64_t>& read_past) {
  // One budget for both waits (announced to the probes as one bounded wait).
  const auto deadline = std::chrono::steady_clock::now() + kRestoreTimeout;
  auto left = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()));
  };
  if (txn_ && !txn_->waitReady(left())) {
    spdlog::warn(
        "the transactional producer is not ready yet; the run state read now may miss "
        "the last records of a predecessor");
  }
  if (auto restored = store_.restore(partitions, std::max(left(), std::chrono::milliseconds(1000)),
                                     read_past)) {
    spdlog::info("run state of {} partition(s) restored: {} run(s) from {} record(s)",
                 restored->partitions, restored->kept, restored->records);
    return true;
  } else {
    spdlog::error(
        "run state not restored: {}; runs lost on other workers are not counted and "
        "ended runs whose offsets were not committed may run again",
        restored.error());
    return false;
  }
}

WorkerLeases::WorkerLeases(const dispatch::LeaseView& view, const Clock& clock, std::string self_id,
                           std::string group, KafkaConfig kafka, bool fence_producers,
                           DeclareLost declare_lost)
    : view_(view),
      clock_(clock),
      self_id_(std::move(self_id)),
      group_(std::move(group)),
      kafka_(std::move(kafka)),
      fence_producers_(fence_producers),
      declare_lost_(std::move(declare_lost)) {
  thread_ = std::jthread([this](std::stop_token stop) { serve(stop); });
}

WorkerLeases::~WorkerLeases() {
  shutdown();
}

void WorkerLeases::fence(const std::string& worker_id, const std::string& incarnation,
                         const std::string& why, std::function<void(std::string)> done) {
  // This worker's earlier incarnation: its own producer fenced it as it started.
  if (worker_id == self_id_) return done(std::string());
  {
    std::lock_guard lock(mu_);
    if (!stopped_) {
      pending_.push_back({worker_id, incarnation, why, std::move(done)});
      wake_.notify_one();
      return;
    }
  }
  done("the worker is stopping");
}

void WorkerLeases::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
  // Whatever was still waiting is answered, so that no caller waits forever.
  std::deque<Fence> left;
  {
    std::lock_guard lock(mu_);
    left.swap(pending_);
  }
  for (auto& f : left) f.done("the worker is stopping");
}

void WorkerLeases::serve(std::stop_token stop) {
  for (;;) {
    Fence next;
    {
      std::unique_lock lock(mu_);
      if (!wake_.wait(lock, stop, [&] { return !pending_.empty(); })) return;
      next = std::move(pending_.front());
      pending_.pop_front();
    }
    if (auto member = stillAMember(next.worker_id)) {
      next.done(*member);
      continue;
    }
    if (fence_producers_) {
      auto id = group_ + "." + next.worker_id;
      auto fenced = events::fenceTransactionalId(kafka_, id, kFenceTimeout);
      if (!fenced) {
        next.done(fenced.error());
        continue;
      }
      spdlog::info("worker {} fenced (transactional id {})", next.worker_id, id);
    }
    declare_lost_(next.worker_id, next.incarnation, next.why);
    next.done(std::string());
  }
}

std::optional<std::string> WorkerLeases::stillAMember(const std::string& worker_id) {
  std::expected<std::vector<events::GroupMember>, std::string> members;
  try {
    if (!admin_) admin_ = std::make_unique<events::KafkaAdmin>(kafka_);
    members = admin_->groupMembers(group_);
  } catch (const std::exception& e) {
    members = std::unexpected(std::string(e.what()));
  }
  if (!members) {
    spdlog::warn(
        "consumer group {} not described ({}); worker {} is counted lost on its lease "
        "alone",
        group_, members.error(), worker_id);
    return std::nullopt;
  }
  for (const auto& m : *members) {
    if (m.client_id == worker_id || m.group_instance_id == worker_id) {
      return fmt::format(
          "it is still a member of consumer group {} (from {}): its statuses "
          "do not reach the workers topic, but it consumes",
          group_, m.host);
    }
  }
  return std::nullopt;
}

void MetricsObserver::runStarted(std::chrono::milliseconds schedule_to_start) {
  m_.runStarted(std::chrono::duration<double>(schedule_to_start).count());
}

void MetricsObserver::runEnded(const std::string& job_type, v1::RunState state,
                               std::optional<std::chrono::milliseconds> ran) {
  // TIMED_OUT -> timed_out: the state as a label value.
  std::string word = v1::RunState_Name(state);
  std::ranges::transform(word, word.begin(), [](unsigned char c) { return std::tolower(c); });
  m_.runEnded(job_type, word, ran ? std::chrono::duration<double>(*ran).count() : -1.0);
}

namespace {

// Threads that fetch secrets (a fetch may wait on the network).
constexpr std::size_t kResolverThreads = 4;

// --no-secrets: every reference is refused, so a run that needs one ends FAILED saying why.
class RefusedSecrets final : public dispatch::SecretSource {
 public:
  void resolve(std::vector<secrets::SecretRef> refs,
               std::function<void(dispatch::ResolvedSecrets)> done) override {
    done(std::unexpected(secrets::SecretError{
        secrets::SecretError::Kind::kDenied,
        std::to_string(refs.size()) +
            " secret reference(s) not resolved: the replay runs with --no-secrets"}));
  }
  std::string mask(std::string_view text) const override { return std::string(text); }
  std::unique_ptr<StreamRedactor> outputRedactor() const override { return nullptr; }
};

}  // namespace

RunsAndSecrets::RunsAndSecrets(const Config& config, const Environment& env, const Clock& clock,
                               dispatch::OwnerLoop& loop, Secrets secrets) {
  if (secrets == Secrets::kResolved) {
    resolver_ = secrets::SecretResolver::fromConfig(config.secrets, env, clock);
    async_ = std::make_unique<secrets::AsyncSecretResolver>(*resolver_, kResolverThreads);
    loop.addSource("secret resolver", [async = async_.get()] { async->shutdown(); });
    secrets_ = std::make_unique<ResolverSecrets>(*resolver_, *async_);
  } else {
    secrets_ = std::make_unique<RefusedSecrets>();
  }
  // It kills what a worker that died left running, before this one takes commands.
  supervisor_ = std::make_unique<runner::Supervisor>(
      clock, launcher_,
      runner::SupervisorOptions{.output = config.output,
                                .heartbeat_interval = config.worker.heartbeat_interval,
                                .cgroup = config.runner.cgroup});
  loop.addSource("supervisor", [supervisor = supervisor_.get()] { supervisor->shutdown(); });
  executor_ = std::make_unique<SupervisorExecutor>(*supervisor_);
}

RunsAndSecrets::~RunsAndSecrets() = default;

std::unique_ptr<StreamRedactor> ResolverSecrets::outputRedactor() const {
  return std::make_unique<MaskedOutput>(resolver_.masker());
}

// Longest wait for a use record to be read back: past it the run ends FAILED, never started.
constexpr std::chrono::seconds kVerdictWait{60};

void LedgerUses::recordUse(const std::string& run_id, const consumer::ReadAt& at,
                           std::function<void(std::expected<consumer::ReadAt, std::string>)> done) {
  producer_.produce(
      ledger_.useRecord(run_id, at, worker_id_),
      [this, run_id, at, done = std::move(done)](const events::DeliveryReport& r) mutable {
        if (!r.ok()) {
          done(std::unexpected("its use record was not written: " + r.why()));
          return;
        }
        inbox_.post([this, run_id, at, partition = r.partition, offset = r.offset,
                     done = std::move(done)]() mutable {
          ledger_.awaitVerdict(run_id, at, partition, offset, clock_.steadyNow() + kVerdictWait,
                               std::move(done));
        });
      });
}

}  // namespace outpost::app
