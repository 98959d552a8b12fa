#pragma once
// A plugin's options, declared once (in the Fluent Bit manner): name, type, default,
// description and the allowed values or bounds. From the same declaration come the
// JSON Schema that `bytefreezer plugins --schema` prints (the control UI builds its
// forms from it) and the option tables in docs/. Sources fill their settings from it
// with OptionTable (common/option_table.h); pipeline steps can declare theirs in
// TransformFactory::options. Light header: no Boost, no YAML.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bf {

enum class OptionType {
  string,
  integer,
  number,
  boolean,
  size,         // "64MiB", "10MB", 1024 -> bytes
  duration,     // "250ms", "5s", "2m", "1h", "1d"
  string_list,  // a list of strings (or one string)
  string_map,   // a mapping of names to strings (grok's pattern_definitions)
  any,          // any JSON/YAML value (a step's `value`)
};

struct OptionSpec {
  std::string name;  // "max_message"; "tls.cert_file" is key cert_file of the mapping tls
  OptionType type = OptionType::string;
  std::string description;
  // The default as written in a config file ("64KiB", "auto", "true", "1024"), when
  // there is a fixed one; `default_note` describes a computed one ("<type>:<port>").
  std::optional<std::string> default_value;
  std::string default_note;
  bool required = false;
  std::vector<std::string> allowed;  // enum
  std::optional<double> minimum, maximum;  // integer/number; size in bytes
};

// A rule over several options of one plugin, checked when its config is read
// (OptionTable::read for sources, StepOptions::check when a pipeline is compiled) and
// expressed in its JSON Schema. Keys are option names; dotted ones ("tls.cert_file")
// must all lie in the same mapping.
struct OptionConstraint {
  enum class Kind {
    exactly_one_of,  // one and only one of the keys is set (schema: oneOf of required)
    together,        // all of the keys are set, or none (schema: dependentRequired)
  };
  Kind kind = Kind::exactly_one_of;
  std::vector<std::string> keys;
};

// A plugin's options in declaration order, with the rules over several of them.
struct OptionSpecs : std::vector<OptionSpec> {
  using std::vector<OptionSpec>::vector;
  std::vector<OptionConstraint> constraints;
  OptionSpecs& exactly_one_of(std::vector<std::string> keys);
  OptionSpecs& together(std::vector<std::string> keys);
};

// What breaks `c` ("give exactly one of 'field' or 'fields' (both are set)"; "" when
// it holds); `is_set(key)` tells whether the config sets option `key`.
std::string constraint_error(const OptionConstraint& c, const std::function<bool(const std::string& key)>& is_set);
// The constraint as a sentence for the docs ("Exactly one of `field`, `fields`.").
std::string constraint_text(const OptionConstraint& c);

// Declaring an option in one expression (a pipeline step's table, transform.h):
//   Option("rate", OptionType::integer, "keep one event in rate").mandatory().range(1, 1e12)
struct Option : OptionSpec {
  Option(std::string name_, OptionType type_, std::string description_) {
    name = std::move(name_);
    type = type_;
    description = std::move(description_);
  }
  Option& def(std::string value) {  // the default, as one would write it
    default_value = std::move(value);
    return *this;
  }
  Option& note(std::string text) {  // a default the plugin computes, described
    default_note = std::move(text);
    return *this;
  }
  Option& mandatory() {
    required = true;
    return *this;
  }
  Option& one_of(std::vector<std::string> values) {
    allowed = std::move(values);
    return *this;
  }
  Option& range(double min, double max) {
    minimum = min;
    maximum = max;
    return *this;
  }
};

// A bound (OptionSpec::minimum/maximum) as an integer, saturating at the int64 limits.
int64_t option_bound(double v);

// "65536" -> "64KiB", 1500 -> "1500"; durations in ms -> "10m", "500ms". Used for
// defaults so that docs and schema show what one would write.
std::string format_size(uint64_t bytes);
std::string format_duration_ms(int64_t ms);

// One plugin for the schema document.
struct PluginSchema {
  std::string type;         // "syslog_udp", "grok"
  std::string description;
  const OptionSpecs* options = nullptr;  // null: the plugin declares no table yet
  const OptionSpecs* common = nullptr;   // options every plugin of its kind takes (a step's `if`)
};

// One JSON Schema (draft 2020-12) object schema for a plugin's options: properties
// each with type, default, description, enum / minimum / maximum where known; nested
// mappings (tls.*) as nested object schemas; additionalProperties false; constraints
// as oneOf (a branch `required` per key) and dependentRequired.
std::string plugin_json_schema(const PluginSchema& plugin);
// {"sources": {"<type>": <schema>, ...}, "steps": {"<kind>": <schema>, ...},
//  "sinks": {"<type>": <schema>, ...}}, indented.
std::string plugins_schema_document(const std::vector<PluginSchema>& sources, const std::vector<PluginSchema>& steps,
                                    const std::vector<PluginSchema>& sinks = {});

// A markdown table (| key | type | default | meaning |) of the options, then a line
// per constraint.
std::string options_markdown_table(const OptionSpecs& options);

// Rewrites every generated block of a document:
//   <!-- options: KIND -->
//   ...table...
//   <!-- /options -->
// with options_markdown_table(*find(KIND)). An unknown KIND or an unclosed block
// throws std::runtime_error naming it.
std::string update_option_tables(std::string_view doc,
                                 const std::function<const OptionSpecs*(const std::string& kind)>& find);

}  // namespace bf
