#include "common/batch_shape.h"

#include <boost/json/array.hpp>
#include <boost/json/monotonic_resource.hpp>

#include <cstdint>
#include <limits>
#include <memory>

#include "common/batch.h"
#include "common/time.h"

namespace bf {

namespace {

constexpr size_t kMaxDepth = 64;  // deeper than the receiver accepts; the rest is "many"
constexpr JsonKind kAllKinds[] = {kKindNull,   kKindBool,   kKindInt,    kKindUint,
                                  kKindFloat, kKindString, kKindObject, kKindArray};

void clear_members(FieldShape& s) {
  s.many = true;
  s.names.clear();
  s.members.clear();
}

void add_value(FieldShape& s, const boost::json::value& v, size_t depth, size_t& nodes);

// bounded is false only for the top level (every field is tracked), where _time and
// _received are also checked: the packer counts time fallbacks from bad_time.
void add_object(FieldShape& s, const boost::json::object& o, size_t depth, size_t& nodes, bool bounded) {
  if (s.many) return;
  if (depth > kMaxDepth) {
    clear_members(s);
    return;
  }
  size_t i = 0;
  for (const auto& kv : o) {
    const std::string_view key = kv.key();
    FieldShape* m = nullptr;
    // Events of a batch mostly list the same keys in the same order.
    if (i < s.names.size() && s.names[i] == key) {
      m = &s.members[i];
    } else {
      m = s.member(std::string(key));
    }
    if (!m) {
      if (bounded && (s.names.size() >= BatchShape::kMaxObjectKeys || nodes >= BatchShape::kMaxNodes)) {
        clear_members(s);
        return;
      }
      m = &s.add_member(std::string(key));
      if (bounded) ++nodes;
    }
    add_value(*m, kv.value(), depth, nodes);
    if (!bounded && (key == "_time" || key == "_received") && !parse_event_time(kv.value())) ++m->bad_time;
    ++i;
  }
}

void add_value(FieldShape& s, const boost::json::value& v, size_t depth, size_t& nodes) {
  ++s.count;
  switch (v.kind()) {
    case boost::json::kind::null: s.kinds |= kKindNull; break;
    case boost::json::kind::bool_: s.kinds |= kKindBool; break;
    case boost::json::kind::int64: s.kinds |= kKindInt; break;
    case boost::json::kind::uint64:
      s.kinds |= v.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? kKindInt : kKindUint;
      break;
    case boost::json::kind::double_: s.kinds |= kKindFloat; break;
    case boost::json::kind::string: s.kinds |= kKindString; break;
    case boost::json::kind::object:
      s.kinds |= kKindObject;
      add_object(s, v.get_object(), depth + 1, nodes, true);
      break;
    case boost::json::kind::array:
      s.kinds |= kKindArray;
      if (depth + 1 > kMaxDepth) break;
      for (const auto& item : v.get_array()) {
        if (s.items.empty()) s.items.emplace_back();
        add_value(s.items[0], item, depth + 1, nodes);
      }
      break;
  }
}

void merge_into(FieldShape& a, const FieldShape& b, size_t& nodes, bool bounded) {
  a.kinds |= b.kinds;
  a.count += b.count;
  a.bad_time += b.bad_time;
  if (a.many || b.many) {
    if (!a.many) clear_members(a);
  } else {
    for (size_t i = 0; i < b.names.size(); ++i) {
      FieldShape* m = a.member(b.names[i]);
      if (!m) {
        if (bounded && (a.names.size() >= BatchShape::kMaxObjectKeys || nodes >= BatchShape::kMaxNodes)) {
          clear_members(a);
          break;
        }
        m = &a.add_member(b.names[i]);
        if (bounded) ++nodes;
      }
      merge_into(*m, b.members[i], nodes, true);
    }
  }
  if (!b.items.empty()) {
    if (a.items.empty()) a.items.emplace_back();
    merge_into(a.items[0], b.items[0], nodes, true);
  }
}

boost::json::object field_json(const FieldShape& s, bool with_counts) {
  boost::json::object o;
  boost::json::array kinds;
  for (JsonKind k : kAllKinds)
    if (s.kinds & k) kinds.emplace_back(json_kind_name(k));
  o["kinds"] = std::move(kinds);
  if (with_counts) {
    o["count"] = s.count;
    if (s.bad_time) o["bad_time"] = s.bad_time;
  }
  if (s.many) o["many"] = true;
  if (!s.names.empty()) {
    boost::json::object fields;
    for (size_t i = 0; i < s.names.size(); ++i) fields[s.names[i]] = field_json(s.members[i], with_counts);
    o["fields"] = std::move(fields);
  }
  if (!s.items.empty()) o["items"] = field_json(s.items[0], with_counts);
  return o;
}

uint64_t get_count(const boost::json::object& o, const char* name, bool& ok) {
  auto it = o.find(name);
  if (it == o.end()) return 0;
  if (it->value().is_uint64()) return it->value().get_uint64();
  if (it->value().is_int64() && it->value().get_int64() >= 0) return static_cast<uint64_t>(it->value().get_int64());
  ok = false;
  return 0;
}

bool field_from_json(const boost::json::value& v, FieldShape& s, size_t depth) {
  if (depth > kMaxDepth + 1 || !v.is_object()) return false;
  const auto& o = v.get_object();
  bool ok = true;
  if (auto it = o.find("kinds"); it != o.end()) {
    if (!it->value().is_array()) return false;
    for (const auto& k : it->value().get_array()) {
      if (!k.is_string()) return false;
      bool known = false;
      for (JsonKind kind : kAllKinds) {
        if (k.get_string() == json_kind_name(kind)) {
          s.kinds |= kind;
          known = true;
        }
      }
      if (!known) return false;
    }
  }
  s.count = get_count(o, "count", ok);
  s.bad_time = get_count(o, "bad_time", ok);
  if (auto it = o.find("many"); it != o.end()) {
    if (!it->value().is_bool()) return false;
    s.many = it->value().get_bool();
  }
  if (auto it = o.find("fields"); it != o.end()) {
    if (!it->value().is_object()) return false;
    for (const auto& kv : it->value().get_object()) {
      if (s.member(std::string(kv.key()))) return false;
      if (!field_from_json(kv.value(), s.add_member(std::string(kv.key())), depth + 1)) return false;
    }
  }
  if (auto it = o.find("items"); it != o.end()) {
    s.items.emplace_back();
    if (!field_from_json(it->value(), s.items[0], depth + 1)) return false;
  }
  return ok;
}

}  // namespace

const char* json_kind_name(JsonKind k) {
  switch (k) {
    case kKindNull: return "null";
    case kKindBool: return "bool";
    case kKindInt: return "int";
    case kKindUint: return "uint";
    case kKindFloat: return "float";
    case kKindString: return "string";
    case kKindObject: return "object";
    case kKindArray: return "array";
  }
  return "?";
}

FieldShape* FieldShape::member(const std::string& name) {
  return const_cast<FieldShape*>(static_cast<const FieldShape*>(this)->member(name));
}

const FieldShape* FieldShape::member(const std::string& name) const {
  if (names.size() <= 8) {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return &members[i];
    return nullptr;
  }
  if (index_.size() != names.size()) {
    index_.clear();
    for (size_t i = 0; i < names.size(); ++i) index_.emplace(names[i], static_cast<uint32_t>(i));
  }
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &members[it->second];
}

FieldShape& FieldShape::add_member(const std::string& name) {
  names.push_back(name);
  members.emplace_back();
  if (!index_.empty() || names.size() > 8) index_.emplace(name, static_cast<uint32_t>(names.size() - 1));
  return members.back();
}

void BatchShape::add(const boost::json::object& event) {
  ++events;
  add_object(root, event, 0, nodes, /*bounded=*/false);
}

void BatchShape::merge(const BatchShape& other) {
  events += other.events;
  merge_into(root, other.root, nodes, /*bounded=*/false);
}

boost::json::object BatchShape::to_json(bool with_counts) const {
  boost::json::object fields;
  for (size_t i = 0; i < root.names.size(); ++i) fields[root.names[i]] = field_json(root.members[i], with_counts);
  boost::json::object o;
  if (with_counts) o["events"] = events;
  o["fields"] = std::move(fields);
  return o;
}

size_t BatchShape::add_ndjson(std::string_view text) {
  // Most events fit the first block, so releasing it after each leaves nothing to free.
  constexpr size_t kArenaBytes = 64 * 1024;
  auto block = std::make_unique<unsigned char[]>(kArenaBytes);
  boost::json::monotonic_resource arena(block.get(), kArenaBytes);
  return for_each_ndjson_event(text, &arena, [this](const Event& e) { add(e); });
}

std::optional<BatchShape> BatchShape::from_json(const boost::json::value& v) {
  if (!v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  BatchShape shape;
  bool ok = true;
  shape.events = get_count(o, "events", ok);
  auto it = o.find("fields");
  if (!ok || it == o.end() || !it->value().is_object()) return std::nullopt;
  for (const auto& kv : it->value().get_object()) {
    if (shape.root.member(std::string(kv.key()))) return std::nullopt;
    if (!field_from_json(kv.value(), shape.root.add_member(std::string(kv.key())), 1)) return std::nullopt;
  }
  return shape;
}

// --- ShapeBuilder: BatchShape::add's rules (add_object, add_value), one parse event at a time.

void ShapeBuilder::begin_event() {
  frames_.clear();
  frames_.push_back(Frame{&shape_.root, false, /*bounded=*/false, 0, 0});
  member_ = time_field_ = nullptr;
}

void ShapeBuilder::end_event() {
  ++shape_.events;
  frames_.clear();
}

void ShapeBuilder::key(std::string_view name) {
  Frame& f = frames_.back();
  member_ = time_field_ = nullptr;
  if (!f.target || f.target->many) return;
  FieldShape& s = *f.target;
  FieldShape* m = nullptr;
  if (f.next < s.names.size() && s.names[f.next] == name) {
    m = &s.members[f.next];
  } else {
    key_.assign(name);
    m = s.member(key_);
  }
  if (!m) {
    if (f.bounded && (s.names.size() >= BatchShape::kMaxObjectKeys || shape_.nodes >= BatchShape::kMaxNodes)) {
      clear_members(s);
      f.target = nullptr;  // the rest of this object is not tracked
      return;
    }
    key_.assign(name);
    m = &s.add_member(key_);
    if (f.bounded) ++shape_.nodes;
  }
  ++f.next;
  member_ = m;
  if (!f.bounded && (name == "_time" || name == "_received")) time_field_ = m;
}

FieldShape* ShapeBuilder::value_shape() {
  Frame& f = frames_.back();
  if (!f.array) {
    FieldShape* m = member_;
    member_ = nullptr;
    return m;
  }
  if (!f.target) return nullptr;
  if (f.target->items.empty()) f.target->items.emplace_back();
  return &f.target->items[0];
}

void ShapeBuilder::not_a_time() {
  if (time_field_) ++time_field_->bad_time;
  time_field_ = nullptr;
}

FieldShape* ShapeBuilder::add_value(JsonKind kind) {
  if (kind != kKindString && kind != kKindInt && kind != kKindUint && kind != kKindFloat) not_a_time();
  FieldShape* s = value_shape();
  if (s) {
    ++s->count;
    s->kinds |= kind;
  }
  return s;
}

void ShapeBuilder::scalar(JsonKind kind) { add_value(kind); }

void ShapeBuilder::time_string(std::string_view text) {
  if (time_field_ && !parse_rfc3339(text, /*require_offset=*/false)) ++time_field_->bad_time;
  time_field_ = nullptr;
}

void ShapeBuilder::time_number(double n) {
  if (time_field_ && !parse_epoch_time(n)) ++time_field_->bad_time;
  time_field_ = nullptr;
}

void ShapeBuilder::begin_object() {
  const size_t depth = frames_.back().depth + 1;
  FieldShape* s = add_value(kKindObject);
  if (s) {
    if (s->many) {
      s = nullptr;
    } else if (depth > kMaxDepth) {
      clear_members(*s);
      s = nullptr;
    }
  }
  frames_.push_back(Frame{s, false, true, depth, 0});
}

void ShapeBuilder::end_object() {
  frames_.pop_back();
  member_ = nullptr;
}

void ShapeBuilder::begin_array() {
  const size_t depth = frames_.back().depth + 1;
  FieldShape* s = add_value(kKindArray);
  if (s && depth > kMaxDepth) s = nullptr;
  frames_.push_back(Frame{s, true, true, depth, 0});
}

void ShapeBuilder::end_array() {
  frames_.pop_back();
  member_ = nullptr;
}

}  // namespace bf
