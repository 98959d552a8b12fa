#pragma once
// The edge proxy: sources -> batcher -> spool -> forwarder -> receiver.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bf {

class ConfigNode;

struct ProxyOptions {
  // receiver.urls (or receiver.url, a one-element list): tried in this order.
  std::vector<std::string> receiver_urls{"http://127.0.0.1:8080"};
  std::string ingest_key;
  // batching
  size_t batch_max_events = 10000;
  uint64_t batch_max_bytes = 4ull << 20;      // uncompressed NDJSON
  std::chrono::milliseconds batch_max_age{1000};
  // spool of batches not yet acknowledged by the receiver
  std::string spool_dir = "./data/proxy-spool";
  uint64_t spool_max_bytes = 1ull << 30;
  bool spool_fsync_interval_mode = false;  // spool.fsync: always | interval (best-effort sources only)
  std::chrono::milliseconds spool_fsync_interval{200};
  int forward_concurrency = 2;
  // zstd level of the batches on the wire and in the spool (proxy.compression_level):
  // fast by default; the lake's files are compressed again by the packer at its level.
  int compression_level = 1;
  // How often a dataset paused after 401/403/404 is probed with one batch.
  std::chrono::milliseconds permanent_error_retry{60000};
  // receiver client (added): per-request timeouts, retries inside one send, and the
  // longest wait between sends of a batch the receiver did not accept yet.
  std::chrono::milliseconds receiver_timeout{30000};
  std::chrono::milliseconds receiver_connect_timeout{5000};
  int receiver_max_retries = 2;
  std::chrono::milliseconds retry_backoff_base{500};
  std::chrono::milliseconds retry_backoff_max{30000};
  std::string receiver_ca_file;
  bool receiver_verify_tls = true;
};

// Reads the `proxy:` section's own keys (not `sources`) — throws ConfigError. (added)
ProxyOptions parse_proxy_options(const ConfigNode& section);

class Proxy {
 public:
  // Parses the `proxy:` section (including sources) — throws ConfigError.
  explicit Proxy(const ConfigNode& section);
  ~Proxy();
  void start();
  void stop();   // stops sources, flushes batchers into the spool, stops forwarding
  bool ready() const;
  // Ports bound by sources, by source name (tests use port 0).
  // Throws std::out_of_range for an unknown name.
  uint16_t source_port(const std::string& source_name) const;
  const ProxyOptions& options() const;  // (added)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
