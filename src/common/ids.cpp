#include "common/ids.h"

namespace bf {

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_alnum(id[0])) return false;
  for (char c : id.substr(1)) {
    if (!lower_alnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

const std::string& require_id(std::string_view what, const std::string& id) {
  if (!is_valid_id(id)) {
    std::string shown = id.size() > 80 ? id.substr(0, 80) + "..." : id;
    throw InvalidId("invalid " + std::string(what) + " id '" + shown +
                    "': must match [a-z0-9][a-z0-9_-]{0,62}");
  }
  return id;
}

}  // namespace bf
