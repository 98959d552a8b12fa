// add: sets a field to a constant value.   {add: {field: env, value: prod, overwrite: true}}
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class AddField final : public Transform {
 public:
  AddField(FieldPath field, boost::json::value value, bool overwrite)
      : field_(std::move(field)), value_(std::move(value)), overwrite_(overwrite) {}
  void apply(std::vector<Event>& events) const override {
    for (Event& e : events) {
      if (!overwrite_ && find_field(e, field_)) continue;
      set_field(e, field_, value_);
    }
  }

 private:
  FieldPath field_;
  boost::json::value value_;
  bool overwrite_;
};

}  // namespace

TransformFactory add_transform() {
  return {"add", "Set a field to a constant value (overwrite: replace an existing value, default true)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            return std::make_unique<AddField>(o.field("field"), o.value("value"), o.boolean("overwrite", true));
          }};
}

}  // namespace bf
