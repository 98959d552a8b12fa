#pragma once
// UTF-8 validation and repair, and base64 for bytes that are not text. Text that reaches an event (syslog lines, peer names)
// must be valid UTF-8 or the NDJSON we emit is not valid JSON. Invalid sequences are
// replaced by U+FFFD, one replacement per maximal ill-formed subpart (the Unicode
// "best practice" of chapter 3, also what WHATWG decoders do).
#include <string>
#include <string_view>

namespace bf {

bool is_valid_utf8(std::string_view s);

// Returns `s` with every ill-formed sequence replaced by U+FFFD (EF BF BD).
std::string repair_utf8(std::string_view s);

// Repairs in place; returns true when something was replaced.
bool repair_utf8_inplace(std::string& s);

// Standard base64 (RFC 4648 §4, padded): how sources keep bytes that are not valid
// UTF-8, or hold a NUL, exactly (the `_raw_b64` field).
std::string base64(std::string_view bytes);

}  // namespace bf
