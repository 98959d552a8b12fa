#include "common/api_key.h"

#include <algorithm>

#include "common/digest.h"

namespace bf {

namespace {
constexpr size_t kIdHex = 16, kSecretHex = 64;
constexpr std::string_view kPrefix = "bfk_";
bool all_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}
}  // namespace

std::optional<KeyParts> parse_api_key(std::string_view token) {
  if (token.size() != kPrefix.size() + kIdHex + 1 + kSecretHex) return std::nullopt;
  if (token.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view rest = token.substr(kPrefix.size());
  std::string_view id = rest.substr(0, kIdHex);
  if (rest[kIdHex] != '_') return std::nullopt;
  std::string_view secret = rest.substr(kIdHex + 1);
  if (!all_hex(id) || !all_hex(secret)) return std::nullopt;
  return KeyParts{std::string(id), std::string(secret)};
}

std::string imported_key_id(std::string_view key) {
  return "i" + sha256_hex(std::string("bytefreezer-imported-key:") + std::string(key)).substr(0, 15);
}

KeyParts key_parts_of(std::string_view token) {
  if (auto p = parse_api_key(token)) return *p;
  return KeyParts{imported_key_id(token), std::string(token)};
}

}  // namespace bf
