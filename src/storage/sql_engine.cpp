#include "storage/sql_engine.h"

#include <boost/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <exception>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "duckdb.hpp"
#include "duckdb/common/enums/statement_type.hpp"
#include "duckdb/parser/parser.hpp"
#include "common/time.h"
#include "common/worker.h"
#include "storage/duckdb_fs.h"
#include "storage/object_store.h"

namespace bf {

// ---------------------------------------------------------------------------
// quoting

std::string sql_quote(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

std::string sql_ident(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

// ---------------------------------------------------------------------------
// SqlResult rendering

namespace {

enum class Kind { kInteger, kFloat, kDecimal, kBool, kTimestamp, kTimestampTz, kJson, kOther };

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

Kind kind_of(std::string_view type) {
  static constexpr std::string_view ints[] = {"TINYINT",  "SMALLINT",  "INTEGER",  "BIGINT",  "HUGEINT",
                                              "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"};
  for (auto t : ints)
    if (type == t) return Kind::kInteger;
  if (type == "FLOAT" || type == "DOUBLE") return Kind::kFloat;
  if (starts_with(type, "DECIMAL")) return Kind::kDecimal;
  if (type == "BOOLEAN") return Kind::kBool;
  if (type == "TIMESTAMP WITH TIME ZONE") return Kind::kTimestampTz;
  if (starts_with(type, "TIMESTAMP")) return Kind::kTimestamp;  // TIMESTAMP, _S, _MS, _NS
  if (type == "JSON") return Kind::kJson;
  return Kind::kOther;
}

// JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view s) {
  size_t i = 0;
  auto digit = [&](size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '9'; };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digit(i)) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == s.size();
}

// "2026-01-02 03:04:05.5" -> "2026-01-02T03:04:05.5Z" (timestamps are UTC);
// with a zone, DuckDB's "+00" / "+05:30" suffix becomes "Z" / "+05:30".
std::string iso_timestamp(const std::string& text, bool with_zone) {
  const size_t space = text.find(' ');
  if (space == std::string::npos || text.find("(BC)") != std::string::npos) return text;  // infinity etc.
  std::string out = text;
  out[space] = 'T';
  if (!with_zone) return out + 'Z';
  const size_t sign = out.find_last_of("+-");
  if (sign == std::string::npos || sign < space) return out;
  std::string zone = out.substr(sign);
  out.resize(sign);
  if (zone == "+00" || zone == "-00" || zone == "+00:00") return out + 'Z';
  if (zone.size() == 3) zone += ":00";
  return out + zone;
}

void append_json_string(std::string& out, std::string_view s) {
  out += boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

size_t display_width(std::string_view s) {
  size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;  // count UTF-8 lead bytes
  return w;
}

std::string display_text(const std::optional<std::string>& v) {
  if (!v) return "NULL";
  std::string out;
  out.reserve(v->size());
  for (char c : *v) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  return out;
}

// One value as JSON, by the column's kind.
void append_json_value(std::string& out, Kind kind, const std::string& v) {
  switch (kind) {
    case Kind::kInteger:
    case Kind::kFloat:
    case Kind::kDecimal:
      if (is_json_number(v)) {
        out += v;  // verbatim: HUGEINT and DECIMAL(38,x) keep every digit
      } else {
        append_json_string(out, v);  // inf, -inf, nan
      }
      break;
    case Kind::kBool:
      out += (v == "true" || v == "1") ? "true" : "false";
      break;
    case Kind::kTimestamp:
      append_json_string(out, iso_timestamp(v, false));
      break;
    case Kind::kTimestampTz:
      append_json_string(out, iso_timestamp(v, true));
      break;
    case Kind::kJson: {
      boost::system::error_code ec;
      auto parsed = boost::json::parse(v, ec);
      if (ec) {
        append_json_string(out, v);
      } else {
        out += boost::json::serialize(parsed);
      }
      break;
    }
    case Kind::kOther:
      append_json_string(out, v);
      break;
  }
}

void append_csv_field(std::string& out, std::string_view v) {
  if (v.empty() || v.find_first_of(",\"\r\n") != std::string_view::npos) {
    out += '"';
    for (char c : v) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
    return;
  }
  out += v;
}

}  // namespace

RowFormatter::RowFormatter(std::vector<std::string> columns, std::vector<std::string> types)
    : columns_(std::move(columns)), types_(std::move(types)) {
  for (size_t c = 0; c < columns_.size(); ++c) {
    kinds_.push_back(static_cast<int>(kind_of(c < types_.size() ? types_[c] : std::string())));
    std::string k;
    append_json_string(k, columns_[c]);
    keys_.push_back(std::move(k));
  }
}

void RowFormatter::json_object(std::string& out, const SqlRow& row) const {
  out += '{';
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (c) out += ',';
    out += keys_[c];
    out += ':';
    const std::optional<std::string>* cell = c < row.size() ? &row[c] : nullptr;
    if (!cell || !*cell) {
      out += "null";
      continue;
    }
    append_json_value(out, static_cast<Kind>(kinds_[c]), **cell);
  }
  out += '}';
}

void RowFormatter::csv_header(std::string& out) const {
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (c) out += ',';
    append_csv_field(out, columns_[c]);
  }
  out += "\r\n";
}

void RowFormatter::csv_row(std::string& out, const SqlRow& row) const {
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (c) out += ',';
    const std::optional<std::string>* cell = c < row.size() ? &row[c] : nullptr;
    if (!cell || !*cell) continue;  // NULL: empty, unquoted
    const Kind kind = static_cast<Kind>(kinds_[c]);
    if (kind == Kind::kTimestamp || kind == Kind::kTimestampTz) {
      append_csv_field(out, iso_timestamp(**cell, kind == Kind::kTimestampTz));
    } else if (kind == Kind::kBool) {
      out += (**cell == "true" || **cell == "1") ? "true" : "false";
    } else {
      append_csv_field(out, **cell);
    }
  }
  out += "\r\n";
}

std::string SqlResult::to_json() const {
  std::string out;
  append_json(out);
  return out;
}

void SqlResult::append_json(std::string& out, const std::function<void()>& on_row) const {
  RowFormatter format(columns, types);
  out += '[';
  for (size_t r = 0; r < rows.size(); ++r) {
    if (on_row) on_row();
    if (r) out += ',';
    format.json_object(out, rows[r]);
  }
  out += ']';
}

TableWriter::TableWriter(std::vector<std::string> columns, std::vector<std::string> types)
    : columns_(std::move(columns)) {
  for (size_t c = 0; c < columns_.size(); ++c) {
    width_.push_back(display_width(columns_[c]));
    const Kind k = kind_of(c < types.size() ? types[c] : std::string());
    right_.push_back(k == Kind::kInteger || k == Kind::kFloat || k == Kind::kDecimal);
  }
}

namespace {
void emit_table_line(std::string& out, const std::vector<std::string>& vals, const std::vector<size_t>& width,
                     const std::vector<bool>& right, bool header) {
  for (size_t c = 0; c < vals.size(); ++c) {
    out += c ? " | " : " ";
    const size_t fill = width[c] - std::min(width[c], display_width(vals[c]));
    const bool right_align = !header && right[c];
    if (right_align) out.append(fill, ' ');
    out += vals[c];
    if (!right_align) out.append(fill, ' ');
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  out += '\n';
}
}  // namespace

std::string TableWriter::header() {
  std::string out;
  header_done_ = true;
  if (columns_.empty()) return out;
  emit_table_line(out, columns_, width_, right_, true);
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (c) out += '+';
    out.append(width_[c] + 2, '-');
  }
  out += '\n';
  return out;
}

std::string TableWriter::block(const std::vector<SqlRow>& rows) {
  const size_t n = columns_.size();
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size());
  for (const auto& row : rows) {
    std::vector<std::string> line(n);
    for (size_t c = 0; c < n; ++c) {
      line[c] = c < row.size() ? display_text(row[c]) : "NULL";
      width_[c] = std::max(width_[c], display_width(line[c]));
    }
    cells.push_back(std::move(line));
  }
  std::string out = header_done_ ? std::string() : header();
  if (n > 0)
    for (const auto& line : cells) emit_table_line(out, line, width_, right_, false);
  return out;
}

std::string TableWriter::footer(size_t rows) {
  std::string out = header_done_ ? std::string() : header();
  out += "(" + std::to_string(rows) + (rows == 1 ? " row)\n" : " rows)\n");
  return out;
}

std::string SqlResult::to_table() const {
  TableWriter writer(columns, types);
  std::string out = writer.block(rows);
  return out + writer.footer(rows.size());
}

// ---------------------------------------------------------------------------
// SqlEngine

namespace {

std::string message_of(const std::exception& e) { return duckdb::ErrorData(e).Message(); }

}  // namespace

// Wipes `dir` and creates it empty, readable by this user only.
void fresh_private_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) throw SqlError("cannot clear temp directory '" + dir + "': " + ec.message());
  std::filesystem::create_directories(dir, ec);
  if (ec) throw SqlError("cannot create temp directory '" + dir + "': " + ec.message());
  if (::chmod(dir.c_str(), 0700) != 0) throw SqlError("cannot chmod 0700 temp directory '" + dir + "'");
}

namespace {
// Registers a connection with the engine while it runs, so interrupt() reaches it.
struct Running {
  std::mutex& mu;
  std::set<duckdb::Connection*>& set;
  duckdb::Connection* con;
  Running(std::mutex& m, std::set<duckdb::Connection*>& s, duckdb::Connection* c) : mu(m), set(s), con(c) {
    std::lock_guard lock(mu);
    set.insert(con);
  }
  ~Running() {
    std::lock_guard lock(mu);
    set.erase(con);
  }
};
}  // namespace

struct SqlEngine::Impl {
  std::shared_ptr<ObjectStore> store;
  Options options;
  std::unique_ptr<duckdb::DuckDB> db;
  std::string temp_dir;  // absolute; empty = DuckDB's default
  // Connections of execute() calls in progress, so interrupt() can reach them.
  std::mutex running_mu;
  std::set<duckdb::Connection*> running;

  ~Impl() {
    db.reset();  // closes DuckDB's temp files first
    if (!temp_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(temp_dir, ec);
    }
  }

  void run(duckdb::Connection& con, const std::string& sql) {
    auto res = con.Query(sql);
    if (res->HasError()) throw SqlError(res->GetError());
  }
};

SqlEngine::SqlEngine(std::shared_ptr<ObjectStore> store, Options options) : impl_(std::make_unique<Impl>()) {
  impl_->store = std::move(store);
  impl_->options = std::move(options);
  const Options& opt = impl_->options;
  try {
    duckdb::DBConfig config;
    if (!opt.temp_directory.empty()) {
      impl_->temp_dir = std::filesystem::absolute(opt.temp_directory).lexically_normal().string();
      fresh_private_dir(impl_->temp_dir);
      config.options.temporary_directory = impl_->temp_dir;
    }
    if (opt.threads > 0) config.options.maximum_threads = static_cast<duckdb::idx_t>(opt.threads);
    if (opt.worker_thread_name.empty()) {
      impl_->db = std::make_unique<duckdb::DuckDB>(nullptr, &config);
    } else {
      // DuckDB starts its workers in the constructor; a thread inherits its creator's name.
      std::exception_ptr failed;
      std::thread creator([&] {
        set_thread_name(opt.worker_thread_name);
        try {
          impl_->db = std::make_unique<duckdb::DuckDB>(nullptr, &config);
        } catch (...) {
          failed = std::current_exception();
        }
      });
      creator.join();
      if (failed) std::rethrow_exception(failed);
    }
    ObjectFsOptions fs_options;
    fs_options.read_only = opt.sandboxed;  // untrusted SQL must not rewrite the lake
    register_object_fs(*impl_->db->instance, impl_->store, fs_options);

    duckdb::Connection con(*impl_->db);
    // Internal time is UTC (DESIGN.md §7); only meaningful when ICU is present.
    if (con.Query("SET TimeZone='UTC'")->HasError()) {
      // no ICU: TIMESTAMPTZ renders as UTC anyway
    }
    if (opt.threads > 0) impl_->run(con, "SET threads=" + std::to_string(opt.threads));
    if (opt.event_time_functions) {
      con.CreateVectorizedFunction(
          "bf_rfc3339", {duckdb::LogicalType::VARCHAR}, duckdb::LogicalType::TIMESTAMP,
          [](duckdb::DataChunk& args, duckdb::ExpressionState&, duckdb::Vector& result) {
            duckdb::UnaryExecutor::ExecuteWithNulls<duckdb::string_t, duckdb::timestamp_t>(
                args.data[0], result, args.size(),
                [](duckdb::string_t s, duckdb::ValidityMask& mask, duckdb::idx_t idx) {
                  auto us = parse_rfc3339(std::string_view(s.GetData(), s.GetSize()), /*require_offset=*/false);
                  if (!us) {
                    mask.SetInvalid(idx);
                    return duckdb::timestamp_t(0);
                  }
                  return duckdb::timestamp_t(*us);
                });
          });
    }
    if (!opt.memory_limit.empty()) impl_->run(con, "SET memory_limit=" + sql_quote(opt.memory_limit));
    if (opt.allocator_background_threads) impl_->run(con, "SET allocator_background_threads=true");
    if (opt.parquet_metadata_cache) impl_->run(con, "SET parquet_metadata_cache=true");
    if (opt.sandboxed) {
      // Order matters: allowed_directories and the extension switches cannot be
      // changed once external access is off, and nothing once the config is locked.
      impl_->run(con, "SET autoinstall_known_extensions=false");
      impl_->run(con, "SET autoload_known_extensions=false");
      std::string allowed;
      for (const auto& prefix : opt.allowed_prefixes) {
        if (prefix.rfind("bf://", 0) != 0) throw SqlError("allowed prefix '" + prefix + "' is not a bf:// path");
        allowed += (allowed.empty() ? "" : ", ") + sql_quote(prefix);
      }
      impl_->run(con, "SET allowed_directories=[" + allowed + "]");
      impl_->run(con, "SET enable_external_access=false");
      impl_->run(con, "SET lock_configuration=true");
    }
  } catch (const SqlError&) {
    throw;
  } catch (const std::exception& e) {
    throw SqlError("starting DuckDB failed: " + message_of(e));
  }
}

SqlEngine::~SqlEngine() = default;

SqlResult SqlEngine::query(const std::string& sql) { return query(sql, {}, SIZE_MAX); }

namespace {
// Interrupts a connection's running query when the deadline passes first, or
// when `cancelled` (polled every kPoll) says so.
class Watchdog {
 public:
  static constexpr std::chrono::milliseconds kPoll{20};
  Watchdog(duckdb::Connection& con, std::chrono::milliseconds timeout, std::function<bool()> cancelled = {}) {
    if (timeout.count() <= 0 && !cancelled) return;
    const auto deadline = timeout.count() > 0 ? std::chrono::steady_clock::now() + timeout
                                              : std::chrono::steady_clock::time_point::max();
    thread_ = std::thread([this, &con, deadline, cancelled = std::move(cancelled)] {
      std::unique_lock lock(mu_);
      for (;;) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
          fired_ = true;
          break;
        }
        const auto wake = cancelled ? std::min(deadline, now + kPoll) : deadline;
        if (cv_.wait_until(lock, wake, [this] { return done_; })) return;
        if (cancelled) {
          lock.unlock();
          const bool stop = cancelled();
          lock.lock();
          if (done_) return;
          if (stop) {
            cancelled_ = true;
            break;
          }
        }
      }
      con.Interrupt();
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool fired() {
    std::lock_guard lock(mu_);
    return fired_;
  }
  bool cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, fired_ = false, cancelled_ = false;
  std::thread thread_;
};
}  // namespace

SqlResult SqlEngine::query(const std::string& sql, const std::vector<std::string>& setup, size_t max_rows,
                           std::chrono::milliseconds timeout) {
  QueryLimits limits;
  limits.max_rows = max_rows;
  limits.timeout = timeout;
  return query(sql, setup, limits);
}

SqlResult SqlEngine::query(const std::string& sql, const std::vector<std::string>& setup, const QueryLimits& limits) {
  SqlResult out;
  SqlRowSink sink;
  sink.on_columns = [&](const std::vector<std::string>& columns, const std::vector<std::string>& types) {
    out.columns = columns;
    out.types = types;
  };
  sink.on_row = [&](SqlRow& row) {
    out.rows.push_back(std::move(row));
    return true;
  };
  query_stream(sql, setup, limits, sink);
  return out;
}

namespace {
// con.SendQuery(sql), except for how the calling thread waits. DuckDB's own loop
// (PendingQueryResult::ExecuteInternal) polls the executor without pause while its
// workers hold every task — e.g. during a COPY's single-threaded Parquet finalize —
// which was 10% of `bytefreezer run`'s CPU under load (docs/performance.md). Here the
// caller runs tasks while there are any and otherwise sleeps briefly; the workers
// carry on meanwhile.
duckdb::unique_ptr<duckdb::QueryResult> execute_without_spinning(duckdb::Connection& con, const std::string& sql) {
  duckdb::vector<duckdb::unique_ptr<duckdb::SQLStatement>> statements;
  try {
    statements = con.ExtractStatements(sql);
  } catch (...) {
    statements.clear();  // SendQuery reports the parse error as DuckDB words it
  }
  if (statements.size() != 1) return con.SendQuery(sql);  // several statements: DuckDB's loop
  auto pending = con.PendingQuery(std::move(statements[0]), /*allow_stream_result=*/true);
  if (pending->HasError()) return duckdb::make_uniq<duckdb::MaterializedQueryResult>(pending->GetErrorObject());
  duckdb::PendingExecutionResult state;
  while (!duckdb::PendingQueryResult::IsResultReady(state = pending->ExecuteTask())) {
    if (state == duckdb::PendingExecutionResult::NO_TASKS_AVAILABLE)
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    else if (state == duckdb::PendingExecutionResult::BLOCKED)
      pending->WaitForTask();
  }
  // An error ends the loop too; Execute() would then replace DuckDB's message with
  // "Attempting to execute an unsuccessful or closed pending query result".
  if (state == duckdb::PendingExecutionResult::EXECUTION_ERROR || pending->HasError())
    return duckdb::make_uniq<duckdb::MaterializedQueryResult>(pending->GetErrorObject());
  return pending->Execute();
}
}  // namespace

size_t SqlEngine::query_stream(const std::string& sql, const std::vector<std::string>& setup,
                               const QueryLimits& limits, const SqlRowSink& sink) {
  size_t delivered = 0;
  const auto timeout = limits.timeout;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const uint64_t max_bytes = limits.max_bytes ? limits.max_bytes : UINT64_MAX;
  auto timed_out = [&] {
    return SqlTimeout("query cancelled after " + std::to_string(timeout.count()) + " ms");
  };
  auto too_large = [&] {
    return SqlResultTooLarge("result is larger than " + std::to_string(max_bytes) + " bytes");
  };
  auto cancelled = [&] { return SqlCancelled("query cancelled: the client went away"); };
  duckdb::Connection con(*impl_->db);
  Watchdog watchdog(con, timeout, limits.cancelled);
  Running running(impl_->running_mu, impl_->running, &con);
  try {
    for (const auto& statement : setup) impl_->run(con, statement);
    // Streamed, so a row limit stops the scan instead of materialising everything.
    auto res = execute_without_spinning(con, sql);
    if (res->HasError()) throw SqlError(res->GetError());
    std::vector<std::string> columns(res->names.begin(), res->names.end()), types;
    for (const auto& t : res->types) types.push_back(t.ToString());
    if (sink.on_columns) sink.on_columns(columns, types);
    const size_t ncols = columns.size();
    // Text columns are read straight from the vector, so a value's length is
    // known (and checked) before anything is copied.
    std::vector<bool> text(ncols);
    uint64_t row_overhead = 2;
    for (size_t c = 0; c < ncols; ++c) {
      text[c] = res->types[c].id() == duckdb::LogicalTypeId::VARCHAR;
      row_overhead += columns[c].size() + 4;  // "name": , quotes
    }
    uint64_t bytes = 0;
    auto charge = [&](uint64_t n) {
      if (n > max_bytes - bytes) throw too_large();
      bytes += n;
    };
    std::vector<duckdb::UnifiedVectorFormat> formats(ncols);
    bool stop = false;
    while (!stop && delivered < limits.max_rows) {
      if (timeout.count() > 0 && std::chrono::steady_clock::now() >= deadline) throw timed_out();
      if (watchdog.cancelled()) throw cancelled();
      auto chunk = res->Fetch();
      if (!chunk || chunk->size() == 0) break;
      const duckdb::idx_t n = chunk->size();
      for (size_t c = 0; c < ncols; ++c)
        if (text[c]) chunk->data[c].ToUnifiedFormat(n, formats[c]);
      for (duckdb::idx_t r = 0; r < n && delivered < limits.max_rows; ++r) {
        if (timeout.count() > 0 && (r & 63) == 0 && std::chrono::steady_clock::now() >= deadline) throw timed_out();
        charge(row_overhead);
        SqlRow row(ncols);
        for (size_t c = 0; c < ncols; ++c) {
          if (text[c]) {
            const auto& f = formats[c];
            const auto idx = f.sel->get_index(r);
            if (!f.validity.RowIsValid(idx)) continue;
            const auto& str = duckdb::UnifiedVectorFormat::GetData<duckdb::string_t>(f)[idx];
            charge(str.GetSize());
            row[c].emplace(str.GetData(), str.GetSize());
            continue;
          }
          duckdb::Value v = chunk->GetValue(c, r);
          if (v.IsNull()) continue;
          row[c] = v.ToString();
          charge(row[c]->size());
        }
        ++delivered;
        if (sink.on_row && !sink.on_row(row)) {
          stop = true;
          break;
        }
      }
    }
    if (!stop && res->HasError()) throw SqlError(res->GetError());
  } catch (const SqlResultTooLarge&) {
    throw;
  } catch (const SqlTimeout&) {
    throw;
  } catch (const SqlCancelled&) {
    throw;
  } catch (const std::exception& e) {
    if (watchdog.fired()) throw timed_out();
    if (watchdog.cancelled()) throw cancelled();
    if (const auto* sql_error = dynamic_cast<const SqlError*>(&e)) throw *sql_error;
    throw SqlError(message_of(e));
  }
  return delivered;
}

void SqlEngine::execute(const std::string& sql, std::chrono::milliseconds timeout) {
  std::optional<duckdb::Connection> con;
  try {
    con.emplace(*impl_->db);
  } catch (const std::exception& e) {
    throw SqlError(message_of(e));
  }
  Running running(impl_->running_mu, impl_->running, &*con);
  Watchdog watchdog(*con, timeout);
  try {
    impl_->run(*con, sql);
  } catch (const std::exception& e) {
    if (watchdog.fired()) throw SqlTimeout("statement cancelled after " + std::to_string(timeout.count()) + " ms");
    if (const auto* sql_error = dynamic_cast<const SqlError*>(&e)) throw *sql_error;
    throw SqlError(message_of(e));
  }
}

void SqlEngine::interrupt() {
  std::lock_guard lock(impl_->running_mu);
  for (auto* con : impl_->running) con->Interrupt();
}

bool SqlEngine::is_single_select(const std::string& sql, std::string* why) {
  auto fail = [&](std::string msg) {
    if (why) *why = std::move(msg);
    return false;
  };
  duckdb::Parser parser;
  try {
    parser.ParseQuery(sql);
  } catch (const std::exception& e) {
    return fail(message_of(e));
  }
  if (parser.statements.empty()) return fail("empty query: no statement");
  if (parser.statements.size() > 1) {
    return fail("only one statement allowed, got " + std::to_string(parser.statements.size()));
  }
  const auto type = parser.statements[0]->type;
  if (type != duckdb::StatementType::SELECT_STATEMENT) {
    return fail("only SELECT statements are allowed, got " + duckdb::StatementTypeToString(type));
  }
  if (why) why->clear();
  return true;
}

}  // namespace bf
