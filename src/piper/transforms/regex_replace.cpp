// regex_replace: rewrites a string field with an RE2 pattern.
//   {regex_replace: {field: message, pattern: "password=\\S+", replacement: "password=***", all: true}}
// The replacement may use \0 … \9 for capture groups. A non-string value fails the event.
#include <re2/re2.h>

#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class RegexReplace final : public Transform {
 public:
  RegexReplace(FieldPath field, std::shared_ptr<const RE2> re, std::string rewrite, bool all)
      : field_(std::move(field)), re_(std::move(re)), rewrite_(std::move(rewrite)), all_(all) {}
  StepResult apply(Event& e, std::string& error) const override {
    bool present;
    const boost::json::string* s = string_field(e, field_, present, error);
    if (!s) return present ? StepResult::fail : StepResult::keep;
    std::string text(*s);
    bool changed = all_ ? RE2::GlobalReplace(&text, *re_, rewrite_) > 0 : RE2::Replace(&text, *re_, rewrite_);
    if (changed) *find_field(e, field_) = boost::json::string(text);
    return StepResult::keep;
  }

 private:
  FieldPath field_;
  std::shared_ptr<const RE2> re_;
  std::string rewrite_;
  bool all_;
};

}  // namespace

TransformFactory regex_replace_transform() {
  return {"regex_replace", "Replace matches of an RE2 pattern in a string field (replacement may use \\1; all: default true)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto field = o.field("field");
            auto re = o.regex("pattern");
            std::string rewrite = o.str("replacement");
            std::string err;
            if (!re->CheckRewriteString(rewrite, &err)) o.fail("replacement", err);
            return std::make_unique<RegexReplace>(std::move(field), std::move(re), std::move(rewrite), o.boolean("all"));
          },
          {
              Option("field", OptionType::string, "the string field rewritten").mandatory(),
              Option("pattern", OptionType::string, "an RE2 pattern").mandatory(),
              Option("replacement", OptionType::string, "what replaces a match; \\0 … \\9 insert groups").def(""),
              Option("all", OptionType::boolean, "replace every match (false: the first)").def("true"),
          }};
}

}  // namespace bf
