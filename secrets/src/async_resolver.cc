#include "outpost/secrets/async_resolver.h"

#include "outpost/common/thread_name.h"

namespace outpost::secrets {

AsyncSecretResolver::AsyncSecretResolver(SecretResolver& resolver, std::size_t threads)
    : resolver_(resolver), thread_count_(std::max<std::size_t>(1, threads)) {}

AsyncSecretResolver::~AsyncSecretResolver() {
  shutdown();
}

void AsyncSecretResolver::shutdown() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void AsyncSecretResolver::resolve(std::vector<SecretRef> refs, std::function<void(Values)> done) {
  std::lock_guard lock(mutex_);
  if (stop_) return;  // shut down: dropped, like what was queued
  if (threads_.empty()) {
    for (std::size_t i = 0; i < thread_count_; ++i) {
      threads_.emplace_back([this] {
        nameThisThread("op-resolve");
        for (;;) {
          std::function<void()> task;
          {
            std::unique_lock l(mutex_);
            cv_.wait(l, [this] { return stop_ || !tasks_.empty(); });
            if (stop_) return;
            task = std::move(tasks_.front());
            tasks_.pop_front();
          }
          task();
        }
      });
    }
  }
  tasks_.push_back([this, refs = std::move(refs), done = std::move(done)] {
    std::map<std::string, SecretValue> values;
    for (const auto& ref : refs) {
      if (values.contains(ref.text)) continue;
      auto got = resolver_.resolve(ref);
      if (!got) return done(std::unexpected(got.error()));
      values.emplace(ref.text, std::move(got->value));
    }
    done(std::move(values));
  });
  cv_.notify_one();
}

}  // namespace outpost::secrets
