#pragma once
// The shape of ByteFreezer API keys (docs/control.md, "Authentication"), shared by
// the control plane that issues them and the components that check the hashes
// control distributes: bfk_<id>_<secret>, and keys imported from the static YAML,
// whose id is derived from the whole key.
#include <optional>
#include <string>
#include <string_view>

namespace bf {

struct KeyParts {
  std::string id, secret;
};
// nullopt unless the token is exactly bfk_<16 lowercase hex>_<64 lowercase hex>.
std::optional<KeyParts> parse_api_key(std::string_view token);
// Keys imported from the static `accounts:` YAML are arbitrary strings: their id is
// derived from the key ("i" + 15 hex, never a generated id) and the whole key is the secret.
std::string imported_key_id(std::string_view key);
// The id and secret a presented token is checked under: parse_api_key, else imported.
KeyParts key_parts_of(std::string_view token);

}  // namespace bf
