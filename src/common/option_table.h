#pragma once
// OptionTable<Settings>: a plugin's options declared once (common/options.h) together
// with the settings field each one fills. The same table
//   - reads a config node into Settings: every value typed and bounds-checked, absent
//     ones set to the declared default, and
//   - refuses keys it does not declare and values of the wrong type, with a
//     ConfigError naming the file, the key path and the plugin (`context`);
//   - gives the specs for `bytefreezer plugins --schema` and the docs' tables.
//
//   struct Settings { size_t max_message; bool keep_raw; };
//   static const auto table = OptionTable<Settings>()
//       .size("max_message", &Settings::max_message, 64 * 1024, 1, 1 << 30, "longer messages are truncated")
//       .boolean("keep_raw", &Settings::keep_raw, true, "store the original line in _raw");
//   Settings s = table.read(node, "source syslog_tcp 'edge'");
//
// A field is anything std::invoke(field, settings) turns into a reference: a member
// pointer, or a lambda for a member of a member.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/options.h"

namespace bf {

// A value check: "" when fine, else what is wrong (the message of the ConfigError).
template <class T>
using OptionCheck = std::function<std::string(const T&)>;

template <class S>
class OptionTable {
 public:
  template <class F>
  OptionTable& string(std::string name, F field, std::string def, std::string description,
                      std::vector<std::string> allowed = {}, OptionCheck<std::string> check = {}) {
    OptionSpec spec = make_spec(name, OptionType::string, std::move(description), def);
    spec.allowed = allowed;
    add(std::move(spec), [=](S& s, const ConfigNode& node, const std::string& key) {
      std::string v = node.str(key, def);
      if (!allowed.empty() && !contains(allowed, v)) node.fail(key, "must be one of " + list(allowed) + ", got '" + v + "'");
      if (check)
        if (std::string err = check(v); !err.empty()) node.fail(key, err);
      assign(s, field, std::move(v));
    });
    return *this;
  }

  // A string whose default is computed by the plugin when the key is absent (the field
  // is then left as it is); `note` tells the docs what that default is.
  template <class F>
  OptionTable& computed_string(std::string name, F field, std::string note, std::string description,
                               OptionCheck<std::string> check = {}) {
    OptionSpec spec = make_spec(name, OptionType::string, std::move(description));
    spec.default_note = std::move(note);
    add(std::move(spec), [=](S& s, const ConfigNode& node, const std::string& key) {
      if (!node.has(key)) {
        node.str(key, "");  // marks it read
        return;
      }
      std::string v = node.str(key);
      if (check)
        if (std::string err = check(v); !err.empty()) node.fail(key, err);
      assign(s, field, std::move(v));
    });
    return *this;
  }

  // A string turned into the field's type by `convert`, which throws std::exception
  // with the reason when the value is not acceptable (a time zone, a path).
  template <class F, class Convert>
  OptionTable& parsed(std::string name, F field, std::string def, std::string description, Convert convert) {
    add(make_spec(name, OptionType::string, std::move(description), def),
        [=](S& s, const ConfigNode& node, const std::string& key) {
          const std::string v = node.str(key, def);
          try {
            assign(s, field, convert(v));
          } catch (const ConfigError&) {
            throw;
          } catch (const std::exception& e) {
            node.fail(key, e.what());
          }
        });
    return *this;
  }

  // One of the names in `values`, stored as its paired value (an enum).
  template <class F, class E>
  OptionTable& choice(std::string name, F field, std::vector<std::pair<std::string, E>> values, std::string def,
                      std::string description) {
    OptionSpec spec = make_spec(name, OptionType::string, std::move(description), def);
    for (const auto& v : values) spec.allowed.push_back(v.first);
    const std::vector<std::string> allowed = spec.allowed;
    add(std::move(spec), [=](S& s, const ConfigNode& node, const std::string& key) {
      const std::string v = node.str(key, def);
      for (const auto& [text, value] : values)
        if (text == v) return assign(s, field, value);
      node.fail(key, "must be one of " + list(allowed) + ", got '" + v + "'");
    });
    return *this;
  }

  template <class F>
  OptionTable& integer(std::string name, F field, int64_t def, int64_t min, int64_t max, std::string description) {
    OptionSpec spec = make_spec(name, OptionType::integer, std::move(description), std::to_string(def));
    spec.minimum = static_cast<double>(min);
    spec.maximum = static_cast<double>(max);
    add(std::move(spec), [=](S& s, const ConfigNode& node, const std::string& key) {
      const int64_t v = node.integer(key, def);
      if (v < min || v > max)
        node.fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                           std::to_string(v));
      assign(s, field, v);
    });
    return *this;
  }

  template <class F>
  OptionTable& boolean(std::string name, F field, bool def, std::string description) {
    add(make_spec(name, OptionType::boolean, std::move(description), def ? "true" : "false"),
        [=](S& s, const ConfigNode& node, const std::string& key) { assign(s, field, node.boolean(key, def)); });
    return *this;
  }

  // Bytes: "64KiB", "10MB" or a plain count.
  template <class F>
  OptionTable& size(std::string name, F field, uint64_t def, uint64_t min, uint64_t max, std::string description) {
    OptionSpec spec = make_spec(name, OptionType::size, std::move(description), format_size(def));
    spec.minimum = static_cast<double>(min);
    spec.maximum = static_cast<double>(max);
    add(std::move(spec), [=](S& s, const ConfigNode& node, const std::string& key) {
      const uint64_t v = node.bytes(key, def);
      if (v < min || v > max)
        node.fail(key, "must be between " + format_size(min) + " and " + format_size(max) + ", got " +
                           std::to_string(v) + " bytes");
      assign(s, field, v);
    });
    return *this;
  }

  template <class F>
  OptionTable& duration(std::string name, F field, std::chrono::milliseconds def, std::chrono::milliseconds min,
                        std::chrono::milliseconds max, std::string description) {
    OptionSpec spec = make_spec(name, OptionType::duration, std::move(description), format_duration_ms(def.count()));
    spec.minimum = static_cast<double>(min.count());
    spec.maximum = static_cast<double>(max.count());
    add(std::move(spec), [=](S& s, const ConfigNode& node, const std::string& key) {
      const auto v = node.duration(key, def);
      if (v < min || v > max)
        node.fail(key, "must be between " + format_duration_ms(min.count()) + " and " +
                           format_duration_ms(max.count()) + ", got " + format_duration_ms(v.count()));
      assign(s, field, v);
    });
    return *this;
  }

  // Marks an option as one the config must set (docs and schema say so; `type`, which
  // the caller already checked, is one).
  OptionTable& mark_required(const std::string& name) {
    for (auto& s : specs_)
      if (s.name == name) {
        s.required = true;
        s.default_value.reset();
        return *this;
      }
    throw std::logic_error("mark_required: no option '" + name + "'");
  }

  // Declarative rules over several options (common/options.h: OptionConstraint): in the
  // specs, so the schema and docs show them, and checked by read() before the
  // finally() rules run. Keys are option names as declared ("tls.cert_file").
  OptionTable& exactly_one_of(std::vector<std::string> keys) {
    specs_.exactly_one_of(std::move(keys));
    return *this;
  }
  OptionTable& together(std::vector<std::string> keys) {
    specs_.together(std::move(keys));
    return *this;
  }

  // Other rules over several options (one needs another's value) and computed
  // defaults; run after every option was read, in the order added. Fail with node.fail.
  OptionTable& finally(std::function<void(S&, const ConfigNode&)> rule) {
    rules_.push_back(std::move(rule));
    return *this;
  }

  // Reads `node` into `settings` (whose other fields stay as they are). Unknown keys
  // and bad values throw ConfigError naming the key and `context` ("source tcp 'edge'").
  S read(const ConfigNode& node, const std::string& context, S settings = S{}) const {
    try {
      check_keys(node, "", context);
      for (size_t i = 0; i < specs_.size(); ++i) {
        const std::string& name = specs_[i].name;
        const size_t dot = name.rfind('.');
        if (dot == std::string::npos) {
          readers_[i](settings, node, name);
        } else {
          readers_[i](settings, group(node, name.substr(0, dot)), name.substr(dot + 1));
        }
      }
      for (const auto& constraint : specs_.constraints) check_constraint(node, constraint);
      for (const auto& rule : rules_) rule(settings, node);
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      if (what.find(context) != std::string::npos) throw;
      throw ConfigError(what + " (" + context + ")");
    }
    return settings;
  }

  const OptionSpecs& specs() const { return specs_; }

 private:
  static OptionSpec make_spec(std::string name, OptionType type, std::string description,
                              std::optional<std::string> def = std::nullopt) {
    OptionSpec spec;
    spec.name = std::move(name);
    spec.type = type;
    spec.description = std::move(description);
    spec.default_value = std::move(def);
    return spec;
  }
  using Reader = std::function<void(S&, const ConfigNode& node, const std::string& key)>;

  void add(OptionSpec spec, Reader reader) {
    for (const auto& s : specs_)
      if (s.name == spec.name) throw std::logic_error("option '" + spec.name + "' declared twice");
    specs_.push_back(std::move(spec));
    readers_.push_back(std::move(reader));
  }

  template <class F, class V>
  static void assign(S& s, const F& field, V&& value) {
    auto& target = std::invoke(field, s);
    using T = std::remove_reference_t<decltype(target)>;
    if constexpr (std::is_arithmetic_v<T> && std::is_arithmetic_v<std::decay_t<V>>) {
      target = static_cast<T>(value);
    } else if constexpr (requires { std::chrono::duration_cast<T>(value); }) {
      target = std::chrono::duration_cast<T>(value);
    } else {
      target = std::forward<V>(value);
    }
  }

  static bool contains(const std::vector<std::string>& v, const std::string& x) {
    for (const auto& e : v)
      if (e == x) return true;
    return false;
  }
  static std::string list(const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? (i + 1 == v.size() ? " or '" : ", '") : "'") + v[i] + "'";
    return out;
  }

  // The mapping of a dotted group ("tls") under node.
  static ConfigNode group(const ConfigNode& node, const std::string& dotted) {
    ConfigNode n = node;
    size_t pos = 0;
    while (pos <= dotted.size()) {
      const size_t dot = dotted.find('.', pos);
      n = n.child(dotted.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos));
      if (dot == std::string::npos) break;
      pos = dot + 1;
    }
    return n;
  }

  // Whether the config sets option `dotted` (a null value counts as not set).
  static bool is_set(const ConfigNode& node, const std::string& dotted) {
    const size_t dot = dotted.find('.');
    if (dot == std::string::npos) return node.has(dotted);
    const std::string head = dotted.substr(0, dot);
    return node.has(head) && is_set(node.child(head), dotted.substr(dot + 1));
  }

  // A broken constraint fails on the mapping that holds its keys (or the plugin's node).
  static void check_constraint(const ConfigNode& node, const OptionConstraint& c) {
    const std::string err = constraint_error(c, [&](const std::string& k) { return is_set(node, k); });
    if (err.empty()) return;
    const std::string& first = c.keys.front();
    const size_t dot = first.rfind('.');
    if (dot != std::string::npos && is_set(node, first.substr(0, dot)))
      group(node, first.substr(0, dot)).fail("", err);
    node.fail("", err);
  }

  // Every key under node (whose options are named `prefix` + key) must be declared.
  void check_keys(const ConfigNode& node, const std::string& prefix, const std::string& context) const {
    for (const std::string& key : node.keys()) {
      const std::string full = prefix + key;
      bool option = false, group_prefix = false;
      for (const auto& s : specs_) {
        option = option || s.name == full;
        group_prefix = group_prefix || s.name.rfind(full + ".", 0) == 0;
      }
      if (option) continue;
      if (group_prefix) {
        check_keys(node.child(key), full + ".", context);
        continue;
      }
      std::string known;
      for (const auto& s : specs_)
        if (s.name.rfind(prefix, 0) == 0) known += (known.empty() ? "" : ", ") + s.name.substr(prefix.size());
      node.fail(key, "unknown key in " + context + " (known keys: " + known + ")");
    }
  }

  OptionSpecs specs_;
  std::vector<Reader> readers_;
  std::vector<std::function<void(S&, const ConfigNode&)>> rules_;
};

}  // namespace bf
