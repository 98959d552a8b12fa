// add: sets a field to a constant value.   {add: {field: env, value: prod, overwrite: true}}
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class AddField final : public Transform {
 public:
  AddField(std::string field, boost::json::value value, bool overwrite)
      : field_(std::move(field)), value_(std::move(value)), overwrite_(overwrite) {}
  void apply(std::vector<Event>& events) const override {
    for (Event& e : events) {
      if (!overwrite_ && find_field(e, field_)) continue;
      set_field(e, field_, value_);
    }
  }

 private:
  std::string field_;
  boost::json::value value_;
  bool overwrite_;
};

}  // namespace

TransformFactory add_transform() {
  return {"add", "Set a field to a constant value (overwrite: replace an existing value, default true)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            std::string field = o.str("field");
            if (field.empty()) o.fail("'field' must not be empty");
            return std::make_unique<AddField>(field, o.value("value"), o.boolean("overwrite", true));
          }};
}

}  // namespace bf
