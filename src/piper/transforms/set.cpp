// set / add: a field gets a constant or a computed value.
//   {set: {field: env, value: prod}}   {set: {field: kb, expr: "bytes / 1024"}}
// add is the same step under its older name.
#include "piper/expr/expr.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class SetField final : public Transform {
 public:
  SetField(FieldPath field, boost::json::value value, std::shared_ptr<const Expr> expr, bool overwrite)
      : field_(std::move(field)), value_(std::move(value)), expr_(std::move(expr)), overwrite_(overwrite) {}
  StepResult apply(Event& e, std::string&) const override {
    if (!overwrite_ && find_field(e, field_)) return StepResult::keep;
    set_field(e, field_, expr_ ? expr_->value(e) : boost::json::value(value_, e.storage()));
    return StepResult::keep;
  }

 private:
  FieldPath field_;
  boost::json::value value_;
  std::shared_ptr<const Expr> expr_;
  bool overwrite_;
};

std::unique_ptr<Transform> create(const StepOptions& o) {
  bool constant = o.has("value"), computed = o.has("expr");
  if (constant == computed) o.fail("give exactly one of 'value' (a constant) or 'expr' (an expression)");
  return std::make_unique<SetField>(o.field("field"), constant ? o.value("value") : boost::json::value(),
                                    computed ? o.expr("expr") : nullptr, o.boolean("overwrite"));
}

const OptionSpecs& options() {
  static const OptionSpecs specs = OptionSpecs{
      Option("field", OptionType::string, "the field to set (a dotted path; intermediate objects are created)").mandatory(),
      Option("value", OptionType::any, "a constant (any JSON value); give value or expr"),
      Option("expr", OptionType::string, "an expression whose result is the value; give value or expr"),
      Option("overwrite", OptionType::boolean, "replace a value already there (false: keep it)").def("true"),
  }.exactly_one_of({"value", "expr"});
  return specs;
}

}  // namespace

TransformFactory set_transform() {
  return {"set", "Set a field to a constant (value) or an expression's result (expr); overwrite: default true", create,
          options()};
}
TransformFactory add_transform() { return {"add", "Same as set", create, options()}; }

}  // namespace bf
