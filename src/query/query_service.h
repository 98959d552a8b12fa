#pragma once
// The query service: SQL over a dataset's Parquet with DuckDB. The dataset is
// exposed as the view `events` (and under its own id), reading
// parquet/account=/tenant=/dataset=/** with hive partitioning and union by name.
// Untrusted SQL is checked by the SQL guard (query/sql_guard.h: one SELECT, only
// the service's views, no file/catalog/settings functions) and then runs in a
// sandboxed engine per tenant with its own spill directory, a row limit, a
// response byte limit and a timeout that covers fetching and rendering.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "net/http_server.h"
#include "storage/sql_engine.h"

namespace bf {

class Catalog;
class ConfigNode;
class ObjectStore;

struct QueryOptions {
  HttpServerOptions http;          // listen default 127.0.0.1:8082
  size_t max_rows = 10000;         // rows returned; more are cut and marked truncated
  std::chrono::milliseconds timeout{30000};  // a query running longer is cancelled
  std::string memory_limit = "1GB";
  int threads = 2;
  // Root of the tenant engines' spill directories: one private subdirectory
  // (mode 0700) per tenant engine; wiped when the service starts. Each query
  // process needs its own.
  std::string temp_dir = "./data/query-tmp";
  // A result whose rows render to more is refused (413) rather than cut.
  uint64_t max_response_bytes = 64ull << 20;
  // Largest value repeat()/lpad()/rpad()/… may build (refused by the guard).
  uint64_t max_value_bytes = 64ull << 10;
};
QueryOptions parse_query_options(const ConfigNode& section);

struct QueryError : std::runtime_error {
  int status;  // HTTP status to answer with
  QueryError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
};

struct QueryOutcome {
  SqlResult result;
  std::string rows_json;  // the rows as a JSON array, when rendered by the HTTP API
  bool truncated = false;
  double elapsed_ms = 0;
};

class QueryService {
 public:
  QueryService(QueryOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store);
  ~QueryService();
  // dataset: "tenant/dataset" or "account/tenant/dataset". Throws QueryError.
  QueryOutcome run(const std::string& dataset, const std::string& sql);
  // POST /api/v1/query {"dataset": "...", "sql": "..."} with `Authorization: Bearer <query key>`.
  void start();
  void stop();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
