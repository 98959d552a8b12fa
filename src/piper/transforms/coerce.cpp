// coerce: converts fields to a type.   {coerce: {fields: {status: int, took: float, ok: bool, at: timestamp}}}
// or {coerce: {field: status, type: int}}. A value that does not convert fails the
// event (dead letter) and changes none of its fields; absent fields are skipped.
#include <boost/json/serialize.hpp>

#include <cctype>
#include <cmath>

#include "common/time.h"
#include "piper/expr/expr.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

enum class Type { int_, float_, bool_, string, timestamp };

std::optional<boost::json::value> convert(const boost::json::value& v, Type t) {
  switch (t) {
    case Type::int_:
      if (auto n = value_to_int(v)) return boost::json::value(*n);
      return std::nullopt;
    case Type::float_:
      if (auto d = value_to_float(v); d && std::isfinite(*d)) return boost::json::value(*d);
      return std::nullopt;
    case Type::bool_: {
      if (v.is_bool()) return v;
      if (v.is_number()) return boost::json::value(v.to_number<double>() != 0);
      if (!v.is_string()) return std::nullopt;
      std::string s(v.get_string());
      for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (s == "true" || s == "yes" || s == "on" || s == "1" || s == "y" || s == "t") return boost::json::value(true);
      if (s == "false" || s == "no" || s == "off" || s == "0" || s == "n" || s == "f") return boost::json::value(false);
      return std::nullopt;
    }
    case Type::string:
      if (v.is_string()) return v;
      return boost::json::value(boost::json::serialize(v));
    case Type::timestamp:
      if (auto us = parse_event_time(v)) return boost::json::value(format_rfc3339(*us));
      return std::nullopt;
  }
  return std::nullopt;
}

const char* type_name(Type t) {
  static const char* const kNames[] = {"int", "float", "bool", "string", "timestamp"};
  return kNames[static_cast<int>(t)];
}

class Coerce final : public Transform {
 public:
  explicit Coerce(std::vector<std::pair<FieldPath, Type>> fields) : fields_(std::move(fields)) {}
  StepResult apply(Event& e, std::string& error) const override {
    // Convert everything first, so a failure leaves the event as it was.
    std::vector<std::pair<boost::json::value*, boost::json::value>> done;
    for (const auto& [path, type] : fields_) {
      boost::json::value* v = find_field(e, path);
      if (!v || v->is_null()) continue;
      auto converted = convert(*v, type);
      if (!converted) {
        error = "field '" + field_name(path) + "': " + preview(boost::json::serialize(*v)) + " is not a valid " + type_name(type);
        return StepResult::fail;
      }
      done.emplace_back(v, std::move(*converted));
    }
    for (auto& [target, value] : done) *target = std::move(value);
    return StepResult::keep;
  }

 private:
  std::vector<std::pair<FieldPath, Type>> fields_;
};

Type parse_type(const StepOptions& o, const std::string& key, const std::string& name) {
  static const std::vector<std::pair<std::string, Type>> kTypes{
      {"int", Type::int_}, {"integer", Type::int_}, {"float", Type::float_}, {"double", Type::float_},
      {"bool", Type::bool_}, {"boolean", Type::bool_}, {"string", Type::string}, {"timestamp", Type::timestamp}};
  for (const auto& [n, t] : kTypes)
    if (n == name) return t;
  o.fail(key, "unknown type '" + name + "' (int, float, bool, string, timestamp)");
}

}  // namespace

TransformFactory coerce_transform() {
  return {"coerce", "Convert fields to int, float, bool, string or timestamp (RFC 3339); a failed conversion dead-letters the event",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            std::vector<std::pair<FieldPath, Type>> fields;
            bool one = o.has("field"), many = o.has("fields");
            if (one == many) o.fail("give exactly one of 'field' (with 'type') or 'fields' (a map of field: type)");
            if (one) {
              fields.emplace_back(o.field("field"), parse_type(o, "type", o.choice("type")));
            } else {
              for (const auto& kv : o.object("fields")) {
                std::string key = "fields." + std::string(kv.key());
                if (!kv.value().is_string()) o.fail(key, "must be a type name");
                try {
                  fields.emplace_back(FieldPath::parse(std::string(kv.key())), parse_type(o, key, std::string(kv.value().get_string())));
                } catch (const PipelineError& e) {
                  if (std::string(e.what()).find("option '") != std::string::npos) throw;
                  o.fail(key, e.what());
                }
              }
              if (fields.empty()) o.fail("fields", "no fields given");
            }
            return std::make_unique<Coerce>(std::move(fields));
          },
          OptionSpecs{
              Option("fields", OptionType::string_map, "field → type name (int, float, bool, string, timestamp); give fields, or field and type"),
              Option("field", OptionType::string, "one field to convert, with type"),
              Option("type", OptionType::string, "the type of field")
                  .one_of({"int", "integer", "float", "double", "bool", "boolean", "string", "timestamp"}),
          }
              .exactly_one_of({"field", "fields"})};
}

}  // namespace bf
