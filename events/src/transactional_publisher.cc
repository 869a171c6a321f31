#include "outpost/events/transactional_publisher.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include "error_of.h"
#include "outpost/common/thread_name.h"
#include "outpost/events/kafka.h"

namespace outpost::events {

// ---- GroupMetadata ------------------------------------------------------------------------------

void GroupMetadata::Deleter::operator()(rd_kafka_consumer_group_metadata_s* p) const {
  rd_kafka_consumer_group_metadata_destroy(p);
}

GroupMetadata::GroupMetadata(rd_kafka_consumer_group_metadata_s* handle) : handle_(handle) {
  if (!handle_) throw std::invalid_argument("GroupMetadata: no consumer group metadata");
  void* buffer = nullptr;
  std::size_t size = 0;
  kafka::ErrorPtr error(rd_kafka_consumer_group_metadata_write(handle_.get(), &buffer, &size));
  if (error) {
    throw std::runtime_error(std::string("cannot serialise consumer group metadata: ") +
                             rd_kafka_error_string(error.get()));
  }
  fingerprint_.assign(static_cast<const char*>(buffer), size);
  rd_kafka_mem_free(nullptr, buffer);
}

GroupMetadata::~GroupMetadata() = default;

// ---- TransactionalPublisher ---------------------------------------------------------------------

namespace {

using SteadyClock = std::chrono::steady_clock;

// Retriable failures are logged at most this often.
constexpr auto kRetryLogInterval = std::chrono::seconds(5);
// How often the idle publisher serves the producer's events (errors, logs).
constexpr auto kIdlePoll = std::chrono::seconds(1);

// Errors of one record that no retry of the same record can fix.
bool refusesRecord(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

std::size_t recordBytes(const OutRecord& r) {
  std::size_t n = r.key.size() + r.value.size();
  for (const auto& h : r.headers) n += h.name.size() + h.value.size();
  return n;
}

std::size_t unitBytes(const TxnUnit& u) {
  std::size_t n = 0;
  for (const auto& r : u.records) n += recordBytes(r);
  return n;
}

std::string refusal(const std::string& topic, std::size_t value_bytes, rd_kafka_resp_err_t err) {
  return "a record for " + topic + " (value of " + std::to_string(value_bytes) +
         " bytes) was refused: " + rd_kafka_err2str(err);
}

std::string describe(const std::map<TopicPartition, std::int64_t>& offsets) {
  std::string s;
  for (const auto& [tp, off] : offsets) {
    s += (s.empty() ? "" : ",") + tp.topic + "[" + std::to_string(tp.partition) +
         "]=" + std::to_string(off);
  }
  return s;
}

// How a transactional call (after its retries) ended.
enum class Verdict {
  kOk,
  kAbortable,  // the transaction must be aborted
  kFatal,      // the producer is unusable
  kFailed,     // neither retriable nor abortable (e.g. a state error): start over with a new one
  kGaveUp,     // close()'s deadline passed while retrying
};

struct CallResult {
  Verdict verdict = Verdict::kOk;
  std::string reason;
  bool ok() const { return verdict == Verdict::kOk; }
};

}  // namespace

struct TransactionalPublisher::Impl {
  // ---- Fixed at construction.
  std::string transactional_id;
  TransactionalPublisherOptions options;
  kafka::Properties defaults, properties, producer_properties, forced;

  // ---- Shared between submit()/close()/stats() callers and the publisher thread.
  mutable std::mutex mutex;
  std::condition_variable cv;
  std::deque<TxnUnit> queue;         // guarded by mutex
  std::size_t in_flight = 0;         // taken by the thread, not yet reported; guarded by mutex
  bool closing = false;              // guarded by mutex
  bool initialised = false;          // init_transactions succeeded once; guarded by mutex
  SteadyClock::time_point deadline;  // close()'s; guarded by mutex, valid when closing
  std::mutex close_mutex;            // serialises close() callers

  std::atomic<std::uint64_t> transactions_committed{0}, units_committed{0}, transactions_aborted{0},
      units_aborted{0}, units_rejected{0}, producer_recreations{0};

  // ---- The publisher thread's own (the constructor's until the thread starts, close()'s after
  // it has been joined).
  kafka::HandlePtr rk;
  bool ready = false;  // init_transactions() succeeded on rk
  std::string fenced;  // why, once fenced for good (options.on_fenced)
  std::uint64_t next_seq = 1;
  // The records of the transaction being written: sequence number first_seq + i is record i, of
  // unit unit_of[i]. Delivery reports name a record by its sequence number (the message opaque),
  // so reports of an earlier transaction or producer are told apart and ignored.
  std::uint64_t first_seq = 0;
  std::vector<std::size_t> unit_of;
  std::map<std::size_t, std::string> refused_on_delivery;  // unit index -> reason
  SteadyClock::time_point last_retry_log{};
  std::uint64_t retries_unlogged = 0;
  std::thread thread;

  // A refused record makes its unit kRejected; `exact` when the client refused it as it was
  // queued, so no other unit can be the cause.
  struct Refusal {
    std::string reason;
    bool exact = false;
  };
  struct Attempt {
    bool committed = false;
    std::string reason;
    std::map<std::size_t, Refusal> refused;  // unit index -> why
  };

  kafka::HandlePtr makeProducer() {
    auto conf = kafka::makeConf({&defaults, &properties, &producer_properties, &forced},
                                "kafka.properties / kafka.producer_properties");
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &Impl::onDelivery);
    rd_kafka_conf_set_opaque(conf.get(), this);
    return kafka::makeHandle(kafka::ClientType::kProducer, std::move(conf));
  }

  // Trampoline: librdkafka serves delivery reports inside rd_kafka_poll / rd_kafka_flush (which
  // commit_transaction and abort_transaction call), i.e. on the publisher thread.
  static void onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    static_cast<Impl*>(opaque)->delivered(m);
  }

  void delivered(const rd_kafka_message_t* m) {
    if (!m->err || !refusesRecord(m->err)) return;
    auto seq = reinterpret_cast<std::uintptr_t>(m->_private);
    if (seq < first_seq || seq >= first_seq + unit_of.size()) return;
    refused_on_delivery.emplace(unit_of[seq - first_seq],
                                refusal(rd_kafka_topic_name(m->rkt), m->len, m->err));
  }

  // ---- Waiting, bounded by close()'s deadline.

  bool pastDeadline() const {
    std::lock_guard lock(mutex);
    return closing && SteadyClock::now() >= deadline;
  }

  // The timeout for one librdkafka call: options.call_timeout, cut to what is left before the
  // deadline once closing; 0 when it has passed.
  int callTimeoutMs() const {
    auto t = options.call_timeout;
    std::lock_guard lock(mutex);
    if (closing) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      t = std::max(std::chrono::milliseconds(0), std::min(t, left));
    }
    return static_cast<int>(t.count());
  }

  // Sleeps `d` or until the deadline; false when the deadline has passed.
  bool backOff(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex);
    const auto end = SteadyClock::now() + d;
    for (;;) {
      auto until = closing ? std::min(end, deadline) : end;
      if (SteadyClock::now() >= until) break;
      cv.wait_until(lock, until);
    }
    return !(closing && SteadyClock::now() >= deadline);
  }

  void logRetry(const std::string& what) {
    auto now = SteadyClock::now();
    if (now - last_retry_log < kRetryLogInterval) {
      ++retries_unlogged;
      return;
    }
    spdlog::warn("transactional producer {}: {}; retrying{}", transactional_id, what,
                 retries_unlogged ? " (" + std::to_string(retries_unlogged) +
                                        " more retries since the last report)"
                                  : std::string());
    last_retry_log = now;
    retries_unlogged = 0;
  }

  // Runs a transactional call, retrying it with backoff while its error is retriable.
  template <typename Call>
  CallResult call(const char* what, Call&& fn) {
    auto backoff = options.retry_backoff_min;
    for (;;) {
      int timeout = callTimeoutMs();
      if (timeout <= 0) {
        return {Verdict::kGaveUp, std::string(what) + " did not complete before close()'s timeout"};
      }
      kafka::ErrorPtr e(fn(timeout));
      if (!e) return {};
      auto error = kafka::errorOf(e.get(), what);
      const std::string& reason = error.message();
      switch (error.kind()) {
        case KafkaError::Kind::kFatal:
          return {Verdict::kFatal, reason};
        case KafkaError::Kind::kAbortable:
          return {Verdict::kAbortable, reason};
        case KafkaError::Kind::kPermanent:
          return {Verdict::kFailed, reason};
        case KafkaError::Kind::kRetriable:
          break;
      }
      logRetry(reason);
      if (!backOff(backoff)) {
        return {Verdict::kGaveUp, reason + "; close()'s timeout passed while retrying"};
      }
      backoff = std::min(backoff * 2, options.retry_backoff_max);
    }
  }

  // ---- The producer's life.

  // Whether the producer's fatal error is a fence: another producer initialised this
  // transactional.id since.
  bool fencedByAnother() const {
    if (!rk) return false;
    char text[512];
    auto code = rd_kafka_fatal_error(rk.get(), text, sizeof text);
    return code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
           code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH || code == RD_KAFKA_RESP_ERR__FENCED;
  }

  // After a fatal error: fenced with options.on_fenced set, the publisher stops for good (see
  // TransactionalPublisherOptions::on_fenced); otherwise a new producer.
  void lose(const std::string& why) {
    if (!options.on_fenced || !fencedByAnother()) return recreateProducer(why);
    fenced = "this worker's transactional producer " + transactional_id +
             " was fenced by another with its id: " + why;
    spdlog::error("{}; nothing more is committed by it", fenced);
    ready = false;
    rk.reset();
    options.on_fenced(fenced);
  }

  // Replaces an unusable producer (fenced, fatal idempotence error, unknown transaction state).
  // The new one starts without transactions; ensureReady() initialises them.
  void recreateProducer(const std::string& why) {
    spdlog::warn("transactional producer {}: recreating the producer after: {}", transactional_id,
                 why);
    ++producer_recreations;
    ready = false;
    rk.reset();  // drops the lost transaction's messages; nothing waits for them any more
    try {
      rk = makeProducer();
    } catch (const std::exception& e) {
      // The same configuration worked at construction; try again later (ensureReady).
      spdlog::error("transactional producer {}: {}", transactional_id, e.what());
    }
  }

  // Makes sure the producer's transactions are initialised (which also fences an older producer
  // with our transactional.id and aborts what it left open). False when close()'s deadline passed
  // first.
  bool ensureReady() {
    auto backoff = options.retry_backoff_min;
    while (!ready) {
      if (!rk) {
        recreateProducer("a failed attempt to create it");
        if (!rk) {
          if (!backOff(backoff)) return false;
          backoff = std::min(backoff * 2, options.retry_backoff_max);
          continue;
        }
      }
      auto r = call("init_transactions",
                    [&](int timeout) { return rd_kafka_init_transactions(rk.get(), timeout); });
      if (r.ok()) {
        ready = true;
        {
          std::lock_guard lock(mutex);
          initialised = true;
        }
        cv.notify_all();
        spdlog::info("transactional producer {} ready", transactional_id);
        break;
      }
      if (r.verdict == Verdict::kGaveUp) return false;
      // Fatal, or a failure no retry of the same call fixes (e.g. transaction.timeout.ms above
      // the broker's transaction.max.timeout.ms): start over with a new producer, slowly.
      spdlog::error("transactional producer {}: {}", transactional_id, r.reason);
      recreateProducer(r.reason);
      if (!backOff(backoff)) return false;
      backoff = std::min(backoff * 2, options.retry_backoff_max);
    }
    return true;
  }

  // ---- One transaction.

  // Queues every record of `units` in order. Not kOk when a record cannot be queued; a refused
  // record is noted in `a`.
  CallResult produceAll(const std::vector<TxnUnit>& units, Attempt& a) {
    for (std::size_t i = 0; i < units.size(); ++i) {
      for (const auto& r : units[i].records) {
        for (;;) {
          kafka::HeadersPtr hdrs;
          if (!r.headers.empty()) {
            hdrs.reset(rd_kafka_headers_new(r.headers.size()));
            for (const auto& h : r.headers) {
              rd_kafka_header_add(hdrs.get(), h.name.data(), static_cast<ssize_t>(h.name.size()),
                                  h.value.data(), static_cast<ssize_t>(h.value.size()));
            }
          }
          const std::uintptr_t seq = next_seq;
          rd_kafka_resp_err_t err = rd_kafka_producev(
              rk.get(), RD_KAFKA_V_TOPIC(r.topic.c_str()),
              RD_KAFKA_V_PARTITION(r.partition >= 0 ? r.partition : RD_KAFKA_PARTITION_UA),
              RD_KAFKA_V_KEY(r.key.empty() ? nullptr : const_cast<char*>(r.key.data()),
                             r.key.size()),
              RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs.get()),
              RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(seq)), RD_KAFKA_V_END);
          if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            hdrs.release();  // owned by the message now
            ++next_seq;
            unit_of.push_back(i);
            break;
          }
          if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            // The local queue drains as the brokers acknowledge; serve reports meanwhile.
            rd_kafka_poll(rk.get(), 50);
            if (pastDeadline()) {
              return {Verdict::kGaveUp, "close()'s timeout passed while the local queue was full"};
            }
            continue;
          }
          std::string reason = refusal(r.topic, r.value.size(), err);
          if (refusesRecord(err)) {
            a.refused[i] = {reason, true};
            return {Verdict::kAbortable, reason};
          }
          if (rd_kafka_fatal_error(rk.get(), nullptr, 0)) return {Verdict::kFatal, reason};
          // E.g. the transaction already failed (a delivery error): abort it.
          return {Verdict::kAbortable, reason};
        }
      }
    }
    return {};
  }

  // Writes `units` and their merged offsets in one transaction.
  Attempt attempt(const std::vector<TxnUnit>& units) {
    Attempt a;
    if (!ensureReady()) {
      a.reason = "the publisher closed before its producer was ready";
      return a;
    }
    std::map<TopicPartition, std::int64_t> offsets;
    const GroupMetadata* group = nullptr;
    for (const auto& u : units) {
      for (const auto& [tp, off] : u.offsets) offsets[tp] = off;  // the latest unit wins
      if (!u.offsets.empty()) group = u.group.get();
    }

    first_seq = next_seq;
    unit_of.clear();
    refused_on_delivery.clear();

    if (kafka::ErrorPtr e{rd_kafka_begin_transaction(rk.get())}) {
      // Only state and fatal errors are possible here: start over with a new producer.
      a.reason = std::string("begin_transaction failed: ") + rd_kafka_error_string(e.get());
      lose(a.reason);
      return a;
    }
    CallResult r = produceAll(units, a);
    if (r.ok() && !offsets.empty()) {
      // The records first: they go out once the coordinator has added their partitions, which it
      // does only after it finished writing the previous transaction's markers, so the offsets
      // then go in at the first try. Sent right away, AddOffsetsToTxn met those markers
      // (CONCURRENT_TRANSACTIONS) and librdkafka retried it after retry.backoff.ms (100 ms):
      // every commit took over 100 ms. A flush that does not finish in time is no error here;
      // what went wrong shows in the calls below.
      rd_kafka_flush(rk.get(), std::max(callTimeoutMs(), 1));
      kafka::PartitionListPtr list(
          rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
      for (const auto& [tp, off] : offsets) {
        rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = off;
      }
      r = call("send_offsets_to_transaction", [&](int timeout) {
        return rd_kafka_send_offsets_to_transaction(rk.get(), list.get(), group->handle(), timeout);
      });
    }
    if (r.ok()) {
      r = call("commit_transaction",
               [&](int timeout) { return rd_kafka_commit_transaction(rk.get(), timeout); });
    }
    if (r.ok()) {
      a.committed = true;
      return a;
    }

    ++transactions_aborted;
    a.reason = r.reason;
    if (!offsets.empty()) a.reason += " (offsets " + describe(offsets) + ")";
    rd_kafka_poll(rk.get(), 0);  // delivery reports not served yet, if any
    if (!refused_on_delivery.empty()) {
      // librdkafka 2.0.2 workaround: the broker refused records that had sequence numbers, and it
      // then sends the next
      // transaction's records to that partition with a gap (OUT_OF_ORDER_SEQUENCE_NUMBER) and
      // fails it too. A new producer (new epoch) starts the sequences afresh; its
      // init_transactions aborts this transaction.
      lose(r.reason);
    } else if (r.verdict == Verdict::kAbortable) {
      auto ab = call("abort_transaction",
                     [&](int timeout) { return rd_kafka_abort_transaction(rk.get(), timeout); });
      if (!ab.ok()) lose(ab.reason);
    } else {
      lose(r.reason);
    }
    // Delivery reports were served by commit/abort: they tell which units' records the broker
    // refused.
    for (auto& [unit, reason] : refused_on_delivery) a.refused.try_emplace(unit, reason, false);
    return a;
  }

  // ---- Units in and out.

  void finish(TxnUnit& u, TxnOutcome::Status status, std::string reason) {
    switch (status) {
      case TxnOutcome::Status::kCommitted:
        ++units_committed;
        break;
      case TxnOutcome::Status::kAborted:
        ++units_aborted;  // logged once per transaction by publish()
        break;
      case TxnOutcome::Status::kRejected:
        ++units_rejected;
        spdlog::error("transactional producer {}: unit rejected: {}", transactional_id, reason);
        break;
    }
    if (u.done) {
      try {
        u.done(TxnOutcome{status, std::move(reason)});
      } catch (const std::exception& e) {
        spdlog::error("transactional publisher: a completion callback threw: {}", e.what());
      }
    }
    std::lock_guard lock(mutex);
    --in_flight;
  }

  // Publishes `units` (one batch); every unit is reported before this returns.
  void publish(std::vector<TxnUnit> units) {
    std::erase_if(units, [&](TxnUnit& u) {
      if (!fenced.empty()) {
        finish(u, TxnOutcome::Status::kRejected, fenced);
        return true;
      }
      if (!u.offsets.empty() && !u.group) {
        finish(u, TxnOutcome::Status::kRejected, "offsets without group metadata");
        return true;
      }
      return false;
    });
    if (units.empty()) return;

    Attempt a = attempt(units);
    if (a.committed) {
      ++transactions_committed;
      for (auto& u : units) finish(u, TxnOutcome::Status::kCommitted, {});
      return;
    }
    if (a.refused.empty()) {
      // The units waiting behind these were given offsets that count these as done: they are
      // aborted too, so that none of them commits past an end that was not written. The owner
      // resubmits them all, in order, with offsets taken afresh.
      std::deque<TxnUnit> behind;
      {
        std::lock_guard lock(mutex);
        behind.swap(queue);
        in_flight += behind.size();
      }
      spdlog::warn("transactional producer {}: {} unit(s) aborted, {} waiting behind them: {}",
                   transactional_id, units.size(), behind.size(), a.reason);
      // Fenced for good: nothing of them will ever commit here.
      const auto status = fenced.empty() ? TxnOutcome::Status::kAborted
                                         : TxnOutcome::Status::kRejected;
      for (auto& u : units) finish(u, status, fenced.empty() ? a.reason : fenced);
      for (auto& u : behind) {
        finish(u, status,
               fenced.empty() ? "a transaction before it aborted: " + a.reason : fenced);
      }
      return;
    }
    // Some records were refused. A unit is rejected when the refusal is surely its own (refused
    // as it was queued, or it was alone); the broker may refuse a whole batch of records for one
    // of them, so other suspects are retried alone, and the innocent units together first.
    std::vector<TxnUnit> innocent;
    std::vector<TxnUnit> suspects;
    for (std::size_t i = 0; i < units.size(); ++i) {
      auto it = a.refused.find(i);
      if (it == a.refused.end()) {
        innocent.push_back(std::move(units[i]));
      } else if (it->second.exact || units.size() == 1) {
        finish(units[i], TxnOutcome::Status::kRejected, it->second.reason);
      } else {
        suspects.push_back(std::move(units[i]));
      }
    }
    if (!innocent.empty()) publish(std::move(innocent));
    for (auto& s : suspects) {
      std::vector<TxnUnit> alone;
      alone.push_back(std::move(s));
      publish(std::move(alone));
    }
  }

  // The next batch: pending units in order while they share group metadata and fit the bounds.
  // Waits for units; empty once closing and nothing is pending.
  std::vector<TxnUnit> takeBatch() {
    std::unique_lock lock(mutex);
    while (queue.empty()) {
      if (closing) return {};
      cv.wait_for(lock, kIdlePoll);
      if (rk) rd_kafka_poll(rk.get(), 0);  // errors and stray reports, while idle
    }
    std::vector<TxnUnit> batch;
    std::optional<const GroupMetadata*> group;  // of the units with offsets
    std::size_t records = 0, bytes = 0;
    while (!queue.empty()) {
      TxnUnit& u = queue.front();
      const bool has_offsets = !u.offsets.empty();
      const std::size_t n = u.records.size(), b = unitBytes(u);
      if (!batch.empty()) {
        if (has_offsets && group && *group != u.group.get()) break;
        if (records + n > options.max_batch_records || bytes + b > options.max_batch_bytes) break;
      }
      if (has_offsets) group = u.group.get();
      records += n;
      bytes += b;
      batch.push_back(std::move(u));
      queue.pop_front();
    }
    in_flight += batch.size();
    return batch;
  }

  // min_interval after a batch of batch_target units or more; in proportion after a smaller one,
  // but at least a quarter of it.
  std::chrono::milliseconds intervalAfter(std::size_t units) const {
    const auto full = options.min_interval;
    if (options.batch_target == 0 || units >= options.batch_target) return full;
    const auto scaled =
        full * static_cast<std::int64_t>(units) / static_cast<std::int64_t>(options.batch_target);
    return std::max(full / 4, scaled);
  }

  void run() {
    ensureReady();  // early, so that the first unit does not wait for it
    for (;;) {
      auto batch = takeBatch();
      if (batch.empty()) break;
      const auto began = SteadyClock::now();
      const auto interval = intervalAfter(batch.size());
      publish(std::move(batch));
      // Group commit: units that arrive meanwhile wait for the next transaction, which begins no
      // sooner than the interval after this one (unless closing).
      std::unique_lock lock(mutex);
      cv.wait_until(lock, began + interval, [&] { return closing; });
    }
  }
};

TransactionalPublisher::TransactionalPublisher(const KafkaConfig& config,
                                               std::string transactional_id,
                                               TransactionalPublisherOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (transactional_id.empty()) throw ConfigError("the transactional.id must not be empty");
  if (options.call_timeout <= std::chrono::milliseconds(0)) {
    throw ConfigError("TransactionalPublisherOptions::call_timeout must be positive");
  }
  impl_->transactional_id = std::move(transactional_id);
  impl_->options = std::move(options);
  // Defaults first so that kafka.properties / producer_properties can override any of them. A
  // transactional producer is idempotent; message.timeout.ms follows transaction.timeout.ms. No
  // compression, as for KafkaProducer (producer.cc says why).
  impl_->defaults = {
      {"bootstrap.servers", config.bootstrap_servers},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "2"},
      {"transaction.timeout.ms", "60000"},
  };
  impl_->properties = config.properties;
  impl_->producer_properties = config.producer_properties;
  for (const auto& [k, v] : impl_->options.producer_properties) impl_->producer_properties[k] = v;
  impl_->forced = {{"transactional.id", impl_->transactional_id}};
  impl_->rk = impl_->makeProducer();  // throws ConfigError; no network yet
  impl_->thread = std::thread([impl = impl_.get()] {
    nameThisThread("op-txn");
    impl->run();
  });
}

TransactionalPublisher::~TransactionalPublisher() {
  close(impl_->options.close_timeout);
}

void TransactionalPublisher::submit(TxnUnit unit) {
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->closing) {
      impl_->queue.push_back(std::move(unit));
      impl_->cv.notify_all();  // the publisher thread, whichever else waits
      return;
    }
  }
  ++impl_->units_aborted;
  if (unit.done) unit.done(TxnOutcome{TxnOutcome::Status::kAborted, "the publisher is closed"});
}

void TransactionalPublisher::close(std::chrono::milliseconds timeout) {
  std::lock_guard close_lock(impl_->close_mutex);
  {
    std::lock_guard lock(impl_->mutex);
    auto deadline = SteadyClock::now() + timeout;
    impl_->deadline = impl_->closing ? std::min(impl_->deadline, deadline) : deadline;
    impl_->closing = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->rk.reset();
}

bool TransactionalPublisher::waitReady(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  impl_->cv.wait_for(lock, timeout, [&] { return impl_->initialised || impl_->closing; });
  return impl_->initialised && !impl_->closing;
}

TransactionalPublisherStats TransactionalPublisher::stats() const {
  TransactionalPublisherStats s;
  s.transactions_committed = impl_->transactions_committed;
  s.units_committed = impl_->units_committed;
  s.transactions_aborted = impl_->transactions_aborted;
  s.units_aborted = impl_->units_aborted;
  s.units_rejected = impl_->units_rejected;
  s.producer_recreations = impl_->producer_recreations;
  return s;
}

std::size_t TransactionalPublisher::pending() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->queue.size() + impl_->in_flight;
}

}  // namespace outpost::events
