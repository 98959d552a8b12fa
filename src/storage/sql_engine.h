#pragma once
// A small interface over DuckDB so that duckdb.hpp stays inside storage/*.cpp.
// The engine registers a DuckDB FileSystem backed by an ObjectStore under the
// "bf://" scheme: read_parquet('bf://parquet/account=a/**/*.parquet') and
// COPY ... TO 'bf://...' read and write the store (ranged GETs, list for globs).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bf {

class ObjectStore;

struct SqlError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SqlTimeout : SqlError {
  using SqlError::SqlError;
};

// The result grew past QueryLimits::max_bytes while it was fetched.
struct SqlResultTooLarge : SqlError {
  using SqlError::SqlError;
};

// QueryLimits::cancelled said so (e.g. the client went away): the query was interrupted.
struct SqlCancelled : SqlError {
  using SqlError::SqlError;
};

// One result row: each value rendered as text; nullopt for NULL.
using SqlRow = std::vector<std::optional<std::string>>;

struct SqlResult {
  std::vector<std::string> columns;
  std::vector<std::string> types;  // DuckDB type names
  std::vector<SqlRow> rows;
  // Rows as a JSON array of objects (numbers/bools/null typed, the rest strings).
  std::string to_json() const;
  // The same, appended to `out`; `on_row` (if set) is called after each row
  // (e.g. to check a deadline; it may throw).
  void append_json(std::string& out, const std::function<void()>& on_row = {}) const;
  // Aligned text table for terminals.
  std::string to_table() const;
};

// Renders single rows of a result, for output written while rows are fetched.
class RowFormatter {
 public:
  RowFormatter(std::vector<std::string> columns, std::vector<std::string> types);
  // {"col": value, ...}: the same object SqlResult::to_json renders for the row.
  void json_object(std::string& out, const SqlRow& row) const;
  // RFC 4180: fields quoted when they hold , " CR or LF (quotes doubled), CRLF line
  // ends; NULL is an empty field, an empty string is "". Timestamps as in JSON.
  void csv_header(std::string& out) const;
  void csv_row(std::string& out, const SqlRow& row) const;
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  std::vector<std::string> columns_, types_;
  std::vector<int> kinds_;
  std::vector<std::string> keys_;  // column names as JSON strings
};

// An aligned text table written block by block (for results too large to hold):
// the first block sets the column widths and prints the header; a later block
// widens a column when it must (widths never shrink), so a long result stays
// readable without being kept in memory. One block gives exactly SqlResult::to_table.
class TableWriter {
 public:
  TableWriter(std::vector<std::string> columns, std::vector<std::string> types);
  std::string block(const std::vector<SqlRow>& rows);
  // "(N rows)"; also prints the header if no block was written.
  std::string footer(size_t rows);

 private:
  std::vector<std::string> columns_;
  std::vector<size_t> width_;
  std::vector<bool> right_;
  bool header_done_ = false;
  std::string header();
};

// Receives a streamed result: on_columns once, before any row, then on_row per
// row as DuckDB produces it (the row may be moved from). on_row returning false
// stops the fetch without an error. Either may throw to abort the query.
struct SqlRowSink {
  std::function<void(const std::vector<std::string>& columns, const std::vector<std::string>& types)> on_columns;
  std::function<bool(SqlRow& row)> on_row;
};

class SqlEngine {
 public:
  struct Options {
    std::string memory_limit = "";   // e.g. "1GB"; empty = DuckDB default
    int threads = 0;                 // 0 = DuckDB default
    // Lock the database down for untrusted SQL: no local files, no extensions,
    // only bf:// paths readable; configuration locked afterwards.
    bool sandboxed = false;
    // Sandboxed only: the bf:// prefixes untrusted SQL may read, e.g.
    // "bf://parquet/account=a/tenant=t/" to confine it to one tenant.
    std::vector<std::string> allowed_prefixes{"bf://"};
    // DuckDB's spill directory. Empty: DuckDB's default (".tmp" in the working
    // directory, shared by every engine of the process). Otherwise the engine
    // owns it: it is wiped and created mode 0700 when the engine starts, and
    // removed when the engine is destroyed. A sandboxed engine may read its own
    // temp directory (DuckDB allows it), so give each tenant its own.
    std::string temp_directory;
    // DuckDB's parquet_metadata_cache: Parquet footers are kept between queries
    // (validated by the file's mtime and etag), so a view over many parts is not
    // re-read for every statement that binds it.
    bool parquet_metadata_cache = false;
    // Registers bf_rfc3339(VARCHAR) -> TIMESTAMP: the RFC 3339 text as UTC, exactly as
    // parse_rfc3339 (common/time.h) reads it (offset optional, applied; 't'/' ' allowed;
    // leap second clamped), NULL for anything else. DuckDB's own cast ignores offsets.
    bool event_time_functions = false;
    // Name of DuckDB's worker threads (at most 15 characters), so `top -H` and
    // profilers tell them apart from other engines' (e.g. "bf-packer-duck").
    // Empty: they take the name of the thread that creates the engine.
    std::string worker_thread_name;
    // DuckDB's allocator_background_threads: its allocator (jemalloc, one per process)
    // returns freed pages to the OS from a background thread as they age, instead of
    // keeping them resident until the next allocation reuses them.
    bool allocator_background_threads = false;
  };
  struct QueryLimits {
    size_t max_rows = SIZE_MAX;
    // Covers execution and fetching: checked between rows as well as by
    // interrupting DuckDB. 0 = none.
    std::chrono::milliseconds timeout{0};
    // Bytes of text fetched (values plus column names, roughly the size of the
    // rendered rows); a string value's length is checked before it is copied.
    // More throws SqlResultTooLarge. 0 = none.
    uint64_t max_bytes = 0;
    // Polled about every 20 ms while the query runs (and between fetched chunks);
    // true interrupts DuckDB and the query throws SqlCancelled. Called from another
    // thread than the query's. Empty = never.
    std::function<bool()> cancelled;
  };
  SqlEngine(std::shared_ptr<ObjectStore> store, Options options);
  ~SqlEngine();
  SqlEngine(const SqlEngine&) = delete;
  SqlEngine& operator=(const SqlEngine&) = delete;

  // Throws SqlError with DuckDB's message.
  SqlResult query(const std::string& sql);
  // Runs `setup` (e.g. CREATE TEMP VIEW) then `sql` on one connection, keeping at
  // most max_rows rows of the result. A query still running after `timeout`
  // (0 = none) is interrupted and throws SqlTimeout.
  SqlResult query(const std::string& sql, const std::vector<std::string>& setup, size_t max_rows,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  SqlResult query(const std::string& sql, const std::vector<std::string>& setup, const QueryLimits& limits);
  // The same, but nothing is kept: rows go to `sink` chunk by chunk as they are
  // fetched. The limits apply as above (max_bytes counts everything fetched).
  // Returns the number of rows handed to the sink.
  size_t query_stream(const std::string& sql, const std::vector<std::string>& setup, const QueryLimits& limits,
                      const SqlRowSink& sink);
  // Runs a statement; one still running after `timeout` (0 = none) is interrupted
  // and throws SqlTimeout.
  void execute(const std::string& sql, std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // Interrupts every execute() and query in progress (they throw SqlError); for a bounded shutdown.
  void interrupt();
  // True if `sql` is exactly one read-only statement (SELECT / WITH ... SELECT).
  // On false, `why` says what was rejected.
  static bool is_single_select(const std::string& sql, std::string* why);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// SQL string literal / identifier quoting.
std::string sql_quote(const std::string& s);
std::string sql_ident(const std::string& s);

}  // namespace bf
