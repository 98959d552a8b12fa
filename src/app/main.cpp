// bytefreezer: one binary, every component as a subcommand, and `run` for all of
// them in one process (DESIGN.md §1).
#include <atomic>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "common/catalog.h"
#include "common/config.h"
#include "common/log.h"
#include "common/spool.h"
#include "common/time.h"
#include "common/metrics.h"
#include "common/options.h"
#include "connector/sinks.h"
#include "control/agent.h"
#include "control/api.h"
#include "control/commands.h"
#include "control/embedded.h"
#include "control/lease_client.h"
#include "net/conn_limits.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "packer/packer.h"
#include "piper/piper.h"
#include "piper/preview.h"
#include "piper/transform.h"
#include "proxy/proxy.h"
#include "proxy/source.h"
#include "query/nl/ask_cli.h"
#include "query/local_session.h"
#include "query/query_service.h"
#include "query/schema_report.h"
#include "packer/retention.h"
#include "receiver/receiver.h"
#include "storage/lease_store.h"
#include "storage/local_store.h"
#include "storage/object_store.h"

namespace {

using namespace bf;

constexpr const char* kVersion = "0.1.0";

// Exit code of `bytefreezer query` when the result was cut at the row limit.
constexpr int kExitTruncated = 3;

// limits.reserved_fds: descriptors kept out of the connection budget for spools, the
// object store, DuckDB and logs (net/conn_limits.h).
void apply_limits(const ConfigNode& root) {
  ConfigNode limits = root.child("limits");
  const int64_t reserved = limits.integer("reserved_fds", static_cast<int64_t>(ConnectionBudget::kDefaultReservedFds));
  if (reserved < 16 || reserved > 1000000) limits.fail("reserved_fds", "must be between 16 and 1000000");
  ConnectionBudget::process().configure(static_cast<uint64_t>(reserved));
}

// Blocks until SIGINT or SIGTERM.
void wait_for_shutdown_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("received signal {}, shutting down", sig);
}

// Signals are taken by sigwait in the main thread: block them before any thread starts.
void block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

struct Components {
  bool proxy = false, receiver = false, piper = false, packer = false, query = false;
  bool control = false;  // `run`: the embedded control plane (control.enabled)
};

// The one component a process runs (control_client: serves one service per key).
std::optional<std::string> single_service(const Components& c) {
  std::vector<std::string> on;
  for (auto [name, used] : {std::pair{"proxy", c.proxy}, {"receiver", c.receiver}, {"piper", c.piper},
                            {"packer", c.packer}, {"query", c.query}})
    if (used) on.push_back(name);
  if (on.size() != 1) return std::nullopt;
  return on.front();
}

// What a component reports to control (control/agent.h): the component contract's
// counters where the component emits them, else its own.
control::HealthSample health_sample(const std::string& service, const Receiver* receiver) {
  control::HealthSample s;
  auto& m = metrics();
  const Labels of{{"component_type", service}};
  auto events = m.sum("bf_component_received_events_total", of);
  if (!events) events = m.sum(service == "piper" ? "bf_piper_events_in_total" : "bf_" + service + "_events_total", {});
  s.events_total = static_cast<uint64_t>(events.value_or(0));
  auto errors = m.sum("bf_component_errors_total", of);
  if (!errors) errors = m.sum("bf_" + service + "_errors_total", {});
  s.errors = errors.value_or(0);
  // How far behind its input: the piper's and packer's last run (bf_<service>_lag_milliseconds).
  if (auto lag_ms = m.sum("bf_" + service + "_lag_milliseconds", {}); lag_ms && (service == "piper" || service == "packer"))
    s.lag_seconds = static_cast<double>(*lag_ms) / 1000.0;
  // A piper holding a dataset (a file its pipeline reads is missing) is degraded.
  if (service == "piper" && m.sum("bf_piper_datasets_held", {}).value_or(0) > 0) s.status = "degraded";
  if (receiver) {
    s.spool_depth = static_cast<int64_t>(receiver->spooled_batches());
    s.lag_seconds = static_cast<double>(receiver->lag_ms()) / 1000.0;  // its oldest batch not yet in raw/
    if (!receiver->ready()) s.status = "degraded";
  }
  return s;
}

// The option schemas of every built-in source and step: `bytefreezer plugins
// --schema` prints it, control serves it at GET /api/v1/plugins (the UI's forms).
std::string plugin_schemas_json() {
  std::vector<PluginSchema> sources, steps, sinks;
  for (const auto& f : source_factories()) sources.push_back({f.type, f.description, &f.options});
  for (const auto& f : transform_factories()) steps.push_back({f.type, f.description, &f.options, &step_common_options()});
  for (const auto& f : sink_factories()) sinks.push_back({f.type, f.description, &f.options});
  return plugins_schema_document(sources, steps, sinks);
}

// Starts the selected components from one config file and runs until a signal.
// dry_run: validate the config (keys, IDs, pipelines, sources) and exit.
int serve(const std::string& config_path, Components want, bool dry_run) {
  ConfigNode root = ConfigNode::load_file(config_path);
  init_logging(root.child("log").str("level", "info"));

  // Every section this process runs is validated strictly; the others are left
  // to the processes that run them.
  bool needs_store = want.receiver || want.piper || want.packer || want.query;
  std::shared_ptr<ObjectStore> store;
  std::shared_ptr<const Catalog> catalog;
  StorageOptions storage;
  // Where the catalog comes from (docs/control.md): the embedded control (`run`), a
  // remote control (control_client:), or the static accounts: section.
  const bool file_has_accounts = root.has("accounts");
  const bool embedded_control = want.control && root.child("control").boolean("enabled", true);
  if (!embedded_control) root.mark_read("control");
  std::optional<control::ControlClientOptions> client_options;
  std::string client_service;
  if (root.has("control_client")) {
    if (embedded_control)
      root.fail("control_client", "not with the embedded control plane (set control.enabled: false to use a remote one)");
    if (file_has_accounts)
      root.fail("accounts", "the catalog comes from control (control_client:): remove accounts: (import it with "
                            "`bytefreezer control import`)");
    auto one = single_service(want);
    if (!one) root.fail("control_client", "serves one component per process (a service key is for one service)");
    client_service = *one;
    client_options = control::parse_control_client_options(root.child("control_client"), client_service);
  }
  std::unique_ptr<control::EmbeddedControl> control_plane;
  std::unique_ptr<control::ConfigClient> config_client;
  // accounts[].ai stays in the local file (it may hold a provider key): added to
  // every catalog control hands over.
  std::shared_ptr<const Catalog> static_catalog;
  auto with_local_ai = [&static_catalog](std::shared_ptr<const Catalog> c) -> std::shared_ptr<const Catalog> {
    if (!static_catalog || static_catalog->ai_configs().empty()) return c;
    auto merged = std::make_shared<Catalog>(*c);
    for (const auto& [account, ai] : static_catalog->ai_configs()) merged->set_ai_config(account, ai);
    return merged;
  };
  if (needs_store) {
    storage = parse_storage_options(root.child("storage"));
    if (!dry_run) store = make_object_store(storage);  // a dry run touches no storage
    if (auto local = std::dynamic_pointer_cast<LocalStore>(store)) {
      // Temp files of writes a killed process left behind; in the background, as
      // the walk covers the whole store.
      std::thread([local] { local->remove_stale_temp_files(); }).detach();
    }
    static_catalog = std::make_shared<Catalog>(Catalog::parse(root));
    catalog = static_catalog;
    if (embedded_control) {
      if (dry_run) {
        control::parse_control_options(root.child("control"));  // checked; the store is not opened
      } else {
        control_plane = std::make_unique<control::EmbeddedControl>(root.child("control"), config_path, file_has_accounts);
        catalog = with_local_ai(control_plane->load());
      }
    } else if (client_options && !dry_run) {
      auto cancel = std::make_shared<std::atomic<bool>>(false);
      config_client = std::make_unique<control::ConfigClient>(control::http_config_fetch(*client_options, cancel),
                                                              client_options->cache_file, client_options->wait,
                                                              client_service);
      config_client->set_cancel(cancel);
      catalog = with_local_ai(config_client->load(client_options->startup_timeout));
    }
    if (catalog->datasets().empty() && !client_options)
      spdlog::warn("{}: no datasets: every ingest request will be refused", config_path);
  } else {
    root.mark_read("storage");
    root.mark_read("accounts");
  }
  std::optional<ReceiverOptions> receiver_options;
  std::optional<PiperOptions> piper_options;
  std::optional<PackerOptions> packer_options;
  std::optional<QueryOptions> query_options;
  std::unique_ptr<Proxy> proxy;
  if (want.receiver) receiver_options = parse_receiver_options(root.child("receiver"));
  if (want.piper) piper_options = parse_piper_options(root.child("piper"));
  if (want.packer) packer_options = parse_packer_options(root.child("packer"));
  if (want.query) query_options = parse_query_options(root.child("query"));
  if (want.proxy) proxy = std::make_unique<Proxy>(root.child("proxy"));
  // Piper and packer workers coordinate per dataset through leases on a file that
  // the processes of this host share (docs/reliability.md, "Leases and fencing").
  std::optional<LeaseOptions> lease_options;
  // leases.type: sqlite (the host-local file) or control (control's database, for
  // pipers and packers on several hosts; needs control_client:).
  bool control_leases = false;
  if (want.piper || want.packer) {
    lease_options = parse_lease_options(root.child("leases"));
    const std::string type = root.child("leases").str("type", "sqlite");
    if (type != "sqlite" && type != "control") root.child("leases").fail("type", "must be sqlite or control");
    control_leases = type == "control";
    if (control_leases && !client_options)
      root.child("leases").fail("type", "control needs a control_client: section (the service key holds the leases)");
  } else {
    root.mark_read("leases");
  }
  for (auto [name, used] : {std::pair{"receiver", want.receiver}, {"piper", want.piper}, {"packer", want.packer},
                            {"query", want.query}, {"proxy", want.proxy}}) {
    if (!used) root.mark_read(name);
  }
  apply_limits(root);
  HttpServerOptions admin_defaults;
  admin_defaults.listen = "127.0.0.1:9100";
  admin_defaults.threads = 1;
  admin_defaults.max_connections = 64;
  ConfigNode admin_section = root.child("admin");
  bool admin_enabled = admin_section.boolean("enabled", true);
  HttpServerOptions admin_options = parse_http_server_options(admin_section, admin_defaults);
  root.check_unknown();
  if (dry_run) {
    if (want.piper) Piper(*piper_options, catalog, store);  // compiles every pipeline
    std::cout << config_path << ": ok\n";
    return 0;
  }

  std::unique_ptr<Receiver> receiver;
  std::unique_ptr<Piper> piper;
  std::unique_ptr<Packer> packer;
  std::unique_ptr<QueryService> query;
  if (receiver_options) {
    // Ledger lookups at ingest: short, no retries — an unreachable store must not
    // hold up acknowledgements (the uploader checks again before it uploads).
    StorageOptions quick = storage;
    quick.timeout_ms = static_cast<int>(receiver_options->ledger_lookup_timeout.count());
    quick.max_retries = 0;
    auto lookup_store = storage.type == "s3" ? make_object_store(quick) : store;
    receiver = std::make_unique<Receiver>(*receiver_options, catalog, store, lookup_store);
  }
  WorkerLeases worker_leases;
  if (lease_options) {
    if (control_leases) {
      worker_leases.store = std::make_shared<control::ControlLeaseStore>(*client_options);
      spdlog::info("leases: held in control at {} (ttl {} ms)", client_options->url, lease_options->ttl.count());
    } else {
      worker_leases.store = std::make_shared<SqliteLeaseStore>(lease_options->path);
      spdlog::info("leases: {} (ttl {} ms)", lease_options->path, lease_options->ttl.count());
    }
    worker_leases.ttl = lease_options->ttl;
  }
  if (piper_options) piper = std::make_unique<Piper>(*piper_options, catalog, store, worker_leases);
  if (packer_options) packer = std::make_unique<Packer>(*packer_options, catalog, store, worker_leases);
  if (query_options) query = std::make_unique<QueryService>(*query_options, catalog, store);

  // In one process a stage wakes the next as soon as it has written its input,
  // instead of leaving it to the next poll (separate processes poll the store).
  if (receiver && piper) receiver->on_uploaded([p = piper.get()] { p->wake(); });
  if (piper && packer) {
    // The packer at once only for a part's worth of batches: waking it per batch
    // would cut the lake into tiny files; smaller backlogs wait for its interval.
    auto pending = std::make_shared<std::atomic<size_t>>(0);
    piper->on_written([k = packer.get(), pending, part = packer_options->max_batches_per_part] {
      if (pending->fetch_add(1) + 1 >= part) {
        pending->store(0);
        k->wake();
      }
    });
  }
  // A new catalog from control reaches every component in this process. A pipeline
  // that does not compile here (control validated it; an enrichment file may be
  // missing on this host) holds back only its own dataset (Piper::set_catalog).
  auto apply_catalog = [&](std::shared_ptr<const Catalog> next) {
    next = with_local_ai(std::move(next));
    if (piper) piper->set_catalog(next);  // refusals are logged and counted there
    if (receiver) receiver->set_catalog(next);
    if (packer) packer->set_catalog(next);
    if (query) query->set_catalog(next);
  };
  if (control_plane) control_plane->on_change(apply_catalog);
  if (config_client) config_client->on_change(apply_catalog);
  std::unique_ptr<control::HealthReporter> health;
  if (client_options)
    health = std::make_unique<control::HealthReporter>(*client_options, client_service, kVersion,
                                                       [&, service = client_service] {
                                                         return health_sample(service, receiver.get());
                                                       });
  // `run`: every component in the process reports to the embedded control, as a
  // component on its own reports over HTTP (the UI's overview shows them).
  std::vector<std::unique_ptr<control::HealthReporter>> local_health;
  if (control_plane && control_plane->health_report_interval().count() > 0) {
    const std::pair<const char*, bool> running[] = {{"proxy", proxy != nullptr},       {"receiver", receiver != nullptr},
                                                    {"piper", piper != nullptr},       {"packer", packer != nullptr},
                                                    {"query", query != nullptr}};
    for (const auto& [name, on] : running) {
      if (!on) continue;
      local_health.push_back(std::make_unique<control::HealthReporter>(
          name, "", kVersion, control_plane->health_report_interval(),
          [&, service = std::string(name)] {
            return health_sample(service, service == "receiver" ? receiver.get() : nullptr);
          },
          [cp = control_plane.get()](const control::HealthReport& r) { cp->report_health(r); }));
    }
  }
  if (control_plane) control_plane->start();
  if (config_client) config_client->start();

  // Downstream first, so that data has somewhere to go when the proxy starts.
  if (packer) packer->start();
  if (piper) piper->start();
  if (receiver) receiver->start();
  if (query) query->start();
  if (proxy) proxy->start();
  if (health) health->start();  // once the components run: the first report is not a false "degraded"
  for (auto& h : local_health) h->start();

  std::unique_ptr<HttpServer> admin;
  if (admin_enabled) {
    Router router;
    add_standard_endpoints(router, [&] { return (!receiver || receiver->ready()) && (!proxy || proxy->ready()); });
    admin = std::make_unique<HttpServer>("admin", admin_options, std::move(router));
    admin->start();
    spdlog::info("admin: /healthz /readyz /metrics on port {}", admin->port());
  }
  spdlog::info("bytefreezer {} running (config {})", kVersion, config_path);

  wait_for_shutdown_signal();
  // No catalog changes or reports while stopping.
  if (health) health->stop();
  for (auto& h : local_health) h->stop();
  if (config_client) config_client->stop();
  if (control_plane) control_plane->stop();
  // Upstream first: the proxy flushes into its spool, the receiver stops accepting.
  if (proxy) proxy->stop();
  if (receiver) receiver->stop();
  if (query) query->stop();
  if (piper) piper->stop();
  if (packer) packer->stop();
  if (admin) admin->stop();
  return 0;
}

// A cut result is never silent: a note on stderr in every format (and the table's
// own line on stdout), and exit code kExitTruncated so that scripts can tell.
int report_truncation(bool truncated, size_t rows, const std::string& how_to_get_all) {
  if (!truncated) return 0;
  std::cerr << "bytefreezer: result truncated at " << rows << " rows (query.max_rows); " << how_to_get_all << "\n";
  return kExitTruncated;
}

// Writes a streamed result to stdout as it arrives, in one of the CLI's formats.
// Nothing is kept but the current table block, so --no-limit prints results of
// any size.
class StreamPrinter {
 public:
  explicit StreamPrinter(const std::string& format) : format_(format) {}
  SqlRowSink sink() {
    SqlRowSink s;
    s.on_columns = [this](const std::vector<std::string>& columns, const std::vector<std::string>& types) {
      formatter_.emplace(columns, types);
      table_.emplace(columns, types);
      std::string out;
      if (format_ == "json") out = "[";
      if (format_ == "csv") formatter_->csv_header(out);
      std::cout << out;
    };
    s.on_row = [this](SqlRow& row) {
      std::string out;
      if (format_ == "json") {
        if (rows_) out += ',';
        formatter_->json_object(out, row);
      } else if (format_ == "ndjson") {
        formatter_->json_object(out, row);
        out += '\n';
      } else if (format_ == "csv") {
        formatter_->csv_row(out, row);
      } else {
        block_.push_back(std::move(row));
        if (block_.size() >= kTableBlock) flush_block();
      }
      ++rows_;
      std::cout << out;
      return static_cast<bool>(std::cout);  // stdout closed (`| head`): stop the query
    };
    return s;
  }
  // After the last row.
  void finish(const QueryStats& stats, size_t limit) {
    std::string out;
    if (format_ == "json") {
      out = "]\n";
    } else if (format_ == "ndjson") {
      // The same trailer as the API's ndjson.
      out = "{\"_meta\":{\"row_count\":" + std::to_string(stats.row_count) +
            ",\"truncated\":" + (stats.truncated ? "true" : "false") +
            ",\"truncated_reason\":" + (stats.truncated ? "\"max_rows\"" : "null") +
            ",\"elapsed_ms\":" + std::to_string(static_cast<int64_t>(stats.elapsed_ms + 0.5)) + "}}\n";
    } else if (format_ == "table") {
      flush_block();
      out = table_->footer(rows_);
      if (stats.truncated) out += "(result cut at " + std::to_string(limit) + " rows)\n";
    }
    std::cout << out << std::flush;
  }

 private:
  static constexpr size_t kTableBlock = 1000;
  void flush_block() {
    if (block_.empty()) return;
    std::cout << table_->block(block_);
    block_.clear();
  }
  std::string format_;
  std::optional<RowFormatter> formatter_;
  std::optional<TableWriter> table_;
  std::vector<SqlRow> block_;
  size_t rows_ = 0;
};

struct TimeRange {
  std::string from, to;  // RFC 3339, empty = open
};

// max_rows: -1 = query.max_rows from the config, 0 = no limit, N = at most N rows.
// The result is streamed: printed while DuckDB produces it, never held whole.
int query_local(const std::string& config_path, const std::string& dataset, const std::string& sql,
                const std::string& format, int64_t max_rows, const TimeRange& range) {
  LocalQuerySession session(config_path);
  const QueryOptions& options = session.options;
  const size_t limit = max_rows < 0 ? options.max_rows : static_cast<size_t>(max_rows);  // 0 = none
  QueryRequest request;
  request.dataset = dataset;
  request.sql = sql;
  if (!range.from.empty()) request.from_us = parse_rfc3339(range.from, true);
  if (!range.to.empty()) request.to_us = parse_rfc3339(range.to, true);
  QueryService service(options, session.catalog, session.store);
  StreamPrinter printer(format);
  QueryStats stats = service.stream(request, printer.sink(), limit);
  printer.finish(stats, limit);
  if (!std::cout) {
    std::cerr << "error: writing the result to stdout failed after " << stats.row_count << " rows\n";
    return 1;
  }
  return report_truncation(stats.truncated, stats.row_count, "pass --max-rows 0 for the whole result");
}

// bytefreezer schema DATASET: the registry's columns and history, from the store the
// config names or from a query server (GET /api/v1/datasets/{dataset}/schema).
int schema_command(const std::string& config_path, const std::string& url, const std::string& key,
                   const std::string& dataset, bool json) {
  std::string text;
  if (url.empty()) {
    LocalQuerySession session(config_path);
    QueryService service(session.options, session.catalog, session.store);
    text = service.schema(dataset);
  } else {
    // The server scopes datasets by the key's tenant: the path names the dataset id only.
    const std::string id = dataset.substr(dataset.rfind('/') + 1);
    HttpResult r = HttpClient().send("GET", url + "/api/v1/datasets/" + id + "/schema", {{"Authorization", "Bearer " + key}}, "");
    if (r.status != 200) {
      std::cerr << "error: HTTP " << r.status << ": " << r.body << "\n";
      return 1;
    }
    text = r.body;
  }
  std::cout << (json ? text + "\n" : format_schema_report(dataset, text));
  return 0;
}

// bytefreezer retention --dry-run [DATASET]: per dataset, the committed parts the
// packer's next retention pass would delete (docs/storage.md#retention).
int retention_command(const std::string& config_path, const std::string& dataset, bool dry_run) {
  if (!dry_run) {
    std::cerr << "error: retention is applied by the packer (once an hour per dataset, under its lease); "
                 "pass --dry-run to list what it would delete\n";
    return 2;
  }
  LocalQuerySession session(config_path);
  std::vector<const DatasetInfo*> datasets;
  if (!dataset.empty()) datasets.push_back(&session.catalog->resolve(dataset));
  else
    for (const auto& d : session.catalog->datasets()) datasets.push_back(&d);
  const int64_t now = now_us();
  for (const DatasetInfo* d : datasets) {
    if (d->retention_days <= 0) {
      std::cout << d->ref.str() << ": no retention (kept forever)\n";
      continue;
    }
    const auto parts = committed_parts(*session.store, d->ref);
    const auto expired = expired_parts(parts, d->retention_days, now);
    uint64_t rows = 0;
    for (const auto& p : expired) rows += p.rows;
    std::cout << d->ref.str() << ": retention " << d->retention_days << " days: " << expired.size() << " of " << parts.size()
              << " parts would be deleted (" << rows << " events)\n";
    for (const auto& p : expired) std::cout << "  " << p.key << "  " << p.rows << " events\n";
  }
  return 0;
}

int query_remote(const std::string& url, const std::string& key, const std::string& dataset, const std::string& sql,
                 const std::string& format, const TimeRange& range) {
  HttpClient client;
  Headers headers{{"Content-Type", "application/json"}, {"Authorization", "Bearer " + key}};
  // table is rendered here from the API's json; the others are the API's own bodies.
  const std::string wire = format == "table" ? "json" : format;
  boost::json::object body{{"dataset", dataset}, {"sql", sql}, {"format", wire}};
  if (!range.from.empty()) body["from"] = range.from;
  if (!range.to.empty()) body["to"] = range.to;
  HttpResult r = client.send("POST", url + "/api/v1/query", headers, boost::json::serialize(body));
  if (r.status != 200) {
    std::cerr << "error: HTTP " << r.status << ": " << r.body << "\n";
    return 1;
  }
  const std::string how = "the server's query.max_rows applies; run with --config to read the store directly";
  if (wire != "json") {
    // ndjson ends with its _meta line; csv's limits are in the X-Result-* headers.
    std::cout << r.body << std::flush;
    // A streamed body that failed after its status went out (docs/api.md#streaming).
    if (r.headers.count("X-Truncated-Reason") && r.headers["X-Truncated-Reason"] != "max_rows") {
      std::cerr << "error: the result ended early (" << r.headers["X-Truncated-Reason"] << "); see its last line\n";
      return 1;
    }
    const bool truncated = r.headers.count("X-Result-Truncated") && r.headers["X-Result-Truncated"] == "true";
    size_t rows = 0;
    if (r.headers.count("X-Row-Count")) rows = std::stoull(r.headers["X-Row-Count"]);
    return report_truncation(truncated, rows, how);
  }
  auto doc = boost::json::parse(r.body).as_object();
  if (auto* err = doc.if_contains("error")) {  // a streamed body that failed after its status went out
    std::cerr << "error: " << (err->is_string() ? std::string(err->get_string()) : boost::json::serialize(*err)) << "\n";
    return 1;
  }
  const bool truncated = doc.contains("truncated") && doc.at("truncated").is_bool() && doc.at("truncated").as_bool();
  const size_t row_count = doc.at("rows").as_array().size();
  if (format == "json") {
    std::cout << boost::json::serialize(doc.at("rows")) << "\n";
    return report_truncation(truncated, row_count, how);
  }
  // Render the API's answer as a table through SqlResult.
  SqlResult result = sql_result_from_response(doc);
  std::cout << result.to_table();
  if (truncated) std::cout << "(result cut at " << row_count << " rows)\n";
  return report_truncation(truncated, row_count, how);
}

int spool_command(const std::string& dir, bool verify, bool repair) {
  // Opening quarantines entries cut short; say so rather than do it silently in `check`.
  Spool spool(dir, 0);
  size_t quarantined = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(spool.quarantine_dir(), ec))
    if (e.path().extension() == ".batch") ++quarantined;
  if (!verify) {
    auto entries = spool.list();
    std::cout << "entries: " << entries.size() << "\nbytes: " << spool.bytes() << "\n";
    if (!entries.empty()) std::cout << "oldest: " << entries.front().id << "\n";
    std::cout << "quarantined: " << quarantined << " (" << spool.quarantine_dir().string() << ")\n";
    return 0;
  }
  Spool::CheckReport report = spool.check(repair);
  for (const auto& p : report.problems) std::cout << (repair ? "quarantined " : "corrupt ") << p << "\n";
  std::cout << report.entries << " entries, " << report.bytes << " bytes, " << report.corrupt << " corrupt";
  if (repair) std::cout << ", " << report.quarantined << " moved to " << spool.quarantine_dir().string();
  std::cout << "\n";
  return report.corrupt > 0 && !repair ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ByteFreezer: telemetry pipeline that keeps every byte in your own storage"};
  app.require_subcommand(1);
  std::string config = "config/all-in-one.yaml";

  bool dry_run = false;
  auto add_server = [&](const std::string& name, const std::string& help, Components c) {
    auto* cmd = app.add_subcommand(name, help);
    cmd->add_option("-c,--config", config, "YAML config file")->capture_default_str();
    cmd->add_flag("--dry-run", dry_run, "Check the config (keys, IDs, pipelines, sources) and exit");
    cmd->callback([&, c] { throw CLI::RuntimeError(serve(config, c, dry_run)); });
  };
  add_server("run", "Run every component in one process, with the control plane", {true, true, true, true, true, true});
  add_server("proxy", "Run the edge proxy (sources -> batches -> receiver)", {true, false, false, false, false});
  add_server("receiver", "Run the ingest endpoint (spool -> raw/)", {false, true, false, false, false});
  add_server("piper", "Run the pipeline stage (raw/ -> processed/)", {false, false, true, false, false});
  add_server("packer", "Run the Parquet stage (processed/ -> parquet/)", {false, false, false, true, false});
  add_server("query-server", "Run the query API (POST /api/v1/query)", {false, false, false, false, true});

  std::string dataset, sql, url, key, format = "table";
  auto* query = app.add_subcommand("query", "Run one SQL query on a dataset and print the result");
  query->add_option("-c,--config", config, "Config file: query the storage it names directly")->capture_default_str();
  query->add_option("--url", url, "Query a running query server instead (e.g. http://127.0.0.1:8082)");
  query->add_option("--key", key, "Query key for --url")->envname("BYTEFREEZER_QUERY_KEY");
  query->add_option("-d,--dataset", dataset, "TENANT/DATASET or ACCOUNT/TENANT/DATASET; the view `events` reads it")->required();
  query->add_option("--format", format, "table, json (an array of rows), ndjson (a row per line, then a _meta line) or csv")
      ->check(CLI::IsMember({"table", "json", "ndjson", "csv"}))
      ->capture_default_str();
  TimeRange range;
  auto rfc3339 = CLI::Validator(
      [](std::string& v) {
        return parse_rfc3339(v, true) ? std::string() : "'" + v + "' is not an RFC 3339 time with a zone (e.g. 2026-01-02T03:00:00Z)";
      },
      "RFC3339");
  query->add_option("--from", range.from, "Only events with _time >= this (RFC 3339, e.g. 2026-01-02T03:00:00Z)")
      ->check(rfc3339);
  query->add_option("--to", range.to, "Only events with _time < this (RFC 3339)")->check(rfc3339);
  int64_t max_rows = -1;
  query->add_option("--max-rows", max_rows,
                        "Row limit for this query (default query.max_rows; 0 = no limit). Only with --config. "
                        "A cut result exits with code 3")
          ->check(CLI::NonNegativeNumber);
  query->add_flag_callback("--no-limit", [&] { max_rows = 0; }, "Same as --max-rows 0");
  query->add_option("sql", sql, "SQL, e.g. \"SELECT count(*) FROM events\"")->required();
  query->callback([&] {
    if (!url.empty() && max_rows >= 0) {
      std::cerr << "error: --max-rows/--no-limit apply only with --config (a query server enforces its own "
                   "query.max_rows)\n";
      throw CLI::RuntimeError(2);
    }
    throw CLI::RuntimeError(url.empty() ? query_local(config, dataset, sql, format, max_rows, range)
                                        : query_remote(url, key, dataset, sql, format, range));
  });

  // bytefreezer ask: a natural-language question through the account's AI (docs/ask.md).
  std::string question;
  auto* ask = app.add_subcommand("ask", "Ask a question in plain language; the account's AI writes the SQL");
  ask->add_option("-c,--config", config, "Config file: ask locally with the storage and accounts[].ai it names")
      ->capture_default_str();
  ask->add_option("--url", url, "Ask a running query server instead (e.g. http://127.0.0.1:8082)");
  ask->add_option("--key", key, "Query key for --url")->envname("BYTEFREEZER_QUERY_KEY");
  ask->add_option("-d,--dataset", dataset, "TENANT/DATASET or ACCOUNT/TENANT/DATASET")->required();
  ask->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  ask->add_option("question", question, "e.g. \"errors per hour yesterday\"")->required();
  ask->callback([&] {
    throw CLI::RuntimeError(url.empty() ? nl::ask_local(config, dataset, question, format == "json")
                                        : nl::ask_remote(url, key, dataset, question, format == "json"));
  });

  bool schema_json = false;
  auto* schema_cmd = app.add_subcommand("schema", "Print a dataset's schema: columns, types and their history");
  schema_cmd->add_option("-c,--config", config, "Config file: read the schema from the storage it names")->capture_default_str();
  schema_cmd->add_option("--url", url, "Ask a running query server instead (e.g. http://127.0.0.1:8082)");
  schema_cmd->add_option("--key", key, "Query key for --url")->envname("BYTEFREEZER_QUERY_KEY");
  schema_cmd->add_flag("--json", schema_json, "Print the registry document (schema.json) as it is stored");
  schema_cmd->add_option("dataset", dataset, "TENANT/DATASET or ACCOUNT/TENANT/DATASET")->required();
  schema_cmd->callback([&] { throw CLI::RuntimeError(schema_command(config, url, key, dataset, schema_json)); });

  // bytefreezer spool check|repair|stats DIR — for the proxy's and the receiver's spools.
  bool retention_dry_run = false;
  std::string retention_dataset;
  auto* retention_cmd = app.add_subcommand("retention", "List the Parquet parts the packer's retention would delete");
  retention_cmd->add_option("-c,--config", config, "Config file: storage and datasets (accounts:)")->capture_default_str();
  retention_cmd->add_flag("--dry-run", retention_dry_run, "List only (the packer applies retention itself)");
  retention_cmd->add_option("dataset", retention_dataset, "TENANT/DATASET or ACCOUNT/TENANT/DATASET (default: every dataset)");
  retention_cmd->callback(
      [&] { throw CLI::RuntimeError(retention_command(config, retention_dataset, retention_dry_run)); });

  auto* spool_cmd = app.add_subcommand("spool", "Inspect or repair a proxy or receiver spool directory");
  spool_cmd->require_subcommand(1);
  std::string spool_dir;
  auto add_spool = [&](const std::string& name, const std::string& help, bool verify, bool repair) {
    auto* cmd = spool_cmd->add_subcommand(name, help);
    cmd->add_option("dir", spool_dir, "Spool directory (e.g. ./data/receiver-spool)")->required()->check(CLI::ExistingDirectory);
    cmd->callback([&, verify, repair] { throw CLI::RuntimeError(spool_command(spool_dir, verify, repair)); });
  };
  add_spool("check", "Verify every entry's length and checksum; exit 1 if any is corrupt", true, false);
  add_spool("repair", "Move corrupt entries to <dir>/quarantine/ (nothing is deleted)", true, true);
  add_spool("stats", "Entries, bytes, oldest entry and quarantined entries", false, false);

  // bytefreezer control [import FILE | create-admin | create-key] (docs/control.md).
  control::ControlCli control_cli;
  auto* control_cmd = app.add_subcommand("control", "Run the control plane API (control.listen), or manage its store");
  control_cmd->add_option("-c,--config", control_cli.config, "YAML config file (its control: section)");
  control_cmd->add_option("--db", control_cli.db, "A SQLite store file, instead of control.db or control.store");
  control_cmd->require_subcommand(0, 1);
  control_cmd->callback([&] {
    if (control_cmd->get_subcommands().empty()) throw CLI::RuntimeError(control::serve_control(control_cli, wait_for_shutdown_signal));
  });
  std::string import_file, admin_email, key_role, key_service, key_name;
  auto* import_cmd = control_cmd->add_subcommand("import", "Import the static accounts: YAML into the store (idempotent)");
  import_cmd->add_option("file", import_file, "YAML file with an accounts: section")->required()->check(CLI::ExistingFile);
  import_cmd->callback([&] { throw CLI::RuntimeError(control::import_command(control_cli, import_file)); });
  auto* admin_cmd = control_cmd->add_subcommand(
      "create-admin", "Create a system_admin user (password from $BYTEFREEZER_ADMIN_PASSWORD or stdin)");
  admin_cmd->add_option("--email", admin_email, "The admin's email (the login name)")->required();
  admin_cmd->callback([&] { throw CLI::RuntimeError(control::create_admin_command(control_cli, admin_email)); });
  auto* key_cmd = control_cmd->add_subcommand("create-key", "Create a system_admin or service API key; prints it once");
  key_cmd->add_option("--role", key_role, "system_admin or service")->required();
  key_cmd->add_option("--service", key_service, "For --role service: proxy, receiver, piper, packer, query, connector");
  key_cmd->add_option("--name", key_name, "A label for the key");
  key_cmd->callback([&] {
    throw CLI::RuntimeError(control::create_key_command(control_cli, key_role, key_service, key_name));
  });

  auto* pipeline_cmd = app.add_subcommand("pipeline", "Work with pipelines");
  pipeline_cmd->require_subcommand(1);
  auto* pipeline_test = pipeline_cmd->add_subcommand(
      "test", "Run sample events (NDJSON on stdin) through a pipeline; print each step's changes, the output and errors");
  std::string pipeline_file, pipeline_dataset;
  bool pipeline_json = false;
  pipeline_test->add_option("--config", pipeline_file, "A list of steps, a mapping with pipeline:, or a full config (with --dataset)")
      ->required();
  pipeline_test->add_option("--dataset", pipeline_dataset, "tenant/dataset or account/tenant/dataset in a full config");
  pipeline_test->add_flag("--json", pipeline_json, "Print the result as JSON (the preview API's response)");
  pipeline_test->callback([&] {
    throw CLI::RuntimeError(pipeline_test_command(pipeline_file, pipeline_dataset, pipeline_json, std::cin, std::cout, std::cerr));
  });

  // bytefreezer plugins [--schema | --update-docs FILE] (docs/cli.md, docs/proxy.md, docs/pipelines.md).
  auto* plugins = app.add_subcommand("plugins", "List the built-in sources, pipeline steps and connector sinks");
  bool plugins_schema = false;
  std::string plugins_docs;
  plugins->add_flag("--schema", plugins_schema, "Print every source's, step's and sink's options as JSON Schema");
  plugins->add_option("--update-docs", plugins_docs,
                      "Rewrite the generated option tables (<!-- options: TYPE -->) of a markdown file")
      ->check(CLI::ExistingFile);
  plugins->callback([&] {
    if (plugins_schema) {
      std::cout << plugin_schemas_json();
      return;
    }
    if (!plugins_docs.empty()) {
      std::ifstream in(plugins_docs, std::ios::binary);
      const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      // Sources (docs/proxy.md), pipeline steps (docs/pipelines.md) and connector sinks
      // (docs/connectors.md) share no names.
      const std::string updated = update_option_tables(doc, [](const std::string& kind) -> const OptionSpecs* {
        if (const SourceFactory* f = find_source_factory(kind)) return &f->options;
        if (const SinkFactory* f = find_sink(kind)) return &f->options;
        const TransformFactory* t = find_transform_factory(kind);
        return t ? &t->options : nullptr;
      });
      if (updated != doc) std::ofstream(plugins_docs, std::ios::binary | std::ios::trunc) << updated;
      std::cout << plugins_docs << (updated == doc ? ": up to date\n" : ": option tables updated\n");
      return;
    }
    std::cout << "sources:\n";
    for (const auto& f : source_factories()) std::cout << "  " << f.type << "  " << f.description << "\n";
    std::cout << "pipeline steps:\n";
    for (const auto& f : transform_factories()) std::cout << "  " << f.type << "  " << f.description << "\n";
    std::cout << "connector sinks:\n";
    for (const auto& f : sink_factories()) std::cout << "  " << f.type << "  " << f.description << "\n";
  });
  app.add_subcommand("version", "Print the version")->callback([] { std::cout << "bytefreezer " << kVersion << "\n"; });

  control::set_plugins_document(plugin_schemas_json());
  block_shutdown_signals();
  // Before any component opens a file: every descriptor the hard limit allows.
  raise_open_files_limit();
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
