#pragma once
// lowercase and uppercase: one step that maps the ASCII letters of string fields.
#include "piper/transforms/transforms.h"

namespace bf {
std::unique_ptr<Transform> make_case_map_step(std::vector<FieldPath> fields, int (*map)(int));
}  // namespace bf
