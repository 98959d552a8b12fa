#pragma once
// The dataset's schema registry: _meta/{a}/{t}/{d}/schema.json lists every column
// ever written with its type and the schema version that added it, and the
// dataset's field shape (common/batch_shape.h: every field ever seen with the JSON
// kinds of its values). The packer writes with the types derived from that shape
// (column_type), so it never asks DuckDB to guess; a shape only grows, so a column's
// type only widens (int -> double -> text). Readers union Parquet files by name.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/batch_shape.h"
#include "common/catalog.h"

namespace bf {

class ObjectStore;

struct SchemaColumn {
  std::string name;
  std::string type;  // DuckDB type name
};

// The DuckDB type that reads every value the shape has seen: nullopt when it has
// seen only nulls. BIGINT / UBIGINT / DOUBLE for numbers, BOOLEAN, VARCHAR for
// everything else: strings, objects and arrays (as their JSON text) and mixed
// kinds (each value as its text), so a column never changes between incompatible
// types from one part to the next.
std::optional<std::string> column_type(const FieldShape& shape);

class SchemaRegistry {
 public:
  SchemaRegistry(std::shared_ptr<ObjectStore> store, DatasetRef ref);  // loads the current schema
  // Adds columns not yet known (a type change is recorded as the new type).
  void merge(const std::vector<SchemaColumn>& columns);
  // Adds the fields and kinds of a run's inputs to the dataset's shape.
  void merge_shape(const BatchShape& shape);
  void save_if_changed();
  int version() const { return version_; }
  const std::vector<SchemaColumn>& columns() const { return columns_; }
  const BatchShape& shape() const { return shape_; }
  bool has_column(const std::string& name) const;

 private:
  std::shared_ptr<ObjectStore> store_;
  DatasetRef ref_;
  int version_ = 0;
  std::vector<SchemaColumn> columns_;
  std::vector<int> added_in_;
  BatchShape shape_;
  std::string shape_json_;  // as loaded, to notice a change
  bool changed_ = false;
};

}  // namespace bf
