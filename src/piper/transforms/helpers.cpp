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

std::vector<FieldPath> field_or_fields(const StepOptions& o) {
  bool one = o.has("field"), many = o.has("fields");
  if (one == many) o.fail("give exactly one of 'field' or 'fields'");
  return o.fields(one ? "field" : "fields");
}

}  // namespace bf
