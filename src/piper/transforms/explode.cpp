// explode: one event per element of an array field.   {explode: {field: recipients, target: recipient}}
// Each new event is a copy of the original with the element at `target` (default: the
// field itself). An empty array drops the event (counted); a non-array value, or more
// elements than max_events, fails it; an absent field passes it on unchanged.
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class Explode final : public Transform {
 public:
  Explode(FieldPath field, FieldPath target, int64_t max) : field_(std::move(field)), target_(std::move(target)), max_(max) {}
  bool expands() const override { return true; }
  StepResult apply(Event&, std::string& error) const override {
    error = "internal: explode expands";
    return StepResult::fail;
  }
  StepResult expand(Event& e, std::vector<Event>& out, std::string& error) const override {
    boost::json::value* v = find_field(e, field_);
    if (!v) {
      out.push_back(std::move(e));
      return StepResult::keep;
    }
    if (!v->is_array()) {
      error = "field '" + field_name(field_) + "' is not an array";
      return StepResult::fail;
    }
    if (static_cast<int64_t>(v->get_array().size()) > max_) {
      error = "field '" + field_name(field_) + "' has " + std::to_string(v->get_array().size()) +
              " elements, more than max_events (" + std::to_string(max_) + ")";
      return StepResult::fail;
    }
    boost::json::array items = std::move(v->get_array());
    take_field(e, field_);
    out.reserve(out.size() + items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      Event child = i + 1 == items.size() ? std::move(e) : e;
      set_field(child, target_, std::move(items[i]));
      out.push_back(std::move(child));
    }
    return StepResult::keep;
  }

 private:
  FieldPath field_, target_;
  int64_t max_;
};

}  // namespace

TransformFactory explode_transform() {
  return {"explode", "One event per element of an array field (target: where the element goes; max_events, default 10000)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto field = o.field("field");
            auto target = o.has("target") ? o.field("target") : field;
            return std::make_unique<Explode>(std::move(field), std::move(target), o.integer("max_events"));
          },
          {
              Option("field", OptionType::string, "the array field").mandatory(),
              Option("target", OptionType::string, "where each element goes in its event").note("the field"),
              Option("max_events", OptionType::integer, "more elements fail the event").def("10000").range(1, 1000000),
          }};
}

}  // namespace bf
