#pragma once
// UTF-8 validation and repair. Text that reaches an event (syslog lines, peer names)
// must be valid UTF-8 or the NDJSON we emit is not valid JSON. Invalid sequences are
// replaced by U+FFFD, one replacement per maximal ill-formed subpart (the Unicode
// "best practice" of chapter 3, also what WHATWG decoders do).
//
// Candidate for src/common/ once another component needs it.
#include <string>
#include <string_view>

namespace bf {

bool is_valid_utf8(std::string_view s);

// Returns `s` with every ill-formed sequence replaced by U+FFFD (EF BF BD).
std::string repair_utf8(std::string_view s);

// Repairs in place; returns true when something was replaced.
bool repair_utf8_inplace(std::string& s);

}  // namespace bf
