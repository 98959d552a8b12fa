#pragma once
// Factories of the built-in transforms; the list lives in registry.cpp.
#include "piper/transform.h"

namespace bf {
TransformFactory add_transform();
TransformFactory remove_transform();
TransformFactory rename_transform();
}  // namespace bf
