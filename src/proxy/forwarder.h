#pragma once
// Spool + senders. Every batch is first written durably to the proxy spool
// (<spool_dir>/<ulid>.batch, bf::Spool); sender threads take spooled batches oldest first and POST them
// to the receiver (DESIGN §3). 2xx removes the batch; 429/5xx/transport errors keep it
// and retry after a backoff shared by all senders; 400/401/403/404/413 move it to
// <spool_dir>/dead/ for the operator.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/spool.h"
#include "net/http_client.h"
#include "proxy/batcher.h"

namespace bf {

struct ForwarderOptions {
  std::string receiver_url = "http://127.0.0.1:8080";
  std::string ingest_key;
  std::filesystem::path spool_dir = "./data/proxy-spool";
  uint64_t spool_max_bytes = 1ull << 30;
  int concurrency = 2;
  HttpClientOptions http;                         // per-request retries happen inside the client
  std::chrono::milliseconds backoff_base{500};    // then the batch waits, shared by all senders
  std::chrono::milliseconds backoff_max{30000};
};

class Forwarder {
 public:
  explicit Forwarder(ForwarderOptions options);  // opens the spool and queues what it holds
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  void start();  // sender threads
  void stop();   // senders finish their in-flight request and exit; the spool keeps the rest

  // Durable when it returns; queues the batch for sending. Throws SpoolFull (or a
  // filesystem error) when it cannot be stored.
  void submit(const ProxyBatch& batch);
  // For batcher output: like submit, but a batch that cannot be stored is dropped and
  // counted in bf_proxy_dropped_total{reason="spool_full"|"spool_error"}.
  void submit_or_drop(const ProxyBatch& batch);

  size_t queued() const;  // batches in the spool (not yet acknowledged), incl. in flight
  std::filesystem::path queue_dir() const { return options_.spool_dir; }
  std::filesystem::path dead_dir() const { return options_.spool_dir / "dead"; }

 private:
  enum class Outcome { sent, retry, dead };
  void sender_loop();
  Outcome send_one(HttpClient& client, const std::string& id, std::chrono::milliseconds* retry_after);
  void move_to_dead(const std::string& id, const Spool::Item& item, const std::string& code,
                    const std::string& reason);
  std::chrono::milliseconds next_backoff();

  ForwarderOptions options_;
  std::string base_url_;
  Spool spool_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> pending_;  // ids in the spool not in flight, oldest first
  size_t in_flight_ = 0;
  bool stopping_ = false;
  int consecutive_failures_ = 0;
  std::chrono::steady_clock::time_point not_before_{};  // shared backoff gate
  std::vector<std::thread> senders_;
};

}  // namespace bf
