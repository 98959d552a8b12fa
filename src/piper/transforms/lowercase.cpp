// lowercase: ASCII letters of string fields to lower case.   {lowercase: {fields: [method, host]}}
#include <cctype>

#include "piper/transforms/case_map.h"

namespace bf {

TransformFactory lowercase_transform() {
  return {"lowercase", "ASCII letters of string fields (field or fields) to lower case; other values are left alone",
          [](const StepOptions& o) { return make_case_map_step(field_or_fields(o), ::tolower); },
          field_or_fields_options("to lower-case")};
}

}  // namespace bf
