#pragma once
// The typed column definitions of the schema registry and their evolution rules
// (docs/schema-evolution.md). A column's type is derived from the field shapes
// the piper computes (common/batch_shape.h) and, once written, only changes in
// ways DuckDB's multi-file reader (read_parquet(..., union_by_name=true), as the
// query service reads) reconciles with the older parts: a scalar widens
// (BIGINT -> DOUBLE -> VARCHAR), a STRUCT gains members, a LIST's element type
// widens. A value its column's nested type cannot hold (a string where a STRUCT
// is, ...) goes as JSON text into the column's overflow column instead.
#include <boost/json/object.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/batch_shape.h"

namespace bf {

struct SchemaLimits {
  size_t max_struct_fields = 256;  // an object with more keys is a "wide" object
  size_t max_depth = 8;            // nesting below this is kept as JSON text
  bool wide_as_map = true;         // wide objects: MAP(VARCHAR, VARCHAR), else VARCHAR JSON text
};

struct SchemaField;

struct SchemaType {
  enum class Kind { boolean, bigint, ubigint, double_, varchar, timestamp, struct_, list, map };
  Kind kind = Kind::varchar;
  bool json_text = false;           // varchar: objects, arrays or mixed kinds kept as JSON text
  std::vector<SchemaField> fields;  // struct_
  std::vector<SchemaType> items;    // list: exactly one

  bool nested() const { return kind == Kind::struct_ || kind == Kind::list || kind == Kind::map; }
  // The DuckDB type, e.g. STRUCT("a" BIGINT, "b" VARCHAR[]).
  std::string duckdb() const;
  boost::json::object to_json() const;
  static std::optional<SchemaType> from_json(const boost::json::value& v);
  // Registries written before typed nesting held DuckDB scalar type names only.
  static std::optional<SchemaType> from_scalar_name(const std::string& name);
};

struct SchemaField {
  std::string name;    // the member name in Parquet
  std::string source;  // the JSON key; differs from name only when renamed (case collision)
  SchemaType type;
};

// One change the evolution made, at a path ("a", "a.b", "a[]").
struct SchemaChange {
  std::string path;
  std::string change;  // added | widened | json_text | member_added | overflow_added | renamed
  std::string type;    // the DuckDB type after the change
  std::string from;    // widened: the type before
  std::string source;  // renamed: the JSON key
};

// The type for a field first seen with this shape; nullopt when only nulls were seen.
std::optional<SchemaType> type_from_shape(const FieldShape& shape, const SchemaLimits& limits, size_t depth = 0);

// Widens `type` for the values `shape` describes (changes appended, paths under
// `path`); returns true when some value cannot be held by the type even so (it
// needs the overflow column).
bool evolve_type(SchemaType& type, const FieldShape& shape, const SchemaLimits& limits, const std::string& path,
                 std::vector<SchemaChange>& changes, size_t depth = 0);

// True when DuckDB's read_ndjson can read values of this shape straight as the
// type: no renamed member, no value that does not fit, no key the type drops.
bool reads_natively(const SchemaType& type, const FieldShape& shape);

// SQL over a JSON expression `j`: whether the value fits the type ("" = always,
// for this shape), and the value converted to the type (honouring renames).
std::string fits_sql(const std::string& j, const SchemaType& type, const FieldShape& shape, size_t depth = 0);
std::string convert_sql(const std::string& j, const SchemaType& type, size_t depth = 0);

// A JSON path selecting one key, quoted: $."key".
std::string json_key_path(const std::string& key);
// SQL: the member `key` of the JSON expression j (the empty key included).
std::string member_json(const std::string& j, const std::string& key);

// The name for a JSON key: the key (`__empty` for ""), or with __2, __3, ...
// appended, the first not in `taken` ignoring case (DuckDB refuses column and
// member names that differ only in case, and empty ones).
std::string unique_name(const std::string& key, const std::vector<std::string>& taken);

}  // namespace bf
