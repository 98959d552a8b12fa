#include "query/nl/ask_service.h"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

#include "common/catalog.h"
#include "common/metrics.h"
#include "net/http_server.h"
#include "query/cors.h"
#include "query/nl/prompt.h"
#include "query/nl/provider.h"
#include "storage/layout.h"
#include "storage/object_store.h"
#include "storage/sql_engine.h"

namespace bf::nl {
namespace {

constexpr size_t kMaxQuestionBytes = 4000;
constexpr size_t kMaxSampledColumns = 20;
constexpr size_t kMaxDistinct = 10;      // a column with more distinct values is not low-cardinality
constexpr size_t kMaxSharedValues = 5;   // values shared per column
constexpr size_t kMaxSampleValueBytes = 64;

void count(const std::string& outcome) {
  metrics().counter("bf_query_ask_total", "Natural-language questions by outcome", {{"outcome", outcome}}).inc();
}

bool is_partition_column(const std::string& name) {
  for (const auto& [p, type] : partition_columns())
    if (p == name) return true;
  return false;
}

// Columns from the schema registry (_meta/a/t/d/schema.json); when it is missing,
// from DESCRIBE of the view.
std::vector<std::pair<std::string, std::string>> load_columns(ObjectStore& store, QueryService& query,
                                                              const DatasetRef& ref) {
  std::vector<std::pair<std::string, std::string>> cols;
  try {
    const std::string text = store.get(schema_key(ref));
    boost::system::error_code ec;
    auto doc = boost::json::parse(text, ec);
    if (!ec && doc.is_object()) {
      if (auto* c = doc.get_object().if_contains("columns"); c && c->is_array()) {
        for (const auto& v : c->get_array()) {
          if (!v.is_object()) continue;
          auto* n = v.get_object().if_contains("name");
          auto* t = v.get_object().if_contains("type");
          if (n && n->is_string() && t && t->is_string() && !is_partition_column(std::string(n->get_string())))
            cols.emplace_back(std::string(n->get_string()), std::string(t->get_string()));
        }
      }
    }
    if (!cols.empty()) return cols;
    spdlog::warn("query ask: {} has an unreadable schema.json; using DESCRIBE", ref.str());
  } catch (const NotFound&) {
  }
  QueryOutcome d = query.run(ref.str(), "DESCRIBE events");
  for (const auto& row : d.result.rows) {
    if (row.size() < 2 || !row[0] || !row[1] || is_partition_column(*row[0])) continue;
    cols.emplace_back(*row[0], *row[1]);
  }
  return cols;
}

// A few distinct values of each low-cardinality text column (only with share_sample_values).
std::vector<ColumnSamples> sample_values(QueryService& query, const DatasetRef& ref,
                                         const std::vector<std::pair<std::string, std::string>>& cols) {
  std::vector<ColumnSamples> out;
  size_t tried = 0;
  for (const auto& [name, type] : cols) {
    if (tried >= kMaxSampledColumns) break;
    if (type != "VARCHAR" && type != "BOOLEAN") continue;
    if (name == "_raw" || name == "_raw_b64") continue;
    ++tried;
    const std::string c = sql_ident(name);
    QueryOutcome o;
    try {
      o = query.run(ref.str(), "SELECT DISTINCT CAST(" + c + " AS VARCHAR) AS v FROM events WHERE " + c +
                                   " IS NOT NULL ORDER BY v LIMIT " + std::to_string(kMaxDistinct + 1));
    } catch (const QueryError& e) {
      spdlog::warn("query ask: sampling column '{}' of {} failed: {}", name, ref.str(), e.what());
      continue;
    }
    if (o.result.rows.empty() || o.result.rows.size() > kMaxDistinct) continue;
    ColumnSamples s{name, {}};
    bool too_long = false;
    for (const auto& row : o.result.rows) {
      if (!row.empty() && row[0]) {
        if (row[0]->size() > kMaxSampleValueBytes) too_long = true;
        if (s.values.size() < kMaxSharedValues) s.values.push_back(*row[0]);
      }
    }
    if (!too_long && !s.values.empty()) out.push_back(std::move(s));
  }
  return out;
}

std::string attempts_json(const std::vector<std::pair<std::string, std::string>>& attempts) {
  boost::json::array a;
  for (const auto& [sql, error] : attempts) a.push_back(boost::json::object{{"sql", sql}, {"error", error}});
  return boost::json::serialize(a);
}

}  // namespace

AskService::AskService(QueryService& query, std::shared_ptr<ObjectStore> store, uint64_t max_response_bytes)
    : query_(query), store_(std::move(store)), max_response_bytes_(max_response_bytes) {}

AskResult AskService::ask(const std::string& dataset, const std::string& question) {
  const auto start = std::chrono::steady_clock::now();
  const DatasetInfo* info = nullptr;
  const auto catalog = query_.catalog();  // keeps *info and *ai alive for the whole question
  try {
    info = &catalog->resolve(dataset);
  } catch (const std::invalid_argument& e) {
    count("bad_request");
    throw AskError(404, e.what());
  }
  const DatasetRef& ref = info->ref;
  const AiConfig* ai = catalog->ai_config(ref.account);
  if (!ai) {
    count("no_provider");
    throw AskError(404, "no AI provider configured for account '" + ref.account +
                            "' (set accounts[].ai: provider, endpoint, model; see docs/ask.md)");
  }
  std::unique_ptr<Provider> provider = make_provider(*ai);
  AskResult result;
  result.model = ai->model;
  result.provider = ai->provider;
  try {
    PromptSchema schema{ref.str(), ref.dataset, load_columns(*store_, query_, ref)};
    std::vector<ColumnSamples> samples;
    if (ai->share_sample_values) {
      samples = sample_values(query_, ref, schema.columns);
      result.sample_values_shared = !samples.empty();
      if (result.sample_values_shared) {
        metrics()
            .counter("bf_query_ask_sample_values_shared_total",
                     "Questions whose prompt carried sample values (share_sample_values)")
            .inc();
        spdlog::info("query ask: sending sample values of {} column(s) of {} to {} (account '{}' sets "
                     "ai.share_sample_values)",
                     samples.size(), ref.str(), provider->describe(), ref.account);
      }
    }
    ChatRequest chat;
    chat.system = build_system_prompt(schema, samples);
    chat.messages.push_back({"user", question});
    std::vector<std::pair<std::string, std::string>> failures;  // (sql, error) per failed attempt
    for (int attempt = 1; attempt <= 2; ++attempt) {
      const std::string reply = provider->complete(chat);
      std::string why;
      auto answer = parse_model_answer(reply, &why);
      if (!answer) {
        count("bad_answer");
        throw AskError(502, "the AI provider " + provider->describe() + " gave an unusable answer: " + why);
      }
      try {
        result.outcome = query_.run(ref.str(), answer->sql);
        result.sql = answer->sql;
        result.explanation = answer->explanation;
        result.attempts = attempt;
        break;
      } catch (const QueryError& e) {
        if (e.status != 400) throw;  // no data (404), too large (413): the question is fine, the data is not
        failures.emplace_back(answer->sql, e.what());
        if (attempt == 2) {
          count("refused");
          throw AskError(422,
                         "the AI's SQL was refused twice: first: " + failures[0].second +
                             "; after the repair attempt: " + failures[1].second,
                         attempts_json(failures));
        }
        metrics().counter("bf_query_ask_repairs_total", "Repair attempts after the AI's SQL was refused").inc();
        chat.messages.push_back({"assistant", reply});
        // Without share_sample_values, no event value goes back in an error message.
        chat.messages.push_back({"user", build_repair_message(ai->share_sample_values
                                                                  ? std::string(e.what())
                                                                  : strip_values(e.what(), answer->sql))});
      }
    }
  } catch (const ProviderError& e) {
    count(e.status == 504 ? "provider_timeout" : "provider_error");
    throw AskError(e.status, e.what());
  } catch (const AskError&) {
    throw;
  } catch (const QueryError& e) {
    count("query_error");
    throw AskError(e.status, e.what());
  }
  result.outcome.rows_json = result.outcome.result.to_json();
  if (result.outcome.rows_json.size() > max_response_bytes_) {
    count("query_error");
    throw AskError(413, "result is larger than " + std::to_string(max_response_bytes_) +
                            " bytes (query.max_response_bytes); ask for fewer rows or columns");
  }
  result.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  count("ok");
  return result;
}

std::string render_ask_response(const AskResult& r) {
  boost::json::array columns;
  for (size_t i = 0; i < r.outcome.result.columns.size(); ++i)
    columns.push_back(boost::json::object{{"name", r.outcome.result.columns[i]}, {"type", r.outcome.result.types[i]}});
  std::string out;
  out.reserve(r.outcome.rows_json.size() + 512);
  out += "{\"sql\":" + boost::json::serialize(boost::json::value(r.sql));
  out += ",\"explanation\":" + boost::json::serialize(boost::json::value(r.explanation));
  out += ",\"columns\":" + boost::json::serialize(columns);
  out += ",\"rows\":" + (r.outcome.rows_json.empty() ? std::string("[]") : r.outcome.rows_json);
  out += ",\"row_count\":" + std::to_string(r.outcome.result.rows.size());
  out += std::string(",\"truncated\":") + (r.outcome.truncated ? "true" : "false");
  out += ",\"elapsed_ms\":" + std::to_string(static_cast<int64_t>(r.elapsed_ms + 0.5));
  out += ",\"model\":" + boost::json::serialize(boost::json::value(r.model));
  out += ",\"provider\":" + boost::json::serialize(boost::json::value(r.provider));
  out += ",\"attempts\":" + std::to_string(r.attempts);
  out += std::string(",\"sample_values_shared\":") + (r.sample_values_shared ? "true" : "false") + "}";
  return out;
}

HttpResponse AskService::handle(HttpRequest& req) {
  HttpResponse refusal;
  const auto catalog = query_.catalog();
  auto grant = authenticate_query_request(req, *catalog, refusal);
  if (!grant) return refusal;
  boost::system::error_code ec;
  auto body = boost::json::parse(req.body, ec);
  if (ec || !body.is_object())
    return HttpResponse::error(400, "body must be a JSON object {\"question\": ..., \"dataset\": ...}");
  auto* ds = body.get_object().if_contains("dataset");
  auto* q = body.get_object().if_contains("question");
  if (!ds || !ds->is_string() || !q || !q->is_string())
    return HttpResponse::error(400, "'question' and 'dataset' must be strings");
  const std::string question(q->get_string());
  if (question.find_first_not_of(" \t\r\n") == std::string::npos)
    return HttpResponse::error(400, "'question' must not be empty");
  if (question.size() > kMaxQuestionBytes)
    return HttpResponse::error(400, "'question' is longer than " + std::to_string(kMaxQuestionBytes) + " bytes");
  const DatasetInfo* info = nullptr;
  try {
    info = &catalog->resolve(std::string(ds->get_string()));
  } catch (const std::invalid_argument& e) {
    return HttpResponse::error(404, e.what());
  }
  if (info->ref.account != grant->account || info->ref.tenant != grant->tenant)
    return HttpResponse::error(403, "this query key is not valid for tenant '" + info->ref.tenant + "'");
  try {
    return HttpResponse::json(200, render_ask_response(ask(info->ref.str(), question)));
  } catch (const AskError& e) {
    if (e.attempts_json.empty()) return HttpResponse::error(e.status, e.what());
    return HttpResponse::json(e.status, "{\"error\":" + boost::json::serialize(boost::json::value(e.what())) +
                                            ",\"attempts\":" + e.attempts_json + "}");
  }
}

void add_ask_routes(Router& router, QueryService& query, std::shared_ptr<ObjectStore> store,
                    uint64_t max_response_bytes, const std::vector<std::string>& cors_origins) {
  auto service = std::make_shared<AskService>(query, std::move(store), max_response_bytes);
  router.add("POST", "/api/v1/query/ask", with_cors(cors_origins, [service](HttpRequest& req) { return service->handle(req); }));
  // Whether questions can be asked at all: the UI shows its tab only then. The
  // provider's endpoint and key stay on the server.
  router.add("GET", "/api/v1/query/ask", with_cors(cors_origins, [&query](HttpRequest& req) {
    HttpResponse refusal;
    const auto catalog = query.catalog();
    auto grant = authenticate_query_request(req, *catalog, refusal);
    if (!grant) return refusal;
    boost::json::object out{{"configured", false}};
    if (const AiConfig* ai = catalog->ai_config(grant->account)) {
      out["configured"] = true;
      out["provider"] = ai->provider;
      out["model"] = ai->model;
    }
    return HttpResponse::json(200, boost::json::serialize(out));
  }));
  router.add("OPTIONS", "/api/v1/query/ask", cors_preflight(cors_origins, "GET, POST"));
}

}  // namespace bf::nl
