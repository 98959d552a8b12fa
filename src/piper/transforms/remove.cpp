// remove: deletes fields.   {remove: {field: password}}  or  {remove: {fields: [a, b.c]}}
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class RemoveFields final : public Transform {
 public:
  explicit RemoveFields(std::vector<FieldPath> fields) : fields_(std::move(fields)) {}
  StepResult apply(Event& e, std::string&) const override {
    for (const auto& f : fields_) take_field(e, f);
    return StepResult::keep;
  }

 private:
  std::vector<FieldPath> fields_;
};

}  // namespace

TransformFactory remove_transform() {
  return {"remove", "Delete one field (field) or several (fields)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            return std::make_unique<RemoveFields>(field_or_fields(o));
          },
          field_or_fields_options("to delete")};
}

}  // namespace bf
