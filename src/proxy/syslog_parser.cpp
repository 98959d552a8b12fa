#include "proxy/syslog_parser.h"


#include <array>
#include <boost/json.hpp>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/time.h"
#include "common/time_zone.h"
#include "common/utf8.h"
#include "proxy/ndjson_writer.h"

namespace bf {
namespace {

namespace json = boost::json;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
char lower(char c) { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }

// Reads exactly `n` digits at s[pos..]; advances pos.
bool read_digits(std::string_view s, size_t& pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t k = 0; k < n; ++k) {
    const char c = s[pos + k];
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  pos += n;
  return true;
}

bool expect(std::string_view s, size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

size_t token_end(std::string_view s, size_t pos) { return std::min(s.find(' ', pos), s.size()); }

bool valid_time_of_day(int h, int mi, int sec) { return h <= 23 && mi <= 59 && sec <= 60; }

// Optional ".ddd" fraction; returns micros (truncated past 6 digits).
bool read_fraction(std::string_view s, size_t& pos, int& micros) {
  micros = 0;
  if (pos >= s.size() || (s[pos] != '.' && s[pos] != ',')) return true;
  if (pos + 1 >= s.size() || !is_digit(s[pos + 1])) return true;  // "10:20:30." + text: not a fraction
  ++pos;
  size_t digits = 0;
  while (pos < s.size() && is_digit(s[pos])) {
    if (digits < 6) micros = micros * 10 + (s[pos] - '0');
    ++digits;
    ++pos;
  }
  for (size_t k = digits; k < 6; ++k) micros *= 10;
  return true;
}

int month_of(std::string_view s, size_t p) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  if (p + 3 > s.size()) return 0;
  const char m[3] = {lower(s[p]), lower(s[p + 1]), lower(s[p + 2])};
  for (size_t k = 0; k < kMonths.size(); ++k)
    if (kMonths[k] == std::string_view(m, 3)) return static_cast<int>(k) + 1;
  return 0;
}

// Zone words devices print after a time (Cisco `clock timezone`, Sophos timezone=),
// the unambiguous common ones. Offset in seconds.
bool zone_word_offset(std::string_view w, int& offset) {
  struct Z {
    std::string_view name;
    int hours_x4;
  };
  static constexpr Z kZones[] = {
      {"UTC", 0},    {"GMT", 0},    {"UT", 0},      {"Z", 0},       {"WET", 0},     {"WEST", 4},  {"BST", 4},
      {"CET", 4},    {"CEST", 8},   {"MET", 4},     {"MEST", 8},    {"EET", 8},     {"EEST", 12}, {"MSK", 12},
      {"EST", -20},  {"EDT", -16},  {"CST", -24},   {"CDT", -20},   {"MST", -28},   {"MDT", -24}, {"PST", -32},
      {"PDT", -28},  {"AKST", -36}, {"AKDT", -32},  {"HST", -40},   {"JST", 36},    {"KST", 36},  {"AEST", 40},
      {"AEDT", 44},  {"NZST", 48},  {"NZDT", 52},
  };
  for (const Z& z : kZones)
    if (z.name == w) {
      offset = z.hours_x4 * 900;
      return true;
    }
  return false;
}

// "+hh:mm", "+hhmm", "+hh", "-…" -> seconds.
bool numeric_offset(std::string_view w, int& offset) {
  if (w.size() < 3 || (w[0] != '+' && w[0] != '-')) return false;
  size_t p = 1;
  int h = 0, m = 0;
  if (!read_digits(w, p, 2, h)) return false;
  expect(w, p, ':');
  if (p < w.size() && !read_digits(w, p, 2, m)) return false;
  if (p != w.size() || h > 23 || m > 59) return false;
  offset = (w[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
  return true;
}

// ---- what a timestamp told: a civil time and, maybe, its zone.
struct WallTime {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micros = 0;
  bool has_year = false;
  enum class Zone { none, offset, exact } zone = Zone::none;  // exact: `utc_us` is final
  int offset = 0;
  int64_t utc_us = 0;
};

// Context of one parse: the receive time and the zone for zone-less timestamps.
struct Ctx {
  int64_t received_us;
  const TimeZone* tz;  // null: UTC
  int64_t received_local() const { return tz ? received_us + int64_t(tz->offset_at(received_us)) * 1000000 : received_us; }
  int64_t to_utc(int64_t local) const { return tz ? tz->local_to_utc(local) : local; }
};

// The UTC time of `t` (year and zone filled in from the context when the text has
// none), with the record's inferred flags. False when the date does not exist.
bool resolve(const WallTime& t, const Ctx& c, SyslogRecord& r) {
  if (t.zone == WallTime::Zone::exact) {
    r.time_us = t.utc_us;
    r.year_inferred = r.zone_inferred = false;
    return true;
  }
  if (t.month < 1 || t.month > 12 || t.day < 1 || !valid_time_of_day(t.hour, t.minute, t.second)) return false;
  const int sec = t.second == 60 ? 59 : t.second;
  int64_t local;
  if (t.has_year) {
    if (t.day > days_in_month(t.year, t.month)) return false;
    local = civil_to_us(t.year, t.month, t.day, t.hour, t.minute, sec, t.micros);
  } else {
    const int64_t ref = t.zone == WallTime::Zone::offset ? c.received_us + int64_t(t.offset) * 1000000
                                                         : c.received_local();
    auto inferred = infer_bsd_time(t.month, t.day, t.hour, t.minute, sec, t.micros, ref);
    if (!inferred) return false;
    local = *inferred;
  }
  r.year_inferred = !t.has_year;
  if (t.zone == WallTime::Zone::offset) {
    r.time_us = local - int64_t(t.offset) * 1000000;
    r.zone_inferred = false;
  } else {
    r.time_us = c.to_utc(local);
    r.zone_inferred = true;
  }
  return true;
}

// "hh:mm:ss[.frac]" at s[p].
bool read_clock(std::string_view s, size_t& p, WallTime& t) {
  return read_digits(s, p, 2, t.hour) && expect(s, p, ':') && read_digits(s, p, 2, t.minute) && expect(s, p, ':') &&
         read_digits(s, p, 2, t.second) && read_fraction(s, p, t.micros);
}

bool at_word_end(std::string_view s, size_t p) { return p >= s.size() || s[p] == ' ' || s[p] == ':'; }

// ISO 8601 date-time at s[p] ("2024-03-10T08:15:30.1+01:00", a space instead of the
// T, or no zone). Advances p past it.
bool read_iso(std::string_view s, size_t& p, WallTime& t) {
  size_t q = p;
  if (!read_digits(s, q, 4, t.year) || !expect(s, q, '-') || !read_digits(s, q, 2, t.month) || !expect(s, q, '-') ||
      !read_digits(s, q, 2, t.day))
    return false;
  if (q >= s.size() || (s[q] != 'T' && s[q] != 't' && s[q] != ' ')) return false;
  ++q;
  if (!read_clock(s, q, t)) return false;
  t.has_year = true;
  t.zone = WallTime::Zone::none;
  if (q < s.size() && (s[q] == 'Z' || s[q] == 'z')) {
    ++q;
    t.zone = WallTime::Zone::offset;
    t.offset = 0;
  } else if (q < s.size() && (s[q] == '+' || s[q] == '-')) {
    size_t e = q + 1;
    while (e < s.size() && (is_digit(s[e]) || s[e] == ':')) ++e;
    if (!numeric_offset(s.substr(q, e - q), t.offset)) return false;
    t.zone = WallTime::Zone::offset;
    q = e;
  }
  if (q < s.size() && s[q] != ' ') return false;
  p = q;
  return true;
}

// BSD/Cisco forms at s[p]: "Mmm dd hh:mm:ss", "Mmm dd yyyy hh:mm:ss" (ASA),
// "yyyy Mmm dd hh:mm:ss" (NX-OS), "Mmm dd hh:mm:ss yyyy"; day space- or zero-padded;
// optional fraction; then an optional zone word ("UTC", "CET", or any upper-case
// word right before a ':'). Advances p past it.
bool read_bsd(std::string_view s, size_t& p, WallTime& t) {
  size_t q = p;
  t = WallTime{};
  {
    size_t y = q;
    int year = 0;
    if (read_digits(s, y, 4, year) && expect(s, y, ' ') && month_of(s, y)) {
      t.year = year;
      t.has_year = true;
      q = y;
    }
  }
  t.month = month_of(s, q);
  if (t.month == 0) return false;
  q += 3;
  if (!expect(s, q, ' ')) return false;
  expect(s, q, ' ');  // "Oct  5"
  if (q >= s.size() || !is_digit(s[q])) return false;
  t.day = s[q++] - '0';
  if (q < s.size() && is_digit(s[q])) t.day = t.day * 10 + (s[q++] - '0');
  if (!expect(s, q, ' ')) return false;
  if (!t.has_year) {
    size_t y = q;
    int year = 0;
    if (read_digits(s, y, 4, year) && expect(s, y, ' ')) {
      t.year = year;
      t.has_year = true;
      q = y;
    }
  }
  if (!read_clock(s, q, t)) return false;
  if (!at_word_end(s, q)) return false;
  // A year and a zone word may follow the time, in either order ("… 2026 host",
  // "… CST 1987 host", "… UTC: %SYS…").
  for (int round = 0; round < 2 && q < s.size() && s[q] == ' '; ++round) {
    if (!t.has_year && q + 5 <= s.size()) {
      size_t y = q + 1;
      int year = 0;
      if (read_digits(s, y, 4, year) && at_word_end(s, y) && year >= 1970 && year <= 2200) {
        t.year = year;
        t.has_year = true;
        q = y;
        continue;
      }
    }
    if (t.zone != WallTime::Zone::none) break;
    size_t e = q + 1;
    while (e < s.size() && is_upper(s[e]) && e - q <= 5) ++e;
    const std::string_view w = s.substr(q + 1, e - q - 1);
    if (w.empty() || !at_word_end(s, e)) break;
    int off = 0;
    if (zone_word_offset(w, off)) {
      t.zone = WallTime::Zone::offset;
      t.offset = off;
      q = e;
    } else if (w.size() >= 3 && e + 2 < s.size() && s[e] == ':' && s[e + 1] == ' ' && s[e + 2] == '%') {
      q = e;  // Cisco "… XYZ: %FAC-…" with a zone the table does not know: the source's zone applies
      break;
    } else {
      break;
    }
  }
  if (t.day < 1 || t.day > 31 || !valid_time_of_day(t.hour, t.minute, t.second)) return false;
  p = q;
  return true;
}

void add_error(SyslogRecord& r, std::string what) {
  if (!r.error.empty()) r.error += "; ";
  r.error += what;
}

std::string_view strip_bom(std::string_view m) {
  if (m.size() >= 3 && m.substr(0, 3) == "\xEF\xBB\xBF") m.remove_prefix(3);
  return m;
}

// ---- structured data

bool sd_name_char(char c) { return c > 32 && c < 127 && c != '=' && c != ']' && c != '"' && c != ' '; }

uint32_t sd_id_index(SyslogRecord& r, std::string_view id) {
  for (size_t k = 0; k < r.sd_ids.size(); ++k)
    if (r.sd_ids[k] == id) return static_cast<uint32_t>(k);
  r.sd_ids.push_back(id);
  return static_cast<uint32_t>(r.sd_ids.size() - 1);
}

// SD-ELEMENTs starting at s[pos] == '['; fills r.sd_*. On a malformed element returns
// the problem, with `bad_at` = where that element starts; the elements before it stay.
// r.values has room for every unescaped value, so the views into it stay valid.
std::string parse_structured_data(std::string_view s, size_t& pos, SyslogRecord& r, size_t& bad_at) {
  while (pos < s.size() && s[pos] == '[') {
    bad_at = pos;
    const size_t ids_before = r.sd_ids.size(), params_before = r.sd_params.size();
    auto fail = [&](std::string what) {
      r.sd_ids.resize(ids_before);
      r.sd_params.resize(params_before);
      return what;
    };
    ++pos;
    const size_t id_start = pos;
    while (pos < s.size() && sd_name_char(s[pos])) ++pos;
    if (pos == id_start) return fail("RFC 5424: empty or invalid SD-ID at offset " + std::to_string(id_start));
    std::string_view id = s.substr(id_start, pos - id_start);
    const uint32_t id_index = sd_id_index(r, id);
    for (;;) {
      if (pos >= s.size()) return fail("RFC 5424: unterminated structured data element '" + std::string(id) + "'");
      if (s[pos] == ']') {
        ++pos;
        break;
      }
      if (s[pos] != ' ' || pos + 1 >= s.size() || !sd_name_char(s[pos + 1]))
        return fail("RFC 5424: invalid character in SD-ELEMENT '" + std::string(id) + "' at offset " +
                    std::to_string(pos));
      ++pos;
      const size_t name_start = pos;
      while (pos < s.size() && sd_name_char(s[pos])) ++pos;
      std::string_view name = s.substr(name_start, pos - name_start);
      if (!expect(s, pos, '=') || !expect(s, pos, '"'))
        return fail("RFC 5424: expected =\"value\" after PARAM-NAME '" + std::string(name) + "' at offset " +
                    std::to_string(pos));
      const size_t value_start = r.values.size();
      bool closed = false;
      while (pos < s.size()) {
        size_t run = pos;  // plain bytes up to the next quote or backslash in one append
        while (run < s.size() && s[run] != '"' && s[run] != '\\') ++run;
        if (run > pos) {
          r.values.append(s.data() + pos, run - pos);
          pos = run;
          continue;
        }
        const char c = s[pos];
        if (c == '\\' && pos + 1 < s.size() && (s[pos + 1] == '"' || s[pos + 1] == '\\' || s[pos + 1] == ']')) {
          r.values += s[pos + 1];
          pos += 2;
        } else if (c == '"') {
          ++pos;
          closed = true;
          break;
        } else {
          r.values += c;  // a backslash before any other character stays
          ++pos;
        }
      }
      if (!closed)
        return fail("RFC 5424: unterminated PARAM-VALUE for '" + std::string(id) + "." + std::string(name) + "'");
      if (pos < s.size() && s[pos] != ' ' && s[pos] != ']')
        return fail("RFC 5424: unescaped '\"' in PARAM-VALUE for '" + std::string(id) + "." + std::string(name) +
                    "' at offset " + std::to_string(pos - 1));
      r.sd_params.push_back(
          {id_index, name, std::string_view(r.values).substr(value_start, r.values.size() - value_start)});
    }
  }
  return {};
}

// ---- vendor payloads

// Appends `v` to r.values with backslash escapes decoded (`\n` `\r` `\t` become the
// control characters, any other escaped character itself); returns the view.
std::string_view unescape(SyslogRecord& r, std::string_view v) {
  if (v.find('\\') == std::string_view::npos) return v;
  const size_t start = r.values.size();
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '\\' && i + 1 < v.size()) {
      c = v[++i];
      if (c == 'n') c = '\n';
      else if (c == 'r') c = '\r';
      else if (c == 't') c = '\t';
    }
    r.values += c;
  }
  return std::string_view(r.values).substr(start);
}

bool kv_key_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.' || c == '/' || c == '[' || c == ']' ||
         c == '@';
}

// key=value pairs (FortiGate, Sophos, Check Point "generic"/Splunk): values bare or
// "quoted" (\" and \\ escapes), pairs separated by spaces or '|'. All or nothing: at
// least two pairs and nothing else, or false with r.payload unchanged.
bool parse_kv(std::string_view m, SyslogRecord& r) {
  const size_t fields_before = r.payload.size(), values_before = r.values.size();
  size_t p = 0;
  size_t pairs = 0;
  const auto undo = [&] {
    r.payload.resize(fields_before);
    r.values.resize(values_before);
    return false;
  };
  while (p < m.size()) {
    while (p < m.size() && (m[p] == ' ' || m[p] == '|' || m[p] == '\t')) ++p;
    if (p >= m.size()) break;
    const size_t k = p;
    while (p < m.size() && kv_key_char(m[p])) ++p;
    if (p == k || p >= m.size() || m[p] != '=') return undo();
    const std::string_view key = m.substr(k, p - k);
    ++p;
    std::string_view value;
    if (p < m.size() && m[p] == '"') {
      const size_t v = ++p;
      bool escaped = false;
      while (p < m.size() && m[p] != '"') p += m[p] == '\\' ? (escaped = true, 2) : 1;
      if (p >= m.size()) return undo();
      value = m.substr(v, p - v);
      if (escaped) value = unescape(r, value);
      ++p;
      if (p < m.size() && m[p] != ' ' && m[p] != '|' && m[p] != '\t') return undo();
    } else {
      const size_t v = p;
      bool escaped = false;
      while (p < m.size() && m[p] != ' ' && m[p] != '|' && m[p] != '\t') p += m[p] == '\\' ? (escaped = true, 2) : 1;
      p = std::min(p, m.size());
      value = m.substr(v, p - v);
      if (escaped) value = unescape(r, value);
    }
    r.payload.push_back({key, value});
    ++pairs;
  }
  if (pairs < 2) return undo();
  r.payload_kind = "kv";
  return true;
}

// Check Point Log Exporter's "syslog" format: [key:"value"; key:"value"; ...] in
// place of RFC 5424 STRUCTURED-DATA. `m` starts at the '['; on success returns the
// offset past the closing ']', else 0 with r.payload unchanged.
size_t parse_checkpoint(std::string_view m, SyslogRecord& r) {
  const size_t fields_before = r.payload.size(), values_before = r.values.size();
  const auto undo = [&] {
    r.payload.resize(fields_before);
    r.values.resize(values_before);
    return size_t{0};
  };
  size_t p = 1;
  for (;;) {
    while (p < m.size() && (m[p] == ' ' || m[p] == ';')) ++p;
    if (p >= m.size()) return undo();
    if (m[p] == ']') break;
    const size_t k = p;
    while (p < m.size() && kv_key_char(m[p]) && m[p] != ']') ++p;
    if (p == k || !expect(m, p, ':') || !expect(m, p, '"')) return undo();
    const std::string_view key = m.substr(k, p - 2 - k);
    const size_t v = p;
    bool escaped = false;
    while (p < m.size() && m[p] != '"') p += m[p] == '\\' ? (escaped = true, 2) : 1;
    if (p >= m.size()) return undo();
    std::string_view value = m.substr(v, p - v);
    if (escaped) value = unescape(r, value);
    ++p;
    r.payload.push_back({key, value});
  }
  if (r.payload.size() == fields_before) return undo();
  r.payload_kind = "kv";
  return p + 1;
}

// Splits `text` at unescaped '|' into at most `n` parts (the last gets the rest).
size_t split_pipes(std::string_view text, std::string_view* parts, size_t n) {
  size_t count = 0, start = 0;
  for (size_t i = 0; i < text.size() && count + 1 < n; ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '|') {
      parts[count++] = text.substr(start, i - start);
      start = i + 1;
    }
  }
  parts[count++] = text.substr(std::min(start, text.size()));
  return count;
}

// CEF extension (and LEEF 1.0 without tabs): key=value separated by spaces, where a
// value may hold spaces; a value ends at the last space before the next unescaped '='.
void parse_spaced_extension(std::string_view ext, SyslogRecord& r) {
  size_t key_start = std::string_view::npos, key_end = 0, val_start = 0;
  size_t last_space = std::string_view::npos;
  auto emit = [&](size_t val_end) {
    std::string_view v = ext.substr(val_start, val_end - val_start);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    r.payload.push_back({ext.substr(key_start, key_end - key_start), unescape(r, v)});
  };
  size_t word_start = 0;
  for (size_t i = 0; i < ext.size(); ++i) {
    const char c = ext[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (c == ' ') {
      last_space = i;
      word_start = i + 1;
      continue;
    }
    if (c != '=') continue;
    // A key needs a space between the previous '=' and this one (or be the first).
    const bool first = key_start == std::string_view::npos;
    if (!first && (last_space == std::string_view::npos || last_space < val_start)) continue;
    if (word_start >= i) continue;
    if (!first) emit(word_start - 1);
    key_start = word_start;
    key_end = i;
    val_start = i + 1;
  }
  if (key_start != std::string_view::npos) emit(ext.size());
}

// "CEF:Version|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|Severity|Extension"
bool parse_cef(std::string_view m, SyslogRecord& r) {
  std::string_view parts[8];
  if (split_pipes(m.substr(4), parts, 8) != 8) return false;
  static constexpr std::string_view kNames[] = {"version",      "device_vendor", "device_product", "device_version",
                                                "signature_id", "name",          "severity"};
  for (size_t k = 0; k < 7; ++k) r.payload.push_back({kNames[k], unescape(r, parts[k])});
  parse_spaced_extension(parts[7], r);
  r.payload_kind = "cef";
  return true;
}

// "LEEF:1.0|Vendor|Product|Version|EventID|attrs" (attrs tab-separated) or
// "LEEF:2.0|Vendor|Product|Version|EventID|Delimiter|attrs" (delimiter a character or
// its hex code, "x5E" / "0x5E").
bool parse_leef(std::string_view m, SyslogRecord& r) {
  const bool v2 = m.substr(5, 1) == "2";
  std::string_view parts[7];
  const size_t n = split_pipes(m.substr(5), parts, v2 ? 7 : 6);
  if (n < 5) return false;
  static constexpr std::string_view kNames[] = {"version", "device_vendor", "device_product", "device_version",
                                                "event_id"};
  for (size_t k = 0; k < 5; ++k) r.payload.push_back({kNames[k], unescape(r, parts[k])});
  char delim = '\t';
  std::string_view attrs = n > 5 ? parts[n - 1] : std::string_view();
  if (v2 && n == 7) {
    std::string_view d = parts[5];
    if (d.size() == 1) {
      delim = d[0];
    } else if (!d.empty()) {
      if (d.substr(0, 2) == "0x" || d.substr(0, 2) == "0X") d.remove_prefix(2);
      else if (d[0] == 'x' || d[0] == 'X') d.remove_prefix(1);
      const long code = std::strtol(std::string(d).c_str(), nullptr, 16);
      if (code > 0 && code < 128) delim = static_cast<char>(code);
    }
  }
  if (delim == '\t' && attrs.find('\t') == std::string_view::npos) {
    parse_spaced_extension(attrs, r);
  } else {
    size_t p = 0;
    while (p <= attrs.size()) {
      size_t e = attrs.find(delim, p);
      if (e == std::string_view::npos) e = attrs.size();
      const std::string_view pair = attrs.substr(p, e - p);
      const size_t eq = pair.find('=');
      if (eq != std::string_view::npos && eq > 0) r.payload.push_back({pair.substr(0, eq), unescape(r, pair.substr(eq + 1))});
      p = e + 1;
    }
  }
  r.payload_kind = "leef";
  return true;
}

std::string_view payload_value(const SyslogRecord& r, std::string_view key) {
  for (const auto& f : r.payload)
    if (f.key == key) return f.value;
  return {};
}

bool all_digits(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v)
    if (!is_digit(c)) return false;
  return true;
}

// Epoch seconds / ms / µs / ns by magnitude.
int64_t epoch_to_us(std::string_view v) {
  int64_t n = 0;
  for (char c : v.substr(0, 19)) n = n * 10 + (c - '0');
  if (n >= 100000000000000000LL) return n / 1000;
  if (n >= 100000000000000LL) return n;
  if (n >= 100000000000LL) return n * 1000;
  return n * 1000000;
}

// The payload's own time, when it has one: FortiGate/Sophos date= time= tz=/timezone=,
// Sophos timestamp=, Check Point time=<epoch>, CEF rt=, LEEF devTime=.
void payload_time(const Ctx& c, SyslogRecord& r) {
  WallTime t;
  if (r.payload_kind == "kv") {
    const std::string_view date = payload_value(r, "date"), clock = payload_value(r, "time");
    if (!date.empty() && !clock.empty()) {
      size_t p = 0, q = 0;
      if (!(read_digits(date, p, 4, t.year) && expect(date, p, '-') && read_digits(date, p, 2, t.month) &&
            expect(date, p, '-') && read_digits(date, p, 2, t.day) && p == date.size() && read_clock(clock, q, t) &&
            q == clock.size()))
        return;
      t.has_year = true;
      std::string_view zone = payload_value(r, "tz");
      if (zone.empty()) zone = payload_value(r, "timezone");
      if (numeric_offset(zone, t.offset) || zone_word_offset(zone, t.offset)) t.zone = WallTime::Zone::offset;
      resolve(t, c, r);
      return;
    }
    const std::string_view ts = payload_value(r, "timestamp");
    size_t p = 0;
    if (!ts.empty() && read_iso(ts, p, t) && p == ts.size()) {
      resolve(t, c, r);
      return;
    }
    if (all_digits(clock) && clock.size() >= 9) {
      t.zone = WallTime::Zone::exact;
      t.utc_us = epoch_to_us(clock);
      resolve(t, c, r);
    }
    return;
  }
  const std::string_view v = payload_value(r, r.payload_kind == "cef" ? "rt" : "devTime");
  if (v.empty()) return;
  if (all_digits(v)) {
    t.zone = WallTime::Zone::exact;
    t.utc_us = epoch_to_us(v);
    resolve(t, c, r);
    return;
  }
  size_t p = 0;
  if ((read_bsd(v, p, t) || (p = 0, read_iso(v, p, t))) && resolve(t, c, r)) return;
}

void parse_payload(const Ctx& c, SyslogRecord& r) {
  const std::string_view m = r.message;
  bool ok = false;
  if (m.substr(0, 4) == "CEF:") ok = parse_cef(m, r);
  else if (m.substr(0, 5) == "LEEF:") ok = parse_leef(m, r);
  else if (m.find('=') != std::string_view::npos) ok = parse_kv(m, r);
  else if (!m.empty() && m[0] == '[') ok = parse_checkpoint(m, r) == m.size();
  if (ok) payload_time(c, r);
}

// ---- RFC 5424, after "<PRI>1 ".

void parse_5424(std::string_view s, size_t pos, const Ctx& c, const SyslogParseOptions& opt, SyslogRecord& r) {
  r.version = 1;
  r.time_us = c.received_us;
  // On a problem the fields read so far stay and the rest of the line is the message.
  const auto stop = [&](size_t at, std::string what) {
    add_error(r, std::move(what));
    while (at < s.size() && s[at] == ' ') ++at;
    r.message = at < s.size() ? s.substr(at) : std::string_view();
  };
  size_t end = token_end(s, pos);
  if (end == pos) return stop(pos, "RFC 5424 header truncated: missing TIMESTAMP");
  std::string_view ts = s.substr(pos, end - pos);
  if (ts != "-") {
    // Check Point sends "2018-03-21 17:25:25": take the time token with the date.
    if (ts.size() == 10 && end + 9 <= s.size() && s[end] == ' ' && is_digit(s[end + 1]) && s[end + 3] == ':') {
      end = token_end(s, end + 1);
      ts = s.substr(pos, end - pos);
    }
    WallTime t;
    size_t p = 0;
    if (!(read_iso(ts, p, t) && p == ts.size() && resolve(t, c, r))) {
      r.time_us = c.received_us;
      r.year_inferred = r.zone_inferred = false;
      add_error(r, "RFC 5424: invalid TIMESTAMP '" + std::string(ts) + "'");
    }
  }
  pos = end;
  static constexpr const char* kNames[] = {"HOSTNAME", "APP-NAME", "PROCID", "MSGID"};
  std::string_view* fields[] = {&r.hostname, &r.app_name, &r.procid, &r.msgid};
  for (int k = 0; k < 4; ++k) {
    if (pos >= s.size()) return stop(pos, std::string("RFC 5424 header truncated: missing ") + kNames[k]);
    ++pos;  // the SP
    end = token_end(s, pos);
    if (end == pos) return stop(pos, std::string("RFC 5424: empty ") + kNames[k] + " at offset " + std::to_string(pos));
    const std::string_view tok = s.substr(pos, end - pos);
    if (tok != "-") *fields[k] = tok;
    pos = end;
  }
  if (pos < s.size()) {  // lenient: a message ending after MSGID has no SD and no MSG
    ++pos;               // the SP
    if (pos < s.size() && s[pos] == '-' && (pos + 1 == s.size() || s[pos + 1] == ' ')) {
      ++pos;
    } else if (pos < s.size() && s[pos] == '[') {
      r.values.reserve(2 * s.size() + 16);
      size_t bad_at = pos;
      std::string problem = parse_structured_data(s, pos, r, bad_at);
      if (!problem.empty()) {
        size_t past = 0;
        if (opt.vendor_payloads && r.sd_ids.empty() && (past = parse_checkpoint(s.substr(bad_at), r)) != 0) {
          pos = bad_at + past;  // not RFC 5424 SD, but Check Point's own: no error
          payload_time(c, r);
        } else {
          return stop(bad_at, std::move(problem));
        }
      }
    } else {
      return stop(pos, "RFC 5424: expected STRUCTURED-DATA ('-' or '[') at offset " + std::to_string(pos));
    }
  }
  if (pos < s.size()) {
    if (s[pos] != ' ') return stop(pos, "RFC 5424: expected SP after STRUCTURED-DATA at offset " + std::to_string(pos));
    r.message = strip_bom(s.substr(pos + 1));
  }
  if (opt.vendor_payloads && r.payload_kind.empty()) {
    r.values.reserve(2 * s.size() + 16);
    parse_payload(c, r);
  }
}

// ---- RFC 3164 and the variants devices send

bool is_severity_word(std::string_view w) {
  static constexpr std::string_view kWords[] = {"emerg", "alert",   "crit",   "err",  "error",
                                                "warning", "warn", "notice", "info", "debug"};
  for (auto k : kWords)
    if (k == w) return true;
  return false;
}

// "%FAC-SEV-MNEMONIC:" (Cisco IOS, NX-OS, ASA): returns its length without the ':', 0 if none.
size_t cisco_mnemonic(std::string_view s) {
  if (s.size() < 6 || s[0] != '%') return 0;
  size_t p = 1, dashes = 0;
  while (p < s.size() && (is_upper(s[p]) || is_digit(s[p]) || s[p] == '_' || s[p] == '-')) {
    dashes += s[p] == '-';
    ++p;
  }
  if (dashes < 2 || p >= s.size() || s[p] != ':') return 0;
  return p;
}

bool tag_char(char c) { return is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.' || c == '/'; }

// TAG[PID]:, TAG:, TAG[PID] or a bare TAG word at the start of rest (RFC 3164 §4.1.3:
// the TAG ends at the first character that cannot be part of it). Returns the offset
// of the message, 0 if no tag.
size_t parse_tag(std::string_view rest, SyslogRecord& r) {
  size_t j = 0;
  while (j < rest.size() && rest[j] != ' ' && rest[j] != '[' &&
         !(rest[j] == ':' && (j + 1 == rest.size() || rest[j + 1] == ' ')))
    ++j;
  if (j == 0) return 0;
  std::string_view tag = rest.substr(0, j);
  if (j < rest.size() && rest[j] == '[') {
    const size_t close = rest.find(']', j);
    if (close == std::string_view::npos || rest.substr(j + 1, close - j - 1).find(' ') != std::string_view::npos)
      return 0;
    std::string_view pid = rest.substr(j + 1, close - j - 1);
    size_t k = close + 1;
    if (k < rest.size() && rest[k] == ':') ++k;
    if (k < rest.size() && rest[k] != ' ') return 0;
    if (k < rest.size()) ++k;
    r.app_name = tag;
    if (!pid.empty()) r.procid = pid;
    return k;
  }
  if (j < rest.size() && rest[j] == ':') {
    r.app_name = tag;
    return std::min(j + 2, rest.size());
  }
  // A bare word: a tag when it is made of tag characters and a message follows.
  if (j == rest.size() || j > 48) return 0;
  for (char ch : tag)
    if (!tag_char(ch)) return 0;
  r.app_name = tag;
  return j + 1;
}

bool tag_like(std::string_view tok) {
  return !tok.empty() && (tok.back() == ':' || tok.find('[') != std::string_view::npos || tok[0] == '%');
}

void parse_3164(std::string_view s, size_t pos, const Ctx& c, const SyslogParseOptions& opt, SyslogRecord& rec) {
  std::string_view rest = s.substr(pos);
  size_t p = 0;
  // Cisco message counter(s) "34: " / "34: 000123: ", NX-OS's empty one ": ".
  if (rest.substr(0, 2) == ": ") p = 2;
  for (int k = 0; k < 2; ++k) {
    size_t q = p;
    int64_t n = 0;
    while (q < rest.size() && is_digit(rest[q]) && q - p < 18) n = n * 10 + (rest[q++] - '0');
    if (q == p || q + 1 >= rest.size() || rest[q] != ':' || rest[q + 1] != ' ') break;
    rec.sequence = n;
    p = q + 2;
  }
  // Cisco time markers: '*' clock not authoritative, '.' sync lost.
  bool marker = false;
  if (p + 1 < rest.size() && (rest[p] == '*' || rest[p] == '.') && (is_alpha(rest[p + 1]) || is_digit(rest[p + 1]))) {
    marker = true;
    ++p;
  }
  WallTime t;
  size_t q = p;
  bool header = false;
  if (read_iso(rest, q, t) || (q = p, read_bsd(rest, q, t))) header = resolve(t, c, rec);
  if (!header) {  // no usable timestamp ("Feb 30" is none either): it is all message
    rec.year_inferred = rec.zone_inferred = false;
    rec.time_us = c.received_us;
    q = p;
  } else {
    rec.time_unsynced = marker;
    if (q < rest.size() && rest[q] == ':') ++q;  // Cisco "…UTC: %SYS…", ASA "…10:20:30: %ASA…"
    if (q < rest.size() && rest[q] == ' ') ++q;
  }
  std::string_view r = rest.substr(q);
  if (header && !r.empty()) {
    size_t tok_end = token_end(r, 0);
    std::string_view tok = r.substr(0, tok_end);
    const bool payload_start = tok.substr(0, 4) == "CEF:" || tok.substr(0, 5) == "LEEF:" ||
                               tok.find('=') != std::string_view::npos;
    if (!tag_like(tok) && !payload_start && tok_end < r.size()) {
      rec.hostname = tok;
      r.remove_prefix(std::min(tok_end + 1, r.size()));
      if (r.substr(0, 2) == ": ") r.remove_prefix(2);  // ASA "host : %ASA-…"
      tok_end = token_end(r, 0);
      tok = r.substr(0, tok_end);
      if (is_severity_word(tok) && tok_end < r.size() && tag_like(r.substr(tok_end + 1, token_end(r, tok_end + 1) - tok_end - 1))) {
        rec.severity_text = tok;  // F5: "host info tmm[123]: …"
        r.remove_prefix(tok_end + 1);
      }
    } else if (!tag_like(tok) && !payload_start) {
      rec.hostname = tok;  // "Mmm dd hh:mm:ss host" and nothing else
      r = {};
    }
  }
  if (const size_t m = cisco_mnemonic(r)) {
    rec.app_name = r.substr(0, m);
    r.remove_prefix(m + 1);  // and the ':'
    if (!r.empty() && r[0] == ' ') r.remove_prefix(1);
  } else if (header && r.substr(0, 4) != "CEF:" && r.substr(0, 5) != "LEEF:" &&
             token_end(r, 0) > 0 && r.substr(0, token_end(r, 0)).find('=') == std::string_view::npos) {
    r.remove_prefix(parse_tag(r, rec));
  }
  rec.message = strip_bom(r);
  if (opt.vendor_payloads) {
    rec.values.reserve(2 * s.size() + 16);
    parse_payload(c, rec);
  }
}

// Whether every byte is ASCII and none is NUL (then the line is valid UTF-8 and `_raw`
// can be written as text).
bool ascii_without_nul(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if ((w | ((w - kOnes) & ~w)) & kHigh) return false;
  }
  for (; i < s.size(); ++i)
    if (static_cast<unsigned char>(s[i]) & 0x80 || s[i] == 0) return false;
  return true;
}


}  // namespace

std::optional<int64_t> infer_bsd_time(int month, int day, int hour, int minute, int second, int micros,
                                      int64_t received_us) {
  if (month < 1 || month > 12 || day < 1 || !valid_time_of_day(hour, minute, second)) return std::nullopt;
  const int year = to_civil(received_us).year;
  std::optional<int64_t> best;
  // The year before, of and after the receive time; wider only for Feb 29.
  for (int span : {1, 4}) {
    for (int y = year - span; y <= year + span; ++y) {
      if (day > days_in_month(y, month)) continue;
      const int64_t t = civil_to_us(y, month, day, hour, minute, second, micros);
      if (!best || std::llabs(t - received_us) < std::llabs(*best - received_us)) best = t;
    }
    if (best) break;
  }
  return best;
}

bool has_parse_error(const Event& event) { return event.contains("_parse_error"); }

void parse_syslog_record(std::string_view input, int64_t received_us, const SyslogParseOptions& options,
                         SyslogRecord& r) {
  // `_raw` is the line less its terminator (trailing CR/LF); the text parsed also
  // loses trailing NULs, which some senders append.
  while (!input.empty() && (input.back() == '\n' || input.back() == '\r')) input.remove_suffix(1);
  std::string_view s = input;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == '\0')) s.remove_suffix(1);
  r.raw = input;
  r.raw_is_text = true;
  if (!ascii_without_nul(input)) {
    const bool valid = is_valid_utf8(input);
    r.raw_is_text = valid && std::memchr(input.data(), 0, input.size()) == nullptr;
    if (!r.raw_is_text) r.raw_b64 = base64(input);
    if (!valid) {
      r.repaired = repair_utf8(s);
      s = r.repaired;
    }
  }
  r.pri = -1;
  r.pri_defaulted = false;
  r.version = 0;
  r.hostname = r.app_name = r.procid = r.msgid = r.severity_text = r.message = {};
  r.sequence = -1;
  r.year_inferred = r.zone_inferred = r.time_unsynced = r.truncated = false;
  r.sd_ids.clear();
  r.sd_params.clear();
  r.payload_kind = {};
  r.payload.clear();
  r.values.clear();
  r.error.clear();
  r.time_us = received_us;
  const Ctx ctx{received_us, options.timezone && !options.timezone->is_utc() ? options.timezone.get() : nullptr};

  if (s.empty()) {
    r.error = "empty message";
    r.emit_raw = true;
    return;
  }
  size_t pos = 0;
  if (s[0] == '<') {
    pos = 1;
    int pri = 0;
    while (pos < s.size() && is_digit(s[pos]) && pos < 5) pri = pri * 10 + (s[pos++] - '0');
    if (pos == 1 || pos > 4 || pos >= s.size() || s[pos] != '>' || pri > 191) {
      // RFC 3164 §4.3.3: no valid PRI, so PRI 13 and the whole line is the content.
      r.pri = 13;
      r.pri_defaulted = true;
      r.message = s;
      r.error = pos > 1 && pos <= 4 && pos < s.size() && s[pos] == '>'
                    ? "invalid <PRI>: " + std::to_string(pri) + " exceeds 191"
                    : "invalid <PRI>: expected 1-3 digits followed by '>'";
      r.emit_raw = true;
      return;
    }
    r.pri = pri;
    ++pos;
  } else {
    r.pri = 13;  // RFC 3164 §4.3.3: a message without PRI gets 13; its header is still read
    r.pri_defaulted = true;
  }
  if (!r.pri_defaulted && s.substr(pos, 2) == "1 ") {
    parse_5424(s, pos + 2, ctx, options, r);
  } else {
    parse_3164(s, pos, ctx, options, r);
  }
  r.emit_raw = options.keep_raw || !r.error.empty();
}

namespace {

// The members of one SD-ID's object: each PARAM-NAME once, in first-seen order; a
// name given more than once becomes an array of its values in message order.
template <class Str, class Arr>
void for_each_sd_param(const SyslogRecord& r, uint32_t id, Str&& single, Arr&& several) {
  const auto& ps = r.sd_params;
  for (size_t i = 0; i < ps.size(); ++i) {
    if (ps[i].id != id) continue;
    bool seen = false;
    for (size_t k = 0; k < i && !seen; ++k) seen = ps[k].id == id && ps[k].name == ps[i].name;
    if (seen) continue;
    size_t count = 0;
    for (size_t k = i; k < ps.size(); ++k) count += ps[k].id == id && ps[k].name == ps[i].name;
    if (count == 1) {
      single(ps[i].name, ps[i].value);
    } else {
      several(ps[i].name, [&](auto&& each) {
        for (size_t k = i; k < ps.size(); ++k)
          if (ps[k].id == id && ps[k].name == ps[i].name) each(ps[k].value);
      });
    }
  }
}

void write_true(JsonObjectWriter& w, std::string_view key) {
  w.key(key);
  w.out().append("true");
}

}  // namespace

void write_syslog_fields(JsonObjectWriter& w, const SyslogRecord& r, Rfc3339Formatter& time_format) {
  if (r.pri >= 0) {
    w.plain_num("facility", r.pri / 8);
    w.plain_num("severity", r.pri % 8);
  }
  if (r.version) w.plain_num("version", r.version);
  if (!r.hostname.empty()) w.plain_field("hostname", r.hostname);
  if (!r.app_name.empty()) w.plain_field("app_name", r.app_name);
  if (!r.procid.empty()) w.plain_field("procid", r.procid);
  if (!r.msgid.empty()) w.plain_field("msgid", r.msgid);
  if (r.sequence >= 0) w.plain_num("sequence", r.sequence);
  if (!r.severity_text.empty()) w.plain_field("severity_text", r.severity_text);
  if (!r.sd_ids.empty()) {
    w.key("structured_data");
    JsonObjectWriter sd(w.out());
    for (uint32_t id = 0; id < r.sd_ids.size(); ++id) {
      sd.key(r.sd_ids[id]);
      JsonObjectWriter params(w.out());
      for_each_sd_param(
          r, id, [&](std::string_view name, std::string_view value) { params.field(name, value); },
          [&](std::string_view name, auto&& values) {
            params.key(name);
            std::string& out = w.out();
            out.push_back('[');
            bool first = true;
            values([&](std::string_view v) {
              if (!first) out.push_back(',');
              first = false;
              append_json_string(out, v);
            });
            out.push_back(']');
          });
      params.close();
    }
    sd.close();
  }
  if (!r.payload_kind.empty()) {
    w.key(r.payload_kind);
    JsonObjectWriter p(w.out());
    for (size_t i = 0; i < r.payload.size(); ++i) {
      bool seen = false;
      for (size_t k = 0; k < i && !seen; ++k) seen = r.payload[k].key == r.payload[i].key;
      if (!seen) p.field(r.payload[i].key, r.payload[i].value);
    }
    p.close();
  }
  w.plain_field("message", r.message);
  w.plain_field("_time", time_format.format(r.time_us));
  if (r.year_inferred) write_true(w, "_year_inferred");
  if (r.zone_inferred) write_true(w, "_zone_inferred");
  if (r.time_unsynced) write_true(w, "_time_unsynced");
  if (r.pri_defaulted) write_true(w, "_pri_defaulted");
  if (r.truncated) write_true(w, "_truncated");
  if (r.emit_raw) {
    if (r.raw_is_text) w.plain_field("_raw", r.raw);
    else w.plain_field("_raw_b64", r.raw_b64);
  }
  if (!r.error.empty()) w.plain_field("_parse_error", r.error);
}

// The same fields in the same order as write_syslog_fields (ndjson_writer_test holds
// the two to the same bytes).
Event syslog_record_to_event(const SyslogRecord& r) {
  Event ev;
  if (r.pri >= 0) {
    ev["facility"] = r.pri / 8;
    ev["severity"] = r.pri % 8;
  }
  if (r.version) ev["version"] = r.version;
  if (!r.hostname.empty()) ev["hostname"] = r.hostname;
  if (!r.app_name.empty()) ev["app_name"] = r.app_name;
  if (!r.procid.empty()) ev["procid"] = r.procid;
  if (!r.msgid.empty()) ev["msgid"] = r.msgid;
  if (r.sequence >= 0) ev["sequence"] = r.sequence;
  if (!r.severity_text.empty()) ev["severity_text"] = r.severity_text;
  if (!r.sd_ids.empty()) {
    json::object sd;
    for (uint32_t id = 0; id < r.sd_ids.size(); ++id) {
      json::object params;
      for_each_sd_param(
          r, id, [&](std::string_view name, std::string_view value) { params.emplace(name, value); },
          [&](std::string_view name, auto&& values) {
            json::array a;
            values([&](std::string_view v) { a.emplace_back(v); });
            params.emplace(name, std::move(a));
          });
      sd.emplace(r.sd_ids[id], std::move(params));
    }
    ev["structured_data"] = std::move(sd);
  }
  if (!r.payload_kind.empty()) {
    json::object p;
    for (const auto& f : r.payload) p.emplace(f.key, f.value);  // emplace keeps the first of a repeated key
    ev[r.payload_kind] = std::move(p);
  }
  ev["message"] = r.message;
  ev["_time"] = format_rfc3339(r.time_us);
  if (r.year_inferred) ev["_year_inferred"] = true;
  if (r.zone_inferred) ev["_zone_inferred"] = true;
  if (r.time_unsynced) ev["_time_unsynced"] = true;
  if (r.pri_defaulted) ev["_pri_defaulted"] = true;
  if (r.truncated) ev["_truncated"] = true;
  if (r.emit_raw) {
    if (r.raw_is_text) ev["_raw"] = r.raw;
    else ev["_raw_b64"] = r.raw_b64;
  }
  if (!r.error.empty()) ev["_parse_error"] = r.error;
  return ev;
}

Event parse_syslog(std::string_view input, int64_t received_us, const SyslogParseOptions& options) {
  SyslogRecord r;
  parse_syslog_record(input, received_us, options, r);
  return syslog_record_to_event(r);
}

}  // namespace bf
