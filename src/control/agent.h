#pragma once
// The data-plane side of control (docs/control.md, "Config distribution", "Health"):
// a component fetches its config document with ETag and long-poll, applies each new
// one, and caches the last on disk so that it keeps running — and starts — while
// control is down; and it reports its health every few seconds.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "control/health.h"

#include "net/http.h"

namespace bf {
class Catalog;
class ConfigNode;
class HttpClient;
}  // namespace bf

namespace bf::control {

// The `control_client:` section of a data-plane component's config.
struct ControlClientOptions {
  std::string url;         // control's base URL, e.g. https://control.example.com
  std::string key;         // a service key (bfk_...) of role service for this component
  std::string cache_file;  // the last config document; default ./data/<service>-config.json
  std::chrono::milliseconds wait{30000};             // long-poll: how long control may hold a request
  std::chrono::milliseconds startup_timeout{10000};  // without a cache: how long to try control at start
  std::chrono::milliseconds health_interval{5000};   // 0: no health reports
  std::string instance;    // the component's name in health reports; default: host name
  std::string ca_file;     // TLS: CA bundle for control's certificate
};
// Throws ConfigError naming the key.
ControlClientOptions parse_control_client_options(const ConfigNode& section, const std::string& service);

struct FetchedConfig {
  std::string etag;
  std::optional<std::string> document;  // empty: unchanged since `etag` was asked for
};
// One request: the document unless it still has ETag `etag`, waiting up to `wait`
// for a change. Throws on failure (control unreachable, refused).
using ConfigFetch = std::function<FetchedConfig(const std::string& etag, std::chrono::milliseconds wait)>;
// GET {url}/api/v1/config?wait=N with If-None-Match. `cancel` ends a waiting request.
ConfigFetch http_config_fetch(const ControlClientOptions& options, std::shared_ptr<std::atomic<bool>> cancel);

class ConfigClient {
 public:
  using Apply = std::function<void(std::shared_ptr<const Catalog>)>;
  // `what` names the component in logs and metrics (bf_control_client_*{service=what}).
  ConfigClient(ConfigFetch fetch, std::string cache_file, std::chrono::milliseconds wait, std::string what);
  ~ConfigClient();
  ConfigClient(const ConfigClient&) = delete;
  ConfigClient& operator=(const ConfigClient&) = delete;
  // The config to start with: control's, else the cached one (control unreachable
  // for startup_timeout). Throws ConfigError when there is neither.
  std::shared_ptr<const Catalog> load(std::chrono::milliseconds startup_timeout);
  // Called with each new catalog (on the client's thread). A throw rejects it: the
  // component keeps the old one, the cache is not updated, and it is counted.
  void on_change(Apply apply);
  void start();  // after load(): long-polls in the background
  void stop();
  std::string etag() const;
  // For callers that own the cancel flag of their fetch: stop() sets it.
  void set_cancel(std::shared_ptr<std::atomic<bool>> cancel) { cancel_ = std::move(cancel); }

 private:
  void loop();
  bool accept(const FetchedConfig& fetched, bool apply);  // parse, apply, cache
  ConfigFetch fetch_;
  std::string cache_file_, what_;
  std::chrono::milliseconds wait_;
  Apply apply_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::string etag_;
  std::shared_ptr<const Catalog> current_;
  std::thread thread_;
};

// What a component reports (control/health.h, HealthReport).
struct HealthSample {
  std::string status = "ok";  // ok | degraded | failing
  uint64_t events_total = 0;  // the reporter turns it into events per second
  std::optional<double> lag_seconds;
  std::optional<int64_t> spool_depth;
  int64_t errors = 0;
};

// Sends a report every interval: POSTed to {url}/api/v1/health, or handed to the
// control plane in this process (`bytefreezer run`).
class HealthReporter {
 public:
  HealthReporter(const ControlClientOptions& options, std::string service, std::string version,
                 std::function<HealthSample()> sample);
  // instance "" = the host name.
  using Deliver = std::function<void(const HealthReport&)>;
  HealthReporter(std::string service, std::string instance, std::string version, std::chrono::milliseconds interval,
                 std::function<HealthSample()> sample, Deliver deliver);
  ~HealthReporter();
  void start();
  void stop();

 private:
  void loop();
  void post(HttpClient& client, const Headers& headers, const HealthSample& s, double eps);
  ControlClientOptions options_;
  std::string service_, version_;
  std::function<HealthSample()> sample_;
  Deliver deliver_;  // set: in-process, no HTTP
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace bf::control
