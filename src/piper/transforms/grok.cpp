// grok: named patterns over RE2.
//   {grok: {field: message, patterns: ["%{SYSLOGBASE} %{GREEDYDATA:msg}"],
//           pattern_definitions: {ID: "[a-z]{3}-[0-9]+"}, target: parsed}}
// %{NAME} inserts a pattern, %{NAME:field} captures it as a field (a dotted path),
// %{NAME:field:int|float} converts the capture. Patterns are tried in order and the
// first match wins; none matching fails the event (on_mismatch: keep passes it on).
// Plain (?P<name>…) groups capture too.
#include <re2/re2.h>

#include <optional>
#include <set>
#include <string_view>

#include "piper/expr/expr.h"
#include "piper/grok_patterns.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

enum class Conv { none, int_, float_ };
constexpr size_t kRoomForLaterSteps = 6;  // members reserved beyond grok's own (see apply)
constexpr int kTail = -1;  // Capture::group of the text after a head match (see Compiled)
struct Capture {
  int group;  // RE2 submatch index, or kTail
  FieldPath field;
  Conv conv;
};
struct Matcher {
  std::unique_ptr<RE2> re;
  std::vector<Capture> captures;  // in the order they are written
  int groups = 0;
  // The same pattern with the library's two largest parts cut down, its groups
  // numbered alike: IPV6 replaced by a regex that matches nothing, and HOSTNAME's
  // labels ([0-9A-Za-z-]{0,62} after the first character) unbounded. Where the whole
  // match (found first, by RE2's DFA alone) holds nothing an IPv6 address needs (see
  // lean_applies: a syslog time's two colons are not enough) and no run of 64 or more
  // [0-9A-Za-z-] (so no label can reach the bound), `lean` has
  // exactly the paths of the full pattern that can match that span, in the same order
  // of preference, and anchored to it picks the same one — with a program small
  // enough for RE2's fast submatch engine (BitState) instead of its NFA.
  std::unique_ptr<RE2> lean;
};
// One pattern. Most patterns end with %{GREEDYDATA:field} (optionally then $): RE2
// has to pass its NFA over the whole line for that, though the capture is only "the
// rest". `head` is the pattern without that reference: where it matches and the rest
// of the line is ASCII without a newline (so .* takes all of it), the full pattern
// matches with the same submatches and the field is the rest — RE2's leftmost-first
// choice for the head is also the whole pattern's, since no choice of the head can
// make `.*` fail there. Elsewhere (non-ASCII or newlines after the head) `full` runs.
struct Compiled {
  Matcher full;
  std::optional<Matcher> head;  // its captures hold one kTail entry
};

// Expands %{…} recursively into one RE2 pattern with named groups _gN.
class Expander {
 public:
  // `lean`: the library's IPV6 expands to a regex that matches nothing and its
  // HOSTNAME's labels are unbounded (see Matcher::lean).
  Expander(const std::map<std::string, std::string>& custom, const StepOptions& o, bool lean = false)
      : custom_(custom), o_(o), lean_(lean) {}
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
      const bool library = !custom_.count(name);
      const bool ipv6 = library && name == "IPV6", hostname = library && name == "HOSTNAME";
      leaner_ |= ipv6 || hostname;
      std::string inner;
      if (lean_ && ipv6) {
        inner = R"([^\x00-\x{10FFFF}])";  // matches nothing
      } else if (lean_ && hostname) {
        std::string unbounded = *body;
        for (size_t at; (at = unbounded.find("{0,62}")) != std::string::npos;) unbounded.replace(at, 6, "*");
        inner = expand(unbounded, depth + 1);
      } else {
        inner = expand(*body, depth + 1);
      }
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
  bool leaner_ = false;  // the library's IPV6 or HOSTNAME was expanded: a lean program is smaller

 private:
  const std::string* lookup(const std::string& name) const {
    if (auto it = custom_.find(name); it != custom_.end()) return &it->second;
    const auto& lib = grok_library();
    if (auto it = lib.find(name); it != lib.end()) return &it->second;
    return nullptr;
  }
  const std::map<std::string, std::string>& custom_;
  const StepOptions& o_;
  bool lean_;
  std::set<std::string> active_;
};

// A trailing %{GREEDYDATA:field[:type]} (then nothing or `$`) that the head/tail split
// of Compiled can take: the head must be a plain sequence (no top-level `|`, no flag
// groups such as (?s) or (?U) that would change what `.*` or `$` mean) and
// GREEDYDATA the library's `.*`.
struct GreedyTail {
  size_t at;  // where %{ starts
  std::string ref;  // "GREEDYDATA:field[:type]"
};
std::optional<GreedyTail> greedy_tail(const std::string& pattern, const std::map<std::string, std::string>& custom) {
  if (custom.count("GREEDYDATA")) return std::nullopt;
  std::string_view p(pattern);
  if (!p.empty() && p.back() == '$') p.remove_suffix(1);
  if (p.empty() || p.back() != '}') return std::nullopt;
  const size_t at = p.rfind("%{");
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view ref = p.substr(at + 2, p.size() - at - 3);
  if (ref.substr(0, 11) != "GREEDYDATA:" || ref.find('}') != std::string_view::npos) return std::nullopt;
  int depth = 0;
  bool in_class = false;
  for (size_t i = 0; i < at; ++i) {
    const char c = p[i];
    if (c == '\\') {
      if (++i == at || p[i] == 'Q') return std::nullopt;  // the %{ escaped, or \Q…\E literal text
      continue;
    }
    if (in_class) {
      in_class = c != ']';
    } else if (c == '[') {
      in_class = true;
      if (i + 1 < at && p[i + 1] == '^') ++i;
      if (i + 1 < at && p[i + 1] == ']') ++i;  // a literal ] first in a class
    } else if (c == '(') {
      ++depth;
      if (i + 1 < at && p[i + 1] == '?' && !(p.substr(i + 2, 1) == ":" || p.substr(i + 2, 2) == "P<")) return std::nullopt;
    } else if (c == ')') {
      if (--depth < 0) return std::nullopt;
    } else if (c == '|' && depth == 0) {
      return std::nullopt;
    }
  }
  if (depth != 0 || in_class) return std::nullopt;
  return GreedyTail{at, std::string(ref)};
}

// Expands and compiles one pattern. With `tail`, the pattern is a head (see Compiled):
// its captures get a kTail entry where the tail's %{GREEDYDATA:…} stood, and a head
// RE2 rejects leaves `re` null (the full pattern then runs alone).
Matcher compile_pattern(const std::string& pattern, const std::map<std::string, std::string>& custom,
                        const StepOptions& o, const GreedyTail* tail = nullptr) {
  Expander x(custom, o);
  std::string regex = x.expand(pattern, 0);
  Expander tx(custom, o);
  if (tail) tx.expand("%{" + tail->ref + "}", 0);  // the tail's field and type, checked as the full pattern was
  RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_max_mem(64 << 20);  // big alternations (IPV6 in COMBINEDAPACHELOG) need more than the 8 MiB default
  Matcher m;
  m.re = std::make_unique<RE2>(regex, opts);
  if (!m.re->ok()) {
    if (tail) return {};
    o.fail("patterns", "'" + pattern + "': invalid regex: " + m.re->error());
  }
  m.groups = m.re->NumberOfCapturingGroups();
  const auto& named = m.re->NamedCapturingGroups();
  if (x.leaner_) {
    Expander lx(custom, o, true);
    auto lean = std::make_unique<RE2>(lx.expand(pattern, 0), opts);
    if (lean->ok() && lean->NumberOfCapturingGroups() == m.groups && lean->NamedCapturingGroups() == named)
      m.lean = std::move(lean);
  }
  for (const auto& p : x.pending_) m.captures.push_back({named.at(p.group), p.field, p.conv});
  for (const auto& p : tx.pending_) m.captures.push_back({kTail, p.field, p.conv});
  for (const auto& [name, index] : named) {  // the user's own (?P<name>…) groups
    if (name.rfind("_g", 0) == 0) continue;
    try {
      m.captures.push_back({index, FieldPath::parse(name), Conv::none});
    } catch (const PipelineError& e) {
      o.fail("patterns", e.what());
    }
  }
  return m;
}

class Grok final : public Transform {
 public:
  Grok(FieldPath field, std::optional<FieldPath> target, std::vector<Compiled> patterns, bool keep_mismatch)
      : field_(std::move(field)), target_(std::move(target)), patterns_(std::move(patterns)), keep_mismatch_(keep_mismatch) {}
  StepResult apply(Event& e, std::string& error) const override {
    bool present;
    const boost::json::string* s = string_field(e, field_, present, error);
    if (!s) return present ? StepResult::fail : StepResult::keep;
    const std::string_view text(s->data(), s->size());
    // Reused per thread: no allocation per event for the submatches.
    thread_local std::vector<re2::StringPiece> groups;
    thread_local std::vector<std::pair<const FieldPath*, boost::json::value>> values;
    for (const auto& p : patterns_) {
      const Matcher* m = &p.full;
      std::string_view tail;
      if (p.head) {
        if (!match(*p.head, text, groups)) continue;  // no head match: the full pattern cannot match
        const size_t end = static_cast<size_t>(groups[0].data() + groups[0].size() - text.data());
        tail = text.substr(end);
        if (plain_line(tail)) m = &*p.head;
      }
      if (m == &p.full && !match(p.full, text, groups)) continue;
      values.clear();
      for (const auto& c : m->captures) {
        std::string_view g;
        if (c.group == kTail) {
          g = tail;
        } else {
          const re2::StringPiece& sp = groups[static_cast<size_t>(c.group)];
          if (sp.data() == nullptr) continue;  // an optional part that did not take part
          g = std::string_view(sp.data(), sp.size());
        }
        boost::json::value v = boost::json::string(g, e.storage());  // in the event's arena
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
        Event sub(e.storage());
        for (auto& [f, v] : values) set_field(sub, *f, std::move(v));
        set_field(e, *target_, std::move(sub));
      } else {
        // One rehash at most, not one per growth step, with room for the few fields the
        // steps after grok usually add (geoip's target, lookup's columns, a set): each
        // of those would otherwise grow the table again, and rehash every key, in a
        // pass that finds the event out of cache.
        e.reserve(e.size() + values.size() + kRoomForLaterSteps);
        for (auto& [f, v] : values) set_field(e, *f, std::move(v));
      }
      values.clear();
      return StepResult::keep;
    }
    if (keep_mismatch_) return StepResult::keep;
    error = "field '" + field_name(field_) + "' matches none of the patterns: " + preview(*s);
    return StepResult::fail;
  }

 private:
  static bool match(const Matcher& m, std::string_view text, std::vector<re2::StringPiece>& groups) {
    groups.assign(static_cast<size_t>(m.groups) + 1, re2::StringPiece());
    const re2::StringPiece t(text.data(), text.size());
    if (m.lean) {
      re2::StringPiece span;
      if (!m.re->Match(t, 0, t.size(), RE2::UNANCHORED, &span, 1)) return false;
      if (lean_applies(std::string_view(span.data(), span.size()))) {
        const size_t start = static_cast<size_t>(span.data() - t.data());
        if (m.lean->Match(t, start, start + span.size(), RE2::ANCHOR_BOTH, groups.data(), m.groups + 1)) return true;
      }
    }
    return m.re->Match(t, 0, t.size(), RE2::UNANCHORED, groups.data(), m.groups + 1);
  }
  // See Matcher::lean. Every IPv6 form holds "::" except the two uncompressed ones
  // (eight groups, six groups and an IPv4 address), which are runs of [0-9A-Fa-f:.]
  // with six colons or more; HOSTNAME's labels are at most 63 of [0-9A-Za-z-].
  static bool lean_applies(std::string_view s) {
    size_t label_run = 0, colons_in_run = 0;
    char prev = 0;
    for (char c : s) {
      const bool hex = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
      if (c == ':') {
        if (prev == ':' || ++colons_in_run >= 6) return false;
      } else if (!hex && c != '.') {
        colons_in_run = 0;
      }
      const bool label = hex || (c >= 'G' && c <= 'Z') || (c >= 'g' && c <= 'z') || c == '-';
      label_run = label ? label_run + 1 : 0;
      if (label_run > 63) return false;
      prev = c;
    }
    return true;
  }
  // Text RE2's `.*$` matches whole: ASCII (its `.` matches no invalid UTF-8) without a newline.
  static bool plain_line(std::string_view s) {
    unsigned char bad = 0;
    for (char c : s) bad |= static_cast<unsigned char>((static_cast<unsigned char>(c) & 0x80) | (c == '\n'));
    return bad == 0;
  }
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
              Compiled c;
              c.full = compile_pattern(pattern, custom, o);
              if (auto tail = greedy_tail(pattern, custom)) {
                Matcher head = compile_pattern(pattern.substr(0, tail->at), custom, o, &*tail);
                if (head.re) c.head = std::move(head);
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
