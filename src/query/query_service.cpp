#include "query/query_service.h"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
#include "query/nl/ask_service.h"
#include "query/sql_guard.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/object_store.h"

namespace bf {

QueryOptions parse_query_options(const ConfigNode& section) {
  QueryOptions o;
  HttpServerOptions http_defaults;
  http_defaults.listen = "127.0.0.1:8082";
  http_defaults.max_body_bytes = 1 << 20;
  o.http = parse_http_server_options(section, http_defaults);
  o.max_rows = static_cast<size_t>(section.integer("max_rows", static_cast<int64_t>(o.max_rows)));
  o.timeout = section.duration("timeout", o.timeout);
  o.memory_limit = section.str("memory_limit", o.memory_limit);
  o.threads = static_cast<int>(section.integer("threads", o.threads));
  o.temp_dir = section.str("temp_dir", o.temp_dir);
  o.max_response_bytes = section.bytes("max_response_bytes", o.max_response_bytes);
  o.max_value_bytes = section.bytes("max_value_bytes", o.max_value_bytes);
  if (o.temp_dir.empty()) throw std::invalid_argument("query.temp_dir must not be empty");
  if (o.max_response_bytes == 0) throw std::invalid_argument("query.max_response_bytes must be > 0");
  if (o.max_value_bytes == 0) throw std::invalid_argument("query.max_value_bytes must be > 0");
  return o;
}

struct QueryService::Impl {
  QueryOptions options;
  std::shared_ptr<const Catalog> catalog;
  std::shared_ptr<ObjectStore> store;
  std::mutex engines_mu;
  // One sandboxed engine per tenant, confined to that tenant's part of the lake:
  // a query can name any bf:// path, but DuckDB refuses those outside it.
  std::map<std::string, std::shared_ptr<SqlEngine>> engines;
  std::unique_ptr<HttpServer> server;

  std::shared_ptr<SqlEngine> engine_for(const DatasetRef& ref) {
    std::string tenant_prefix = "bf://parquet/account=" + ref.account + "/tenant=" + ref.tenant + "/";
    std::lock_guard lock(engines_mu);
    auto& engine = engines[tenant_prefix];
    if (!engine) {
      SqlEngine::Options o;
      o.sandboxed = true;
      o.memory_limit = options.memory_limit;
      o.threads = options.threads;
      o.allowed_prefixes = {tenant_prefix};
      // '.' is not in the ID alphabet, so account.tenant names one tenant.
      o.temp_directory = (std::filesystem::path(options.temp_dir) / ("tenant-" + ref.account + "." + ref.tenant)).string();
      engine = std::make_shared<SqlEngine>(store, o);
    }
    return engine;
  }

  static void count_rejected(const std::string& reason) {
    metrics().counter("bf_query_rejected_total", "Queries rejected before execution", {{"reason", reason}}).inc();
  }

  // render_json: also render the rows as JSON (within the timeout) for the HTTP API.
  QueryOutcome run(const std::string& dataset, const std::string& sql, bool render_json) {
    const DatasetInfo* info = nullptr;
    try {
      info = &catalog->resolve(dataset);
    } catch (const std::invalid_argument& e) {
      throw QueryError(404, e.what());
    }
    SqlGuardOptions guard;
    guard.tables = {"events", info->ref.dataset};
    guard.max_value_bytes = options.max_value_bytes;
    const SqlGuardVerdict verdict = check_untrusted_sql(sql, guard);
    if (!verdict.allowed) {
      count_rejected(verdict.reason);
      throw QueryError(400, "rejected SQL: " + verdict.message);
    }
    // Only committed parts (storage/ledger.h): a part of a run that was killed
    // before its commit is never read.
    std::string files;
    for (const auto& part : committed_parts(*store, info->ref)) files += (files.empty() ? "" : ", ") + sql_quote("bf://" + part.key);
    if (files.empty()) throw QueryError(404, "dataset '" + dataset + "' has no data yet");
    std::string source = "read_parquet([" + files + "], hive_partitioning=true, union_by_name=true)";
    std::vector<std::string> setup{"CREATE OR REPLACE TEMP VIEW events AS SELECT * FROM " + source};
    if (info->ref.dataset != "events")
      setup.push_back("CREATE OR REPLACE TEMP VIEW " + sql_ident(info->ref.dataset) + " AS SELECT * FROM events");
    auto start = std::chrono::steady_clock::now();
    QueryOutcome out;
    const std::string timeout_text =
        "query cancelled after " + std::to_string(options.timeout.count()) + " ms (query.timeout)";
    try {
      SqlEngine::QueryLimits limits;
      limits.max_rows = options.max_rows + 1;  // one row more than the limit tells whether the result was cut
      limits.timeout = options.timeout;
      limits.max_bytes = options.max_response_bytes;
      out.result = engine_for(info->ref)->query(sql, setup, limits);
    } catch (const SqlTimeout&) {
      metrics().counter("bf_query_timeouts_total", "Queries cancelled at query.timeout").inc();
      throw QueryError(400, timeout_text);
    } catch (const SqlResultTooLarge& e) {
      metrics().counter("bf_query_too_large_total", "Queries refused at query.max_response_bytes").inc();
      throw QueryError(413, std::string(e.what()) + " (query.max_response_bytes); select fewer rows or columns");
    } catch (const SqlError& e) {
      metrics().counter("bf_query_failed_total", "Queries that failed in DuckDB").inc();
      throw QueryError(400, e.what());
    }
    if (out.result.rows.size() > options.max_rows) {
      out.result.rows.resize(options.max_rows);
      out.truncated = true;
    }
    if (render_json) {
      const auto deadline = start + options.timeout;
      size_t n = 0;
      try {
        out.result.append_json(out.rows_json, [&] {
          if ((++n & 255) == 0 && options.timeout.count() > 0 && std::chrono::steady_clock::now() >= deadline)
            throw SqlTimeout("render");
        });
      } catch (const SqlTimeout&) {
        metrics().counter("bf_query_timeouts_total", "Queries cancelled at query.timeout").inc();
        throw QueryError(400, timeout_text);
      }
      if (out.rows_json.size() > options.max_response_bytes) {  // escaping can grow text past the fetch estimate
        metrics().counter("bf_query_too_large_total", "Queries refused at query.max_response_bytes").inc();
        throw QueryError(413, "result is larger than " + std::to_string(options.max_response_bytes) +
                                  " bytes (query.max_response_bytes); select fewer rows or columns");
      }
    }
    out.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    metrics().counter("bf_query_queries_total", "Queries executed").inc();
    return out;
  }

  HttpResponse handle(HttpRequest& req) {
    auto auth = req.header("Authorization");
    const std::string prefix = "Bearer ";
    if (!auth || auth->compare(0, prefix.size(), prefix) != 0) {
      auto r = HttpResponse::error(401, "missing 'Authorization: Bearer <query key>'");
      r.headers["WWW-Authenticate"] = "Bearer";
      return r;
    }
    auto grant = catalog->authenticate_query(auth->substr(prefix.size()));
    if (!grant) return HttpResponse::error(401, "invalid query key");
    boost::system::error_code ec;
    auto body = boost::json::parse(req.body, ec);
    if (ec || !body.is_object()) return HttpResponse::error(400, "body must be a JSON object {\"dataset\": ..., \"sql\": ...}");
    const auto& obj = body.get_object();
    auto ds = obj.if_contains("dataset");
    auto sql = obj.if_contains("sql");
    if (!ds || !ds->is_string() || !sql || !sql->is_string())
      return HttpResponse::error(400, "'dataset' and 'sql' must be strings");
    try {
      const DatasetInfo* info = nullptr;
      try {
        info = &catalog->resolve(std::string(ds->get_string()));
      } catch (const std::invalid_argument& e) {
        return HttpResponse::error(404, e.what());
      }
      if (info->ref.account != grant->account || info->ref.tenant != grant->tenant)
        return HttpResponse::error(403, "this query key is not valid for tenant '" + info->ref.tenant + "'");
      QueryOutcome out = run(info->ref.str(), std::string(sql->get_string()), true);
      // Rendered once: the rows are already JSON; only the small envelope is added.
      boost::json::array columns;
      for (size_t i = 0; i < out.result.columns.size(); ++i)
        columns.push_back(boost::json::object{{"name", out.result.columns[i]}, {"type", out.result.types[i]}});
      std::string response;
      response.reserve(out.rows_json.size() + 256);
      response += "{\"columns\":";
      response += boost::json::serialize(columns);
      response += ",\"rows\":";
      response += out.rows_json;
      response += ",\"row_count\":" + std::to_string(out.result.rows.size());
      response += ",\"truncated\":";
      response += out.truncated ? "true" : "false";
      response += ",\"elapsed_ms\":" + std::to_string(static_cast<int64_t>(out.elapsed_ms + 0.5)) + "}";
      return HttpResponse::json(200, std::move(response));
    } catch (const QueryError& e) {
      return HttpResponse::error(e.status, e.what());
    }
  }
};

QueryService::QueryService(QueryOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  // Left-over spill files of an earlier run are another tenant's data: start empty.
  namespace fs = std::filesystem;
  const std::string root = impl_->options.temp_dir;
  // Only the engines' own subdirectories are removed, in case temp_dir names a
  // directory that holds anything else.
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw std::runtime_error("query.temp_dir '" + root + "': cannot create: " + ec.message());
  ::chmod(root.c_str(), 0700);
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.path().filename().string().rfind("tenant-", 0) != 0) continue;
    fs::remove_all(entry.path(), ec);
    if (ec) throw std::runtime_error("query.temp_dir: cannot clear '" + entry.path().string() + "': " + ec.message());
  }
  if (ec) throw std::runtime_error("query.temp_dir '" + root + "': " + ec.message());
  impl_->catalog = std::move(catalog);
  impl_->store = std::move(store);
}

QueryService::~QueryService() { stop(); }

QueryOutcome QueryService::run(const std::string& dataset, const std::string& sql) {
  return impl_->run(dataset, sql, false);
}

void QueryService::start() {
  Router router;
  router.add("POST", "/api/v1/query", [this](HttpRequest& req) { return impl_->handle(req); });
  nl::add_ask_routes(router, *this, impl_->catalog, impl_->store, impl_->options.max_response_bytes);  // docs/ask.md
  add_standard_endpoints(router, [] { return true; });
  impl_->server = std::make_unique<HttpServer>("query", impl_->options.http, std::move(router));
  impl_->server->start();
  spdlog::info("query: listening on port {}", port());
}

void QueryService::stop() {
  if (impl_->server) impl_->server->stop();
}

uint16_t QueryService::port() const { return impl_->server ? impl_->server->port() : 0; }

}  // namespace bf
