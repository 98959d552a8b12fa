#pragma once
// The dataset's schema registry: _meta/{a}/{t}/{d}/schema.json lists every column
// with its typed definition (packer/schema_types.h), the schema version that added
// it, the history of every change with the batch that caused it, and the dataset's
// field shape (common/batch_shape.h). The packer evolves it batch by batch before
// it writes, and writes every part with exactly these columns and types, so every
// part of a dataset reads together with one SELECT * (docs/schema-evolution.md).
#include <boost/json/object.hpp>

#include <memory>
#include <string>
#include <vector>

#include "common/batch_shape.h"
#include "common/catalog.h"
#include "packer/schema_types.h"

namespace bf {

class ObjectStore;

struct SchemaColumn {
  std::string name;    // the Parquet column
  std::string source;  // the top-level JSON field it holds
  SchemaType type;
  int added_in_version = 0;
  bool is_overflow = false;  // holds, as JSON text, values of `source` its column's type cannot hold
  std::string overflow;      // the name of this column's overflow column, once it has one
};

struct SchemaHistoryEntry {
  int version = 0;
  std::string batch;  // the batch id whose events caused the changes
  std::string time;
  std::vector<SchemaChange> changes;
};

class SchemaRegistry {
 public:
  SchemaRegistry(std::shared_ptr<ObjectStore> store, DatasetRef ref, SchemaLimits limits = {});  // loads the current schema
  // Evolves the schema for one input batch (a new version when anything changes).
  void evolve(const BatchShape& batch, const std::string& batch_id);
  // Adds the fields and kinds of a run's inputs to the dataset's shape.
  void merge_shape(const BatchShape& shape);
  void save_if_changed();
  int version() const { return version_; }
  const std::vector<SchemaColumn>& columns() const { return columns_; }
  const std::vector<SchemaHistoryEntry>& history() const { return history_; }
  const BatchShape& shape() const { return shape_; }
  bool has_column(const std::string& name) const;
  // The (non-overflow) column holding a top-level field; nullptr if none yet.
  const SchemaColumn* column_for(const std::string& source) const;
  boost::json::object to_json() const;

 private:
  SchemaColumn* find_column(const std::string& source);
  SchemaColumn& add_column(const std::string& source, SchemaType type, int version, std::vector<SchemaChange>& changes);

  std::shared_ptr<ObjectStore> store_;
  DatasetRef ref_;
  SchemaLimits limits_;
  int version_ = 0;
  std::vector<SchemaColumn> columns_;
  std::vector<SchemaHistoryEntry> history_;
  BatchShape shape_;
  std::string shape_json_;  // as loaded, to notice a change
  bool changed_ = false;
};

}  // namespace bf
