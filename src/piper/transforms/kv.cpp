// kv: key=value pairs from a string field.
//   {kv: {field: message, field_split: " ", value_split: "=", target: attrs, include: [user, src]}}
// Values may be quoted ("a b" or 'a b', backslash escapes the quote); text that is
// not a pair is skipped. A non-string value fails the event.
#include <set>

#include "piper/transforms/transforms.h"

namespace bf {
namespace {

struct KvOptions {
  FieldPath field;
  std::optional<FieldPath> target;  // none: the event itself
  std::string field_split, value_split, quotes, prefix;
  std::set<std::string> include, exclude;
  bool overwrite;
};

class Kv final : public Transform {
 public:
  explicit Kv(KvOptions o) : o_(std::move(o)) {}
  StepResult apply(Event& e, std::string& error) const override {
    bool present;
    const boost::json::string* s = string_field(e, o_.field, present, error);
    if (!s) return present ? StepResult::fail : StepResult::keep;
    boost::json::object pairs;
    parse(std::string_view(*s), pairs);
    if (pairs.empty()) return StepResult::keep;
    if (!o_.target) {
      for (auto& kv : pairs) {
        if (!o_.overwrite && e.contains(kv.key())) continue;
        e[kv.key()] = std::move(kv.value());
      }
    } else {
      set_field(e, *o_.target, std::move(pairs));
    }
    return StepResult::keep;
  }

 private:
  static bool blank(char c) { return c == ' ' || c == '\t'; }
  void parse(std::string_view s, boost::json::object& out) const {
    size_t pos = 0;
    const std::string& fs = o_.field_split;
    const std::string& vs = o_.value_split;
    while (pos < s.size()) {
      while (pos < s.size() && (blank(s[pos]) || s.compare(pos, fs.size(), fs) == 0)) pos += blank(s[pos]) ? 1 : fs.size();
      if (pos >= s.size()) break;
      size_t key_end = s.find(vs, pos), next_field = s.find(fs, pos);
      if (key_end == std::string_view::npos) break;
      if (next_field != std::string_view::npos && next_field < key_end) {  // a word without a value
        pos = next_field;
        continue;
      }
      std::string_view key = s.substr(pos, key_end - pos);
      while (!key.empty() && blank(key.back())) key.remove_suffix(1);
      pos = key_end + vs.size();
      std::string value;
      if (pos < s.size() && o_.quotes.find(s[pos]) != std::string::npos) {
        char q = s[pos++];
        while (pos < s.size() && s[pos] != q) {
          if (s[pos] == '\\' && pos + 1 < s.size() && (s[pos + 1] == q || s[pos + 1] == '\\')) ++pos;
          value += s[pos++];
        }
        if (pos < s.size()) ++pos;  // closing quote (an unterminated one runs to the end)
      } else {
        size_t end = s.find(fs, pos);
        value = std::string(s.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
        while (!value.empty() && blank(value.back())) value.pop_back();
        pos = end == std::string_view::npos ? s.size() : end;
      }
      if (key.empty()) continue;
      std::string k(key);
      if (!o_.include.empty() && !o_.include.count(k)) continue;
      if (o_.exclude.count(k)) continue;
      out[o_.prefix + k] = boost::json::string(value);
    }
  }
  KvOptions o_;
};

}  // namespace

TransformFactory kv_transform() {
  return {"kv", "Parse key=value pairs from a string field (default message): field_split, value_split, quotes, include, exclude, prefix, target",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            KvOptions k;
            k.field = o.field("field");
            if (o.has("target")) k.target = o.field("target");
            k.field_split = o.nonempty("field_split");
            k.value_split = o.nonempty("value_split");
            k.quotes = o.str("quotes");
            k.prefix = o.str("prefix");
            for (const auto& s : o.str_list("include", {})) k.include.insert(s);
            for (const auto& s : o.str_list("exclude")) k.exclude.insert(s);
            k.overwrite = o.boolean("overwrite");
            return std::make_unique<Kv>(std::move(k));
          },
          {
              Option("field", OptionType::string, "the string field holding the pairs").def("message"),
              Option("target", OptionType::string, "an object field for the pairs").note("into the event"),
              Option("field_split", OptionType::string, "the text between pairs").def(" "),
              Option("value_split", OptionType::string, "the text between a key and its value").def("="),
              Option("quotes", OptionType::string, "characters that quote a value (a backslash escapes the quote inside)").def("\"'"),
              Option("include", OptionType::string_list, "only these keys").note("every key"),
              Option("exclude", OptionType::string_list, "keys left out").def(""),
              Option("prefix", OptionType::string, "put before each key").def(""),
              Option("overwrite", OptionType::boolean, "replace fields already in the event (without target)").def("true"),
          }};
}

}  // namespace bf
