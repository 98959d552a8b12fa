#pragma once
// ULIDs (26 chars, Crockford base32, 48-bit ms timestamp + 80 random bits):
// batch ids and Parquet part names. Monotonic within one process.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bf {

std::string new_ulid();
std::string ulid_at(int64_t unix_ms);  // random part fresh, timestamp given
bool is_valid_ulid(std::string_view s);
// A ULID with `base`'s time and 80 bits of SHA-256(base, salt) for the random part: the
// same inputs always give the same id (in the same hour as `base`), different salts
// ids that do not collide in practice. For objects derived from a batch (routed
// events), so a re-run after a crash rewrites the same key. `base` must be valid.
std::string derived_ulid(std::string_view base, std::string_view salt);
// Milliseconds since the epoch encoded in a valid ULID.
std::optional<int64_t> ulid_time_ms(std::string_view s);

}  // namespace bf
