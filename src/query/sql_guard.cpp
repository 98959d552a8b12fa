#include "query/sql_guard.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "duckdb.hpp"
#include "duckdb/common/enums/statement_type.hpp"
#include "duckdb/parser/expression/list.hpp"
#include "duckdb/parser/parser.hpp"
#include "duckdb/parser/query_node/list.hpp"
#include "duckdb/parser/result_modifier.hpp"
#include "duckdb/parser/statement/select_statement.hpp"
#include "duckdb/parser/tableref/list.hpp"

namespace bf {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Table functions untrusted SQL may call: pure generators that touch no file,
// catalog or setting.
const std::set<std::string, std::less<>> kAllowedTableFunctions = {"range", "generate_series", "unnest"};

// Scalar (and aggregate/window) functions that reveal settings, the catalog,
// the host or the engine, or run SQL the guard has not seen.
const std::set<std::string, std::less<>> kDeniedFunctions = {
    "current_setting", "getenv", "getvariable", "current_database", "current_catalog", "current_schema",
    "current_schemas", "current_user", "session_user", "user", "current_role", "current_query",
    "version", "platform", "in_search_path", "json_serialize_sql", "json_deserialize_sql",
    "json_execute_serialized_sql", "json_serialize_plan", "write_log", "nextval", "currval",
    "txid_current", "col_description", "obj_description", "shobj_description", "format_pg_type",
    "format_type", "query", "query_table", "glob", "read_blob", "read_text", "sniff_csv",
    "which_secret", "make_secret", "current_connection_id", "current_transaction_id",
    "current_query_id", "checkpoint", "force_checkpoint", "enable_logging", "disable_logging",
    "truncate_duckdb_logs", "set_variable", "error_log", "user_agent", "get_block_size", "inet_client_addr",
    "inet_client_port", "inet_server_addr", "inet_server_port", "add_parquet_key", "extension_versions",
    "database_size", "database_list", "storage_info", "table_info", "metadata_info", "show", "show_databases",
    "show_tables", "show_tables_expanded", "functions", "collations", "copy_database", "import_database",
    "arrow_scan", "arrow_scan_dumb", "seq_scan", "test_all_types", "test_vector_types", "vector_type"};
// Prefixes of function families that are catalog/settings/file access.
constexpr std::string_view kDeniedPrefixes[] = {"duckdb_", "pragma_", "pg_", "read_", "parquet_", "iceberg_",
                                                "delta_", "sqlite_", "postgres_", "mysql_", "icu_calendar",
                                                "enable_", "disable_", "verify_"};
// current_* is denied except these time functions.
const std::set<std::string, std::less<>> kAllowedCurrent = {"current_date", "current_time", "current_timestamp",
                                                           "current_localtime", "current_localtimestamp"};

std::optional<std::string> denied_function(const std::string& name) {
  if (kDeniedFunctions.count(name)) return "it reveals settings, the catalog or the host";
  for (auto p : kDeniedPrefixes)
    if (starts_with(name, p)) return "functions named " + std::string(p) + "* are not available";
  if (starts_with(name, "current_") && !kAllowedCurrent.count(name)) return "it reveals session or catalog details";
  if (starts_with(name, "has_") && ends_with(name, "_privilege")) return "it reveals catalog details";
  return std::nullopt;
}

struct Refusal {
  std::string reason;
  std::string message;
};

[[noreturn]] void refuse(std::string reason, std::string message) { throw Refusal{std::move(reason), std::move(message)}; }

class Walker {
 public:
  explicit Walker(const SqlGuardOptions& options) : options_(options) {
    for (const auto& t : options.tables) tables_.insert(lower(t));
  }

  void statement(duckdb::SelectStatement& s) {
    if (!s.node) refuse("unsupported", "empty SELECT statement");
    node(*s.node);
  }

 private:
  const SqlGuardOptions& options_;
  std::set<std::string> tables_;
  std::vector<std::string> ctes_;  // CTE names in scope, innermost last

  bool table_visible(const std::string& name) const {
    const std::string n = lower(name);
    if (tables_.count(n)) return true;
    return std::find(ctes_.begin(), ctes_.end(), n) != ctes_.end();
  }

  std::string visible_tables() const {
    std::string out;
    for (const auto& t : tables_) out += (out.empty() ? "" : ", ") + t;
    return out;
  }

  // ---- query nodes -------------------------------------------------------

  void node(duckdb::QueryNode& n) {
    const size_t scope = ctes_.size();
    // A CTE sees the CTEs defined before it (and, if recursive, itself through
    // its RecursiveCTENode); the body sees all of them.
    for (auto& entry : n.cte_map.map) {
      auto& info = entry.second;
      if (!info) refuse("unsupported", "empty CTE '" + entry.first + "'");
      for (auto& k : info->key_targets) expr(k);
      if (!info->query) refuse("unsupported", "CTE '" + entry.first + "' has no query");
      statement(*info->query);
      ctes_.push_back(lower(entry.first));
    }
    switch (n.type) {
      case duckdb::QueryNodeType::SELECT_NODE: {
        auto& s = n.Cast<duckdb::SelectNode>();
        if (s.from_table) ref(*s.from_table);
        for (auto& e : s.select_list) expr(e);
        expr(s.where_clause);
        for (auto& e : s.groups.group_expressions) expr(e);
        expr(s.having);
        expr(s.qualify);
        break;
      }
      case duckdb::QueryNodeType::SET_OPERATION_NODE: {
        auto& s = n.Cast<duckdb::SetOperationNode>();
        if (!s.left || !s.right) refuse("unsupported", "incomplete set operation");
        node(*s.left);
        node(*s.right);
        break;
      }
      case duckdb::QueryNodeType::RECURSIVE_CTE_NODE: {
        auto& r = n.Cast<duckdb::RecursiveCTENode>();
        ctes_.push_back(lower(r.ctename));
        if (!r.left || !r.right) refuse("unsupported", "incomplete recursive CTE");
        node(*r.left);
        node(*r.right);
        for (auto& k : r.key_targets) expr(k);
        break;
      }
      case duckdb::QueryNodeType::CTE_NODE: {
        auto& c = n.Cast<duckdb::CTENode>();
        if (!c.query || !c.child) refuse("unsupported", "incomplete CTE");
        node(*c.query);
        ctes_.push_back(lower(c.ctename));
        node(*c.child);
        break;
      }
      default:
        refuse("unsupported", "query node kind " + std::to_string(static_cast<int>(n.type)) + " is not allowed");
    }
    for (auto& m : n.modifiers) modifier(*m);
    ctes_.resize(scope);
  }

  void modifier(duckdb::ResultModifier& m) {
    switch (m.type) {
      case duckdb::ResultModifierType::LIMIT_MODIFIER: {
        auto& l = m.Cast<duckdb::LimitModifier>();
        expr(l.limit);
        expr(l.offset);
        break;
      }
      case duckdb::ResultModifierType::LIMIT_PERCENT_MODIFIER: {
        auto& l = m.Cast<duckdb::LimitPercentModifier>();
        expr(l.limit);
        expr(l.offset);
        break;
      }
      case duckdb::ResultModifierType::ORDER_MODIFIER:
        for (auto& o : m.Cast<duckdb::OrderModifier>().orders) expr(o.expression);
        break;
      case duckdb::ResultModifierType::DISTINCT_MODIFIER:
        for (auto& e : m.Cast<duckdb::DistinctModifier>().distinct_on_targets) expr(e);
        break;
      default:
        refuse("unsupported", "result modifier kind " + std::to_string(static_cast<int>(m.type)) + " is not allowed");
    }
  }

  // ---- table references --------------------------------------------------

  void check_table_name(const std::string& catalog, const std::string& schema, const std::string& name) {
    if (!catalog.empty() || !schema.empty()) {
      std::string full = (catalog.empty() ? "" : catalog + ".") + (schema.empty() ? "" : schema + ".") + name;
      refuse("table", "table '" + full + "' is not available: names may not be qualified (tables: " +
                          visible_tables() + ")");
    }
    if (!table_visible(name))
      refuse("table", "table '" + name + "' is not available (tables: " + visible_tables() + ", and the query's CTEs)");
  }

  void ref(duckdb::TableRef& r) {
    switch (r.type) {
      case duckdb::TableReferenceType::BASE_TABLE: {
        auto& b = r.Cast<duckdb::BaseTableRef>();
        if (b.at_clause) refuse("unsupported", "AT (time travel) on table '" + b.table_name + "' is not allowed");
        check_table_name(b.catalog_name, b.schema_name, b.table_name);
        break;
      }
      case duckdb::TableReferenceType::SUBQUERY: {
        auto& s = r.Cast<duckdb::SubqueryRef>();
        if (!s.subquery) refuse("unsupported", "empty subquery");
        statement(*s.subquery);
        break;
      }
      case duckdb::TableReferenceType::JOIN: {
        auto& j = r.Cast<duckdb::JoinRef>();
        if (!j.left || !j.right) refuse("unsupported", "incomplete join");
        ref(*j.left);
        ref(*j.right);
        expr(j.condition);
        for (auto& e : j.duplicate_eliminated_columns) expr(e);
        break;
      }
      case duckdb::TableReferenceType::TABLE_FUNCTION: {
        auto& t = r.Cast<duckdb::TableFunctionRef>();
        if (!t.function || t.function->GetExpressionClass() != duckdb::ExpressionClass::FUNCTION)
          refuse("table_function", "this table function call is not allowed");
        auto& f = t.function->Cast<duckdb::FunctionExpression>();
        const std::string name = lower(f.function_name);
        if (!f.catalog.empty() || !f.schema.empty())
          refuse("table_function", "table function '" + f.schema + "." + f.function_name + "' is not allowed");
        if (!kAllowedTableFunctions.count(name))
          refuse("table_function", "table function '" + f.function_name +
                                       "' is not allowed (allowed: range, generate_series, unnest)");
        for (auto& c : f.children) expr(c);
        expr(f.filter);
        if (f.order_bys) modifier(*f.order_bys);
        if (t.subquery) statement(*t.subquery);
        break;
      }
      case duckdb::TableReferenceType::EXPRESSION_LIST:
        for (auto& row : r.Cast<duckdb::ExpressionListRef>().values)
          for (auto& e : row) expr(e);
        break;
      case duckdb::TableReferenceType::EMPTY_FROM:
        break;
      case duckdb::TableReferenceType::PIVOT: {
        auto& p = r.Cast<duckdb::PivotRef>();
        if (!p.source) refuse("unsupported", "PIVOT without a source");
        ref(*p.source);
        for (auto& e : p.aggregates) expr(e);
        for (auto& col : p.pivots) {
          if (!col.pivot_enum.empty()) refuse("unsupported", "PIVOT over the enum type '" + col.pivot_enum + "'");
          for (auto& e : col.pivot_expressions) expr(e);
          for (auto& entry : col.entries) expr(entry.expr);
          if (col.subquery) node(*col.subquery);
        }
        break;
      }
      case duckdb::TableReferenceType::SHOW_REF: {  // DESCRIBE / SUMMARIZE / SHOW
        auto& s = r.Cast<duckdb::ShowRef>();
        if (s.query) {
          node(*s.query);
        } else {
          check_table_name(s.catalog_name, s.schema_name, s.table_name);
        }
        break;
      }
      default:
        refuse("unsupported", "table reference kind " + std::to_string(static_cast<int>(r.type)) + " is not allowed");
    }
  }

  // ---- expressions -------------------------------------------------------

  void expr(duckdb::unique_ptr<duckdb::ParsedExpression>& e) {
    if (e) expr(*e);
  }

  void function_name(const std::string& catalog, const std::string& schema, const std::string& fname) {
    // The parser itself writes some rewrites as main.<function> (list literals,
    // list comprehensions); main is the default schema, so that qualifier adds
    // nothing. Any other qualifier is refused.
    if (!catalog.empty() || (!schema.empty() && lower(schema) != "main"))
      refuse("function", "function '" + (catalog.empty() ? "" : catalog + ".") + schema + "." + fname +
                             "' is not allowed: function names may not be qualified");
    if (auto why = denied_function(lower(fname))) refuse("function", "function '" + fname + "' is not allowed: " + *why);
  }

  void expr(duckdb::ParsedExpression& e) {
    using EC = duckdb::ExpressionClass;
    switch (e.GetExpressionClass()) {
      case EC::COLUMN_REF: {
        // A bare current_schema / current_user / … that names no column is bound
        // by DuckDB as the function of that name.
        auto& c = e.Cast<duckdb::ColumnRefExpression>();
        if (c.column_names.size() == 1) {
          const std::string n = lower(c.column_names[0]);
          if (n != "user" && denied_function(n)) refuse("function", "function '" + n + "' is not allowed: " + *denied_function(n));
        }
        break;
      }
      case EC::CONSTANT:
      case EC::POSITIONAL_REFERENCE:
      case EC::PARAMETER:
      case EC::LAMBDA_REF:
      case EC::DEFAULT:
        break;
      case EC::FUNCTION: {
        auto& f = e.Cast<duckdb::FunctionExpression>();
        function_name(f.catalog, f.schema, f.function_name);
        check_value_size(f);
        for (auto& c : f.children) expr(c);
        expr(f.filter);
        if (f.order_bys) modifier(*f.order_bys);
        break;
      }
      case EC::WINDOW: {
        auto& w = e.Cast<duckdb::WindowExpression>();
        function_name(w.catalog, w.schema, w.function_name);
        for (auto& c : w.children) expr(c);
        for (auto& c : w.partitions) expr(c);
        for (auto& o : w.orders) expr(o.expression);
        for (auto& o : w.arg_orders) expr(o.expression);
        expr(w.filter_expr);
        expr(w.start_expr);
        expr(w.end_expr);
        expr(w.offset_expr);
        expr(w.default_expr);
        break;
      }
      case EC::SUBQUERY: {
        auto& s = e.Cast<duckdb::SubqueryExpression>();
        if (!s.subquery) refuse("unsupported", "empty subquery");
        statement(*s.subquery);
        expr(s.child);
        break;
      }
      case EC::CASE: {
        auto& c = e.Cast<duckdb::CaseExpression>();
        for (auto& check : c.case_checks) {
          expr(check.when_expr);
          expr(check.then_expr);
        }
        expr(c.else_expr);
        break;
      }
      case EC::CAST:
        expr(e.Cast<duckdb::CastExpression>().child);
        break;
      case EC::COLLATE:
        expr(e.Cast<duckdb::CollateExpression>().child);
        break;
      case EC::COMPARISON: {
        auto& c = e.Cast<duckdb::ComparisonExpression>();
        expr(c.left);
        expr(c.right);
        break;
      }
      case EC::CONJUNCTION:
        for (auto& c : e.Cast<duckdb::ConjunctionExpression>().children) expr(c);
        break;
      case EC::OPERATOR:
        for (auto& c : e.Cast<duckdb::OperatorExpression>().children) expr(c);
        break;
      case EC::BETWEEN: {
        auto& b = e.Cast<duckdb::BetweenExpression>();
        expr(b.input);
        expr(b.lower);
        expr(b.upper);
        break;
      }
      case EC::LAMBDA: {
        auto& l = e.Cast<duckdb::LambdaExpression>();
        expr(l.lhs);
        expr(l.expr);
        break;
      }
      case EC::STAR: {
        auto& s = e.Cast<duckdb::StarExpression>();
        expr(s.expr);
        for (auto& entry : s.replace_list) expr(entry.second);
        break;
      }
      default:
        refuse("unsupported",
               "expression kind " + std::to_string(static_cast<int>(e.GetExpressionClass())) + " is not allowed");
    }
  }

  // ---- value size ----------------------------------------------------------
  // Functions whose result size is set by an argument. DuckDB builds such a
  // value in memory that its memory_limit does not cover, so the guard bounds it
  // before execution: the size argument must be a constant, and the estimated
  // result at most max_value_bytes.

  static std::optional<int64_t> constant_int(const duckdb::ParsedExpression& e) {
    using EC = duckdb::ExpressionClass;
    if (e.GetExpressionClass() == EC::CONSTANT) {
      const auto& v = e.Cast<duckdb::ConstantExpression>().value;
      if (v.IsNull() || !v.type().IsNumeric()) return std::nullopt;
      duckdb::Value out;
      std::string err;
      if (!v.DefaultTryCastAs(duckdb::LogicalType::DOUBLE, out, &err)) return std::nullopt;
      const double d = out.GetValue<double>();
      if (d >= 9.0e18) return INT64_MAX;
      if (d <= -9.0e18) return INT64_MIN;
      return static_cast<int64_t>(d);
    }
    if (e.GetExpressionClass() == EC::CAST) return constant_int(*e.Cast<duckdb::CastExpression>().child);
    if (e.GetExpressionClass() == EC::FUNCTION) {  // unary minus / plus
      const auto& f = e.Cast<duckdb::FunctionExpression>();
      if (f.children.size() == 1 && (f.function_name == "-" || f.function_name == "+")) {
        auto v = constant_int(*f.children[0]);
        if (v && f.function_name == "-") return *v == INT64_MIN ? INT64_MAX : -*v;
        return v;
      }
    }
    return std::nullopt;
  }

  // Upper estimate of an expression's value size in bytes; nullopt when unknown.
  static std::optional<uint64_t> estimate(const duckdb::ParsedExpression& e) {
    using EC = duckdb::ExpressionClass;
    if (e.GetExpressionClass() == EC::CONSTANT) {
      const auto& v = e.Cast<duckdb::ConstantExpression>().value;
      if (v.IsNull()) return 0;
      if (v.type().id() == duckdb::LogicalTypeId::VARCHAR) return duckdb::StringValue::Get(v).size();
      return 16;
    }
    if (e.GetExpressionClass() == EC::CAST) return estimate(*e.Cast<duckdb::CastExpression>().child);
    if (e.GetExpressionClass() != EC::FUNCTION) return std::nullopt;
    const auto& f = e.Cast<duckdb::FunctionExpression>();
    const std::string name = lower(f.function_name);
    auto arg_int = [&](size_t i) -> std::optional<int64_t> {
      return i < f.children.size() ? constant_int(*f.children[i]) : std::nullopt;
    };
    auto sat_mul = [](uint64_t a, uint64_t b) { return (b != 0 && a > UINT64_MAX / b) ? UINT64_MAX : a * b; };
    if (name == "repeat" && f.children.size() == 2) {
      auto n = arg_int(1);
      auto base = estimate(*f.children[0]);
      if (!n) return std::nullopt;
      return sat_mul(base.value_or(kUnknownInputBytes), static_cast<uint64_t>(std::max<int64_t>(*n, 0)));
    }
    if ((name == "lpad" || name == "rpad") && f.children.size() >= 2) {
      auto n = arg_int(1);
      if (!n) return std::nullopt;
      return sat_mul(4, static_cast<uint64_t>(std::max<int64_t>(*n, 0)));  // characters, up to 4 bytes each
    }
    if (name == "||" || name == "concat" || name == "concat_ws" || name == "list_concat" || name == "array_concat") {
      uint64_t sum = 0;
      bool any = false;
      for (const auto& c : f.children) {
        if (auto s = estimate(*c)) {
          sum = (sum > UINT64_MAX - *s) ? UINT64_MAX : sum + *s;
          any = true;
        }
      }
      if (!any) return std::nullopt;
      return sum;
    }
    return std::nullopt;
  }

  // An input of unknown size (a column, a function result) counts as this much
  // when a producer multiplies it.
  static constexpr uint64_t kUnknownInputBytes = 1024;

  // What the producers of the statement build per row, together: DuckDB
  // evaluates a projection for a whole vector (2048 rows) at once, so the
  // statement-wide sum (not each call alone) bounds the memory of a chunk.
  uint64_t produced_ = 0;

  [[noreturn]] void too_big(const std::string& fname, const char* what) const {
    refuse("value_size", "function '" + fname + "' would build " + what + " of more than " +
                             std::to_string(options_.max_value_bytes) + " bytes (query.max_value_bytes)");
  }

  void produce(const std::string& fname, uint64_t bytes, const char* what) {
    const uint64_t cap = options_.max_value_bytes;
    if (bytes > cap) too_big(fname, what);
    produced_ += bytes;
    if (produced_ > cap)
      refuse("value_size", "repeat/lpad/rpad/range/… calls of this query together would build more than " +
                               std::to_string(cap) + " bytes per row (query.max_value_bytes); '" + fname +
                               "' is one too many");
  }

  void check_value_size(const duckdb::FunctionExpression& f) {
    const std::string name = lower(f.function_name);
    const uint64_t cap = options_.max_value_bytes;
    // Producers: the result size is set by an argument, which must be a constant.
    struct Producer {
      std::string_view name;
      size_t arg;
      uint64_t bytes_per_unit;  // 0: estimate() knows the size
    };
    static constexpr Producer kProducers[] = {{"repeat", 1, 0},       {"lpad", 1, 0},         {"rpad", 1, 0},
                                              {"list_resize", 1, 16}, {"array_resize", 1, 16}, {"bar", 3, 4}};
    for (const auto& p : kProducers) {
      if (name != p.name || f.children.size() <= p.arg) continue;
      auto n = constant_int(*f.children[p.arg]);
      if (!n)
        refuse("value_size", "function '" + f.function_name + "': argument " + std::to_string(p.arg + 1) +
                                 " (the result size) must be a constant");
      const uint64_t units = static_cast<uint64_t>(std::max<int64_t>(*n, 0));
      uint64_t bytes = 0;
      if (p.bytes_per_unit == 0) {
        bytes = estimate(f).value_or(UINT64_MAX);
      } else {
        bytes = units > UINT64_MAX / p.bytes_per_unit ? UINT64_MAX : units * p.bytes_per_unit;
      }
      produce(f.function_name, bytes, "a value");
      return;
    }
    // Scalar range()/generate_series() build a whole list in one value (the
    // table functions of the same name stream rows and are not limited here).
    if ((name == "range" || name == "generate_series") && !f.children.empty()) {
      std::optional<int64_t> lo = 0, hi, step = 1;
      if (f.children.size() == 1) {
        hi = constant_int(*f.children[0]);
      } else {
        lo = constant_int(*f.children[0]);
        hi = constant_int(*f.children[1]);
        if (f.children.size() >= 3) step = constant_int(*f.children[2]);
      }
      if (!lo || !hi || !step)
        refuse("value_size", "function '" + f.function_name +
                                 "' as a list needs constant integer bounds; for other bounds use the table "
                                 "function: FROM " + name + "(…)");
      long double count = 0;
      if (*step != 0)
        count = std::max<long double>(0, (static_cast<long double>(*hi) - static_cast<long double>(*lo)) /
                                             static_cast<long double>(*step));
      const long double bytes = count * 8;
      produce(f.function_name, bytes > static_cast<long double>(cap) ? UINT64_MAX : static_cast<uint64_t>(bytes),
              "a list");
      return;
    }
    // Concatenations of producers.
    if (auto est = estimate(f); est && *est > cap) too_big(f.function_name, "a value");
  }
};

}  // namespace

SqlGuardVerdict check_untrusted_sql(const std::string& sql, const SqlGuardOptions& options) {
  SqlGuardVerdict v;
  duckdb::Parser parser;
  try {
    parser.ParseQuery(sql);
  } catch (const std::exception& e) {
    v.reason = "syntax";
    v.message = duckdb::ErrorData(e).Message();
    return v;
  }
  if (parser.statements.empty()) {
    v.reason = "syntax";
    v.message = "empty query: no statement";
    return v;
  }
  if (parser.statements.size() > 1) {
    v.reason = "multiple_statements";
    v.message = "only one statement allowed, got " + std::to_string(parser.statements.size());
    return v;
  }
  auto& statement = *parser.statements[0];
  if (statement.type != duckdb::StatementType::SELECT_STATEMENT) {
    v.reason = "not_select";
    v.message = "only SELECT statements are allowed, got " + duckdb::StatementTypeToString(statement.type);
    return v;
  }
  try {
    Walker walker(options);
    walker.statement(statement.Cast<duckdb::SelectStatement>());
  } catch (const Refusal& r) {
    v.reason = r.reason;
    v.message = r.message;
    return v;
  } catch (const std::exception& e) {  // a node the walker could not inspect: refuse
    v.reason = "unsupported";
    v.message = "query could not be checked: " + duckdb::ErrorData(e).Message();
    return v;
  }
  v.allowed = true;
  return v;
}

}  // namespace bf
