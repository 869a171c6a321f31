// Leases: a started run belongs to one incarnation of one worker for as long as that worker's
// status keeps appearing on the workers topic. This is the view of the workers topic that decides
// whether the worker holding a run is still there (its lease held) or gone (lapsed), so that a
// run whose worker was lost is run again, and a run whose worker is only slow or far is not.
//
// The clock of a lease is the workers topic itself, not this worker's wall clock: a lease lapses
// only after the topic has been seen flowing (this worker reads its own statuses back) for
// lease_timeout without a status from the holder. So a broker outage, which stops every status,
// ends no lease: when the brokers return, the holders' statuses arrive with this worker's own.
//
// Pure: no Kafka, no threads. The owner feeds it what it reads and asks it with a steady time.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "outpost/v1/worker.pb.h"

namespace outpost::dispatch {

struct LeaseOptions {
  std::string self_id;           // worker.id of this worker
  std::string self_incarnation;  // this process's incarnation
  // How long the workers topic must flow without a status from a run's worker before its lease
  // lapses (worker.lease_timeout).
  std::chrono::milliseconds lease_timeout{30'000};
  // How often each worker writes its status (worker.status_interval): the topic counts as flowing
  // while this worker's own statuses come back at about that pace.
  std::chrono::milliseconds status_interval{10'000};
};

// Whether the lease of a run held by a worker incarnation still holds, and if not, why (words for
// the log and the lost attempt's event).
struct LeaseVerdict {
  bool lapsed = false;
  std::string why;  // empty while held
  // Lapsed, and the worker's transactional producer must be fenced before its runs run again: it
  // went silent, stopped or was deleted. Not when it restarted: the new incarnation's producer
  // fenced the old one as it started (and fencing now would fence the new one).
  bool fence = false;
  // Lapsed because the worker stopped cleanly: its transactions all ended, so what it still holds
  // can be read before it is fenced (it holds nothing, unless a run's end could not be written).
  bool stopped = false;
};

class LeaseView {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  explicit LeaseView(LeaseOptions options);

  // A status read from the workers topic at `read_at`, in the topic's order.
  void onStatus(const v1::WorkerStatus& status, SteadyTime read_at);
  // A tombstone for `worker_id` (its status deleted): it is gone.
  void onRemoved(const std::string& worker_id, SteadyTime read_at);

  // The lease of a run that `worker_id`, incarnation `incarnation`, holds, as of `now`.
  LeaseVerdict lease(std::string_view worker_id, std::string_view incarnation,
                     SteadyTime now) const;

  // Every other worker of `pool` whose latest status says it has not stopped, with the verdict on
  // the lease of its latest incarnation.
  struct PoolWorker {
    std::string worker_id;
    std::string incarnation;
    LeaseVerdict lease;
  };
  std::vector<PoolWorker> running(std::string_view pool, SteadyTime now) const;

  // Whether the workers topic flows now: one of this worker's own statuses came back within the
  // last two status intervals and a half.
  bool flowing(SteadyTime now) const;

 private:
  struct Holder {
    std::string incarnation;
    std::string pool;
    v1::WorkerState state = v1::WORKER_STATE_UNSPECIFIED;
    bool removed = false;
    // When this worker's first own status after the holder's latest one came back: from then on,
    // the topic flows without the holder. Unset while none has.
    std::optional<SteadyTime> silent_since;
  };

  void ownStatusRead(SteadyTime read_at);
  // Held unless the topic flows now and has flowed for lease_timeout since `since` (unset: not
  // silent yet) and since the current flow began.
  LeaseVerdict silence(std::string_view worker_id, const std::optional<SteadyTime>& since,
                       SteadyTime now) const;

  LeaseOptions options_;
  std::unordered_map<std::string, Holder> holders_;
  // When this worker's own statuses began coming back, after the last gap of more than two and a
  // half status intervals: a worker never seen is silent since then.
  std::optional<SteadyTime> flow_since_;
  std::optional<SteadyTime> last_own_read_;
};

}  // namespace outpost::dispatch
