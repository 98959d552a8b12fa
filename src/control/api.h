#pragma once
// The control plane's REST API under /api/v1 (docs/control.md): accounts, tenants,
// datasets, users, API keys, sessions and the audit log, every request through the
// policy of control/auth.h, rate-limited per key.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/http_server.h"

namespace bf {
class ConfigNode;
class LeaseStore;
}

namespace bf::control {

class ControlStore;
struct HealthReport;

struct ControlOptions {
  HttpServerOptions http;                      // listen defaults to 127.0.0.1:8090, max_body to 1 MiB
  std::string db = "./data/control.db";      // the SQLite file (store_type sqlite)
  std::string store_type = "sqlite";          // sqlite | postgres
  std::string store_url;                      // postgres: libpq URI or key=value string
  std::string store_password;                 // postgres: from the variable control.store.password_env names
  std::chrono::milliseconds session_ttl{12 * 3600 * 1000};
  double requests_per_second = 20;             // per key, user or (unauthenticated) peer address
  double request_burst = 40;
  double login_attempts_per_minute = 5;        // per email and per peer address
  bool secure_cookie = false;                  // set when serving TLS
  // Config long-polls: the longest wait a client may ask for, and how many may wait
  // at once (each holds a server thread; more are answered at once).
  std::chrono::milliseconds config_wait_max{60000};
  size_t config_max_waiters = 8;
  // Health: a component silent this long is shown unhealthy; reports kept per component.
  std::chrono::milliseconds health_timeout{30000};
  size_t health_history = 360;
  size_t health_max_components = 1000;
  // `bytefreezer run`: how often the components in the process report (0: never).
  std::chrono::milliseconds health_report_interval{5000};
};
// The `control:` section (docs/configuration.md).
ControlOptions parse_control_options(const ConfigNode& section);

// The store control.store names, opened and migrated (StoreError when it cannot be).
std::unique_ptr<ControlStore> open_control_store(const ControlOptions& options);
// The worker leases beside it: a table in control's SQLite file, or in its PostgreSQL database.
std::shared_ptr<LeaseStore> open_control_leases(const ControlOptions& options);

struct RouteSpec {
  std::string method, pattern;
};

class ControlApi {
 public:
  ControlApi(std::shared_ptr<ControlStore> store, ControlOptions options);
  ~ControlApi();
  ControlApi(const ControlApi&) = delete;
  ControlApi& operator=(const ControlApi&) = delete;
  // Registers every /api/v1 route on the router.
  void add_routes(Router& router);
  // Every route add_routes registers (the OpenAPI test and the role matrix compare against it).
  static std::vector<RouteSpec> routes();

  // The config document for `service` (control/config_document.h) and its ETag. When
  // if_none_match is that ETag, waits up to `wait` for a change first; `document` is
  // empty when it is still unchanged (HTTP 304). Also called in-process by `run`.
  struct ConfigReply {
    std::string etag;
    std::optional<std::string> document;
  };
  ConfigReply config(const std::string& service, const std::string& if_none_match, std::chrono::milliseconds wait);
  // Wakes waiting config requests to look again (every change through the API does
  // this itself; changes from elsewhere are seen within a second anyway).
  void config_changed();
  // A health report from a component in this process (`bytefreezer run`), as
  // POST /api/v1/health records it; false when the board is full.
  bool record_health(HealthReport report);
  // Ends waiting config requests at once (before the server stops).
  void shutdown();
  // The leases served under /api/v1/leases (open_control_leases: in control's
  // database); without one those routes answer 503. Set before serving.
  void set_lease_store(std::shared_ptr<LeaseStore> leases);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The API plus /healthz, /readyz and /metrics on control.listen.
class ControlServer {
 public:
  ControlServer(std::shared_ptr<ControlStore> store, ControlOptions options);
  ~ControlServer();
  void start();
  void stop();
  uint16_t port() const;
  ControlApi& api() { return *api_; }

 private:
  std::unique_ptr<ControlApi> api_;
  std::unique_ptr<HttpServer> server_;
};

// The OpenAPI 3 document (src/control/openapi.json, compiled in).
const char* openapi_document();

// GET /api/v1/plugins: the option schemas of the binary's sources and pipeline steps,
// {"sources": {"<type>": <JSON Schema>}, "steps": {"<kind>": <JSON Schema>}} (the
// shape of `bytefreezer plugins --schema`). The binary sets it at start; until
// then both maps are empty.
void set_plugins_document(std::string json);
std::string plugins_document();

}  // namespace bf::control
