#include "query/query_service.h"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <map>
#include <mutex>

#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
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
      engine = std::make_shared<SqlEngine>(store, o);
    }
    return engine;
  }

  QueryOutcome run(const std::string& dataset, const std::string& sql) {
    const DatasetInfo* info = nullptr;
    try {
      info = &catalog->resolve(dataset);
    } catch (const std::invalid_argument& e) {
      throw QueryError(404, e.what());
    }
    std::string why;
    if (!SqlEngine::is_single_select(sql, &why)) {
      metrics().counter("bf_query_rejected_total", "Queries rejected before execution", {{"reason", "not_select"}}).inc();
      throw QueryError(400, "rejected SQL: " + why);
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
    try {
      // One row more than the limit tells whether the result was cut.
      out.result = engine_for(info->ref)->query(sql, setup, options.max_rows + 1, options.timeout);
    } catch (const SqlTimeout& e) {
      metrics().counter("bf_query_timeouts_total", "Queries cancelled at query.timeout").inc();
      throw QueryError(400, std::string(e.what()) + " (query.timeout)");
    } catch (const SqlError& e) {
      metrics().counter("bf_query_failed_total", "Queries that failed in DuckDB").inc();
      throw QueryError(400, e.what());
    }
    out.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (out.result.rows.size() > options.max_rows) {
      out.result.rows.resize(options.max_rows);
      out.truncated = true;
    }
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
      QueryOutcome out = run(info->ref.str(), std::string(sql->get_string()));
      boost::json::array columns;
      for (size_t i = 0; i < out.result.columns.size(); ++i)
        columns.push_back(boost::json::object{{"name", out.result.columns[i]}, {"type", out.result.types[i]}});
      boost::json::object response{{"columns", std::move(columns)},
                                   {"rows", boost::json::parse(out.result.to_json())},
                                   {"row_count", out.result.rows.size()},
                                   {"truncated", out.truncated},
                                   {"elapsed_ms", static_cast<int64_t>(out.elapsed_ms + 0.5)}};
      return HttpResponse::json(200, boost::json::serialize(response));
    } catch (const QueryError& e) {
      return HttpResponse::error(e.status, e.what());
    }
  }
};

QueryService::QueryService(QueryOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->catalog = std::move(catalog);
  impl_->store = std::move(store);
}

QueryService::~QueryService() { stop(); }

QueryOutcome QueryService::run(const std::string& dataset, const std::string& sql) { return impl_->run(dataset, sql); }

void QueryService::start() {
  Router router;
  router.add("POST", "/api/v1/query", [this](HttpRequest& req) { return impl_->handle(req); });
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
