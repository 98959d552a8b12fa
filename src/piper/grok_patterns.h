#pragma once
// Grok: named regex patterns that refer to each other as %{NAME}, used as
// %{NAME:field} or %{NAME:field:type} to capture a field (grok step).
#include <map>
#include <string>

namespace bf {

// NAME -> RE2 pattern (which may use %{OTHER}). See grok_patterns.cpp.
const std::map<std::string, std::string>& grok_library();

}  // namespace bf
