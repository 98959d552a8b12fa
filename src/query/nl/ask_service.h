#pragma once
// Natural-language questions through the account's own AI model (docs/ask.md):
// the question and the dataset's schema go to the provider, the SQL it answers
// runs through QueryService::run (the same SQL guard and limits as any user's
// query), with one repair attempt when the guard or DuckDB refuses it.
// POST /api/v1/query/ask {"question": ..., "dataset": ...}.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "query/query_service.h"

namespace bf {

class Catalog;
class ObjectStore;
class Router;

namespace nl {

struct AskResult {
  std::string sql;
  std::string explanation;
  std::string model;
  std::string provider;    // "openai" | "anthropic"
  int attempts = 1;        // 2 when the repair attempt produced the SQL that ran
  bool sample_values_shared = false;
  QueryOutcome outcome;    // outcome.rows_json is filled
  double elapsed_ms = 0;   // the whole question: model and query
};

// A failed question. status: 404 unknown dataset or no AI provider, 422 the SQL
// failed twice, 502 provider or answer unusable, 504 provider timeout, or the
// query's own status (404 no data, 413 too large). attempts_json: for 422, a JSON
// array of {"sql", "error"} per attempt; empty otherwise.
struct AskError : QueryError {
  std::string attempts_json;
  AskError(int status, const std::string& message, std::string attempts = {})
      : QueryError(status, message), attempts_json(std::move(attempts)) {}
};

class AskService {
 public:
  // max_response_bytes: the query service's query.max_response_bytes. Datasets,
  // keys and AI settings come from query.catalog(), one snapshot per request.
  AskService(QueryService& query, std::shared_ptr<ObjectStore> store, uint64_t max_response_bytes);
  // dataset: "tenant/dataset" or "account/tenant/dataset". Throws AskError.
  AskResult ask(const std::string& dataset, const std::string& question);
  // The HTTP endpoint (query-key auth, tenant scope as POST /api/v1/query).
  HttpResponse handle(HttpRequest& req);

 private:
  QueryService& query_;
  std::shared_ptr<ObjectStore> store_;
  uint64_t max_response_bytes_;
};

// Registers POST /api/v1/query/ask and GET /api/v1/query/ask (whether the key's
// account has an AI provider: {"configured": bool, "provider", "model"}) on the
// query service's router, both open to the browser origins in cors_origins.
void add_ask_routes(Router& router, QueryService& query, std::shared_ptr<ObjectStore> store,
                    uint64_t max_response_bytes, const std::vector<std::string>& cors_origins);

// The JSON body of a successful answer.
std::string render_ask_response(const AskResult& result);

}  // namespace nl
}  // namespace bf
