#include "proxy/syslog_parser.h"

#include <boost/json.hpp>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/time.h"
#include "proxy/ndjson_writer.h"
#include "common/utf8.h"

namespace bf {
namespace {

namespace json = boost::json;


bool is_digit(char c) { return c >= '0' && c <= '9'; }

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

bool valid_time_of_day(int h, int mi, int sec) { return h <= 23 && mi <= 59 && sec <= 59; }

// Optional ".ddd" fraction; returns micros (truncated past 6 digits).
bool read_fraction(std::string_view s, size_t& pos, int& micros) {
  micros = 0;
  if (pos >= s.size() || s[pos] != '.') return true;
  ++pos;
  size_t digits = 0;
  while (pos < s.size() && is_digit(s[pos])) {
    if (digits < 6) micros = micros * 10 + (s[pos] - '0');
    ++digits;
    ++pos;
  }
  if (digits == 0) return false;
  for (size_t k = digits; k < 6; ++k) micros *= 10;
  return true;
}

// ---- RFC 3164 BSD timestamp: "Mmm dd hh:mm:ss" (day space- or zero-padded), with an
// optional fraction and an optional year before the time ("Mmm dd yyyy hh:mm:ss").
struct BsdTime {
  int month = 0, day = 0, year = 0, hour = 0, minute = 0, second = 0, micros = 0;
};

bool parse_bsd_timestamp(std::string_view s, size_t& pos, BsdTime& t) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  size_t p = pos;
  if (p + 3 > s.size()) return false;
  std::string mon;
  for (size_t k = 0; k < 3; ++k) mon += static_cast<char>(std::tolower(static_cast<unsigned char>(s[p + k])));
  t.month = 0;
  for (size_t m = 0; m < kMonths.size(); ++m)
    if (kMonths[m] == mon) t.month = static_cast<int>(m) + 1;
  if (t.month == 0) return false;
  p += 3;
  if (!expect(s, p, ' ')) return false;
  expect(s, p, ' ');  // "Oct  5"
  if (p >= s.size() || !is_digit(s[p])) return false;
  t.day = s[p++] - '0';
  if (p < s.size() && is_digit(s[p])) t.day = t.day * 10 + (s[p++] - '0');
  if (!expect(s, p, ' ')) return false;
  // optional year
  {
    size_t q = p;
    int y = 0;
    if (read_digits(s, q, 4, y) && expect(s, q, ' ')) {
      t.year = y;
      p = q;
    }
  }
  if (!read_digits(s, p, 2, t.hour) || !expect(s, p, ':') || !read_digits(s, p, 2, t.minute) ||
      !expect(s, p, ':') || !read_digits(s, p, 2, t.second))
    return false;
  if (!read_fraction(s, p, t.micros)) return false;
  if (p < s.size() && s[p] != ' ') return false;
  if (t.day < 1 || t.day > 31 || !valid_time_of_day(t.hour, t.minute, t.second)) return false;
  pos = p;
  return true;
}

// ---- record construction

void failure(SyslogRecord& r, std::string_view line, int pri, std::string problem, int64_t received_us) {
  r.pri = pri;
  r.hostname = r.app_name = r.procid = r.msgid = {};
  r.sd_ids.clear();
  r.sd_params.clear();
  r.message = line;
  r.time_us = received_us;
  r.raw = line;
  r.emit_raw = true;
  r.failed = true;
  r.error = std::move(problem);
}

struct ParseError {
  std::string what;
};

// A space-delimited header token; throws ParseError naming `field` when missing/empty.
std::string_view header_token(std::string_view s, size_t& pos, const char* field) {
  if (pos >= s.size()) throw ParseError{std::string("RFC 5424 header truncated: missing ") + field};
  const size_t end = std::min(s.find(' ', pos), s.size());
  if (end == pos) throw ParseError{std::string("RFC 5424: empty ") + field + " at offset " + std::to_string(pos)};
  std::string_view tok = s.substr(pos, end - pos);
  pos = end;
  return tok;
}

bool sd_name_char(char c) {
  return c > 32 && c < 127 && c != '=' && c != ']' && c != '"' && c != ' ';
}

uint32_t sd_id_index(SyslogRecord& r, std::string_view id) {
  for (size_t k = 0; k < r.sd_ids.size(); ++k)
    if (r.sd_ids[k] == id) return static_cast<uint32_t>(k);
  r.sd_ids.push_back(id);
  return static_cast<uint32_t>(r.sd_ids.size() - 1);
}

// SD-ELEMENTs starting at s[pos] == '['; fills r.sd_*. Throws ParseError.
// r.values has room for every unescaped value (reserved to the line's size), so the
// views into it stay valid.
void parse_structured_data(std::string_view s, size_t& pos, SyslogRecord& r) {
  while (pos < s.size() && s[pos] == '[') {
    ++pos;
    const size_t id_start = pos;
    while (pos < s.size() && sd_name_char(s[pos])) ++pos;
    if (pos == id_start)
      throw ParseError{"RFC 5424: empty or invalid SD-ID at offset " + std::to_string(id_start)};
    std::string_view id = s.substr(id_start, pos - id_start);
    const uint32_t id_index = sd_id_index(r, id);
    for (;;) {
      if (pos >= s.size())
        throw ParseError{"RFC 5424: unterminated structured data element '" + std::string(id) + "'"};
      if (s[pos] == ']') {
        ++pos;
        break;
      }
      if (s[pos] != ' ')
        throw ParseError{"RFC 5424: invalid character in SD-ID '" + std::string(id) + "' at offset " +
                         std::to_string(pos)};
      while (pos < s.size() && s[pos] == ' ') ++pos;
      if (pos < s.size() && s[pos] == ']') continue;
      const size_t name_start = pos;
      while (pos < s.size() && sd_name_char(s[pos])) ++pos;
      if (pos == name_start)
        throw ParseError{"RFC 5424: empty PARAM-NAME in '" + std::string(id) + "' at offset " +
                         std::to_string(name_start)};
      std::string_view name = s.substr(name_start, pos - name_start);
      if (!expect(s, pos, '=') || !expect(s, pos, '"'))
        throw ParseError{"RFC 5424: expected =\"value\" after PARAM-NAME '" + std::string(name) + "'"};
      const size_t value_start = r.values.size();
      bool closed = false;
      while (pos < s.size()) {
        // Plain bytes up to the next quote or backslash in one append.
        size_t run = pos;
        while (run < s.size() && s[run] != '"' && s[run] != '\\') ++run;
        if (run > pos) {
          r.values.append(s.data() + pos, run - pos);
          pos = run;
          continue;
        }
        const char c = s[pos];
        if (c == '\\' && pos + 1 < s.size() &&
            (s[pos + 1] == '"' || s[pos + 1] == '\\' || s[pos + 1] == ']')) {
          r.values += s[pos + 1];
          pos += 2;
        } else if (c == '"') {
          ++pos;
          closed = true;
          break;
        } else {
          r.values += c;  // includes a backslash before any other character
          ++pos;
        }
      }
      if (!closed)
        throw ParseError{"RFC 5424: unterminated PARAM-VALUE for '" + std::string(id) + "." +
                         std::string(name) + "'"};
      r.sd_params.push_back(
          {id_index, name, std::string_view(r.values).substr(value_start, r.values.size() - value_start)});
    }
  }
}

std::string_view strip_bom(std::string_view m) {
  if (m.size() >= 3 && m.substr(0, 3) == "\xEF\xBB\xBF") m.remove_prefix(3);
  return m;
}

// After "<PRI>1 ".
void parse_5424(std::string_view s, size_t pos, int64_t received_us, SyslogRecord& r) {
  std::string_view ts = header_token(s, pos, "TIMESTAMP");
  std::optional<int64_t> time;
  bool bad_time = false;
  if (ts != "-") {
    time = parse_rfc3339(ts, /*require_offset=*/true);
    bad_time = !time;
  }
  static constexpr const char* names[] = {"HOSTNAME", "APP-NAME", "PROCID", "MSGID"};
  std::string_view* fields[] = {&r.hostname, &r.app_name, &r.procid, &r.msgid};
  for (int k = 0; k < 4; ++k) {
    if (!expect(s, pos, ' ')) throw ParseError{std::string("RFC 5424 header truncated: missing ") + names[k]};
    std::string_view tok = header_token(s, pos, names[k]);
    if (tok != "-") *fields[k] = tok;
  }
  if (pos < s.size()) {  // lenient: a message ending after MSGID has no SD and no MSG
    if (!expect(s, pos, ' ')) throw ParseError{"RFC 5424: expected SP after MSGID"};
    if (pos < s.size() && s[pos] == '-' && (pos + 1 == s.size() || s[pos + 1] == ' ')) {
      ++pos;
    } else if (pos < s.size() && s[pos] == '[') {
      r.values.reserve(s.size());
      parse_structured_data(s, pos, r);
    } else {
      throw ParseError{"RFC 5424: expected STRUCTURED-DATA ('-' or '[') at offset " + std::to_string(pos)};
    }
  }
  std::string_view msg;
  if (pos < s.size()) {
    if (s[pos] != ' ')
      throw ParseError{"RFC 5424: expected SP after STRUCTURED-DATA at offset " + std::to_string(pos)};
    msg = strip_bom(s.substr(pos + 1));
  }
  r.message = msg;
  r.time_us = time ? *time : received_us;
  if (bad_time) r.error = "RFC 5424: invalid TIMESTAMP '" + std::string(ts) + "'";
}

// TAG[PID]: or TAG: at the start of rest. Returns the offset of the message, 0 if no tag.
size_t parse_tag(std::string_view rest, SyslogRecord& r) {
  size_t j = 0;
  while (j < rest.size() && rest[j] != ' ' && rest[j] != '[' &&
         !(rest[j] == ':' && (j + 1 == rest.size() || rest[j + 1] == ' ')))
    ++j;
  if (j == 0 || j == rest.size()) return 0;
  std::string_view tag = rest.substr(0, j);
  if (rest[j] == '[') {
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
  if (rest[j] == ':') {
    size_t k = j + 1;
    if (k < rest.size()) ++k;  // the SP after "tag:"
    r.app_name = tag;
    return k;
  }
  return 0;  // a plain word: no tag
}

bool looks_iso(std::string_view r) {
  return r.size() >= 11 && is_digit(r[0]) && is_digit(r[1]) && is_digit(r[2]) && is_digit(r[3]) &&
         r[4] == '-';
}

void parse_3164(std::string_view s, size_t pos, int64_t received_us, SyslogRecord& rec) {
  std::optional<int64_t> time;
  bool header = false;
  std::string_view rest = s.substr(pos);
  if (looks_iso(rest)) {
    const size_t end = std::min(rest.find(' '), rest.size());
    if (auto t = parse_rfc3339(rest.substr(0, end), /*require_offset=*/false)) {
      time = t;
      header = true;
      pos += end;
    }
  } else {
    BsdTime bt;
    size_t p = pos;
    if (parse_bsd_timestamp(s, p, bt)) {
      header = true;
      pos = p;
      if (bt.year != 0) {
        if (bt.day <= days_in_month(bt.year, bt.month))
          time = civil_to_us(bt.year, bt.month, bt.day, bt.hour, bt.minute, bt.second, bt.micros);
      } else {
        time = infer_bsd_time(bt.month, bt.day, bt.hour, bt.minute, bt.second, bt.micros, received_us);
      }
      if (!time) header = false, pos = s.size() - rest.size();  // "Feb 30": not a timestamp
    }
  }
  std::string_view msg = rest;
  if (header) {
    std::string_view r = s.substr(pos);
    if (!r.empty()) r.remove_prefix(1);  // SP after the timestamp
    const size_t tok_end = std::min(r.find(' '), r.size());
    std::string_view tok = r.substr(0, tok_end);
    const bool tag_like = !tok.empty() && (tok.back() == ':' || tok.find('[') != std::string_view::npos);
    if (!tok.empty() && !tag_like) {
      rec.hostname = tok;
      r.remove_prefix(tok_end);
      if (!r.empty()) r.remove_prefix(1);
    }
    const size_t m = parse_tag(r, rec);
    msg = r.substr(m);
  }
  rec.message = strip_bom(msg);
  rec.time_us = time ? *time : received_us;
}

// True when every byte is ASCII (then the text is valid UTF-8 as it is).
bool all_ascii(std::string_view s) {
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (w & 0x8080808080808080ull) return false;
  }
  for (; i < s.size(); ++i)
    if (static_cast<unsigned char>(s[i]) & 0x80) return false;
  return true;
}

}  // namespace

std::optional<int64_t> infer_bsd_time(int month, int day, int hour, int minute, int second, int micros,
                                      int64_t received_us) {
  if (month < 1 || month > 12 || day < 1 || !valid_time_of_day(hour, minute, second)) return std::nullopt;
  const int year = to_civil(received_us).year;
  std::optional<int64_t> best;
  for (int y = year - 1; y <= year + 1; ++y) {
    if (day > days_in_month(y, month)) continue;
    const int64_t t = civil_to_us(y, month, day, hour, minute, second, micros);
    if (!best || std::llabs(t - received_us) < std::llabs(*best - received_us)) best = t;
  }
  return best;
}

bool has_parse_error(const Event& event) { return event.contains("_parse_error"); }

void parse_syslog_record(std::string_view input, int64_t received_us, const SyslogParseOptions& options,
                         SyslogRecord& r) {
  while (!input.empty() && (input.back() == '\n' || input.back() == '\r' || input.back() == '\0'))
    input.remove_suffix(1);
  std::string_view s = input;
  if (!all_ascii(input) && !is_valid_utf8(input)) {
    r.repaired = repair_utf8(input);
    s = r.repaired;
  }
  r.pri = -1;
  r.hostname = r.app_name = r.procid = r.msgid = r.message = {};
  r.sd_ids.clear();
  r.sd_params.clear();
  r.values.clear();
  r.error.clear();
  r.failed = false;
  r.raw = s;

  if (s.empty()) return failure(r, s, -1, "empty message", received_us);
  if (s[0] != '<') return failure(r, s, -1, "missing <PRI>: message does not start with '<'", received_us);
  size_t pos = 1;
  int pri = 0;
  size_t digits = 0;
  while (pos < s.size() && is_digit(s[pos]) && digits < 4) {
    pri = pri * 10 + (s[pos] - '0');
    ++pos;
    ++digits;
  }
  if (digits == 0 || digits > 3 || pos >= s.size() || s[pos] != '>')
    return failure(r, s, -1, "invalid <PRI>: expected 1-3 digits followed by '>'", received_us);
  if (pri > 191) return failure(r, s, -1, "invalid <PRI>: " + std::to_string(pri) + " exceeds 191", received_us);
  ++pos;

  r.pri = pri;
  try {
    if (s.substr(pos, 2) == "1 ") {
      parse_5424(s, pos + 2, received_us, r);
    } else {
      parse_3164(s, pos, received_us, r);
    }
  } catch (ParseError& e) {
    return failure(r, s, pri, std::move(e.what), received_us);
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

}  // namespace

void write_syslog_fields(JsonObjectWriter& w, const SyslogRecord& r, Rfc3339Formatter& time_format) {
  if (r.pri >= 0) {
    w.plain_num("facility", r.pri / 8);
    w.plain_num("severity", r.pri % 8);
  }
  if (!r.hostname.empty()) w.plain_field("hostname", r.hostname);
  if (!r.app_name.empty()) w.plain_field("app_name", r.app_name);
  if (!r.procid.empty()) w.plain_field("procid", r.procid);
  if (!r.msgid.empty()) w.plain_field("msgid", r.msgid);
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
  w.plain_field("message", r.message);
  w.plain_field("_time", time_format.format(r.time_us));
  if (r.failed) {
    w.plain_field("_raw", r.raw);
    w.plain_field("_parse_error", r.error);
    return;
  }
  if (!r.error.empty()) w.plain_field("_parse_error", r.error);
  if (r.emit_raw) w.plain_field("_raw", r.raw);
}

Event syslog_record_to_event(const SyslogRecord& r) {
  Event ev;
  if (r.pri >= 0) {
    ev["facility"] = r.pri / 8;
    ev["severity"] = r.pri % 8;
  }
  if (!r.hostname.empty()) ev["hostname"] = r.hostname;
  if (!r.app_name.empty()) ev["app_name"] = r.app_name;
  if (!r.procid.empty()) ev["procid"] = r.procid;
  if (!r.msgid.empty()) ev["msgid"] = r.msgid;
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
  ev["message"] = r.message;
  ev["_time"] = format_rfc3339(r.time_us);
  if (r.failed) {
    ev["_raw"] = r.raw;
    ev["_parse_error"] = r.error;
    return ev;
  }
  if (!r.error.empty()) ev["_parse_error"] = r.error;
  if (r.emit_raw) ev["_raw"] = r.raw;
  return ev;
}

Event parse_syslog(std::string_view input, int64_t received_us, const SyslogParseOptions& options) {
  SyslogRecord r;
  parse_syslog_record(input, received_us, options, r);
  return syslog_record_to_event(r);
}

}  // namespace bf
