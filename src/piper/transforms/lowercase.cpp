// lowercase: ASCII letters of string fields to lower case.   {lowercase: {fields: [method, host]}}
#include <cctype>

#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class LowercaseStep final : public StringFieldsStep {
 public:
  using StringFieldsStep::StringFieldsStep;

 protected:
  void rewrite(boost::json::string& s) const override {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
};

}  // namespace

TransformFactory lowercase_transform() {
  return {"lowercase", "ASCII letters of string fields (field or fields) to lower case; other values are left alone",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            return std::make_unique<LowercaseStep>(field_or_fields(o));
          }};
}

}  // namespace bf
