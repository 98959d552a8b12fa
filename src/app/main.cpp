// bytefreezer: one binary, every component as a subcommand, and `run` for all of
// them in one process (DESIGN.md §1).
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "common/catalog.h"
#include "common/config.h"
#include "common/log.h"
#include "common/spool.h"
#include "net/conn_limits.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "packer/packer.h"
#include "piper/piper.h"
#include "piper/transform.h"
#include "proxy/proxy.h"
#include "proxy/source.h"
#include "query/nl/ask_cli.h"
#include "query/query_service.h"
#include "receiver/receiver.h"
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
};

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
  if (needs_store) {
    storage = parse_storage_options(root.child("storage"));
    if (!dry_run) store = make_object_store(storage);  // a dry run touches no storage
    if (auto local = std::dynamic_pointer_cast<LocalStore>(store)) {
      // Temp files of writes a killed process left behind; in the background, as
      // the walk covers the whole store.
      std::thread([local] { local->remove_stale_temp_files(); }).detach();
    }
    catalog = std::make_shared<Catalog>(Catalog::parse(root));
    if (catalog->datasets().empty())
      spdlog::warn("{}: no datasets under 'accounts:': every ingest request will be refused", config_path);
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
  if (piper_options) piper = std::make_unique<Piper>(*piper_options, catalog, store);
  if (packer_options) packer = std::make_unique<Packer>(*packer_options, catalog, store);
  if (query_options) query = std::make_unique<QueryService>(*query_options, catalog, store);

  // Downstream first, so that data has somewhere to go when the proxy starts.
  if (packer) packer->start();
  if (piper) piper->start();
  if (receiver) receiver->start();
  if (query) query->start();
  if (proxy) proxy->start();

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

// max_rows: -1 = query.max_rows from the config, 0 = no limit, N = at most N rows.
int query_local(const std::string& config_path, const std::string& dataset, const std::string& sql, bool json,
                int64_t max_rows) {
  ConfigNode root = ConfigNode::load_file(config_path);
  init_logging(root.child("log").str("level", "warn"));
  auto store = make_object_store(parse_storage_options(root.child("storage")));
  auto catalog = std::make_shared<Catalog>(Catalog::parse(root));
  QueryOptions options = parse_query_options(root.child("query"));
  for (const char* s : {"log", "admin", "proxy", "receiver", "piper", "packer", "limits"}) root.mark_read(s);
  root.check_unknown();
  if (max_rows == 0) {
    // The service asks DuckDB for max_rows + 1 rows to detect a cut.
    options.max_rows = std::numeric_limits<size_t>::max() - 1;
  } else if (max_rows > 0) {
    options.max_rows = static_cast<size_t>(max_rows);
  }
  // A one-shot query must not clear the spill directories of a query server that
  // runs with the same config: it gets a private temp root of its own.
  const std::filesystem::path temp_root =
      std::filesystem::temp_directory_path() / ("bytefreezer-query-" + std::to_string(::getpid()));
  options.temp_dir = temp_root.string();
  struct RemoveOnExit {
    std::filesystem::path path;
    ~RemoveOnExit() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } remove_temp_root{temp_root};
  QueryService service(options, catalog, store);
  QueryOutcome out = service.run(dataset, sql);
  if (json) {
    std::cout << out.result.to_json() << "\n";
  } else {
    std::cout << out.result.to_table();
    if (out.truncated) std::cout << "(result cut at " << options.max_rows << " rows)\n";
  }
  return report_truncation(out.truncated, out.result.rows.size(), "pass --max-rows 0 for the whole result");
}

int query_remote(const std::string& url, const std::string& key, const std::string& dataset, const std::string& sql,
                 bool json) {
  HttpClient client;
  Headers headers{{"Content-Type", "application/json"}, {"Authorization", "Bearer " + key}};
  boost::json::object body{{"dataset", dataset}, {"sql", sql}};
  HttpResult r = client.send("POST", url + "/api/v1/query", headers, boost::json::serialize(body));
  if (r.status != 200) {
    std::cerr << "error: HTTP " << r.status << ": " << r.body << "\n";
    return 1;
  }
  auto doc = boost::json::parse(r.body).as_object();
  const bool truncated = doc.contains("truncated") && doc.at("truncated").is_bool() && doc.at("truncated").as_bool();
  const size_t row_count = doc.at("rows").as_array().size();
  const std::string how = "the server's query.max_rows applies; run with --config to read the store directly";
  if (json) {
    std::cout << boost::json::serialize(doc.at("rows")) << "\n";
    return report_truncation(truncated, row_count, how);
  }
  // Render the API's answer as a table through SqlResult.
  SqlResult result;
  for (const auto& c : doc.at("columns").as_array()) {
    result.columns.emplace_back(c.at("name").as_string());
    result.types.emplace_back(c.at("type").as_string());
  }
  for (const auto& row : doc.at("rows").as_array()) {
    std::vector<std::optional<std::string>> values;
    for (const auto& name : result.columns) {
      const auto& v = row.as_object().at(name);
      if (v.is_null()) values.emplace_back(std::nullopt);
      else if (v.is_string()) values.emplace_back(std::string(v.get_string()));
      else values.emplace_back(boost::json::serialize(v));
    }
    result.rows.push_back(std::move(values));
  }
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
  add_server("run", "Run every component in one process", {true, true, true, true, true});
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
  query->add_option("--format", format, "table or json")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  int64_t max_rows = -1;
  query->add_option("--max-rows", max_rows,
                        "Row limit for this query (default query.max_rows; 0 = no limit). Only with --config. "
                        "A cut result exits with code 3")
          ->check(CLI::NonNegativeNumber);
  query->add_flag_callback("--no-limit", [&] { max_rows = 0; }, "Same as --max-rows 0");
  query->add_option("sql", sql, "SQL, e.g. \"SELECT count(*) FROM events\"")->required();
  query->callback([&] {
    bool json = format == "json";
    if (!url.empty() && max_rows >= 0) {
      std::cerr << "error: --max-rows/--no-limit apply only with --config (a query server enforces its own "
                   "query.max_rows)\n";
      throw CLI::RuntimeError(2);
    }
    throw CLI::RuntimeError(url.empty() ? query_local(config, dataset, sql, json, max_rows)
                                        : query_remote(url, key, dataset, sql, json));
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

  // bytefreezer spool check|repair|stats DIR — for the proxy's and the receiver's spools.
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

  auto* plugins = app.add_subcommand("plugins", "List the built-in sources and pipeline steps");
  plugins->callback([] {
    std::cout << "sources:\n";
    for (const auto& f : source_factories()) std::cout << "  " << f.type << "  " << f.description << "\n";
    std::cout << "pipeline steps:\n";
    for (const auto& f : transform_factories()) std::cout << "  " << f.type << "  " << f.description << "\n";
  });
  app.add_subcommand("version", "Print the version")->callback([] { std::cout << "bytefreezer " << kVersion << "\n"; });

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
