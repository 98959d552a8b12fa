#pragma once
// The dataset's schema registry: _meta/{a}/{t}/{d}/schema.json lists every column
// ever written with its type and the schema version that added it. A new column
// bumps the version; readers union Parquet files by name.
#include <memory>
#include <string>
#include <vector>

#include "common/catalog.h"

namespace bf {

class ObjectStore;

struct SchemaColumn {
  std::string name;
  std::string type;  // DuckDB type name
};

class SchemaRegistry {
 public:
  SchemaRegistry(std::shared_ptr<ObjectStore> store, DatasetRef ref);  // loads the current schema
  // Adds columns not yet known (a type change is recorded as the new type).
  void merge(const std::vector<SchemaColumn>& columns);
  void save_if_changed();
  int version() const { return version_; }
  const std::vector<SchemaColumn>& columns() const { return columns_; }

 private:
  std::shared_ptr<ObjectStore> store_;
  DatasetRef ref_;
  int version_ = 0;
  std::vector<SchemaColumn> columns_;
  std::vector<int> added_in_;
  bool changed_ = false;
};

}  // namespace bf
