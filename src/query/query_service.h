#pragma once
// The query service: SQL over a dataset's Parquet with DuckDB. The dataset is
// exposed as the view `events` (and under its own id), reading
// parquet/account=/tenant=/dataset=/** with hive partitioning and union by name.
// Untrusted SQL runs in a sandboxed engine: one SELECT statement, no file access
// beyond the lake, a row limit.
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
};
QueryOptions parse_query_options(const ConfigNode& section);

struct QueryError : std::runtime_error {
  int status;  // HTTP status to answer with
  QueryError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
};

struct QueryOutcome {
  SqlResult result;
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
