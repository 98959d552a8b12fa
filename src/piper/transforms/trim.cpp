// trim: strips characters (default: whitespace) from both ends of string fields.
//   {trim: {fields: [user, host], chars: " \t\""}}
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class TrimStep final : public StringFieldsStep {
 public:
  TrimStep(std::vector<FieldPath> fields, std::string chars) : StringFieldsStep(std::move(fields)), chars_(std::move(chars)) {}

 protected:
  void rewrite(boost::json::string& s) const override {
    std::string_view v(s);
    size_t b = v.find_first_not_of(chars_);
    if (b == std::string_view::npos) return s.clear();
    size_t e = v.find_last_not_of(chars_);
    if (b == 0 && e + 1 == v.size()) return;
    s = boost::json::string(v.substr(b, e - b + 1));
  }

 private:
  std::string chars_;
};

}  // namespace

TransformFactory trim_transform() {
  return {"trim", "Strip chars (default whitespace) from both ends of string fields (field or fields)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto fields = field_or_fields(o);
            return std::make_unique<TrimStep>(std::move(fields), o.nonempty("chars", " \t\r\n\v\f"));
          },
          field_or_fields_options("to trim", {
              Option("chars", OptionType::string, "the characters stripped from both ends").note("whitespace (space, \\t, \\r, \\n, \\v, \\f)"),
          })};
}

}  // namespace bf
