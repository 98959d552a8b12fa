#pragma once
// The query service: SQL over a dataset's Parquet with DuckDB. The dataset is
// exposed as the view `events` (and under its own id), reading
// parquet/account=/tenant=/dataset=/** with hive partitioning and union by name.
// Untrusted SQL is checked by the SQL guard (query/sql_guard.h: one SELECT, only
// the service's views, no file/catalog/settings functions) and then runs in a
// sandboxed engine per tenant with its own spill directory, a row limit, a
// response byte limit and a timeout that covers fetching and rendering.
// Engines are pooled: at most max_engines are kept (the least recently used idle
// one is evicted for a new tenant), an engine idle for engine_idle_timeout is
// closed, and at most max_concurrent queries run at once, each engine limited to
// memory_limit / max_concurrent, so running queries together stay in memory_limit.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/catalog.h"
#include "net/http_server.h"
#include "storage/sql_engine.h"

namespace boost::json {
class object;
}

namespace bf {

class Catalog;
class ConfigNode;
class ObjectStore;

struct QueryOptions {
  HttpServerOptions http;          // listen default 127.0.0.1:8082
  size_t max_rows = 10000;         // rows returned; more are cut and marked truncated
  std::chrono::milliseconds timeout{30000};  // a query running longer is cancelled
  // Total DuckDB memory for all engines (DuckDB's memory_limit covers buffer-managed
  // memory: sorts, hash tables, aggregates). Each engine gets memory_limit /
  // max_concurrent.
  uint64_t memory_limit = 1000000000;  // 1GB
  int threads = 2;                     // DuckDB threads per engine
  // Queries running at once (over all tenants); more wait for a slot up to
  // query.timeout, then get 503.
  int max_concurrent = 4;
  // Tenant engines kept open; >= max_concurrent.
  int max_engines = 16;
  // An engine not used for this long is closed (its temp directory removed). 0 = never.
  std::chrono::milliseconds engine_idle_timeout{300000};
  // Root of the tenant engines' spill directories: one private subdirectory
  // (mode 0700) per tenant engine; wiped when the service starts. Each query
  // process needs its own.
  std::string temp_dir = "./data/query-tmp";
  // A result whose rows render to more is refused (413) rather than cut.
  uint64_t max_response_bytes = 64ull << 20;
  // Largest value repeat()/lpad()/rpad()/… may build (refused by the guard).
  uint64_t max_value_bytes = 64ull << 10;
  // query.mcp.allowed_origins: browser origins the MCP endpoint serves besides
  // loopback ones (docs/mcp.md); "*" = any.
  std::vector<std::string> mcp_allowed_origins;
  // query.cors_origins: browser origins that may call POST /api/v1/query, the
  // schema and parts endpoints and /api/v1/query/ask (CORS) besides loopback ones,
  // e.g. control's web UI; "*" = any.
  std::vector<std::string> cors_origins;
};
QueryOptions parse_query_options(const ConfigNode& section);

struct QueryError : std::runtime_error {
  int status;  // HTTP status to answer with
  QueryError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
};

struct QueryOutcome {
  SqlResult result;
  std::string rows_json;  // unused: the HTTP API renders rows while they are fetched
  bool truncated = false;
  double elapsed_ms = 0;
};

struct QueryRequest {
  std::string dataset;  // "tenant/dataset" or "account/tenant/dataset"
  std::string sql;
  // Restrict the dataset's views to _time in [from_us, to_us) (UTC µs); parts whose
  // hour partition lies outside are not read at all.
  std::optional<int64_t> from_us, to_us;
};

// What a streamed query produced (the rows went to the sink).
struct QueryStats {
  std::vector<std::string> columns, types;
  size_t row_count = 0;
  bool truncated = false;  // more rows than max_rows existed
  double elapsed_ms = 0;
};

// Output formats of POST /api/v1/query and `bytefreezer query`.
enum class ResultFormat { kJson, kNdjson, kCsv };
std::optional<ResultFormat> parse_result_format(const std::string& name);

// The grant of a request's query key (`Authorization: Bearer <query key>`), or
// nullopt with the 401 to answer in `refusal`. Used by every query-key endpoint.
std::optional<KeyGrant> authenticate_query_request(const HttpRequest& req, const Catalog& catalog, HttpResponse& refusal);

// The "columns" and "rows" of a JSON query response (POST /api/v1/query, /ask) as
// a SqlResult, for clients that print it (the CLI's --url mode).
SqlResult sql_result_from_response(const boost::json::object& response);

class QueryService {
 public:
  QueryService(QueryOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store);
  ~QueryService();
  // dataset: "tenant/dataset" or "account/tenant/dataset". Throws QueryError.
  QueryOutcome run(const std::string& dataset, const std::string& sql);
  QueryOutcome run(const QueryRequest& request);
  // Hands rows to `sink` as DuckDB produces them, keeping none: for results too
  // large to hold (the CLI's --no-limit). The guard and query.timeout apply, the
  // byte limit does not (nothing is kept); max_rows 0 = no row limit. Throws QueryError.
  QueryStats stream(const QueryRequest& request, const SqlRowSink& sink, size_t max_rows);
  // Writes a result the way POST /api/v1/query answers (status, content type, body,
  // X-Result-* headers or trailers) into `out` while the rows are fetched, bounded by
  // max_rows and max_response_bytes; errors become the response (or, once rows have
  // gone out, the end of the body). The query stops when out.client_gone().
  void render(const QueryRequest& request, ResultFormat format, HttpStream& out);
  // The dataset's schema registry document (_meta/.../schema.json: columns, types,
  // history; docs/schema-evolution.md). Throws QueryError 404 for an unknown
  // dataset or one with nothing packed yet.
  std::string schema(const std::string& dataset);
  // The dataset's committed Parquet parts (storage/ledger.h committed_parts) as the
  // JSON of GET /api/v1/datasets/{dataset}/parts: {"dataset", "part_count", "rows",
  // "bytes", "parts": [{"key", "rows", "bytes", "hour", "quarantine"}]}, sorted by
  // key. Throws QueryError 404 for an unknown dataset (none packed yet: no parts),
  // 413 when the list is larger than max_response_bytes.
  std::string parts(const std::string& dataset);
  // Open tenant engines (for tests and the bf_query_engines gauge).
  size_t engine_count() const;
  // The catalog requests are answered from: control hands over a new one while the
  // service runs (set_catalog); each request takes one snapshot and keeps it.
  std::shared_ptr<const Catalog> catalog() const;
  void set_catalog(std::shared_ptr<const Catalog> catalog);
  // POST /api/v1/query {"dataset", "sql", "format"?, "from"?, "to"?} with
  // `Authorization: Bearer <query key>` (docs/api.md).
  void start();
  void stop();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
