#include "outpost/dispatch/leases.h"

#include <algorithm>

#include <fmt/format.h>

namespace outpost::dispatch {

LeaseView::LeaseView(LeaseOptions options) : options_(std::move(options)) {}

void LeaseView::onStatus(const v1::WorkerStatus& status, SteadyTime read_at) {
  if (status.worker_id() == options_.self_id &&
      status.incarnation() == options_.self_incarnation) {
    // LOST about this worker is another's word, not its own status (the owner acts on it).
    if (status.state() != v1::LOST) ownStatusRead(read_at);
    return;
  }
  Holder& h = holders_[status.worker_id()];
  h.incarnation = status.incarnation();
  h.pool = status.pool();
  h.state = status.state();
  h.removed = false;
  h.silent_since.reset();
}

void LeaseView::onRemoved(const std::string& worker_id, SteadyTime) {
  Holder& h = holders_[worker_id];
  h.removed = true;
  h.silent_since.reset();
}

void LeaseView::ownStatusRead(SteadyTime read_at) {
  // After a gap (an outage, a pause of this process) silences count again from now: what the
  // holders wrote meanwhile may still be on its way.
  if (!flowing(read_at)) flow_since_ = read_at;
  last_own_read_ = read_at;
  for (auto& [id, h] : holders_) {
    if (!h.silent_since) h.silent_since = read_at;
  }
}

std::vector<LeaseView::PoolWorker> LeaseView::running(std::string_view pool,
                                                      SteadyTime now) const {
  std::vector<PoolWorker> out;
  for (const auto& [id, h] : holders_) {
    if (h.pool != pool || h.removed || h.state == v1::STOPPED || id == options_.self_id) continue;
    out.push_back({id, h.incarnation, lease(id, h.incarnation, now)});
  }
  std::ranges::sort(out, {}, &PoolWorker::worker_id);
  return out;
}

bool LeaseView::flowing(SteadyTime now) const {
  return last_own_read_ && now - *last_own_read_ <= options_.status_interval * 5 / 2;
}

LeaseVerdict LeaseView::lease(std::string_view worker_id, std::string_view incarnation,
                              SteadyTime now) const {
  if (worker_id == options_.self_id) {
    if (incarnation.empty() || incarnation == options_.self_incarnation) return {};
    return {true, fmt::format("worker {} restarted (incarnation {} is gone)", worker_id,
                              incarnation)};
  }
  auto it = holders_.find(std::string(worker_id));
  if (it == holders_.end()) return silence(worker_id, flow_since_, now);
  const Holder& h = it->second;
  if (h.removed) return {true, fmt::format("worker {}'s status was deleted", worker_id), true};
  // A record without an incarnation (written before incarnations existed) matches any.
  if (!incarnation.empty() && h.incarnation != incarnation) {
    return {true, fmt::format("worker {} restarted (incarnation {} is gone)", worker_id,
                              incarnation)};
  }
  if (h.state == v1::STOPPED) {
    return {true, fmt::format("worker {} stopped", worker_id), true, true};
  }
  if (h.state == v1::LOST) {
    return {true, fmt::format("worker {} was counted lost by another", worker_id), true};
  }
  return silence(worker_id, h.silent_since, now);
}

LeaseVerdict LeaseView::silence(std::string_view worker_id, const std::optional<SteadyTime>& since,
                                SteadyTime now) const {
  if (!since || !flowing(now)) return {};
  auto from = std::max(*since, *flow_since_);
  if (now - from < options_.lease_timeout) return {};
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now - from).count();
  return {true,
          fmt::format("no status from worker {} for {} s while the workers topic flowed",
                      worker_id, seconds),
          true};
}

}  // namespace outpost::dispatch
