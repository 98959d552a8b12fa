// grok: named patterns over RE2.
//   {grok: {field: message, patterns: ["%{SYSLOGBASE} %{GREEDYDATA:msg}"],
//           pattern_definitions: {ID: "[a-z]{3}-[0-9]+"}, target: parsed}}
// %{NAME} inserts a pattern, %{NAME:field} captures it as a field (a dotted path),
// %{NAME:field:int|float} converts the capture. Patterns are tried in order and the
// first match wins; none matching fails the event (on_mismatch: keep passes it on).
// Plain (?P<name>…) groups capture too.
#include <re2/re2.h>

#include <set>

#include "piper/expr/expr.h"
#include "piper/grok_patterns.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

enum class Conv { none, int_, float_ };
struct Capture {
  int group;  // RE2 submatch index
  FieldPath field;
  Conv conv;
};
struct Compiled {
  std::unique_ptr<RE2> re;
  std::vector<Capture> captures;
  int groups = 0;
};

// Expands %{…} recursively into one RE2 pattern with named groups _gN.
class Expander {
 public:
  Expander(const std::map<std::string, std::string>& custom, const StepOptions& o) : custom_(custom), o_(o) {}
  std::string expand(const std::string& pattern, int depth) {
    if (depth > 32) o_.fail("patterns", "pattern definitions nest deeper than 32 levels (a cycle?)");
    std::string out;
    size_t pos = 0;
    while (true) {
      size_t at = pattern.find("%{", pos);
      if (at == std::string::npos) break;
      out += pattern.substr(pos, at - pos);
      size_t end = pattern.find('}', at);
      if (end == std::string::npos) o_.fail("patterns", "unclosed %{ in '" + pattern + "'");
      std::string ref = pattern.substr(at + 2, end - at - 2);
      pos = end + 1;
      std::string name = ref, field, type;
      if (auto c = ref.find(':'); c != std::string::npos) {
        name = ref.substr(0, c);
        field = ref.substr(c + 1);
        if (auto c2 = field.find(':'); c2 != std::string::npos) {
          type = field.substr(c2 + 1);
          field = field.substr(0, c2);
        }
      }
      const std::string* body = lookup(name);
      if (!body) o_.fail("patterns", "unknown grok pattern '" + name + "'");
      if (active_.count(name)) o_.fail("patterns", "grok pattern '" + name + "' refers to itself");
      active_.insert(name);
      std::string inner = expand(*body, depth + 1);
      active_.erase(name);
      if (field.empty()) {
        out += "(?:" + inner + ")";
        continue;
      }
      Conv conv = Conv::none;
      if (type == "int" || type == "long") conv = Conv::int_;
      else if (type == "float" || type == "double") conv = Conv::float_;
      else if (!type.empty()) o_.fail("patterns", "unknown capture type '" + type + "' in %{" + ref + "} (int, float)");
      FieldPath path;
      try {
        path = FieldPath::parse(field);
      } catch (const PipelineError& e) {
        o_.fail("patterns", e.what());
      }
      std::string group = "_g" + std::to_string(pending_.size());
      pending_.push_back({group, std::move(path), conv});
      out += "(?P<" + group + ">" + inner + ")";
    }
    return out + pattern.substr(pos);
  }
  struct Pending {
    std::string group;
    FieldPath field;
    Conv conv;
  };
  std::vector<Pending> pending_;

 private:
  const std::string* lookup(const std::string& name) const {
    if (auto it = custom_.find(name); it != custom_.end()) return &it->second;
    const auto& lib = grok_library();
    if (auto it = lib.find(name); it != lib.end()) return &it->second;
    return nullptr;
  }
  const std::map<std::string, std::string>& custom_;
  const StepOptions& o_;
  std::set<std::string> active_;
};

class Grok final : public Transform {
 public:
  Grok(FieldPath field, std::optional<FieldPath> target, std::vector<Compiled> patterns, bool keep_mismatch)
      : field_(std::move(field)), target_(std::move(target)), patterns_(std::move(patterns)), keep_mismatch_(keep_mismatch) {}
  StepResult apply(Event& e, std::string& error) const override {
    bool present;
    const boost::json::string* s = string_field(e, field_, present, error);
    if (!s) return present ? StepResult::fail : StepResult::keep;
    re2::StringPiece text(s->data(), s->size());
    std::vector<re2::StringPiece> groups;
    for (const auto& p : patterns_) {
      groups.assign(static_cast<size_t>(p.groups) + 1, re2::StringPiece());
      if (!p.re->Match(text, 0, text.size(), RE2::UNANCHORED, groups.data(), p.groups + 1)) continue;
      boost::json::object found;
      std::vector<std::pair<const FieldPath*, boost::json::value>> values;
      for (const auto& c : p.captures) {
        const re2::StringPiece& g = groups[static_cast<size_t>(c.group)];
        if (g.data() == nullptr) continue;  // an optional part that did not take part
        boost::json::value v = boost::json::string(std::string_view(g.data(), g.size()));
        if (c.conv == Conv::int_) {
          auto n = value_to_int(v);
          if (!n) continue;
          v = *n;
        } else if (c.conv == Conv::float_) {
          auto d = value_to_float(v);
          if (!d) continue;
          v = *d;
        }
        values.emplace_back(&c.field, std::move(v));
      }
      // Values are copied out of the field before any is written (a capture may replace it).
      if (target_) {
        Event sub;
        for (auto& [f, v] : values) set_field(sub, *f, std::move(v));
        set_field(e, *target_, std::move(sub));
      } else {
        for (auto& [f, v] : values) set_field(e, *f, std::move(v));
      }
      return StepResult::keep;
    }
    if (keep_mismatch_) return StepResult::keep;
    error = "field '" + field_name(field_) + "' matches none of the patterns: " + preview(*s);
    return StepResult::fail;
  }

 private:
  FieldPath field_;
  std::optional<FieldPath> target_;
  std::vector<Compiled> patterns_;
  bool keep_mismatch_;
};

}  // namespace

TransformFactory grok_transform() {
  return {"grok", "Parse a string field (default message) with grok patterns (%{NAME:field:type}) on RE2; pattern_definitions, target, on_mismatch",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto field = o.field("field");
            std::optional<FieldPath> target;
            if (o.has("target")) target = o.field("target");
            std::map<std::string, std::string> custom;
            if (o.has("pattern_definitions")) {
              for (const auto& kv : o.object("pattern_definitions"))  // strings: checked by the declaration
                custom[std::string(kv.key())] = std::string(kv.value().get_string());
            }
            std::vector<Compiled> compiled;
            for (const auto& pattern : o.str_list("patterns")) {
              Expander x(custom, o);
              std::string regex = x.expand(pattern, 0);
              RE2::Options opts;
              opts.set_log_errors(false);
              opts.set_max_mem(64 << 20);  // big alternations (IPV6 in COMBINEDAPACHELOG) need more than the 8 MiB default
              Compiled c;
              c.re = std::make_unique<RE2>(regex, opts);
              if (!c.re->ok()) o.fail("patterns", "'" + pattern + "': invalid regex: " + c.re->error());
              c.groups = c.re->NumberOfCapturingGroups();
              const auto& named = c.re->NamedCapturingGroups();
              for (const auto& p : x.pending_) c.captures.push_back({named.at(p.group), p.field, p.conv});
              for (const auto& [name, index] : named) {  // the user's own (?P<name>…) groups
                if (name.rfind("_g", 0) == 0) continue;
                try {
                  c.captures.push_back({index, FieldPath::parse(name), Conv::none});
                } catch (const PipelineError& e) {
                  o.fail("patterns", e.what());
                }
              }
              compiled.push_back(std::move(c));
            }
            if (compiled.empty()) o.fail("patterns", "no patterns given");
            std::string mismatch = o.choice("on_mismatch");
            return std::make_unique<Grok>(std::move(field), std::move(target), std::move(compiled), mismatch == "keep");
          },
          {
              Option("patterns", OptionType::string_list,
                     "grok patterns (%{NAME}, %{NAME:field}, %{NAME:field:int|float}), tried in order; the first match wins")
                  .mandatory(),
              Option("field", OptionType::string, "the string field parsed").def("message"),
              Option("pattern_definitions", OptionType::string_map,
                     "NAME → pattern, may use %{…}; overrides the library's patterns of that name")
                  .def("{}"),
              Option("target", OptionType::string, "an object field for the captures").note("into the event"),
              Option("on_mismatch", OptionType::string, "when no pattern matches: fail the event, or keep it unchanged")
                  .one_of({"fail", "keep"})
                  .def("fail"),
          }};
}

}  // namespace bf
