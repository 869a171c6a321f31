// The run lifecycle: a command read from the jobs topic becomes a run that is admitted, queued for
// a slot, claimed (its start record; its offset is done from then on), started, watched and ended
// with exactly one terminal event per attempt. A claimed run is its worker's to the end, whatever
// rebalances do; a run whose worker was lost is run again by the owner of its partition. Cancels,
// rebalances, lost runs and the drain at shutdown are handled here too. Kafka, processes and
// secrets are behind the ports (ports.h).
//
// Threads: one owner (the worker's poll thread) calls every method; what other threads report
// comes back through Ports::poster, whose closures the owner runs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/consumer/control_listener.h"
#include "outpost/consumer/job_consumer.h"
#include "outpost/dispatch/ports.h"
#include "outpost/dispatch/signatures.h"

namespace outpost::dispatch {

class Dispatcher {
 public:
  // `worker_env` is what templates may pass through to runs.
  Dispatcher(const Config& config, Environment worker_env, Ports ports);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // A message of the jobs topic: skipped (another pool's), refused (dead letter and REJECTED),
  // ended without running (EXPIRED, already ended, given up), or a run.
  void onMessage(consumer::ConsumedMessage message);
  // Whether a command of the control topic (cancel, drain, resume) may act here: with
  // security.commands warn or require, its signature (admitControl logs and counts a refusal,
  // and a refused cancel of a run held here gets a NOTICE). Call it before acting on any.
  bool admitControl(const consumer::ControlMessage& message);
  // A command of the control topic (a cancel), admitted.
  void onControl(const consumer::ControlMessage& message);
  // After the owner ran what was posted: starts what a retirement made room for, looks for runs
  // whose worker was lost (about every second), expires what is remembered of runs and cancels,
  // commits what is done (at-least-once).
  void tick();

  // Rebalance, from the consumer's callback: reads what the runs topic knows of new partitions.
  void onAssigned(const std::vector<TopicPartition>& partitions);
  // Partitions going away: their commands not claimed are dropped (the next owner takes them);
  // claims and ends on their way get revoke_timeout to be written, during which `serve` is called
  // repeatedly (it waits briefly for posted work and runs it). Claimed runs go on here.
  void onRevoked(const std::vector<TopicPartition>& partitions, consumer::Revocation how,
                 const std::function<void()>& serve);

  // Shutdown: takes nothing new, and drops the commands not started (their offsets stay
  // uncommitted, so another worker runs them). Running runs go on until stopAll().
  void beginDrain();
  // Held (drained by an operator, not stopping): starts nothing and pauses the partitions;
  // commands fetched before the pause wait in the queue, running runs go on. Released, it
  // dispatches again.
  void holdStarts();
  void releaseStarts();
  // A reload: commands admitted from now on are admitted under `templates`; runs admitted before
  // keep the templates they were admitted under.
  void setTemplates(std::map<std::string, TemplateConfig> templates);
  // Whether commands must be signed, and by which keys (at start, and on every reload or change of
  // the JWKS file); until it is called, signatures are not checked.
  void setSignatures(SignatureSettings settings);
  // Where single use of signed job commands is recorded (nullptr, the default: not checked, as
  // in `replay local`). Outlives the dispatcher.
  void setUseRecords(UseRecords* uses);
  void stopAll(const std::string& reason);
  // This worker was fenced (another counted it lost and runs its runs again): takes nothing new,
  // drops what was not claimed, stops every run, and writes nothing more about any of them (their
  // ends are the other worker's). It is idle once their processes are gone.
  void abandon(const std::string& reason);
  // The last commit (at-least-once), once idle() or out of time: sent, not waited for (the
  // consumer's close waits for it).
  void close();

  bool idle() const;              // no run is held (live or waiting to be committed)
  std::size_t unsettled() const;  // runs not retired (live, or waiting to be acknowledged)
  std::size_t running() const;    // runs holding a slot
  std::size_t queued() const;     // admitted runs waiting for a slot
  // For each partition it took commands from: the first offset whose command is not finished
  // (or one past the last taken): what the group commits next.
  std::map<TopicPartition, std::int64_t> unfinishedFrom() const;
  std::uint64_t skippedForOtherPools() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::dispatch
