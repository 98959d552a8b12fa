// Helpers shared by several transforms (declared in transforms.h).
#include "piper/transforms/case_map.h"
#include "piper/transforms/transforms.h"

namespace bf {

std::string field_name(const FieldPath& path) {
  std::string out;
  for (const auto& p : path.parts) out += (out.empty() ? "" : ".") + p;
  return out;
}

const boost::json::string* string_field(Event& event, const FieldPath& path, bool& present, std::string& error) {
  boost::json::value* v = find_field(event, path);
  present = v != nullptr;
  if (!v) return nullptr;
  if (!v->is_string()) {
    error = "field '" + field_name(path) + "' is not a string";
    return nullptr;
  }
  return &v->get_string();
}

bool glob_match(std::string_view g, std::string_view n) {
  // Iterative, with one backtrack point: linear enough for field names.
  size_t gi = 0, ni = 0, star = std::string_view::npos, mark = 0;
  while (ni < n.size()) {
    if (gi < g.size() && (g[gi] == '?' || g[gi] == n[ni])) {
      ++gi;
      ++ni;
    } else if (gi < g.size() && g[gi] == '*') {
      star = gi++;
      mark = ni;
    } else if (star != std::string_view::npos) {
      gi = star + 1;
      ni = ++mark;
    } else {
      return false;
    }
  }
  while (gi < g.size() && g[gi] == '*') ++gi;
  return gi == g.size();
}

bool matches_any(const std::vector<std::string>& globs, std::string_view name) {
  for (const auto& g : globs)
    if (glob_match(g, name)) return true;
  return false;
}

bool read_csv_record(std::string_view s, size_t& i, char delim, char quote, bool lines, std::vector<std::string>& out) {
  auto at_end = [&] { return i >= s.size() || (lines && s[i] == '\n'); };
  std::string cur;
  while (true) {
    cur.clear();
    if (i < s.size() && s[i] == quote) {
      ++i;
      while (true) {
        if (i >= s.size()) return false;
        if (s[i] == quote) {
          if (i + 1 < s.size() && s[i + 1] == quote) {
            cur += quote;
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        cur += s[i++];
      }
    }
    while (!at_end() && s[i] != delim) cur += s[i++];  // an unquoted value, or text after the closing quote
    if (!cur.empty() && cur.back() == '\r' && at_end()) cur.pop_back();
    out.push_back(cur);
    if (at_end()) {
      if (i < s.size()) ++i;  // the newline
      return true;
    }
    ++i;  // the delimiter
  }
}

std::string preview(std::string_view text) {
  constexpr size_t kMax = 64;
  if (text.size() <= kMax) return std::string(text);
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole code points
  return std::string(text.substr(0, cut)) + "…";
}

StepResult StringFieldsStep::apply(Event& event, std::string&) const {
  for (const auto& f : fields_) {
    boost::json::value* v = find_field(event, f);
    if (v && v->is_string()) rewrite(v->get_string());
  }
  return StepResult::keep;
}

namespace {
class CaseMap final : public StringFieldsStep {
 public:
  CaseMap(std::vector<FieldPath> fields, int (*map)(int)) : StringFieldsStep(std::move(fields)), map_(map) {}

 protected:
  void rewrite(boost::json::string& s) const override {
    for (char& c : s) c = static_cast<char>(map_(static_cast<unsigned char>(c)));
  }

 private:
  int (*map_)(int);
};
}  // namespace

std::unique_ptr<Transform> make_case_map_step(std::vector<FieldPath> fields, int (*map)(int)) {
  return std::make_unique<CaseMap>(std::move(fields), map);
}

char single_char(const StepOptions& o, const std::string& key) {
  std::string v = o.str(key);
  if (v == "\\t") v = "\t";
  if (v.size() != 1) o.fail(key, "must be one character");
  return v[0];
}

namespace {
boost::json::object* merge_target(Event& e, const std::optional<FieldPath>& target) {
  boost::json::value* at = target ? find_field(e, *target) : nullptr;
  return !target ? &e : (at && at->is_object()) ? &at->get_object() : nullptr;
}
}  // namespace

void merge_into(Event& e, const std::optional<FieldPath>& target, boost::json::object&& rec) {
  boost::json::object* into = merge_target(e, target);
  if (!into) return set_field(e, *target, std::move(rec));
  for (auto& kv : rec) member(*into, kv.key()) = std::move(kv.value());
}

void merge_into(Event& e, const std::optional<FieldPath>& target, const boost::json::object& rec) {
  boost::json::object* into = merge_target(e, target);
  // Copied once, straight into the event's storage (no temporary on the heap).
  if (!into) return set_field(e, *target, boost::json::value(rec, e.storage()));
  into->reserve(into->size() + rec.size());
  for (const auto& kv : rec) member(*into, kv.key()) = kv.value();
}

std::vector<FieldPath> field_or_fields(const StepOptions& o) {
  bool one = o.has("field"), many = o.has("fields");
  if (one == many) o.fail("give exactly one of 'field' or 'fields'");
  if (one) return {o.field("field")};
  return o.fields("fields");
}

OptionSpecs field_or_fields_options(const std::string& what, OptionSpecs more) {
  OptionSpecs specs{
      Option("field", OptionType::string, "one field " + what + "; give field or fields"),
      Option("fields", OptionType::string_list, "several fields " + what + "; give field or fields"),
  };
  specs.insert(specs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  specs.constraints = std::move(more.constraints);
  specs.exactly_one_of({"field", "fields"});
  return specs;
}

}  // namespace bf
