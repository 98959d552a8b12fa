#include "common/time.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace bf {

int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t now_ms() { return now_us() / 1000; }

// Civil date <-> day count by 400-year eras (the proleptic Gregorian calendar repeats every 146097 days).
int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilTime to_civil(int64_t unix_us) {
  int64_t secs = unix_us >= 0 ? unix_us / 1000000 : (unix_us - 999999) / 1000000;
  int micros = static_cast<int>(unix_us - secs * 1000000);
  int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  int64_t sod = secs - days * 86400;
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  int y = static_cast<int>(yoe + era * 400 + (m <= 2));
  return CivilTime{y, m, d, static_cast<int>(sod / 3600), static_cast<int>(sod / 60 % 60),
                   static_cast<int>(sod % 60), micros};
}

size_t format_rfc3339(int64_t unix_us, char (&out)[40]) {
  CivilTime c = to_civil(unix_us);
  if (c.year < 0 || c.year > 9999) {  // rare: snprintf's widths and sign
    int n = std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", c.year, c.month, c.day, c.hour, c.minute,
                          c.second, c.micros);
    return std::min(static_cast<size_t>(n), sizeof out - 1);
  }
  // Digit by digit: date_parse writes one of these per event, and snprintf was most of its cost.
  const int values[] = {c.year, c.month, c.day, c.hour, c.minute, c.second, c.micros};
  const int widths[] = {4, 2, 2, 2, 2, 2, 6};
  const char after[] = "--T::.Z";
  size_t len = 0;
  for (size_t f = 0; f < 7; ++f) {
    int v = values[f];
    for (int i = widths[f] - 1; i >= 0; --i, v /= 10) out[len + static_cast<size_t>(i)] = static_cast<char>('0' + v % 10);
    len += static_cast<size_t>(widths[f]);
    out[len++] = after[f];
  }
  out[len] = 0;
  return len;
}

std::string format_rfc3339(int64_t unix_us) {
  char buf[40];
  return std::string(buf, format_rfc3339(unix_us, buf));
}

namespace {
bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}
}  // namespace

int days_in_month(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

int64_t civil_to_us(int y, int mo, int d, int h, int mi, int s, int micros) {
  return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000000 + micros;
}

std::optional<int64_t> parse_rfc3339(std::string_view s, bool require_offset) {
  int y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, sec))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
    return std::nullopt;
  if (sec == 60) sec = 59;  // leap second: clamp
  size_t pos = 19;
  int64_t micros = 0;
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
    ++pos;
    size_t start = pos;
    int64_t scale = 100000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      micros += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (pos == s.size()) {
    if (require_offset) return std::nullopt;  // no zone designator
  } else if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om = 0;
    int sign = s[pos] == '-' ? -1 : 1;
    if (!digits(s, pos + 1, 2, oh)) return std::nullopt;
    pos += 3;
    if (pos < s.size() && s[pos] == ':') ++pos;
    if (pos < s.size()) {
      if (!digits(s, pos, 2, om)) return std::nullopt;
      pos += 2;
    }
    if (oh > 23 || om > 59) return std::nullopt;
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  return civil_to_us(y, mo, d, h, mi, sec, static_cast<int>(micros)) - offset_s * 1000000;
}

std::string hour_path(int64_t unix_us) {
  CivilTime c = to_civil(unix_us);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d/%02d/%02d/%02d", c.year, c.month, c.day, c.hour);
  return buf;
}

std::string hive_hour_path(int64_t unix_us) {
  CivilTime c = to_civil(unix_us);
  char buf[64];
  std::snprintf(buf, sizeof buf, "year=%04d/month=%02d/day=%02d/hour=%02d", c.year, c.month, c.day,
                c.hour);
  return buf;
}

}  // namespace bf
