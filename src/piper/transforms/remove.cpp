// remove: deletes fields.   {remove: {field: password}}  or  {remove: {fields: [a, b.c]}}
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class RemoveFields final : public Transform {
 public:
  explicit RemoveFields(std::vector<FieldPath> fields) : fields_(std::move(fields)) {}
  void apply(std::vector<Event>& events) const override {
    for (Event& e : events) {
      for (const auto& f : fields_) take_field(e, f);
    }
  }

 private:
  std::vector<FieldPath> fields_;
};

}  // namespace

TransformFactory remove_transform() {
  return {"remove", "Delete one field (field) or several (fields)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            bool one = o.has("field"), many = o.has("fields");
            if (one == many) o.fail("give exactly one of 'field' or 'fields'");
            std::vector<FieldPath> fields;
            for (const auto& name : o.str_list(one ? "field" : "fields")) {
              try {
                fields.push_back(FieldPath::parse(name));
              } catch (const PipelineError& e) {
                o.fail(e.what());
              }
            }
            if (fields.empty()) o.fail("no fields given");
            return std::make_unique<RemoveFields>(std::move(fields));
          }};
}

}  // namespace bf
