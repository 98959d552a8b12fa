#pragma once
// Syslog message -> event. RFC 5424 and RFC 3164 (BSD, including the ISO-timestamp
// variant rsyslog forwards). Framing (RFC 6587 octet counting / LF) is the
// listener's job; this parses exactly one message.
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/batch.h"

namespace bf {

struct SyslogParseOptions {
  bool keep_raw = true;  // set `_raw` on successfully parsed messages (failures always keep it)
};

// Always returns an event. Fields (absent when the message has no value / NILVALUE):
//   facility, severity (numbers from PRI), hostname, app_name, procid, msgid,
//   structured_data ({SD-ID: {param: value}}; a repeated param becomes an array),
//   message (always present; "" when the message has none),
//   _time (message timestamp in UTC, RFC 3339; receive time when none is usable),
//   _raw (the line, trailing CR/LF/NUL removed).
// A message that cannot be parsed keeps `_raw`, gets `message` = the whole line,
// `_time` = receive time and `_parse_error` describing the problem (plus facility and
// severity when the PRI was valid). All strings are valid UTF-8 (bad bytes -> U+FFFD).
Event parse_syslog(std::string_view line, int64_t received_us, const SyslogParseOptions& options = {});

// True when the event produced by parse_syslog carries a `_parse_error`.
bool has_parse_error(const Event& event);

// BSD timestamps carry no year: the year (received year -1, 0 or +1) that puts the
// time nearest to `received_us`. Month 1-12. nullopt when no candidate date exists.
std::optional<int64_t> infer_bsd_time(int month, int day, int hour, int minute, int second,
                                      int micros, int64_t received_us);

}  // namespace bf
