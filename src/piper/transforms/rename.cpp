// rename: moves a field.   {rename: {from: msg, to: message, overwrite: true}}
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class RenameField final : public Transform {
 public:
  RenameField(FieldPath from, FieldPath to, bool overwrite)
      : from_(std::move(from)), to_(std::move(to)), overwrite_(overwrite) {}
  StepResult apply(Event& e, std::string&) const override {
    if (!overwrite_ && find_field(e, to_)) return StepResult::keep;
    if (auto v = take_field(e, from_)) set_field(e, to_, std::move(*v));
    return StepResult::keep;
  }

 private:
  FieldPath from_, to_;
  bool overwrite_;
};

}  // namespace

TransformFactory rename_transform() {
  return {"rename", "Move a field to a new name (overwrite: replace an existing target, default true)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            return std::make_unique<RenameField>(o.field("from"), o.field("to"), o.boolean("overwrite"));
          },
          {
              Option("from", OptionType::string, "the field moved (nothing happens when it is absent)").mandatory(),
              Option("to", OptionType::string, "its new name").mandatory(),
              Option("overwrite", OptionType::boolean,
                     "replace a value already at `to` (false: keep it, and `from` stays)")
                  .def("true"),
          }};
}

}  // namespace bf
