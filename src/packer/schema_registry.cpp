#include "packer/schema_registry.h"

#include <boost/json.hpp>

#include <algorithm>

#include "common/time.h"
#include "storage/layout.h"
#include "storage/object_store.h"
#include "storage/sql_engine.h"

namespace bf {

std::optional<std::string> column_type(const FieldShape& s) {
  const uint8_t kinds = s.kinds & ~kKindNull;
  if (kinds == 0) return std::nullopt;
  if (kinds == kKindString) return "VARCHAR";
  if (kinds == kKindBool) return "BOOLEAN";
  if ((kinds & ~(kKindInt | kKindUint | kKindFloat)) == 0) {
    if (kinds == kKindInt) return "BIGINT";
    if (kinds == kKindUint) return "UBIGINT";
    return "DOUBLE";
  }
  // Objects and arrays are kept as their JSON text (VARCHAR) for now: a STRUCT, LIST
  // or JSON column cannot be read together with a later part where the field changed
  // kind (DuckDB: "Struct remap can only remap nested types"; VARCHAR text is not
  // JSON); typed nesting needs the registry to own every part's types (issue 9).
  return "VARCHAR";
}

SchemaRegistry::SchemaRegistry(std::shared_ptr<ObjectStore> store, DatasetRef ref)
    : store_(std::move(store)), ref_(std::move(ref)) {
  std::string text;
  try {
    text = store_->get(schema_key(ref_));
  } catch (const NotFound&) {
    return;
  }
  auto doc = boost::json::parse(text).as_object();
  version_ = static_cast<int>(doc.at("version").to_number<int64_t>());
  for (const auto& c : doc.at("columns").as_array()) {
    const auto& col = c.as_object();
    columns_.push_back(SchemaColumn{std::string(col.at("name").as_string()), std::string(col.at("type").as_string())});
    added_in_.push_back(static_cast<int>(col.at("added_in_version").to_number<int64_t>()));
  }
  // Registries written before the shape was kept start with an empty one.
  if (auto it = doc.find("shape"); it != doc.end()) {
    if (auto shape = BatchShape::from_json(it->value())) {
      shape_ = std::move(*shape);
      shape_json_ = boost::json::serialize(shape_.to_json(false));
    }
  }
}

bool SchemaRegistry::has_column(const std::string& name) const {
  return std::any_of(columns_.begin(), columns_.end(), [&](const SchemaColumn& c) { return c.name == name; });
}

void SchemaRegistry::merge(const std::vector<SchemaColumn>& columns) {
  for (const auto& c : columns) {
    auto it = std::find_if(columns_.begin(), columns_.end(), [&](const SchemaColumn& k) { return k.name == c.name; });
    if (it == columns_.end()) {
      if (!changed_) ++version_;
      changed_ = true;
      columns_.push_back(c);
      added_in_.push_back(version_);
    } else if (it->type != c.type) {
      if (!changed_) ++version_;
      changed_ = true;
      it->type = c.type;
    }
  }
}

void SchemaRegistry::merge_shape(const BatchShape& shape) { shape_.merge(shape); }

void SchemaRegistry::save_if_changed() {
  const std::string shape_json = boost::json::serialize(shape_.to_json(false));
  if (!changed_ && shape_json == shape_json_) return;
  boost::json::array cols;
  for (size_t i = 0; i < columns_.size(); ++i) {
    cols.push_back(boost::json::object{{"name", columns_[i].name}, {"type", columns_[i].type}, {"added_in_version", added_in_[i]}});
  }
  boost::json::object doc{{"version", version_},
                          {"updated", format_rfc3339(now_us())},
                          {"columns", std::move(cols)},
                          {"shape", boost::json::parse(shape_json)}};
  store_->put(schema_key(ref_), boost::json::serialize(doc));
  changed_ = false;
  shape_json_ = shape_json;
}

}  // namespace bf
