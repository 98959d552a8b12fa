#include "packer/schema_types.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

#include "storage/sql_engine.h"

namespace bf {

namespace {

constexpr uint8_t kNumbers = kKindInt | kKindUint | kKindFloat;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const char* kind_name(SchemaType::Kind k) {
  switch (k) {
    case SchemaType::Kind::boolean: return "BOOLEAN";
    case SchemaType::Kind::bigint: return "BIGINT";
    case SchemaType::Kind::ubigint: return "UBIGINT";
    case SchemaType::Kind::double_: return "DOUBLE";
    case SchemaType::Kind::varchar: return "VARCHAR";
    case SchemaType::Kind::timestamp: return "TIMESTAMP";
    case SchemaType::Kind::struct_: return "STRUCT";
    case SchemaType::Kind::list: return "LIST";
    case SchemaType::Kind::map: return "MAP";
  }
  return "?";
}

SchemaType scalar(SchemaType::Kind k, bool json_text = false) {
  SchemaType t;
  t.kind = k;
  t.json_text = json_text;
  return t;
}

// JSON kinds a scalar type holds as such.
uint8_t scalar_kinds(const SchemaType& t) {
  switch (t.kind) {
    case SchemaType::Kind::boolean: return kKindBool;
    case SchemaType::Kind::bigint: return kKindInt;
    case SchemaType::Kind::ubigint: return kKindUint;
    case SchemaType::Kind::double_: return kNumbers;
    default: return 0xff;
  }
}

// The scalar type for a set of (non-null) JSON kinds.
SchemaType scalar_for(uint8_t kinds) {
  if (kinds == kKindBool) return scalar(SchemaType::Kind::boolean);
  if (kinds == kKindInt) return scalar(SchemaType::Kind::bigint);
  if (kinds == kKindUint) return scalar(SchemaType::Kind::ubigint);
  if ((kinds & ~kNumbers) == 0) return scalar(SchemaType::Kind::double_);
  // Strings and anything mixed: text (objects and arrays as their JSON text).
  return scalar(SchemaType::Kind::varchar, (kinds & (kKindObject | kKindArray)) != 0 || kinds != kKindString);
}

SchemaType json_text() { return scalar(SchemaType::Kind::varchar, true); }

size_t typed_members(const FieldShape& s) {
  size_t n = 0;
  for (const auto& m : s.members)
    if (m.kinds & ~kKindNull) ++n;
  return n;
}

const SchemaField* field_by_source(const SchemaType& t, const std::string& source) {
  for (const auto& f : t.fields)
    if (f.source == source) return &f;
  return nullptr;
}

std::vector<std::string> field_names(const SchemaType& t) {
  std::vector<std::string> names;
  for (const auto& f : t.fields) names.push_back(f.name);
  return names;
}

std::string sql_list(const std::vector<std::string>& items) {
  std::string s = "[";
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + sql_quote(items[i]);
  return s + "]::VARCHAR[]";
}

std::string join_and(const std::vector<std::string>& terms) {
  std::string s;
  for (const auto& t : terms) s += (s.empty() ? "" : " AND ") + t;
  return terms.size() > 1 ? "(" + s + ")" : s;
}

// True (or unknown: SQL NULL, a missing key) when j's JSON type is one of `kinds`.
std::string kind_is(const std::string& j, const char* kinds) {
  return "coalesce(json_type(" + j + ") IN (" + kinds + "), true)";
}

}  // namespace

std::string json_key_path(const std::string& key) {
  std::string p = "$.\"";
  for (char c : key) {
    if (c == '"' || c == '\\') p += '\\';
    p += c;
  }
  return p + "\"";
}

std::string member_json(const std::string& j, const std::string& key) {
  // DuckDB's JSON paths cannot name the empty key; a MAP lookup can.
  if (key.empty()) return "(TRY_CAST(" + j + " AS MAP(VARCHAR, JSON))[''])";
  return "(" + j + " -> " + sql_quote(json_key_path(key)) + ")";
}

std::string unique_name(const std::string& key, const std::vector<std::string>& taken) {
  const std::string base = key.empty() ? "__empty" : key;  // DuckDB refuses empty names
  auto used = [&](const std::string& n) {
    const std::string l = lower(n);
    return std::any_of(taken.begin(), taken.end(), [&](const std::string& t) { return lower(t) == l; });
  };
  if (!used(base)) return base;
  for (int i = 2;; ++i) {
    std::string n = base + "__" + std::to_string(i);
    if (!used(n)) return n;
  }
}

std::string SchemaType::duckdb() const {
  switch (kind) {
    case Kind::struct_: {
      std::string s = "STRUCT(";
      for (size_t i = 0; i < fields.size(); ++i) s += (i ? ", " : "") + sql_ident(fields[i].name) + " " + fields[i].type.duckdb();
      return s + ")";
    }
    case Kind::list: return items.at(0).duckdb() + "[]";
    case Kind::map: return "MAP(VARCHAR, VARCHAR)";
    default: return kind_name(kind);
  }
}

boost::json::object SchemaType::to_json() const {
  boost::json::object o;
  std::string k = lower(kind_name(kind));
  o["kind"] = k;
  if (json_text) o["json_text"] = true;
  if (kind == Kind::struct_) {
    boost::json::array fs;
    for (const auto& f : fields) {
      boost::json::object fo{{"name", f.name}, {"type", f.type.to_json()}};
      if (f.source != f.name) fo["source"] = f.source;
      fs.push_back(std::move(fo));
    }
    o["fields"] = std::move(fs);
  }
  if (kind == Kind::list) o["items"] = items.at(0).to_json();
  return o;
}

std::optional<SchemaType> SchemaType::from_json(const boost::json::value& v) {
  const auto* o = v.if_object();
  if (!o) return std::nullopt;
  const auto* k = o->if_contains("kind");
  if (!k || !k->is_string()) return std::nullopt;
  std::optional<SchemaType> t = from_scalar_name(std::string(k->get_string()));
  if (!t) return std::nullopt;
  if (const auto* j = o->if_contains("json_text"); j && j->is_bool()) t->json_text = j->get_bool();
  if (t->kind == Kind::struct_) {
    const auto* fs = o->if_contains("fields");
    if (!fs || !fs->is_array() || fs->get_array().empty()) return std::nullopt;
    for (const auto& fv : fs->get_array()) {
      const auto* fo = fv.if_object();
      if (!fo) return std::nullopt;
      const auto* n = fo->if_contains("name");
      const auto* ft = fo->if_contains("type");
      if (!n || !n->is_string() || !ft) return std::nullopt;
      auto sub = from_json(*ft);
      if (!sub) return std::nullopt;
      SchemaField f{std::string(n->get_string()), std::string(n->get_string()), std::move(*sub)};
      if (const auto* s = fo->if_contains("source"); s && s->is_string()) f.source = std::string(s->get_string());
      t->fields.push_back(std::move(f));
    }
  }
  if (t->kind == Kind::list) {
    const auto* it = o->if_contains("items");
    if (!it) return std::nullopt;
    auto sub = from_json(*it);
    if (!sub) return std::nullopt;
    t->items.push_back(std::move(*sub));
  }
  return t;
}

std::optional<SchemaType> SchemaType::from_scalar_name(const std::string& name) {
  const std::string n = lower(name);
  for (Kind k : {Kind::boolean, Kind::bigint, Kind::ubigint, Kind::double_, Kind::varchar, Kind::timestamp, Kind::struct_,
                 Kind::list, Kind::map}) {
    if (n == lower(kind_name(k))) return scalar(k);
  }
  if (n == "timestamp with time zone") return scalar(Kind::timestamp);
  return std::nullopt;
}

std::optional<SchemaType> type_from_shape(const FieldShape& s, const SchemaLimits& limits, size_t depth) {
  const uint8_t kinds = s.kinds & ~kKindNull;
  if (kinds == 0) return std::nullopt;
  if (kinds == kKindObject) {
    if (depth >= limits.max_depth) return json_text();
    if (s.many || typed_members(s) > limits.max_struct_fields)
      return limits.wide_as_map ? scalar(SchemaType::Kind::map) : json_text();
    SchemaType t = scalar(SchemaType::Kind::struct_);
    for (size_t i = 0; i < s.names.size(); ++i) {
      auto sub = type_from_shape(s.members[i], limits, depth + 1);
      if (!sub) continue;  // only nulls so far: the member comes when it has a type
      t.fields.push_back(SchemaField{unique_name(s.names[i], field_names(t)), s.names[i], std::move(*sub)});
    }
    if (t.fields.empty()) return json_text();  // only {} so far: DuckDB has no empty STRUCT
    return t;
  }
  if (kinds == kKindArray) {
    if (depth >= limits.max_depth) return json_text();
    SchemaType t = scalar(SchemaType::Kind::list);
    std::optional<SchemaType> item;
    if (!s.items.empty()) item = type_from_shape(s.items[0], limits, depth + 1);
    // Only empty arrays (or nulls in them) so far: text elements hold whatever comes.
    t.items.push_back(item ? std::move(*item) : json_text());
    return t;
  }
  return scalar_for(kinds);
}

bool evolve_type(SchemaType& t, const FieldShape& s, const SchemaLimits& limits, const std::string& path,
                 std::vector<SchemaChange>& changes, size_t depth) {
  const uint8_t kinds = s.kinds & ~kKindNull;
  if (kinds == 0) return false;
  using K = SchemaType::Kind;
  switch (t.kind) {
    case K::timestamp:
      return false;  // _time and _received: parsed, never widened
    case K::varchar:
      if (!t.json_text && kinds != kKindString) {
        t.json_text = true;
        changes.push_back(SchemaChange{path, "json_text", t.duckdb(), "", ""});
      }
      return false;
    case K::boolean:
    case K::bigint:
    case K::ubigint:
    case K::double_: {
      if ((kinds & ~scalar_kinds(t)) == 0) return false;
      const std::string from = t.duckdb();
      t = scalar_for(kinds | scalar_kinds(t));
      changes.push_back(SchemaChange{path, t.json_text ? "json_text" : "widened", t.duckdb(), from, ""});
      return false;
    }
    case K::map:
      return (kinds & ~kKindObject) != 0;
    case K::list: {
      bool overflow = (kinds & ~kKindArray) != 0;
      if (!s.items.empty()) overflow |= evolve_type(t.items[0], s.items[0], limits, path + "[]", changes, depth + 1);
      return overflow;
    }
    case K::struct_: {
      bool overflow = (kinds & ~kKindObject) != 0 || s.many;
      for (size_t i = 0; i < s.names.size(); ++i) {
        const std::string sub_path = path + "." + s.names[i];
        auto it = std::find_if(t.fields.begin(), t.fields.end(), [&](const SchemaField& f) { return f.source == s.names[i]; });
        if (it != t.fields.end()) {
          overflow |= evolve_type(it->type, s.members[i], limits, sub_path, changes, depth + 1);
          continue;
        }
        auto sub = type_from_shape(s.members[i], limits, depth + 1);
        if (!sub) continue;
        if (t.fields.size() >= limits.max_struct_fields) {
          overflow = true;  // the STRUCT stays as written; the whole value goes to the overflow column
          continue;
        }
        SchemaField f{unique_name(s.names[i], field_names(t)), s.names[i], std::move(*sub)};
        changes.push_back(SchemaChange{sub_path, "member_added", f.type.duckdb(), "", ""});
        if (f.name != f.source) changes.push_back(SchemaChange{path + "." + f.name, "renamed", f.type.duckdb(), "", f.source});
        t.fields.push_back(std::move(f));
      }
      return overflow;
    }
  }
  return false;
}

bool reads_natively(const SchemaType& t, const FieldShape& s) {
  const uint8_t kinds = s.kinds & ~kKindNull;
  if (kinds == 0) return true;
  using K = SchemaType::Kind;
  switch (t.kind) {
    case K::varchar: return true;
    case K::timestamp: return false;
    case K::boolean:
    case K::bigint:
    case K::ubigint:
    case K::double_: return (kinds & ~scalar_kinds(t)) == 0;
    case K::map: return kinds == kKindObject;
    case K::list: return kinds == kKindArray && (s.items.empty() || reads_natively(t.items[0], s.items[0]));
    case K::struct_:
      if (kinds != kKindObject || s.many) return false;
      for (const auto& f : t.fields)
        if (f.name != f.source && s.member(f.source)) return false;
      for (size_t i = 0; i < s.names.size(); ++i) {
        const SchemaField* f = field_by_source(t, s.names[i]);
        if (!f) {
          if (s.members[i].kinds & ~kKindNull) return false;  // a key the STRUCT would drop
          continue;
        }
        if (f->name != f->source || !reads_natively(f->type, s.members[i])) return false;
      }
      return true;
  }
  return false;
}

std::string fits_sql(const std::string& j, const SchemaType& t, const FieldShape& s, size_t depth) {
  const uint8_t kinds = s.kinds & ~kKindNull;
  if (kinds == 0) return "";
  using K = SchemaType::Kind;
  std::vector<std::string> terms;
  switch (t.kind) {
    case K::map:
      if (kinds & ~kKindObject) terms.push_back(kind_is(j, "'OBJECT', 'NULL'"));
      break;
    case K::list:
      if (kinds & ~kKindArray) terms.push_back(kind_is(j, "'ARRAY', 'NULL'"));
      if (!s.items.empty()) {
        const std::string x = "__bf_x" + std::to_string(depth);
        const std::string sub = fits_sql(x, t.items[0], s.items[0], depth + 1);
        if (!sub.empty())
          terms.push_back("coalesce(list_bool_and(list_transform(TRY_CAST(" + j + " AS JSON[]), " + x + " -> " + sub + ")), true)");
      }
      break;
    case K::struct_: {
      if (kinds & ~kKindObject) terms.push_back(kind_is(j, "'OBJECT', 'NULL'"));
      if (s.many) {
        std::vector<std::string> known;
        for (const auto& f : t.fields) known.push_back(f.source);
        terms.push_back("coalesce(list_has_all(" + sql_list(known) + ", json_keys(" + j + ")), true)");
      }
      for (size_t i = 0; i < s.names.size(); ++i) {
        const std::string member = member_json(j, s.names[i]);
        if (const SchemaField* f = field_by_source(t, s.names[i])) {
          const std::string sub = fits_sql(member, f->type, s.members[i], depth + 1);
          if (!sub.empty()) terms.push_back(sub);
        } else if (s.members[i].kinds & ~kKindNull) {
          terms.push_back(kind_is(member, "'NULL'"));  // a key beyond max_struct_fields
        }
      }
      break;
    }
    default:
      break;  // scalars were widened to hold every kind seen
  }
  return join_and(terms);
}

std::string convert_sql(const std::string& j, const SchemaType& t, size_t depth) {
  using K = SchemaType::Kind;
  switch (t.kind) {
    case K::varchar:
      return "(CASE json_type(" + j + ") WHEN 'NULL' THEN NULL WHEN 'VARCHAR' THEN " + j + " ->> '$' ELSE CAST(" + j +
             " AS VARCHAR) END)";
    case K::map:
      return "(CASE WHEN json_type(" + j + ") = 'OBJECT' THEN TRY_CAST(" + j + " AS MAP(VARCHAR, VARCHAR)) END)";
    case K::list: {
      const std::string x = "__bf_x" + std::to_string(depth);
      return "(CASE WHEN json_type(" + j + ") = 'ARRAY' THEN list_transform(TRY_CAST(" + j + " AS JSON[]), " + x + " -> " +
             convert_sql(x, t.items[0], depth + 1) + ") END)";
    }
    case K::struct_: {
      std::string members;
      for (const auto& f : t.fields) {
        const std::string member = member_json(j, f.source);
        members += (members.empty() ? "" : ", ") + sql_ident(f.name) + " := " + convert_sql(member, f.type, depth + 1);
      }
      return "(CASE WHEN json_type(" + j + ") = 'OBJECT' THEN struct_pack(" + members + ") END)";
    }
    default:
      return "TRY_CAST(" + j + " AS " + t.duckdb() + ")";
  }
}

}  // namespace bf
