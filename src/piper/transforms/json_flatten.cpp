// json_flatten: nested objects to dotted keys.   {json_flatten: {separator: ".", arrays: false}}
// {"a": {"b": 1, "c": {"d": 2}}} -> {"a.b": 1, "a.c.d": 2}. With `field`, only the
// object at that field is flattened; with arrays: true, array elements become "a.0", "a.1".
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class JsonFlatten final : public Transform {
 public:
  JsonFlatten(std::optional<FieldPath> field, std::string sep, bool arrays)
      : field_(std::move(field)), sep_(std::move(sep)), arrays_(arrays) {}
  StepResult apply(Event& e, std::string& error) const override {
    boost::json::object* obj = &e;
    if (field_) {
      boost::json::value* v = find_field(e, *field_);
      if (!v) return StepResult::keep;
      if (!v->is_object()) {
        error = "field '" + field_name(*field_) + "' is not an object";
        return StepResult::fail;
      }
      obj = &v->get_object();
    }
    bool nested = false;
    for (const auto& kv : *obj) nested = nested || is_container(kv.value());
    if (!nested) return StepResult::keep;
    boost::json::object flat;
    flat.reserve(obj->size());
    std::string prefix;
    for (auto& kv : *obj) add(flat, std::string(kv.key()), std::move(kv.value()));
    *obj = std::move(flat);
    return StepResult::keep;
  }

 private:
  bool is_container(const boost::json::value& v) const {
    return (v.is_object() && !v.get_object().empty()) || (arrays_ && v.is_array() && !v.get_array().empty());
  }
  void add(boost::json::object& flat, const std::string& key, boost::json::value v) const {
    if (v.is_object() && !v.get_object().empty()) {
      for (auto& kv : v.get_object()) add(flat, key + sep_ + std::string(kv.key()), std::move(kv.value()));
    } else if (arrays_ && v.is_array() && !v.get_array().empty()) {
      auto& arr = v.get_array();
      for (size_t i = 0; i < arr.size(); ++i) add(flat, key + sep_ + std::to_string(i), std::move(arr[i]));
    } else {
      flat[key] = std::move(v);
    }
  }
  std::optional<FieldPath> field_;
  std::string sep_;
  bool arrays_;
};

}  // namespace

TransformFactory json_flatten_transform() {
  return {"json_flatten", "Flatten nested objects into separator-joined keys (field: only that object; arrays: index keys)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            std::optional<FieldPath> field;
            if (o.has("field")) field = o.field("field");
            return std::make_unique<JsonFlatten>(std::move(field), o.nonempty("separator"), o.boolean("arrays"));
          },
          {
              Option("field", OptionType::string, "flatten only the object at this field").note("the whole event"),
              Option("separator", OptionType::string, "joins the keys").def("."),
              Option("arrays", OptionType::boolean, "array elements become keys too (a.0, a.1)").def("false"),
          }};
}

}  // namespace bf
