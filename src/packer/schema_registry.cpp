#include "packer/schema_registry.h"

#include <boost/json.hpp>

#include "common/time.h"
#include "storage/layout.h"
#include "storage/object_store.h"

namespace bf {

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

void SchemaRegistry::save_if_changed() {
  if (!changed_) return;
  boost::json::array cols;
  for (size_t i = 0; i < columns_.size(); ++i) {
    cols.push_back(boost::json::object{{"name", columns_[i].name}, {"type", columns_[i].type}, {"added_in_version", added_in_[i]}});
  }
  boost::json::object doc{{"version", version_}, {"updated", format_rfc3339(now_us())}, {"columns", std::move(cols)}};
  store_->put(schema_key(ref_), boost::json::serialize(doc));
  changed_ = false;
}

}  // namespace bf
