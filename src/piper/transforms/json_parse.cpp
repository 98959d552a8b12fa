// json_parse: parses a string field as JSON.
//   {json_parse: {field: message}}                  the value replaces the string
//   {json_parse: {field: message, target: payload}}  the value goes to target
//   {json_parse: {field: message, merge: true}}      an object's members go into the event
// Text that is not JSON (or, with merge, not an object) fails the event.
#include <boost/json/parse.hpp>

#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class JsonParse final : public Transform {
 public:
  JsonParse(FieldPath field, FieldPath target, bool merge, bool overwrite, int max_depth)
      : field_(std::move(field)), target_(std::move(target)), merge_(merge), overwrite_(overwrite) {
    opts_.max_depth = static_cast<size_t>(max_depth);
  }
  StepResult apply(Event& e, std::string& error) const override {
    bool present;
    const boost::json::string* s = string_field(e, field_, present, error);
    if (!s) return present ? StepResult::fail : StepResult::keep;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(*s, ec, {}, opts_);
    if (ec) {
      error = "field '" + field_name(field_) + "' is not JSON (" + ec.message() + "): " + preview(*s);
      return StepResult::fail;
    }
    if (!merge_) {
      set_field(e, target_, std::move(v));
      return StepResult::keep;
    }
    if (!v.is_object()) {
      error = "field '" + field_name(field_) + "' holds JSON that is not an object, so it cannot be merged";
      return StepResult::fail;
    }
    for (auto& kv : v.get_object()) {
      if (!overwrite_ && e.contains(kv.key())) continue;
      e[kv.key()] = std::move(kv.value());
    }
    return StepResult::keep;
  }

 private:
  FieldPath field_, target_;
  bool merge_, overwrite_;
  boost::json::parse_options opts_;
};

}  // namespace

TransformFactory json_parse_transform() {
  return {"json_parse", "Parse a string field (default message) as JSON into target (default: in place) or, with merge, into the event",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto field = o.field("field");
            bool merge = o.boolean("merge");
            if (merge && o.has("target")) o.fail("target", "cannot be combined with merge: true");
            auto target = o.has("target") ? o.field("target") : field;
            return std::make_unique<JsonParse>(std::move(field), std::move(target), merge, o.boolean("overwrite"),
                                               static_cast<int>(o.integer("max_depth")));
          },
          {
              Option("field", OptionType::string, "the string field parsed").def("message"),
              Option("target", OptionType::string, "where the value goes").note("the field (in place)"),
              Option("merge", OptionType::boolean, "copy an object's members into the event").def("false"),
              Option("overwrite", OptionType::boolean, "with merge: replace fields already in the event").def("true"),
              Option("max_depth", OptionType::integer, "deeper nesting fails the event").def("64").range(1, 512),
          }};
}

}  // namespace bf
