#pragma once
// Identifier rules of DESIGN.md §2: account, tenant and dataset IDs are lowercase
// [a-z0-9][a-z0-9_-]{0,62}. An ID is validated before it reaches a path or object key.
#include <stdexcept>
#include <string>
#include <string_view>

namespace bf {

bool is_valid_id(std::string_view id);

struct InvalidId : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Throws InvalidId with a message naming `what` (e.g. "tenant") and the bad value.
const std::string& require_id(std::string_view what, const std::string& id);

}  // namespace bf
