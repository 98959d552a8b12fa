#include "query/query_service.h"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>

#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/worker.h"
#include "query/cors.h"
#include "query/mcp/mcp_server.h"
#include "query/nl/ask_service.h"
#include "query/sql_guard.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/object_store.h"

namespace bf {

std::optional<ResultFormat> parse_result_format(const std::string& name) {
  if (name == "json") return ResultFormat::kJson;
  if (name == "ndjson") return ResultFormat::kNdjson;
  if (name == "csv") return ResultFormat::kCsv;
  return std::nullopt;
}

namespace {

// The first invalid option as (key, message), if any.
std::optional<std::pair<std::string, std::string>> invalid_option(const QueryOptions& o) {
  if (o.temp_dir.empty()) return std::pair{"temp_dir", "must not be empty"};
  if (o.max_response_bytes == 0) return std::pair{"max_response_bytes", "must be > 0"};
  if (o.max_value_bytes == 0) return std::pair{"max_value_bytes", "must be > 0"};
  if (o.max_concurrent < 1) return std::pair{"max_concurrent", "must be >= 1"};
  if (o.max_engines < o.max_concurrent)
    return std::pair{"max_engines", "must be >= query.max_concurrent (" + std::to_string(o.max_concurrent) + ")"};
  if (o.memory_limit / static_cast<uint64_t>(o.max_concurrent) < (1u << 20))
    return std::pair{"memory_limit", "must give each engine at least 1MiB (memory_limit / max_concurrent)"};
  return std::nullopt;
}

void validate(const QueryOptions& o) {
  if (auto bad = invalid_option(o)) throw std::invalid_argument("query." + bad->first + " " + bad->second);
}

constexpr int64_t kHourUs = 3600LL * 1000 * 1000;

// True if `word` occurs in `text`, ASCII case-insensitively (SQL identifiers are).
bool mentions(std::string_view text, std::string_view word) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  return std::search(text.begin(), text.end(), word.begin(), word.end(),
                     [&](char a, char b) { return lower(a) == lower(b); }) != text.end();
}

}  // namespace

QueryOptions parse_query_options(const ConfigNode& section) {
  QueryOptions o;
  HttpServerOptions http_defaults;
  http_defaults.listen = "127.0.0.1:8082";
  http_defaults.max_body_bytes = 1 << 20;
  o.http = parse_http_server_options(section, http_defaults);
  o.max_rows = static_cast<size_t>(section.integer("max_rows", static_cast<int64_t>(o.max_rows)));
  o.timeout = section.duration("timeout", o.timeout);
  o.memory_limit = section.bytes("memory_limit", o.memory_limit);
  o.threads = static_cast<int>(section.integer("threads", o.threads));
  o.max_concurrent = static_cast<int>(section.integer("max_concurrent", o.max_concurrent));
  o.max_engines = static_cast<int>(section.integer("max_engines", o.max_engines));
  o.engine_idle_timeout = section.duration("engine_idle_timeout", o.engine_idle_timeout);
  o.temp_dir = section.str("temp_dir", o.temp_dir);
  o.max_response_bytes = section.bytes("max_response_bytes", o.max_response_bytes);
  o.max_value_bytes = section.bytes("max_value_bytes", o.max_value_bytes);
  if (section.has("mcp")) o.mcp_allowed_origins = section.child("mcp").str_list("allowed_origins");
  o.cors_origins = section.str_list("cors_origins");
  if (auto bad = invalid_option(o)) section.fail(bad->first, bad->second);
  return o;
}

SqlResult sql_result_from_response(const boost::json::object& response) {
  SqlResult result;
  for (const auto& c : response.at("columns").as_array()) {
    result.columns.emplace_back(c.at("name").as_string());
    result.types.emplace_back(c.at("type").as_string());
  }
  for (const auto& row : response.at("rows").as_array()) {
    std::vector<std::optional<std::string>> values;
    for (const auto& name : result.columns) {
      const auto* v = row.as_object().if_contains(name);
      if (!v || v->is_null()) values.emplace_back(std::nullopt);
      else if (v->is_string()) values.emplace_back(std::string(v->get_string()));
      else values.emplace_back(boost::json::serialize(*v));
    }
    result.rows.push_back(std::move(values));
  }
  return result;
}

std::optional<KeyGrant> authenticate_query_request(const HttpRequest& req, const Catalog& catalog, HttpResponse& refusal) {
  auto auth = req.header("Authorization");
  const std::string prefix = "Bearer ";
  if (!auth || auth->compare(0, prefix.size(), prefix) != 0) {
    refusal = HttpResponse::error(401, "missing 'Authorization: Bearer <query key>'");
    refusal.headers["WWW-Authenticate"] = "Bearer";
    return std::nullopt;
  }
  auto grant = catalog.authenticate_query(auth->substr(prefix.size()));
  if (!grant) refusal = HttpResponse::error(401, "invalid query key");
  return grant;
}

struct QueryService::Impl {
  // QueryError status of a query interrupted because its client went away (never sent).
  static constexpr int kClientGone = 499;
  QueryOptions options;
  LiveCatalog catalog{nullptr};  // replaced by set_catalog; each request takes one snapshot
  std::shared_ptr<ObjectStore> store;
  std::unique_ptr<HttpServer> server;

  // --- the engine pool -------------------------------------------------------
  // One sandboxed engine per tenant, confined to that tenant's part of the lake:
  // a query can name any bf:// path, but DuckDB refuses those outside it.
  // Engines are created, evicted and destroyed under pool_mu, so a tenant's new
  // engine never shares its temp directory with one being torn down.
  struct Entry {
    std::shared_ptr<SqlEngine> engine;
    int in_use = 0;  // queries running on it; never evicted while > 0
    std::chrono::steady_clock::time_point last_used;
  };
  mutable std::mutex pool_mu;
  std::condition_variable pool_cv;  // a query slot was freed, or stopping
  std::map<std::string, Entry> engines;  // key: the tenant's bf:// prefix
  int running = 0;
  bool stopping = false;
  std::thread sweeper;

  Gauge& engines_gauge = metrics().gauge("bf_query_engines", "Tenant query engines open");
  // The component contract (docs/metrics.md): a query in, its rows (and the rendered
  // bytes of POST /api/v1/query) out; errors by stage. Nothing is discarded: rows past
  // max_rows are not fetched, the response says it was cut.
  ComponentMetrics contract{"sink", "query", "query"};

  static Counter& evictions(const char* reason) {
    return metrics().counter("bf_query_engine_evictions_total", "Tenant query engines closed by the pool",
                             {{"reason", reason}});
  }

  void erase_locked(std::map<std::string, Entry>::iterator it, const char* reason) {
    spdlog::debug("query: closing engine {} ({})", it->first, reason);
    engines.erase(it);  // the pool holds the only reference of an idle engine: destroyed here
    engines_gauge.add(-1);
    evictions(reason).inc();
  }

  void sweep_idle_locked() {
    if (options.engine_idle_timeout.count() <= 0) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto it = engines.begin(); it != engines.end();) {
      auto next = std::next(it);
      if (it->second.in_use == 0 && now - it->second.last_used >= options.engine_idle_timeout)
        erase_locked(it, "idle");
      it = next;
    }
  }

  void start_sweeper() {
    if (options.engine_idle_timeout.count() <= 0) return;
    const auto interval = std::clamp(options.engine_idle_timeout / 2, std::chrono::milliseconds(10),
                                     std::chrono::milliseconds(30000));
    sweeper = std::thread([this, interval] {
      set_thread_name("bf-query-sweep");
      std::unique_lock lock(pool_mu);
      while (!stopping) {
        pool_cv.wait_for(lock, interval, [this] { return stopping; });
        if (!stopping) sweep_idle_locked();
      }
    });
  }

  void shutdown_pool() {
    {
      std::lock_guard lock(pool_mu);
      stopping = true;
    }
    pool_cv.notify_all();
    if (sweeper.joinable()) sweeper.join();
    std::lock_guard lock(pool_mu);
    engines_gauge.add(-static_cast<int64_t>(engines.size()));
    engines.clear();
  }

  // A running query's hold on its tenant's engine and on one of max_concurrent slots.
  class Lease {
   public:
    Lease(Impl* impl, std::string key, std::shared_ptr<SqlEngine> engine)
        : impl_(impl), key_(std::move(key)), engine_(std::move(engine)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      {
        std::lock_guard lock(impl_->pool_mu);
        engine_.reset();  // before in_use drops: an evicted engine dies under the lock
        auto it = impl_->engines.find(key_);
        if (it != impl_->engines.end()) {
          --it->second.in_use;
          it->second.last_used = std::chrono::steady_clock::now();
        }
        --impl_->running;
      }
      impl_->pool_cv.notify_all();
    }
    SqlEngine& engine() { return *engine_; }

   private:
    Impl* impl_;
    std::string key_;
    std::shared_ptr<SqlEngine> engine_;
  };

  std::string engine_memory_limit() const {
    return std::to_string(options.memory_limit / static_cast<uint64_t>(options.max_concurrent) / 1024) + "KiB";
  }

  std::unique_ptr<Lease> acquire(const DatasetRef& ref) {
    std::string key = "bf://parquet/account=" + ref.account + "/tenant=" + ref.tenant + "/";
    std::unique_lock lock(pool_mu);
    auto free_slot = [this] { return running < options.max_concurrent || stopping; };
    if (options.timeout.count() > 0) {
      if (!pool_cv.wait_for(lock, options.timeout, free_slot)) {
        metrics().counter("bf_query_busy_total", "Queries refused: no query slot free within query.timeout").inc();
        contract.error("pool", "busy").inc();
        throw QueryError(503, "too many queries running (query.max_concurrent = " +
                                  std::to_string(options.max_concurrent) + "); retry later");
      }
    } else {
      pool_cv.wait(lock, free_slot);
    }
    if (stopping) throw QueryError(503, "the query service is stopping");
    sweep_idle_locked();
    auto it = engines.find(key);
    if (it == engines.end()) {
      while (engines.size() >= static_cast<size_t>(options.max_engines)) {
        auto lru = engines.end();
        for (auto e = engines.begin(); e != engines.end(); ++e)
          if (e->second.in_use == 0 && (lru == engines.end() || e->second.last_used < lru->second.last_used)) lru = e;
        // Cannot happen while max_engines >= max_concurrent (checked at start).
        if (lru == engines.end()) throw QueryError(503, "every query engine is busy; retry later");
        erase_locked(lru, "lru");
      }
      SqlEngine::Options o;
      o.sandboxed = true;
      o.memory_limit = engine_memory_limit();
      o.threads = options.threads;
      o.allowed_prefixes = {key};
      // Parts are immutable once committed: their footers need reading once, not
      // for each of the views and the query that bind them (docs/performance.md).
      o.parquet_metadata_cache = true;
      // '.' is not in the ID alphabet, so account.tenant names one tenant.
      o.temp_directory = (std::filesystem::path(options.temp_dir) / ("tenant-" + ref.account + "." + ref.tenant)).string();
      std::shared_ptr<SqlEngine> engine;
      try {
        engine = std::make_shared<SqlEngine>(store, o);
      } catch (const SqlError& e) {
        throw QueryError(500, std::string("starting the query engine failed: ") + e.what());
      }
      it = engines.emplace(key, Entry{std::move(engine), 0, {}}).first;
      engines_gauge.add(1);
    }
    ++it->second.in_use;
    it->second.last_used = std::chrono::steady_clock::now();
    ++running;
    return std::make_unique<Lease>(this, key, it->second.engine);
  }

  // --- queries ---------------------------------------------------------------

  void count_rejected(const std::string& reason) {
    metrics().counter("bf_query_rejected_total", "Queries rejected before execution", {{"reason", reason}}).inc();
    contract.error("guard", reason).inc();
  }

  // The view statements: the dataset's committed parts, pruned to the hours that
  // overlap [from, to), filtered on _time.
  std::vector<std::string> views(const DatasetInfo& info, const QueryRequest& request) {
    // Only committed parts (storage/ledger.h): a part of a run that was killed
    // before its commit is never read.
    // Quarantine parts (absurd event times) sit outside the Hive tree: a view mixing
    // them with the year=/month=/… parts would not bind (docs/storage.md).
    std::vector<CommitPart> parts;
    for (auto& p : committed_parts(*store, info.ref))
      if (!is_quarantine_part(p.key)) parts.push_back(std::move(p));
    if (parts.empty()) {
      contract.error("request", "no_data").inc();
      throw QueryError(404, "dataset '" + request.dataset + "' has no data yet");
    }
    const int64_t from = request.from_us.value_or(INT64_MIN), to = request.to_us.value_or(INT64_MAX);
    const bool ranged = request.from_us || request.to_us;
    std::string files;
    size_t kept = 0;
    for (const auto& part : parts) {
      if (ranged) {
        // A key without an hour partition cannot be pruned: it is read and filtered.
        auto hour = parquet_part_hour_us(part.key);
        if (hour && (*hour >= to || *hour + kHourUs <= from)) continue;
      }
      files += (files.empty() ? "" : ", ") + sql_quote("bf://" + part.key);
      ++kept;
    }
    std::string where;
    if (kept == 0) {
      // Nothing in range: the newest part gives the columns (its footer is read), no rows.
      files = sql_quote("bf://" + parts.back().key);
      where = " WHERE false";
    } else if (ranged) {
      std::vector<std::string> terms;
      if (request.from_us) terms.push_back("_time >= make_timestamp(" + std::to_string(*request.from_us) + "::BIGINT)");
      if (request.to_us) terms.push_back("_time < make_timestamp(" + std::to_string(*request.to_us) + "::BIGINT)");
      where = " WHERE " + terms[0] + (terms.size() > 1 ? " AND " + terms[1] : "");
    }
    metrics().counter("bf_query_parts_read_total", "Parquet parts the query views named").inc(kept);
    std::string source = "read_parquet([" + files + "], hive_partitioning=true, union_by_name=true)";
    std::vector<std::string> setup{"CREATE OR REPLACE TEMP VIEW events AS SELECT * FROM " + source + where};
    // The view under the dataset's own id, when the SQL can name it: binding a view
    // binds its read_parquet again, a cost of every query (docs/performance.md).
    if (info.ref.dataset != "events" && mentions(request.sql, info.ref.dataset))
      setup.push_back("CREATE OR REPLACE TEMP VIEW " + sql_ident(info.ref.dataset) + " AS SELECT * FROM events");
    return setup;
  }

  // Runs the request, handing at most max_rows rows (0 = no limit) to `sink`;
  // max_bytes (0 = none) bounds what is fetched.
  // `cancelled` (polled from another thread while DuckDB works) true: the query is
  // interrupted and throws QueryError(kClientGone).
  QueryStats execute(const QueryRequest& request, const SqlRowSink& sink, size_t max_rows, uint64_t max_bytes,
                     std::function<bool()> cancelled = {}) {
    contract.received_events.inc();
    contract.received_bytes.inc(request.sql.size());
    const DatasetInfo* info = nullptr;
    const auto snapshot = catalog.get();  // keeps *info alive for the whole query
    try {
      info = &snapshot->resolve(request.dataset);
    } catch (const std::invalid_argument& e) {
      contract.error("request", "unknown_dataset").inc();
      throw QueryError(404, e.what());
    }
    if (request.from_us && request.to_us && *request.from_us >= *request.to_us) {
      contract.error("request", "bad_range").inc();
      throw QueryError(400, "'from' must be before 'to'");
    }
    SqlGuardOptions guard;
    guard.tables = {"events", info->ref.dataset};
    guard.max_value_bytes = options.max_value_bytes;
    const SqlGuardVerdict verdict = check_untrusted_sql(request.sql, guard);
    if (!verdict.allowed) {
      count_rejected(verdict.reason);
      throw QueryError(400, "rejected SQL: " + verdict.message);
    }
    const std::vector<std::string> setup = views(*info, request);
    auto start = std::chrono::steady_clock::now();
    QueryStats stats;
    const std::string timeout_text =
        "query cancelled after " + std::to_string(options.timeout.count()) + " ms (query.timeout)";
    SqlRowSink counted;
    counted.on_columns = [&](const std::vector<std::string>& columns, const std::vector<std::string>& types) {
      stats.columns = columns;
      stats.types = types;
      if (sink.on_columns) sink.on_columns(columns, types);
    };
    counted.on_row = [&](SqlRow& row) {
      if (max_rows && stats.row_count == max_rows) {  // the one row past the limit: the result was cut
        stats.truncated = true;
        return false;
      }
      ++stats.row_count;
      return !sink.on_row || sink.on_row(row);
    };
    try {
      auto lease = acquire(info->ref);
      SqlEngine::QueryLimits limits;
      // One row more than the limit tells whether the result was cut.
      limits.max_rows = max_rows ? max_rows + 1 : SIZE_MAX;
      limits.timeout = options.timeout;
      limits.max_bytes = max_bytes;
      limits.cancelled = std::move(cancelled);
      lease->engine().query_stream(request.sql, setup, limits, counted);
    } catch (const SqlCancelled& e) {
      throw QueryError(kClientGone, e.what());  // counted by render(), which sees the client go
    } catch (const SqlTimeout&) {
      metrics().counter("bf_query_timeouts_total", "Queries cancelled at query.timeout").inc();
      contract.error("execute", "timeout").inc();
      throw QueryError(400, timeout_text);
    } catch (const SqlResultTooLarge& e) {
      metrics().counter("bf_query_too_large_total", "Queries refused at query.max_response_bytes").inc();
      contract.error("execute", "too_large").inc();
      throw QueryError(413, std::string(e.what()) + " (query.max_response_bytes); select fewer rows or columns");
    } catch (const SqlError& e) {
      metrics().counter("bf_query_failed_total", "Queries that failed in DuckDB").inc();
      contract.error("execute", "failed").inc();
      throw QueryError(400, e.what());
    }
    stats.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    metrics().counter("bf_query_queries_total", "Queries executed").inc();
    contract.sent_events.inc(stats.row_count);
    return stats;
  }

  QueryOutcome run(const QueryRequest& request) {
    QueryOutcome out;
    SqlRowSink sink;
    sink.on_columns = [&](const std::vector<std::string>& columns, const std::vector<std::string>& types) {
      out.result.columns = columns;
      out.result.types = types;
    };
    sink.on_row = [&](SqlRow& row) {
      out.result.rows.push_back(std::move(row));
      return true;
    };
    QueryStats stats = execute(request, sink, options.max_rows, options.max_response_bytes);
    out.truncated = stats.truncated;
    out.elapsed_ms = stats.elapsed_ms;
    return out;
  }

  static Counter& cancelled_counter(const char* reason) {
    return metrics().counter("bf_query_cancelled_total", "Queries stopped before their end, by reason",
                             {{"reason", reason}});
  }

  // Renders the result into `out` while the rows are fetched (docs/api.md): a
  // small result is answered whole, a large one streams (HttpStream commits it at
  // 64 KiB); a failure after the commit is reported in-band. When the client goes
  // away the query is interrupted (while DuckDB works) or stopped (while rows are
  // written) and counted as bf_query_cancelled_total{reason="client_gone"}.
  void render(HttpStream& out, const QueryRequest& request, ResultFormat format) {
    const auto start = std::chrono::steady_clock::now();
    HttpResponse& head = out.response();
    head.status = 200;
    switch (format) {
      case ResultFormat::kJson: head.headers["Content-Type"] = "application/json"; break;
      case ResultFormat::kNdjson: head.headers["Content-Type"] = "application/x-ndjson"; break;
      case ResultFormat::kCsv: head.headers["Content-Type"] = "text/csv; charset=utf-8; header=present"; break;
    }
    head.headers["Trailer"] = "X-Result-Truncated, X-Row-Count, X-Truncated-Reason, X-Elapsed-Ms";
    std::string buf;
    std::optional<RowFormatter> formatter;
    const uint64_t max_bytes = options.max_response_bytes;
    uint64_t rendered = 0;
    size_t rows = 0;
    bool gone = false;
    // Hands what is rendered to the stream; false once the client has gone.
    auto count_rendered = [&](size_t n) {
      rendered += n;
      if (rendered > max_bytes) throw SqlResultTooLarge("result is larger than " + std::to_string(max_bytes) + " bytes");
    };
    auto pass_on = [&] {
      const bool ok = out.write(buf);
      buf.clear();
      if (!ok) gone = true;
      return ok;
    };
    SqlRowSink sink;
    sink.on_columns = [&](const std::vector<std::string>& columns, const std::vector<std::string>& types) {
      formatter.emplace(columns, types);
      if (format == ResultFormat::kJson) {
        boost::json::array cols;
        for (size_t i = 0; i < columns.size(); ++i)
          cols.push_back(boost::json::object{{"name", columns[i]}, {"type", types[i]}});
        buf += "{\"columns\":";
        buf += boost::json::serialize(cols);
        buf += ",\"rows\":[";
      } else if (format == ResultFormat::kCsv) {
        formatter->csv_header(buf);
      }
      count_rendered(buf.size());
      pass_on();
    };
    sink.on_row = [&](SqlRow& row) {
      const size_t before = buf.size();
      switch (format) {
        case ResultFormat::kJson:
          if (rows) buf += ',';
          formatter->json_object(buf, row);
          break;
        case ResultFormat::kNdjson:
          formatter->json_object(buf, row);
          buf += '\n';
          break;
        case ResultFormat::kCsv:
          formatter->csv_row(buf, row);
          break;
      }
      ++rows;
      count_rendered(buf.size() - before);
      return buf.size() < 8192 || pass_on();
    };
    QueryStats stats;
    std::optional<QueryError> failure;
    try {
      stats = execute(request, sink, options.max_rows, max_bytes, [&out] { return out.client_gone(); });
    } catch (const QueryError& e) {
      failure = e;
    }
    contract.sent_bytes.inc(rendered);
    if (gone || (failure && failure->status == kClientGone)) {
      cancelled_counter("client_gone").inc();
      contract.error("render", "client_gone").inc();
      spdlog::debug("query: {}: the client went away after {} rows; query stopped", request.dataset, rows);
      out.abort();
      return;
    }
    const std::string elapsed = std::to_string(static_cast<int64_t>(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() + 0.5));
    if (failure) {
      auto r = HttpResponse::error(failure->status, failure->what());
      if (failure->status == 503) r.headers["Retry-After"] = "1";
      if (out.fail(std::move(r))) return;
      // Rows have gone out already: the end of the body says what happened.
      const std::string reason = failure->status == 413 ? "max_response_bytes"
                                 : std::string_view(failure->what()).find("query.timeout") != std::string_view::npos
                                     ? "timeout"
                                     : "error";
      const std::string meta = "\"row_count\":" + std::to_string(rows) + ",\"truncated\":true,\"truncated_reason\":\"" +
                               reason + "\",\"elapsed_ms\":" + elapsed +
                               ",\"error\":" + boost::json::serialize(boost::json::value(failure->what()));
      if (format == ResultFormat::kJson) out.write(buf + "]," + meta + "}");
      else if (format == ResultFormat::kNdjson) out.write(buf + "{\"_meta\":{" + meta + "}}\n");
      else {
        out.write(buf);
        out.abort();  // csv has no place for it: the transfer ends incomplete
        return;
      }
      out.trailer("X-Result-Truncated", "true");
      out.trailer("X-Row-Count", std::to_string(rows));
      out.trailer("X-Truncated-Reason", reason);
      out.trailer("X-Elapsed-Ms", elapsed);
      return;
    }
    const std::string count = std::to_string(stats.row_count);
    const std::string truncated = stats.truncated ? "true" : "false";
    const std::string reason = stats.truncated ? "\"max_rows\"" : "null";
    switch (format) {
      case ResultFormat::kJson:
        buf += "],\"row_count\":" + count + ",\"truncated\":" + truncated + ",\"truncated_reason\":" + reason +
               ",\"elapsed_ms\":" + elapsed + "}";
        break;
      case ResultFormat::kNdjson:
        buf += "{\"_meta\":{\"row_count\":" + count + ",\"truncated\":" + truncated + ",\"truncated_reason\":" +
               reason + ",\"elapsed_ms\":" + elapsed + "}}\n";
        break;
      case ResultFormat::kCsv:
        break;
    }
    out.write(buf);
    // The same facts in every format (the only place csv has them): headers when
    // the body went out whole, trailers after a streamed one.
    out.trailer("X-Result-Truncated", truncated);
    out.trailer("X-Row-Count", count);
    if (stats.truncated) out.trailer("X-Truncated-Reason", "max_rows");
    out.trailer("X-Elapsed-Ms", elapsed);
  }

  HttpResponse handle(HttpRequest& req) {
    HttpResponse refusal;
    const auto snapshot = catalog.get();
    auto grant = authenticate_query_request(req, *snapshot, refusal);
    if (!grant) return refusal;
    boost::system::error_code ec;
    auto body = boost::json::parse(req.body, ec);
    if (ec || !body.is_object()) return HttpResponse::error(400, "body must be a JSON object {\"dataset\": ..., \"sql\": ...}");
    const auto& obj = body.get_object();
    auto ds = obj.if_contains("dataset");
    auto sql = obj.if_contains("sql");
    if (!ds || !ds->is_string() || !sql || !sql->is_string())
      return HttpResponse::error(400, "'dataset' and 'sql' must be strings");
    ResultFormat format = ResultFormat::kJson;
    if (auto f = obj.if_contains("format"); f && !f->is_null()) {
      std::optional<ResultFormat> parsed;
      if (f->is_string()) parsed = parse_result_format(std::string(f->get_string()));
      if (!parsed) return HttpResponse::error(400, "'format' must be \"json\", \"ndjson\" or \"csv\"");
      format = *parsed;
    }
    QueryRequest request;
    for (const char* name : {"from", "to"}) {
      auto v = obj.if_contains(name);
      if (!v || v->is_null()) continue;
      std::optional<int64_t> us;
      if (v->is_string()) us = parse_rfc3339(std::string(v->get_string()), /*require_offset=*/true);
      if (!us)
        return HttpResponse::error(
            400, std::string("'") + name + "' must be an RFC 3339 time with a zone, e.g. \"2026-01-02T03:00:00Z\"");
      (std::string_view(name) == "from" ? request.from_us : request.to_us) = *us;
    }
    try {
      const DatasetInfo* info = nullptr;
      try {
        info = &snapshot->resolve(std::string(ds->get_string()));
      } catch (const std::invalid_argument& e) {
        return HttpResponse::error(404, e.what());
      }
      if (info->ref.account != grant->account || info->ref.tenant != grant->tenant)
        return HttpResponse::error(403, "this query key is not valid for tenant '" + info->ref.tenant + "'");
      request.dataset = info->ref.str();
      request.sql = std::string(sql->get_string());
      HttpResponse streamed;
      streamed.stream = [this, request, format](HttpStream& out) { render(out, request, format); };
      return streamed;
    } catch (const QueryError& e) {
      auto r = HttpResponse::error(e.status, e.what());
      if (e.status == 503) r.headers["Retry-After"] = "1";
      return r;
    }
  }
};

QueryService::QueryService(QueryOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store)
    : impl_(std::make_unique<Impl>()) {
  validate(options);
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
  impl_->catalog.set(std::move(catalog));
  impl_->store = std::move(store);
  impl_->start_sweeper();
}

QueryService::~QueryService() {
  stop();
  impl_->shutdown_pool();
}

QueryOutcome QueryService::run(const std::string& dataset, const std::string& sql) {
  QueryRequest request;
  request.dataset = dataset;
  request.sql = sql;
  return impl_->run(request);
}

QueryOutcome QueryService::run(const QueryRequest& request) { return impl_->run(request); }

QueryStats QueryService::stream(const QueryRequest& request, const SqlRowSink& sink, size_t max_rows) {
  return impl_->execute(request, sink, max_rows, 0);
}

void QueryService::render(const QueryRequest& request, ResultFormat format, HttpStream& out) {
  impl_->render(out, request, format);
}

std::shared_ptr<const Catalog> QueryService::catalog() const { return impl_->catalog.get(); }
void QueryService::set_catalog(std::shared_ptr<const Catalog> catalog) { impl_->catalog.set(std::move(catalog)); }

namespace {
// The dataset a schema or parts request names; 404 for an unknown one.
DatasetRef resolve_dataset(const Catalog& catalog, const std::string& dataset) {
  try {
    return catalog.resolve(dataset).ref;
  } catch (const std::invalid_argument& e) {
    throw QueryError(404, e.what());
  }
}
}  // namespace

std::string QueryService::schema(const std::string& dataset) {
  const DatasetRef ref = resolve_dataset(*impl_->catalog.get(), dataset);
  try {
    return impl_->store->get(schema_key(ref));
  } catch (const NotFound&) {
    throw QueryError(404, "dataset '" + dataset + "' has no schema yet (nothing was packed)");
  }
}

std::string QueryService::parts(const std::string& dataset) {
  const DatasetRef ref = resolve_dataset(*impl_->catalog.get(), dataset);
  ObjectStore& store = *impl_->store;
  // Sizes from one listing of the dataset's Parquet tree (a page per 1000 objects),
  // not a HEAD per part; a committed part the listing lacks has "bytes": null.
  std::map<std::string, uint64_t> sizes;
  for (auto& o : store.list_all(parquet_prefix(ref))) sizes.emplace(std::move(o.key), o.size);
  boost::json::array parts;
  uint64_t rows = 0, bytes = 0;
  for (const auto& p : committed_parts(store, ref)) {
    boost::json::object part{{"key", p.key}, {"rows", p.rows}, {"quarantine", is_quarantine_part(p.key)}};
    const auto hour = parquet_part_hour_us(p.key);
    part["hour"] = hour ? boost::json::value(format_rfc3339(*hour)) : boost::json::value(nullptr);
    const auto size = sizes.find(p.key);
    part["bytes"] = size != sizes.end() ? boost::json::value(size->second) : boost::json::value(nullptr);
    rows += p.rows;
    if (size != sizes.end()) bytes += size->second;
    parts.push_back(std::move(part));
  }
  boost::json::object out{{"dataset", ref.str()}, {"part_count", parts.size()}, {"rows", rows}, {"bytes", bytes}};
  out["parts"] = std::move(parts);
  std::string body = boost::json::serialize(out);
  if (body.size() > impl_->options.max_response_bytes)
    throw QueryError(413, "the part list of '" + ref.str() + "' is larger than " +
                              std::to_string(impl_->options.max_response_bytes) + " bytes (query.max_response_bytes)");
  return body;
}

size_t QueryService::engine_count() const {
  std::lock_guard lock(impl_->pool_mu);
  return impl_->engines.size();
}

void QueryService::start() {
  Router router;
  const auto& cors = impl_->options.cors_origins;
  router.add("POST", "/api/v1/query", with_cors(cors, [this](HttpRequest& req) { return impl_->handle(req); }));
  router.add("OPTIONS", "/api/v1/query", cors_preflight(cors, "POST"));
  // GET /api/v1/datasets/{dataset}/schema and /parts: a document about a dataset of
  // the key's tenant — the schema registry's, the committed parts (docs/api.md).
  using DatasetDocument = std::string (QueryService::*)(const std::string&);
  for (const auto& [what, document] : {std::pair<std::string, DatasetDocument>{"schema", &QueryService::schema},
                                       std::pair<std::string, DatasetDocument>{"parts", &QueryService::parts}}) {
    router.add("OPTIONS", "/api/v1/datasets/{dataset}/" + what, cors_preflight(cors, "GET"));
    router.add("GET", "/api/v1/datasets/{dataset}/" + what, with_cors(cors, [this, document](HttpRequest& req) {
      HttpResponse refusal;
      auto grant = authenticate_query_request(req, *impl_->catalog.get(), refusal);
      if (!grant) return refusal;
      try {
        return HttpResponse::json(200, (this->*document)(grant->account + "/" + grant->tenant + "/" + req.params.at("dataset")));
      } catch (const QueryError& e) {
        return HttpResponse::error(e.status, e.what());
      }
    }));
  }
  nl::add_ask_routes(router, *this, impl_->store, impl_->options.max_response_bytes, cors);  // docs/ask.md
  mcp::McpOptions mcp_options;
  mcp_options.allowed_origins = impl_->options.mcp_allowed_origins;
  mcp_options.max_response_bytes = impl_->options.max_response_bytes;
  mcp::add_mcp_routes(router, *this, impl_->store, std::move(mcp_options));  // docs/mcp.md
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
