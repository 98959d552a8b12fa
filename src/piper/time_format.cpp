#include "piper/time_format.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>

#include "common/batch.h"
#include "common/time.h"
#include "piper/transform.h"

namespace bf {

std::shared_ptr<const TimeZone> load_time_zone(const std::string& name) {
  try {
    return TimeZone::load(name);
  } catch (const std::invalid_argument& e) {
    throw PipelineError(e.what());
  }
}

TimeFormat TimeFormat::compile(const std::string& format) {
  TimeFormat f;
  static const std::map<std::string, Kind> named{{"rfc3339", Kind::rfc3339}, {"iso8601", Kind::rfc3339},
                                                 {"epoch_s", Kind::epoch_s},  {"epoch_ms", Kind::epoch_ms},
                                                 {"epoch_us", Kind::epoch_us}, {"epoch_ns", Kind::epoch_ns},
                                                 {"auto", Kind::automatic}};
  if (auto it = named.find(format); it != named.end()) {
    f.kind_ = it->second;
    return f;
  }
  f.kind_ = Kind::pattern;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      f.pattern_ += format[i];
      continue;
    }
    if (++i == format.size()) throw PipelineError("time format '" + format + "' ends with a lone '%'");
    char d = format[i];
    if (d == 'T') f.pattern_ += "%H:%M:%S";
    else if (d == 'F') f.pattern_ += "%Y-%m-%d";
    else if (d == 'D') f.pattern_ += "%m/%d/%y";
    else if (std::string_view("YmdHMSfzZbBhaAyejIps%nt").find(d) != std::string_view::npos) f.pattern_ += {'%', d};
    else throw PipelineError("time format '" + format + "': unknown directive '%" + std::string(1, d) + "'");
  }
  if (f.pattern_.empty()) throw PipelineError("time format is empty");
  return f;
}

std::optional<int64_t> TimeFormat::parse(const boost::json::value& v, const TimeZone& zone) const {
  if (v.is_string()) return parse(std::string_view(v.get_string()), zone);
  if (!v.is_number()) return std::nullopt;
  if (v.is_int64() && kind_ != Kind::automatic) {  // exact: ns values do not fit a double
    const int64_t n = v.get_int64();
    switch (kind_) {
      case Kind::epoch_s: if (std::llabs(n) < 9200000000000LL) return n * 1000000; return std::nullopt;
      case Kind::epoch_ms: if (std::llabs(n) < 9200000000000000LL) return n * 1000; return std::nullopt;
      case Kind::epoch_us: return n;
      case Kind::epoch_ns: return n / 1000;
      default: return std::nullopt;
    }
  }
  double n = v.to_number<double>();
  if (!std::isfinite(n)) return std::nullopt;
  double us;
  switch (kind_) {
    case Kind::epoch_s: us = n * 1e6; break;
    case Kind::epoch_ms: us = n * 1e3; break;
    case Kind::epoch_us: us = n; break;
    case Kind::epoch_ns: us = n / 1e3; break;
    case Kind::automatic: return parse_event_time(v);
    default: return std::nullopt;
  }
  if (std::fabs(us) >= 9.2e18) return std::nullopt;
  return static_cast<int64_t>(us);
}

namespace {
const char* const kMonths[] = {"january", "february", "march",     "april",   "may",      "june",
                               "july",    "august",   "september", "october", "november", "december"};
const char* const kDays[] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};

bool read_int(std::string_view s, size_t& pos, int max_digits, int64_t& out, bool allow_sign = false) {
  size_t start = pos;
  bool neg = false;
  if (allow_sign && pos < s.size() && (s[pos] == '-' || s[pos] == '+')) neg = s[pos++] == '-';
  size_t digits_start = pos;
  int64_t v = 0;
  while (pos < s.size() && pos - digits_start < static_cast<size_t>(max_digits) &&
         std::isdigit(static_cast<unsigned char>(s[pos])))
    v = v * 10 + (s[pos++] - '0');
  if (pos == digits_start) {
    pos = start;
    return false;
  }
  out = neg ? -v : v;
  return true;
}

// An English month or day name, full or abbreviated to three letters; index or -1.
int read_name(std::string_view s, size_t& pos, const char* const* names, int count) {
  for (int i = 0; i < count; ++i) {
    std::string_view full(names[i]);
    auto matches = [&](size_t n) {
      if (pos + n > s.size()) return false;
      for (size_t k = 0; k < n; ++k)
        if (std::tolower(static_cast<unsigned char>(s[pos + k])) != full[k]) return false;
      return true;
    };
    if (matches(full.size())) {
      pos += full.size();
      return i;
    }
    if (matches(3)) {
      pos += 3;
      return i;
    }
  }
  return -1;
}
}  // namespace

std::optional<int64_t> TimeFormat::parse(std::string_view s, const TimeZone& zone) const {
  switch (kind_) {
    case Kind::rfc3339: return parse_rfc3339(s, false);
    case Kind::automatic: {
      if (auto t = parse_rfc3339(s, false)) return t;
      char* end = nullptr;
      std::string copy(s);
      double n = std::strtod(copy.c_str(), &end);
      if (copy.empty() || *end) return std::nullopt;
      return parse_event_time(boost::json::value(n));
    }
    case Kind::pattern: break;
    default: {
      std::string copy(s);
      char* end = nullptr;
      errno = 0;
      long long n = std::strtoll(copy.c_str(), &end, 10);
      if (!copy.empty() && !*end && errno == 0) return parse(boost::json::value(static_cast<int64_t>(n)), zone);
      double x = std::strtod(copy.c_str(), &end);
      if (copy.empty() || *end) return std::nullopt;
      return parse(boost::json::value(x), zone);
    }
  }
  int64_t year = INT64_MIN, month = 1, day = 1, hour = 0, minute = 0, second = 0, micros = 0, yday = -1;
  int pm = -1;  // -1: no %p
  std::optional<int32_t> offset;
  std::optional<int64_t> epoch;
  size_t pos = 0;
  const std::string& p = pattern_;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
      continue;
    }
    if (c != '%') {
      if (pos >= s.size() || s[pos] != c) return std::nullopt;
      ++pos;
      continue;
    }
    char d = p[++i];
    int64_t v = 0;
    switch (d) {
      case 'Y': if (!read_int(s, pos, 4, year, true)) return std::nullopt; break;
      case 'y':
        if (!read_int(s, pos, 2, v)) return std::nullopt;
        year = v < 69 ? 2000 + v : 1900 + v;
        break;
      case 'm': if (!read_int(s, pos, 2, month) || month < 1 || month > 12) return std::nullopt; break;
      case 'e':
        while (pos < s.size() && s[pos] == ' ') ++pos;
        [[fallthrough]];
      case 'd': if (!read_int(s, pos, 2, day) || day < 1 || day > 31) return std::nullopt; break;
      case 'j': if (!read_int(s, pos, 3, yday) || yday < 1 || yday > 366) return std::nullopt; break;
      case 'H': if (!read_int(s, pos, 2, hour) || hour > 23) return std::nullopt; break;
      case 'I': if (!read_int(s, pos, 2, hour) || hour < 1 || hour > 12) return std::nullopt; break;
      case 'M': if (!read_int(s, pos, 2, minute) || minute > 59) return std::nullopt; break;
      case 'S': if (!read_int(s, pos, 2, second) || second > 60) return std::nullopt; break;
      case 'f': {
        size_t start = pos;
        int64_t frac = 0;
        while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
          if (pos - start < 6) frac = frac * 10 + (s[pos] - '0');
          ++pos;
        }
        if (pos == start) return std::nullopt;
        for (size_t k = pos - start; k < 6; ++k) frac *= 10;
        micros = frac;
        break;
      }
      case 'p': {
        if (pos + 2 > s.size()) return std::nullopt;
        char a = static_cast<char>(std::tolower(static_cast<unsigned char>(s[pos])));
        if ((a != 'a' && a != 'p') || std::tolower(static_cast<unsigned char>(s[pos + 1])) != 'm') return std::nullopt;
        pm = a == 'p';
        pos += 2;
        break;
      }
      case 'b': case 'B': case 'h': {
        int m = read_name(s, pos, kMonths, 12);
        if (m < 0) return std::nullopt;
        month = m + 1;
        break;
      }
      case 'a': case 'A': if (read_name(s, pos, kDays, 7) < 0) return std::nullopt; break;
      case 'z': {
        if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
          ++pos;
          offset = 0;
          break;
        }
        size_t start = pos;
        if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) ++pos;
        while (pos < s.size() && (std::isdigit(static_cast<unsigned char>(s[pos])) || s[pos] == ':')) ++pos;
        offset = TimeZone::fixed_offset(s.substr(start, pos - start));
        if (!offset) return std::nullopt;
        break;
      }
      case 'Z': {
        size_t start = pos;
        while (pos < s.size() && (std::isalnum(static_cast<unsigned char>(s[pos])) || s[pos] == '/' || s[pos] == '_')) ++pos;
        std::string name(s.substr(start, pos - start));
        if (auto fixed = TimeZone::fixed_offset(name)) offset = *fixed;
        else return std::nullopt;  // zone abbreviations (CET, PST) are ambiguous
        break;
      }
      case 's': {
        int64_t e = 0;
        if (!read_int(s, pos, 12, e, true)) return std::nullopt;
        epoch = e;
        break;
      }
      case 'n': case 't':
        while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
        break;
      case '%':
        if (pos >= s.size() || s[pos] != '%') return std::nullopt;
        ++pos;
        break;
    }
  }
  if (pos != s.size()) return std::nullopt;
  if (epoch) return *epoch * 1000000 + micros;
  if (pm >= 0) hour = (hour % 12) + (pm ? 12 : 0);
  const bool no_year = year == INT64_MIN;
  const int64_t now = now_us();
  if (no_year) year = to_civil(now).year;
  auto instant = [&](int64_t y) -> std::optional<int64_t> {
    int64_t days;
    if (yday > 0) {
      days = days_from_civil(static_cast<int>(y), 1, 1) + yday - 1;
    } else {
      if (day > days_in_month(static_cast<int>(y), static_cast<int>(month))) return std::nullopt;
      days = days_from_civil(static_cast<int>(y), static_cast<int>(month), static_cast<int>(day));
    }
    int64_t local = days * 86400 + hour * 3600 + minute * 60 + second;
    int64_t utc = offset ? local - *offset : zone.local_to_utc(local * 1000000) / 1000000;
    return utc * 1000000 + micros;
  };
  auto t = instant(year);
  if (no_year && (!t || *t > now + 86400LL * 1000000)) t = instant(year - 1);  // "Dec 31" read on Jan 1
  return t;
}

}  // namespace bf
