#include "common/options.h"

#include <boost/json.hpp>

#include <cmath>
#include <stdexcept>

namespace bf {

namespace json = boost::json;

namespace {

// ECMA-262 patterns for what ConfigNode::bytes and ::duration accept.
constexpr const char* kSizePattern = "^[0-9]+(\\.[0-9]+)? *([bB]|[kKmMgG]([iI]?[bB])?|[tT][iI]?[bB])?$";
constexpr const char* kDurationPattern = "^(0|[0-9]+(\\.[0-9]+)?([mM][sS]|[sSmMhHdD]))$";

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (!text.empty() && pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    out.push_back(text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// The default in JSON, typed as the option.
json::value default_json(const OptionSpec& o) {
  const std::string& d = *o.default_value;
  try {
    switch (o.type) {
      case OptionType::integer: return json::value(static_cast<std::int64_t>(std::stoll(d)));
      case OptionType::number: return json::value(std::stod(d));
      case OptionType::boolean: return json::value(d == "true");
      case OptionType::size:
        if (all_digits(d)) return json::value(static_cast<std::uint64_t>(std::stoull(d)));
        return json::value(d);
      case OptionType::string_list: {
        json::array a;
        for (auto& s : split_list(d)) a.emplace_back(s);
        return a;
      }
      case OptionType::string_map:
      case OptionType::any: return json::parse(d);
      case OptionType::string:
      case OptionType::duration: return json::value(d);
    }
  } catch (const std::exception& e) {
    throw std::logic_error("option '" + o.name + "': default '" + d + "' does not fit its type: " + e.what());
  }
  return json::value(d);
}

json::value bound_json(OptionType type, double v) {
  if (type == OptionType::number) return json::value(v);
  return json::value(option_bound(v));
}

json::object property_schema(const OptionSpec& o) {
  json::object p;
  switch (o.type) {
    case OptionType::string: p["type"] = "string"; break;
    case OptionType::integer: p["type"] = "integer"; break;
    case OptionType::number: p["type"] = "number"; break;
    case OptionType::boolean: p["type"] = "boolean"; break;
    case OptionType::size:
      // A count of bytes, or a string with a unit; minimum/maximum apply to the count.
      p["type"] = json::array{"integer", "string"};
      p["pattern"] = kSizePattern;
      break;
    case OptionType::duration:
      p["type"] = "string";
      p["pattern"] = kDurationPattern;
      break;
    case OptionType::string_list:  // one string is a list of one
      p["type"] = json::array{"array", "string"};
      p["items"] = json::object{{"type", "string"}};
      break;
    case OptionType::string_map:
      p["type"] = "object";
      p["additionalProperties"] = json::object{{"type", "string"}};
      break;
    case OptionType::any: break;  // no "type": any JSON value
  }
  if (o.default_value) p["default"] = default_json(o);
  std::string description = o.description;
  if (!o.default_value && !o.default_note.empty()) description += " (default: " + o.default_note + ")";
  p["description"] = description;
  if (!o.allowed.empty()) {
    json::array e;
    for (const auto& a : o.allowed) e.emplace_back(a);
    if (o.type == OptionType::string_list) p["items"].as_object()["enum"] = std::move(e);  // each element
    else p["enum"] = std::move(e);
  }
  const bool bounded = o.type == OptionType::integer || o.type == OptionType::number || o.type == OptionType::size;
  if (bounded && o.minimum) p["minimum"] = bound_json(o.type, *o.minimum);
  if (bounded && o.maximum) p["maximum"] = bound_json(o.type, *o.maximum);
  return p;
}

json::object object_schema(std::string_view group) {
  json::object s;
  s["type"] = "object";
  s["description"] = "the `" + std::string(group) + ".*` keys, as a mapping";
  s["properties"] = json::object{};
  s["additionalProperties"] = false;
  return s;
}

// Adds option `o` under `schema`, descending into nested objects for dotted names.
void add_property(json::object& schema, const OptionSpec& o, std::string_view name) {
  const size_t dot = name.find('.');
  json::object& props = schema["properties"].as_object();
  if (dot == std::string_view::npos) {
    props[name] = property_schema(o);
    if (o.required) {
      if (!schema.contains("required")) schema["required"] = json::array{};
      schema["required"].as_array().emplace_back(name);
    }
    return;
  }
  const std::string_view group = name.substr(0, dot);
  if (!props.contains(group)) props[group] = object_schema(group);
  add_property(props[group].as_object(), o, name.substr(dot + 1));
}

std::string quoted_list(const std::vector<std::string>& keys, const char* conj) {
  std::string out;
  for (size_t i = 0; i < keys.size(); ++i)
    out += (i == 0 ? "" : i + 1 == keys.size() ? std::string(" ") + conj + " " : ", ") + ("'" + keys[i] + "'");
  return out;
}

// The object schema that holds the constraint's keys (a nested one for dotted keys).
json::object& constraint_schema(json::object& schema, const std::string& key) {
  const size_t dot = key.find('.');
  if (dot == std::string::npos) return schema;
  json::value* group = schema["properties"].as_object().if_contains(key.substr(0, dot));
  if (!group) throw std::logic_error("constraint on undeclared option '" + key + "'");
  return constraint_schema(group->as_object(), key.substr(dot + 1));
}

std::string last_part(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

void add_constraint(json::object& root, const OptionConstraint& c) {
  json::object& s = constraint_schema(root, c.keys.front());
  if (c.kind == OptionConstraint::Kind::exactly_one_of) {
    json::array branches;
    for (const auto& k : c.keys) branches.push_back(json::object{{"required", json::array{json::value(last_part(k))}}});
    if (!s.contains("oneOf")) {
      s["oneOf"] = std::move(branches);
    } else {  // a second rule of this kind: all of them must hold
      if (!s.contains("allOf")) s["allOf"] = json::array{};
      s["allOf"].as_array().push_back(json::object{{"oneOf", std::move(branches)}});
    }
    return;
  }
  if (!s.contains("dependentRequired")) s["dependentRequired"] = json::object{};
  json::object& dep = s["dependentRequired"].as_object();
  for (const auto& k : c.keys) {
    json::value& list = dep[last_part(k)];
    if (!list.is_array()) list = json::array{};
    for (const auto& other : c.keys)
      if (other != k) list.as_array().emplace_back(last_part(other));
  }
}

json::object plugin_schema_object(const PluginSchema& plugin) {
  json::object s;
  s["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  s["title"] = plugin.type;
  s["description"] = plugin.description;
  s["type"] = "object";
  if (!plugin.options) return s;  // not declared: properties unknown, anything goes
  s["properties"] = json::object{};
  for (const auto& o : *plugin.options) add_property(s, o, o.name);
  if (plugin.common)
    for (const auto& o : *plugin.common) add_property(s, o, o.name);
  for (const auto& c : plugin.options->constraints) add_constraint(s, c);
  s["additionalProperties"] = false;
  return s;
}

void indent(std::string& out, int depth) {
  out += '\n';
  out.append(static_cast<size_t>(depth) * 2, ' ');
}

void pretty(const json::value& v, std::string& out, int depth) {
  if (v.is_object() && !v.as_object().empty()) {
    out += '{';
    bool first = true;
    for (const auto& kv : v.as_object()) {
      if (!first) out += ',';
      first = false;
      indent(out, depth + 1);
      out += json::serialize(json::value(kv.key()));
      out += ": ";
      pretty(kv.value(), out, depth + 1);
    }
    indent(out, depth);
    out += '}';
  } else if (v.is_array() && !v.as_array().empty()) {
    // Short arrays of scalars (enum, type) stay on one line.
    bool scalars = true;
    for (const auto& e : v.as_array()) scalars = scalars && !e.is_structured();
    if (scalars) {
      out += json::serialize(v);
      return;
    }
    out += '[';
    bool first = true;
    for (const auto& e : v.as_array()) {
      if (!first) out += ',';
      first = false;
      indent(out, depth + 1);
      pretty(e, out, depth + 1);
    }
    indent(out, depth);
    out += ']';
  } else {
    out += json::serialize(v);
  }
}

std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

// Control characters of a default (a tab separator) as their escapes.
std::string code_text(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out;
}

std::string bound_text(OptionType type, double v) {
  if (type == OptionType::size) return format_size(static_cast<uint64_t>(v));
  if (type == OptionType::duration) return format_duration_ms(static_cast<int64_t>(v));
  if (type == OptionType::number) {
    std::string s = json::serialize(json::value(v));
    return s;
  }
  return std::to_string(option_bound(v));
}

std::string type_text(const OptionSpec& o) {
  std::string t;
  switch (o.type) {
    case OptionType::string: t = o.allowed.empty() ? "string" : "one of"; break;
    case OptionType::integer: t = "integer"; break;
    case OptionType::number: t = "number"; break;
    case OptionType::boolean: t = "boolean"; break;
    case OptionType::size: t = "size"; break;
    case OptionType::duration: t = "duration"; break;
    case OptionType::string_list: t = "string or list of strings"; break;
    case OptionType::string_map: t = "map of strings"; break;
    case OptionType::any: t = "any value"; break;
  }
  if (!o.allowed.empty()) {
    std::string list;
    for (const auto& a : o.allowed) list += (list.empty() ? "" : ", ") + ("`" + a + "`");
    t += (o.type == OptionType::string_list ? ", each one of " : " ") + list;
  }
  if (o.minimum && o.maximum) t += ", " + bound_text(o.type, *o.minimum) + "–" + bound_text(o.type, *o.maximum);
  else if (o.minimum) t += ", ≥ " + bound_text(o.type, *o.minimum);
  else if (o.maximum) t += ", ≤ " + bound_text(o.type, *o.maximum);
  return t;
}

std::string default_text(const OptionSpec& o) {
  if (o.required) return "— (required)";
  if (o.default_value) return o.default_value->empty() ? "—" : "`" + code_text(*o.default_value) + "`";
  return o.default_note.empty() ? "—" : o.default_note;
}

}  // namespace

namespace {

void check_constraint(const OptionSpecs& specs, const std::vector<std::string>& keys) {
  if (keys.size() < 2) throw std::logic_error("an option constraint needs two keys or more");
  const auto group = [](const std::string& k) { return k.substr(0, k.rfind('.') + 1); };
  for (const auto& k : keys) {
    bool declared = false;
    for (const auto& s : specs) declared = declared || s.name == k;
    if (!declared) throw std::logic_error("option constraint names undeclared option '" + k + "'");
    if (group(k) != group(keys.front()))
      throw std::logic_error("option constraint keys '" + keys.front() + "' and '" + k + "' are in different mappings");
  }
}

}  // namespace

OptionSpecs& OptionSpecs::exactly_one_of(std::vector<std::string> keys) {
  check_constraint(*this, keys);
  constraints.push_back({OptionConstraint::Kind::exactly_one_of, std::move(keys)});
  return *this;
}

OptionSpecs& OptionSpecs::together(std::vector<std::string> keys) {
  check_constraint(*this, keys);
  constraints.push_back({OptionConstraint::Kind::together, std::move(keys)});
  return *this;
}

std::string constraint_error(const OptionConstraint& c, const std::function<bool(const std::string& key)>& is_set) {
  std::vector<std::string> set, unset;
  for (const auto& k : c.keys) (is_set(k) ? set : unset).push_back(k);
  if (c.kind == OptionConstraint::Kind::exactly_one_of) {
    if (set.size() == 1) return "";
    return "give exactly one of " + quoted_list(c.keys, "or") +
           (set.empty() ? " (none is set)" : " (" + quoted_list(set, "and") + " are set)");
  }
  if (set.empty() || unset.empty()) return "";
  return "set " + quoted_list(c.keys, "and") + " together (" + quoted_list(set, "and") +
         (set.size() == 1 ? " is" : " are") + " set, " + quoted_list(unset, "and") + (unset.size() == 1 ? " is" : " are") +
         " not)";
}

std::string constraint_text(const OptionConstraint& c) {
  std::string keys;
  for (const auto& k : c.keys) keys += (keys.empty() ? "`" : ", `") + k + "`";
  return c.kind == OptionConstraint::Kind::exactly_one_of ? "Exactly one of " + keys + "."
                                                          : "Set together or not at all: " + keys + ".";
}

int64_t option_bound(double v) {
  if (v >= 9223372036854775807.0) return INT64_MAX;
  if (v <= -9223372036854775808.0) return INT64_MIN;
  return static_cast<int64_t>(v);
}

std::string format_size(uint64_t bytes) {
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"TiB", 1ull << 40}, {"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}};
  for (const auto& [unit, mult] : kUnits)
    if (bytes >= mult && bytes % mult == 0) return std::to_string(bytes / mult) + unit;
  return std::to_string(bytes);
}

std::string format_duration_ms(int64_t ms) {
  if (ms == 0) return "0";
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
  for (const auto& [unit, mult] : kUnits)
    if (ms % mult == 0) return std::to_string(ms / mult) + unit;
  return std::to_string(ms) + "ms";
}

std::string plugin_json_schema(const PluginSchema& plugin) {
  std::string out;
  pretty(plugin_schema_object(plugin), out, 0);
  return out;
}

std::string plugins_schema_document(const std::vector<PluginSchema>& sources, const std::vector<PluginSchema>& steps,
                                    const std::vector<PluginSchema>& sinks) {
  json::object doc;
  for (auto [kind, plugins] : {std::pair{"sources", &sources}, {"steps", &steps}, {"sinks", &sinks}}) {
    json::object& o = doc[kind].emplace_object();
    for (const auto& p : *plugins) o[p.type] = plugin_schema_object(p);
  }
  std::string out;
  pretty(doc, out, 0);
  out += '\n';
  return out;
}

std::string options_markdown_table(const OptionSpecs& options) {
  std::string out = "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& o : options)
    out += "| `" + o.name + "` | " + cell(type_text(o)) + " | " + cell(default_text(o)) + " | " + cell(o.description) +
           " |\n";
  if (!options.constraints.empty()) out += '\n';
  for (const auto& c : options.constraints) out += constraint_text(c) + '\n';
  return out;
}

std::string update_option_tables(std::string_view doc,
                                 const std::function<const OptionSpecs*(const std::string& kind)>& find) {
  static constexpr std::string_view kOpen = "<!-- options: ";
  static constexpr std::string_view kOpenEnd = " -->\n";
  static constexpr std::string_view kClose = "<!-- /options -->";
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t open = doc.find(kOpen, pos);
    if (open == std::string_view::npos) break;
    const size_t name_start = open + kOpen.size();
    const size_t name_end = doc.find(kOpenEnd, name_start);
    if (name_end == std::string_view::npos || doc.substr(name_start, name_end - name_start).find('\n') != std::string_view::npos)
      throw std::runtime_error("option table marker without ' -->' at offset " + std::to_string(open));
    const std::string kind(doc.substr(name_start, name_end - name_start));
    const size_t body = name_end + kOpenEnd.size();
    const size_t close = doc.find(kClose, body);
    if (close == std::string_view::npos) throw std::runtime_error("option table '" + kind + "' is not closed by " + std::string(kClose));
    const OptionSpecs* specs = find(kind);
    if (!specs) throw std::runtime_error("option table for unknown plugin '" + kind + "'");
    out.append(doc.substr(pos, body - pos));
    out += options_markdown_table(*specs);
    pos = close;
  }
  out.append(doc.substr(pos));
  return out;
}

}  // namespace bf
