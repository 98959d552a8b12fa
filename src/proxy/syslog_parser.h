#pragma once
// Syslog message -> event. RFC 5424 and RFC 3164 (BSD, including the ISO-timestamp
// variant rsyslog forwards). Framing (RFC 6587 octet counting / LF) is the
// listener's job; this parses exactly one message.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/batch.h"

namespace bf {

class TimeZone;

struct SyslogParseOptions {
  bool keep_raw = true;  // set `_raw` on messages without a `_parse_error` (those always keep it)
  // The zone of timestamps that carry none (RFC 3164, ISO without offset, vendor
  // date=/time= without tz=). Null: UTC.
  std::shared_ptr<const TimeZone> timezone;
  // Split CEF, LEEF and key=value payloads (FortiGate, Sophos, Check Point) into fields.
  bool vendor_payloads = true;
};

// A parsed message without a DOM: views into the input line or the record's own
// buffers, valid until the record is parsed into again or the input goes away. One
// record is reused for message after message, so parsing allocates nothing once its
// buffers have grown. parse_syslog below is this plus a conversion to an Event.
struct SyslogRecord {
  int pri = -1;                                         // -1: none (only for an empty line)
  bool pri_defaulted = false;                           // no valid PRI: 13 assumed (RFC 3164 §4.3.3)
  int version = 0;                                      // 1: RFC 5424; 0: not emitted
  std::string_view hostname, app_name, procid, msgid;   // empty: absent
  std::string_view severity_text;                       // a severity word before the tag (F5)
  int64_t sequence = -1;                                // Cisco message counter; -1: absent
  std::string_view message;                             // always present ("" when none)
  int64_t time_us = 0;                                  // _time
  bool year_inferred = false, zone_inferred = false;    // the timestamp had no year / no zone
  bool time_unsynced = false;                           // Cisco '*' / '.' marker: clock not authoritative
  bool truncated = false;                               // set by the source: the frame was cut
  std::string_view raw;                                 // the line less trailing CR/LF, as `_raw` carries it
  bool raw_is_text = true;                              // false: `_raw_b64` instead (invalid UTF-8 or NUL)
  bool emit_raw = false;                                // `_raw` / `_raw_b64` is part of the event
  std::string error;                                    // `_parse_error`; empty: none
  struct SdParam {
    uint32_t id;  // index into sd_ids
    std::string_view name, value;
  };
  std::vector<std::string_view> sd_ids;  // distinct SD-IDs, first occurrence first
  std::vector<SdParam> sd_params;        // every PARAM, in message order
  // A vendor payload split into fields: `cef`, `leef` or `kv` (empty: none), its
  // fields in message order (a repeated key keeps its first value).
  std::string_view payload_kind;
  struct Field {
    std::string_view key, value;
  };
  std::vector<Field> payload;
  // Storage behind the views.
  std::string repaired;  // the line when it was not valid UTF-8
  std::string values;    // unescaped values
  std::string raw_b64;   // `_raw_b64`
};

void parse_syslog_record(std::string_view line, int64_t received_us, const SyslogParseOptions& options,
                         SyslogRecord& out);

class JsonObjectWriter;
class Rfc3339Formatter;
// Writes the record's fields, in parse_syslog's order and with its text (so that the
// NDJSON is the same bytes as serialising the Event), into an open JSON object.
void write_syslog_fields(JsonObjectWriter& w, const SyslogRecord& r, Rfc3339Formatter& time_format);
Event syslog_record_to_event(const SyslogRecord& r);

// Always returns an event; the fields are listed in docs/proxy.md ("Events from
// syslog"). All strings are valid UTF-8 (bad bytes -> U+FFFD); `_raw` is the exact
// line, or `_raw_b64` when the line is not valid UTF-8 or holds NUL.
Event parse_syslog(std::string_view line, int64_t received_us, const SyslogParseOptions& options = {});

// True when the event produced by parse_syslog carries a `_parse_error`.
bool has_parse_error(const Event& event);

// BSD timestamps carry no year: the year that puts the time nearest to `received_us`
// (both wall times of one zone, as if UTC). Candidates are the received year -4..+4,
// so Feb 29 lands in the nearest leap year. Month 1-12. nullopt when no date exists.
std::optional<int64_t> infer_bsd_time(int month, int day, int hour, int minute, int second,
                                      int micros, int64_t received_us);

}  // namespace bf
