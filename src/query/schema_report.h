#pragma once
// The schema registry document (_meta/.../schema.json, docs/schema-evolution.md)
// as text for people: the columns with their types, then the history of changes.
// Used by `bytefreezer schema DATASET`.
#include <string>

namespace bf {

// Throws std::invalid_argument when `schema_json` is not a schema document.
std::string format_schema_report(const std::string& dataset, const std::string& schema_json);

}  // namespace bf
