#include "packer/schema_registry.h"

#include <boost/json.hpp>

#include <algorithm>

#include "common/time.h"
#include "storage/layout.h"
#include "storage/object_store.h"

namespace bf {

namespace {

bool is_time_field(const std::string& name) { return name == "_time" || name == "_received"; }

std::string get_str(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

int get_int(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_number() ? static_cast<int>(v->to_number<int64_t>()) : 0;
}

boost::json::object change_json(const SchemaChange& c) {
  boost::json::object o{{"path", c.path}, {"change", c.change}, {"type", c.type}};
  if (!c.from.empty()) o["from"] = c.from;
  if (!c.source.empty()) o["source"] = c.source;
  return o;
}

}  // namespace

SchemaRegistry::SchemaRegistry(std::shared_ptr<ObjectStore> store, DatasetRef ref, SchemaLimits limits)
    : store_(std::move(store)), ref_(std::move(ref)), limits_(limits) {
  std::string text;
  try {
    text = store_->get(schema_key(ref_));
  } catch (const NotFound&) {
    return;
  }
  auto doc = boost::json::parse(text).as_object();
  version_ = get_int(doc, "version");
  for (const auto& c : doc.at("columns").as_array()) {
    const auto& col = c.as_object();
    SchemaColumn sc;
    sc.name = get_str(col, "name");
    sc.source = col.contains("source") ? get_str(col, "source") : sc.name;
    sc.added_in_version = get_int(col, "added_in_version");
    sc.overflow = get_str(col, "overflow");
    sc.is_overflow = col.contains("overflow_of");
    std::optional<SchemaType> type;
    if (const auto* def = col.if_contains("def")) type = SchemaType::from_json(*def);
    // Registries written before typed nesting: scalar names, objects as text.
    if (!type) {
      type = SchemaType::from_scalar_name(get_str(col, "type"));
      if (type && type->nested()) type.reset();
    }
    if (!type) {
      type = SchemaType{};
      type->json_text = true;
    }
    sc.type = std::move(*type);
    columns_.push_back(std::move(sc));
  }
  if (const auto* h = doc.if_contains("history"); h && h->is_array()) {
    for (const auto& e : h->get_array()) {
      const auto& eo = e.as_object();
      SchemaHistoryEntry entry{get_int(eo, "version"), get_str(eo, "batch"), get_str(eo, "time"), {}};
      if (const auto* cs = eo.if_contains("changes"); cs && cs->is_array()) {
        for (const auto& c : cs->get_array()) {
          const auto& co = c.as_object();
          entry.changes.push_back(SchemaChange{get_str(co, "path"), get_str(co, "change"), get_str(co, "type"),
                                               get_str(co, "from"), get_str(co, "source")});
        }
      }
      history_.push_back(std::move(entry));
    }
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

const SchemaColumn* SchemaRegistry::column_for(const std::string& source) const {
  for (const auto& c : columns_)
    if (!c.is_overflow && c.source == source) return &c;
  return nullptr;
}

SchemaColumn* SchemaRegistry::find_column(const std::string& source) {
  return const_cast<SchemaColumn*>(column_for(source));
}

SchemaColumn& SchemaRegistry::add_column(const std::string& source, SchemaType type, int version,
                                         std::vector<SchemaChange>& changes) {
  std::vector<std::string> taken;
  for (const auto& c : columns_) taken.push_back(c.name);
  SchemaColumn c;
  c.name = unique_name(source, taken);
  c.source = source;
  c.type = std::move(type);
  c.added_in_version = version;
  changes.push_back(SchemaChange{c.name, "added", c.type.duckdb(), "", ""});
  if (c.name != source) changes.push_back(SchemaChange{c.name, "renamed", c.type.duckdb(), "", source});
  columns_.push_back(std::move(c));
  return columns_.back();
}

void SchemaRegistry::evolve(const BatchShape& batch, const std::string& batch_id) {
  const int next = version_ + 1;
  std::vector<SchemaChange> changes;
  SchemaType timestamp;
  timestamp.kind = SchemaType::Kind::timestamp;
  SchemaType text;  // _time_raw and _received_raw: the unusable time values
  auto ensure = [&](const std::string& name, const SchemaType& type) {
    if (!find_column(name)) add_column(name, type, next, changes);
  };
  for (size_t i = 0; i < batch.root.names.size(); ++i) {
    const std::string& name = batch.root.names[i];
    const FieldShape& field = batch.root.members[i];
    if (is_time_field(name)) {
      ensure(name, timestamp);  // always TIMESTAMP, whatever the events hold
      if (field.bad_time) ensure(name + "_raw", text);
      continue;
    }
    if (name == "_time_raw" || name == "_received_raw") {
      if (field.kinds & ~kKindNull) ensure(name, text);
      continue;
    }
    SchemaColumn* col = find_column(name);
    if (!col) {
      if (auto type = type_from_shape(field, limits_)) add_column(name, std::move(*type), next, changes);
      continue;
    }
    if (evolve_type(col->type, field, limits_, col->name, changes) && col->overflow.empty()) {
      std::vector<std::string> taken;
      for (const auto& c : columns_) taken.push_back(c.name);
      SchemaColumn o;
      o.name = unique_name(col->name + "__json", taken);
      o.source = col->source;
      o.type.json_text = true;
      o.added_in_version = next;
      o.is_overflow = true;
      col->overflow = o.name;  // before the push_back, which may move *col
      changes.push_back(SchemaChange{o.name, "overflow_added", o.type.duckdb(), "", o.source});
      columns_.push_back(std::move(o));
    }
  }
  ensure("_time", timestamp);
  ensure("_received", timestamp);
  if (changes.empty()) return;
  version_ = next;
  changed_ = true;
  history_.push_back(SchemaHistoryEntry{version_, batch_id, format_rfc3339(now_us()), std::move(changes)});
}

void SchemaRegistry::merge_shape(const BatchShape& shape) { shape_.merge(shape); }

boost::json::object SchemaRegistry::to_json() const {
  boost::json::array cols;
  for (const auto& c : columns_) {
    boost::json::object o{{"name", c.name}, {"type", c.type.duckdb()}, {"def", c.type.to_json()}, {"added_in_version", c.added_in_version}};
    if (c.source != c.name) o["source"] = c.source;
    if (c.is_overflow) o["overflow_of"] = c.source;
    if (!c.overflow.empty()) o["overflow"] = c.overflow;
    cols.push_back(std::move(o));
  }
  boost::json::array hist;
  for (const auto& h : history_) {
    boost::json::array changes;
    for (const auto& c : h.changes) changes.push_back(change_json(c));
    hist.push_back(boost::json::object{{"version", h.version}, {"batch", h.batch}, {"time", h.time}, {"changes", std::move(changes)}});
  }
  return boost::json::object{{"version", version_},
                             {"updated", format_rfc3339(now_us())},
                             {"columns", std::move(cols)},
                             {"history", std::move(hist)},
                             {"shape", shape_.to_json(false)}};
}

void SchemaRegistry::save_if_changed() {
  const std::string shape_json = boost::json::serialize(shape_.to_json(false));
  if (!changed_ && shape_json == shape_json_) return;
  store_->put(schema_key(ref_), boost::json::serialize(to_json()));
  changed_ = false;
  shape_json_ = shape_json;
}

}  // namespace bf
