#pragma once
// The edge proxy: sources -> batcher -> spool -> forwarder -> receiver.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace bf {

class ConfigNode;

struct ProxyOptions {
  std::string receiver_url = "http://127.0.0.1:8080";
  std::string ingest_key;
  // batching
  size_t batch_max_events = 10000;
  uint64_t batch_max_bytes = 4ull << 20;      // uncompressed NDJSON
  std::chrono::milliseconds batch_max_age{1000};
  // spool of batches not yet acknowledged by the receiver
  std::string spool_dir = "./data/proxy-spool";
  uint64_t spool_max_bytes = 1ull << 30;
  int forward_concurrency = 2;
};

class Proxy {
 public:
  // Parses the `proxy:` section (including sources) — throws ConfigError.
  explicit Proxy(const ConfigNode& section);
  ~Proxy();
  void start();
  void stop();   // stops sources, flushes batchers into the spool, stops forwarding
  bool ready() const;
  // Ports bound by sources, by source name (tests use port 0).
  uint16_t source_port(const std::string& source_name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
