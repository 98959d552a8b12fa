#pragma once
// The SQL guard: decides, before DuckDB binds anything, whether an untrusted
// statement may run in a tenant's engine. It parses with DuckDB's own parser and
// walks the whole statement tree (query nodes, table references, expressions,
// subqueries at any depth) and fails closed: a node kind it does not know is
// refused. Rules (docs/sql.md, "What the query service refuses"):
//   - exactly one SELECT statement;
//   - table functions only from a small allowlist of pure generators
//     (range, generate_series, unnest) — nothing that reads files, the catalog
//     or settings (read_*, glob, query, duckdb_*, pragma_*, …);
//   - table names only those the service defines (`events`, the dataset id) or
//     the statement's own CTEs in scope, never qualified by catalog or schema
//     (so no information_schema, pg_catalog, sqlite_master, FROM 'file');
//   - no scalar functions that reveal settings or host details
//     (current_setting, getenv, version, duckdb_*, pg_*, …), none qualified;
//   - value producers (repeat, lpad, rpad, …) whose result would exceed
//     max_value_bytes are refused, and their size argument must be a constant.
// DuckDB headers stay in sql_guard.cpp.
#include <cstdint>
#include <string>
#include <vector>

namespace bf {

struct SqlGuardOptions {
  // Relation names the service defines for the query (case-insensitive).
  std::vector<std::string> tables{"events"};
  // Largest single value a producer function (repeat, lpad, …) may build.
  uint64_t max_value_bytes = 64 * 1024;
};

struct SqlGuardVerdict {
  bool allowed = false;
  // Short label for bf_query_rejected_total{reason}: syntax, not_select,
  // multiple_statements, table_function, table, function, value_size, unsupported.
  std::string reason;
  std::string message;  // names the refused function, table or node
};

SqlGuardVerdict check_untrusted_sql(const std::string& sql, const SqlGuardOptions& options);

}  // namespace bf
