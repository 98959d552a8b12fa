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

struct SqlResult {
  std::vector<std::string> columns;
  std::vector<std::string> types;  // DuckDB type names
  // Each value rendered as text; nullopt for NULL.
  std::vector<std::vector<std::optional<std::string>>> rows;
  // Rows as a JSON array of objects (numbers/bools/null typed, the rest strings).
  std::string to_json() const;
  // The same, appended to `out`; `on_row` (if set) is called after each row
  // (e.g. to check a deadline; it may throw).
  void append_json(std::string& out, const std::function<void()>& on_row = {}) const;
  // Aligned text table for terminals.
  std::string to_table() const;
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
  // Runs a statement; one still running after `timeout` (0 = none) is interrupted
  // and throws SqlTimeout.
  void execute(const std::string& sql, std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // Interrupts every execute() in progress (they throw SqlError); for a bounded shutdown.
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
