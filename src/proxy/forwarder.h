#pragma once
// Spool + senders. Every batch is first written to the proxy spool
// (<spool_dir>/<ulid>.batch, bf::Spool); sender threads take spooled batches oldest
// first and POST them to a receiver (DESIGN §3). Delivery rules (docs/proxy.md):
//
//  - Several receivers, tried in the configured order. A receiver that fails at
//    transport level or answers 429/5xx/408 is skipped for a backoff (its own,
//    exponential with jitter, at least its Retry-After) and the batch goes to the next
//    one at once, with the same X-Batch-Id (receivers dedupe by batch id). When every
//    receiver is backing off, the batch waits in the spool. Transient errors never
//    make the proxy give up on a batch.
//  - 2xx removes the batch (200 {"duplicate": true} included).
//  - 401/403/404 (key or dataset problem an operator can fix): the batch stays in the
//    spool and its (tenant, dataset) is paused: none of its batches is sent, other
//    datasets keep flowing; every permanent_error_retry one batch probes again. Any
//    other answer to a probe ends the pause.
//  - 400/413/409 (this batch can never be accepted) move the batch to
//    <spool_dir>/dead/ for the operator. Nothing is deleted.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/spool.h"
#include "net/http_client.h"
#include "proxy/batcher.h"

namespace bf {

struct ForwarderOptions {
  // The component contract's component_id (kind "sink", type "forwarder"; docs/metrics.md).
  std::string component_id = "receiver";
  std::vector<std::string> receiver_urls{"http://127.0.0.1:8080"};  // failover order
  std::string ingest_key;
  std::filesystem::path spool_dir = "./data/proxy-spool";
  uint64_t spool_max_bytes = 1ull << 30;
  // `interval`: batches stored with submit_or_drop (best effort) are fsync'ed in groups.
  SpoolFsync spool_fsync = SpoolFsync::always;
  std::chrono::milliseconds spool_fsync_interval{200};
  int concurrency = 2;
  HttpClientOptions http;                         // per-request retries (single receiver only)
  std::chrono::milliseconds backoff_base{500};    // per receiver, after a transient failure
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds retry_after_max{600000};  // longest Retry-After honoured
  std::chrono::milliseconds permanent_error_retry{60000};  // probe interval of a paused dataset
};

class Forwarder {
 public:
  explicit Forwarder(ForwarderOptions options);  // opens the spool and queues what it holds
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  void start();  // sender threads
  void stop();   // releases waiters; senders finish their in-flight request and exit

  // Durable when it returns; queues the batch for sending. Throws SpoolFull (or a
  // filesystem error) when it cannot be stored.
  void submit(const ProxyBatch& batch);
  // For best-effort batcher output (UDP): like submit, but a batch that cannot be
  // stored is dropped and counted in bf_proxy_dropped_total{reason="spool_full"|
  // "spool_error"}; under SpoolFsync::interval it is committed with the next group fsync.
  void submit_or_drop(const ProxyBatch& batch);
  // For backpressure batcher output (TCP): while the spool is full, waits (in short
  // slices) until senders free room; never drops for lack of room. After
  // release_waiters() it stores over the limit instead of waiting (shutdown: what a
  // source already read is kept). A batch larger than the whole limit is stored once
  // the spool is empty. Other storage errors drop and count as submit_or_drop does.
  void submit_or_wait(const ProxyBatch& batch);
  // Wakes every submit_or_wait and makes later ones store without waiting.
  void release_waiters();

  size_t queued() const;  // batches in the spool (not yet acknowledged), incl. in flight
  size_t blocked_submitters() const { return blocked_.load(); }
  // Paused (tenant, dataset) pairs.
  std::vector<std::pair<std::string, std::string>> paused() const;
  std::filesystem::path queue_dir() const { return options_.spool_dir; }
  std::filesystem::path dead_dir() const { return options_.spool_dir / "dead"; }
  Spool& spool() { return spool_; }

 private:
  using Key = std::pair<std::string, std::string>;  // tenant, dataset ("", "" if unknown)
  struct Queue {
    std::set<std::string> ids;  // spooled, not in flight, oldest first
    bool paused = false;
    bool probing = false;  // a probe batch is in flight
    std::chrono::steady_clock::time_point next_probe{};
    long status = 0;  // the answer that paused it
  };
  struct Receiver {
    std::string base;  // without trailing '/'
    std::chrono::steady_clock::time_point not_before{};
    int failures = 0;  // consecutive
  };
  enum class Outcome { sent, retry, dead, pause };
  struct Result {
    Outcome outcome = Outcome::retry;
    long status = 0;
    std::string detail;
  };

  void store(const ProxyBatch& batch, Spool::PutOptions put);
  void sender_loop();
  Result send_one(HttpClient& client, const std::string& id, const Key& key);
  void receiver_failed(size_t index, std::chrono::milliseconds retry_after);
  void receiver_ok(size_t index);
  void move_to_dead(const std::string& id, const Spool::Item& item, const std::string& code,
                    const std::string& reason, uint64_t events);
  // A batch that could not be stored: counted as an error and, when dropped, a discard.
  void count_store_failure(const char* reason, uint64_t dropped_events);
  void pause_locked(const Key& key, Queue& q, long status, const std::string& detail);
  void resume_locked(const Key& key, Queue& q);
  void space_freed();
  std::chrono::milliseconds backoff(int failures);

  ForwarderOptions options_;
  Spool spool_;
  // The contract: received = batches handed to the forwarder, sent = acknowledged by a
  // receiver; resolved once here, not per batch.
  ComponentMetrics component_;
  Counter& dead_letter_events_;  // discarded{intentional=false, reason=dead_letter}

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, Queue> queues_;
  std::vector<Receiver> receivers_;
  size_t in_flight_ = 0;
  bool stopping_ = false;
  int local_failures_ = 0;  // consecutive failures that were not the receivers' (disk, fds)
  std::chrono::steady_clock::time_point local_not_before_{};
  std::vector<std::thread> senders_;

  // submit_or_wait
  std::mutex space_mu_;
  std::condition_variable space_cv_;
  std::atomic<bool> release_{false};
  std::atomic<size_t> blocked_{0};
  std::atomic<int64_t> last_block_warning_{0};
};

}  // namespace bf
