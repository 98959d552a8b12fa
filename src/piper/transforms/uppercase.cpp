// uppercase: ASCII letters of string fields to upper case.   {uppercase: {fields: [method, host]}}
#include <cctype>

#include "piper/transforms/case_map.h"

namespace bf {

TransformFactory uppercase_transform() {
  return {"uppercase", "ASCII letters of string fields (field or fields) to upper case; other values are left alone",
          [](const StepOptions& o) { return make_case_map_step(field_or_fields(o), ::toupper); },
          field_or_fields_options("to upper-case")};
}

}  // namespace bf
