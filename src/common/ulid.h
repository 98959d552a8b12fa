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
// Milliseconds since the epoch encoded in a valid ULID.
std::optional<int64_t> ulid_time_ms(std::string_view s);

}  // namespace bf
