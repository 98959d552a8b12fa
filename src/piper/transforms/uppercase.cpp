// uppercase: ASCII letters of string fields to upper case.   {uppercase: {fields: [method, host]}}
#include <cctype>

#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class UppercaseStep final : public StringFieldsStep {
 public:
  using StringFieldsStep::StringFieldsStep;

 protected:
  void rewrite(boost::json::string& s) const override {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
};

}  // namespace

TransformFactory uppercase_transform() {
  return {"uppercase", "ASCII letters of string fields (field or fields) to upper case; other values are left alone",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            return std::make_unique<UppercaseStep>(field_or_fields(o));
          }};
}

}  // namespace bf
