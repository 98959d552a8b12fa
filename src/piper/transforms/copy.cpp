// copy: duplicates a field.   {copy: {from: host, to: origin.host, overwrite: true}}
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class CopyField final : public Transform {
 public:
  CopyField(FieldPath from, FieldPath to, bool overwrite)
      : from_(std::move(from)), to_(std::move(to)), overwrite_(overwrite) {}
  StepResult apply(Event& e, std::string&) const override {
    if (!overwrite_ && find_field(e, to_)) return StepResult::keep;
    if (const boost::json::value* v = find_field(e, from_)) set_field(e, to_, *v);
    return StepResult::keep;
  }

 private:
  FieldPath from_, to_;
  bool overwrite_;
};

}  // namespace

TransformFactory copy_transform() {
  return {"copy", "Copy a field's value to another field (overwrite: default true)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            return std::make_unique<CopyField>(o.field("from"), o.field("to"), o.boolean("overwrite"));
          },
          {
              Option("from", OptionType::string, "the field copied (nothing happens when it is absent)").mandatory(),
              Option("to", OptionType::string, "where the copy goes").mandatory(),
              Option("overwrite", OptionType::boolean, "replace a value already at `to` (false: keep it)").def("true"),
          }};
}

}  // namespace bf
