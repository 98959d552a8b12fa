#pragma once
// Syslog message -> event. RFC 5424 and RFC 3164 (BSD, including the ISO-timestamp
// variant rsyslog forwards). Framing (RFC 6587 octet counting / LF) is the
// listener's job; this parses exactly one message.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/batch.h"

namespace bf {

struct SyslogParseOptions {
  bool keep_raw = true;  // set `_raw` on successfully parsed messages (failures always keep it)
};

// A parsed message without a DOM: views into the input line or the record's own
// buffers, valid until the record is parsed into again or the input goes away. One
// record is reused for message after message, so parsing allocates nothing once its
// buffers have grown. parse_syslog below is this plus a conversion to an Event.
struct SyslogRecord {
  int pri = -1;                                         // -1: no valid PRI
  std::string_view hostname, app_name, procid, msgid;   // empty: absent
  std::string_view message;                             // always present ("" when none)
  int64_t time_us = 0;                                  // _time
  std::string_view raw;                                 // the line, as `_raw` carries it
  bool emit_raw = false;                                // `_raw` is part of the event
  bool failed = false;                                  // nothing past the PRI was used
  std::string error;                                    // `_parse_error`; empty: none
  struct SdParam {
    uint32_t id;  // index into sd_ids
    std::string_view name, value;
  };
  std::vector<std::string_view> sd_ids;  // distinct SD-IDs, first occurrence first
  std::vector<SdParam> sd_params;        // every PARAM, in message order
  // Storage behind the views.
  std::string repaired;  // the line when it was not valid UTF-8
  std::string values;    // unescaped PARAM-VALUEs
};

void parse_syslog_record(std::string_view line, int64_t received_us, const SyslogParseOptions& options,
                         SyslogRecord& out);

class JsonObjectWriter;
class Rfc3339Formatter;
// Writes the record's fields, in parse_syslog's order and with its text (so that the
// NDJSON is the same bytes as serialising the Event), into an open JSON object.
void write_syslog_fields(JsonObjectWriter& w, const SyslogRecord& r, Rfc3339Formatter& time_format);
Event syslog_record_to_event(const SyslogRecord& r);

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
