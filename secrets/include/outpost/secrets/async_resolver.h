// Secret resolution off the caller's thread: a few threads that resolve a run's references (a
// fetch may wait on the network) and hand back every value, or the first reason one could not
// be had. The worker's poll thread never waits for a store.
#pragma once

#include <condition_variable>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "outpost/secrets/resolver.h"

namespace outpost::secrets {

class AsyncSecretResolver {
 public:
  // Every value by reference text, or the error (its kind kept) of the first that failed.
  using Values = std::expected<std::map<std::string, SecretValue>, SecretError>;

  // Threads start on first use. `resolver` outlives this.
  AsyncSecretResolver(SecretResolver& resolver, std::size_t threads);
  // shutdown().
  ~AsyncSecretResolver();
  // Waits for the fetch in progress on each thread (its `done` runs); what is queued is dropped
  // (never reported), and so is what resolve() is given afterwards. No `done` runs once it
  // returns. Idempotent; not from a `done`.
  void shutdown();
  AsyncSecretResolver(const AsyncSecretResolver&) = delete;
  AsyncSecretResolver& operator=(const AsyncSecretResolver&) = delete;

  // Any thread. `done` runs once, on one of the resolver's threads, with every value by
  // reference text, or the message of the first reference that failed.
  void resolve(std::vector<SecretRef> refs, std::function<void(Values)> done);

 private:
  SecretResolver& resolver_;
  std::size_t thread_count_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace outpost::secrets
