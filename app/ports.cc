#include "ports.h"

#include <algorithm>
#include <cctype>

#include <spdlog/spdlog.h>

namespace outpost::app {
namespace {

// Reading the runs topic for newly assigned partitions (in the rebalance callback).
constexpr std::chrono::seconds kRestoreTimeout{30};

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
                                   const Clock& clock, events::TransactionalPublisher* txn)
    : store_(store), worker_id_(std::move(worker_id)), clock_(clock), txn_(txn) {}

events::OutRecord RunStoreAttempts::recordStart(const v1::JobCommand& command,
                                                const consumer::Admission& admission,
                                                const TopicPartition& source, std::int64_t offset) {
  auto record =
      consumer::RunStore::startRecord(command, admission, source, offset, worker_id_, clock_.now());
  auto out = store_.toOutRecord(record);
  store_.remember(std::move(record));
  return out;
}

events::OutRecord RunStoreAttempts::recordEnd(const v1::JobCommand& command, std::uint32_t starts,
                                              v1::RunState terminal, const TopicPartition& source,
                                              std::int64_t offset) {
  auto record = consumer::RunStore::endRecord(command, starts, terminal, source, offset, worker_id_,
                                              clock_.now());
  auto out = store_.toOutRecord(record);
  store_.remember(std::move(record));
  return out;
}

void RunStoreAttempts::restore(const std::vector<std::int32_t>& partitions) {
  if (txn_ && !txn_->waitReady(kRestoreTimeout)) {
    spdlog::warn(
        "the transactional producer is not ready yet; the run state read now may miss "
        "the last records of a predecessor");
  }
  if (auto restored = store_.restore(partitions, kRestoreTimeout)) {
    spdlog::info("run state of {} partition(s) restored: {} run(s) from {} record(s)",
                 restored->partitions, restored->kept, restored->records);
  } else {
    spdlog::error(
        "run state not restored: {}; runs lost on other workers are not counted and "
        "ended runs whose offsets were not committed may run again",
        restored.error());
  }
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

std::unique_ptr<StreamRedactor> ResolverSecrets::outputRedactor() const {
  return std::make_unique<MaskedOutput>(resolver_.masker());
}

}  // namespace outpost::app
