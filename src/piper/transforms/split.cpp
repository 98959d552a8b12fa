// split: a string field into an array.   {split: {field: tags, separator: ",", trim: true, target: tag_list}}
// A non-string value fails the event; an absent one is skipped.
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class Split final : public Transform {
 public:
  Split(FieldPath field, FieldPath target, std::string sep, bool trim, bool skip_empty, int64_t max)
      : field_(std::move(field)), target_(std::move(target)), sep_(std::move(sep)), trim_(trim), skip_empty_(skip_empty), max_(max) {}
  StepResult apply(Event& e, std::string& error) const override {
    bool present;
    const boost::json::string* s = string_field(e, field_, present, error);
    if (!s) return present ? StepResult::fail : StepResult::keep;
    std::string_view text(*s);
    boost::json::array parts;
    size_t pos = 0;
    while (true) {
      size_t at = (max_ > 0 && static_cast<int64_t>(parts.size()) + 1 >= max_) ? std::string_view::npos : text.find(sep_, pos);
      std::string_view part = text.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos);
      if (trim_) {
        size_t b = part.find_first_not_of(" \t\r\n"), end = part.find_last_not_of(" \t\r\n");
        part = b == std::string_view::npos ? std::string_view() : part.substr(b, end - b + 1);
      }
      if (!skip_empty_ || !part.empty()) parts.emplace_back(boost::json::string(part));
      if (at == std::string_view::npos) break;
      pos = at + sep_.size();
    }
    set_field(e, target_, std::move(parts));
    return StepResult::keep;
  }

 private:
  FieldPath field_, target_;
  std::string sep_;
  bool trim_, skip_empty_;
  int64_t max_;
};

}  // namespace

TransformFactory split_transform() {
  return {"split", "Split a string field into an array at separator (default \",\"); trim, skip_empty, max parts, target",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto field = o.field("field");
            auto target = o.has("target") ? o.field("target") : field;
            return std::make_unique<Split>(std::move(field), std::move(target), o.nonempty("separator"),
                                           o.boolean("trim"), o.boolean("skip_empty"), o.integer("max"));
          },
          {
              Option("field", OptionType::string, "the string field split").mandatory(),
              Option("separator", OptionType::string, "the text between parts").def(","),
              Option("target", OptionType::string, "where the array goes").note("the field"),
              Option("trim", OptionType::boolean, "strip whitespace from each part").def("false"),
              Option("skip_empty", OptionType::boolean, "leave out empty parts").def("false"),
              Option("max", OptionType::integer, "at most this many parts, the last keeping the rest (0: no limit)")
                  .def("0")
                  .range(0, 1000000),
          }};
}

}  // namespace bf
