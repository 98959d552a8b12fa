#include "piper/time_format.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>

#include "common/batch.h"
#include "common/time.h"
#include "piper/transform.h"

namespace bf {

namespace {

std::optional<int32_t> parse_fixed_offset(std::string_view s) {
  if (s == "UTC" || s == "Z" || s == "GMT" || s == "Etc/UTC") return 0;
  if (s.size() < 3 || (s[0] != '+' && s[0] != '-')) return std::nullopt;
  std::string digits;
  for (char c : s.substr(1)) {
    if (c == ':') continue;
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    digits += c;
  }
  if (digits.size() != 2 && digits.size() != 4) return std::nullopt;
  int h = std::stoi(digits.substr(0, 2)), m = digits.size() == 4 ? std::stoi(digits.substr(2)) : 0;
  if (h > 23 || m > 59) return std::nullopt;
  int32_t off = h * 3600 + m * 60;
  return s[0] == '-' ? -off : off;
}

int64_t be(const std::string& d, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(d[pos + static_cast<size_t>(i)]);
  if (bytes == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<int64_t>(v);
}

// TZif (RFC 8536): uses the version 2+ block (64-bit times) when present. Times past
// the last transition keep its offset (Debian ships "fat" files that list transitions
// to 2037; the POSIX TZ footer for later times is not interpreted).
std::vector<std::pair<int64_t, int32_t>> read_tzif(const std::string& d, const std::string& name) {
  auto bad = [&] { return PipelineError("time zone '" + name + "': not a valid zoneinfo file"); };
  if (d.size() < 44 || d.compare(0, 4, "TZif") != 0) throw bad();
  auto counts = [&](size_t at, int64_t c[6]) {
    if (d.size() < at + 44) throw bad();
    for (int i = 0; i < 6; ++i) c[i] = be(d, at + 20 + 4 * static_cast<size_t>(i), 4);
  };
  int64_t c[6];  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  counts(0, c);
  size_t at = 44;
  int time_bytes = 4;
  if (d[4] >= '2') {  // skip the v1 block
    at += static_cast<size_t>(c[3] * 4 + c[3] + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0]);
    counts(at, c);
    at += 44;
    time_bytes = 8;
  }
  const int64_t timecnt = c[3], typecnt = c[4];
  if (typecnt <= 0 || d.size() < at + static_cast<size_t>(timecnt * (time_bytes + 1) + typecnt * 6)) throw bad();
  std::vector<int32_t> type_offsets;
  size_t types_at = at + static_cast<size_t>(timecnt * (time_bytes + 1));
  for (int64_t i = 0; i < typecnt; ++i) type_offsets.push_back(static_cast<int32_t>(be(d, types_at + static_cast<size_t>(i) * 6, 4)));
  std::vector<std::pair<int64_t, int32_t>> out;
  out.emplace_back(INT64_MIN, type_offsets[0]);
  for (int64_t i = 0; i < timecnt; ++i) {
    int64_t t = be(d, at + static_cast<size_t>(i * time_bytes), time_bytes);
    auto idx = static_cast<unsigned char>(d[at + static_cast<size_t>(timecnt * time_bytes + i)]);
    if (idx >= type_offsets.size()) throw bad();
    out.emplace_back(t, type_offsets[idx]);
  }
  return out;
}

const std::pair<int64_t, int32_t>* entry_at(const std::vector<std::pair<int64_t, int32_t>>& t, int64_t utc) {
  auto it = std::upper_bound(t.begin(), t.end(), utc, [](int64_t v, const auto& e) { return v < e.first; });
  return &*(it - 1);  // the first entry starts at INT64_MIN
}

}  // namespace

TimeZone TimeZone::load(const std::string& name) {
  TimeZone z;
  if (auto off = parse_fixed_offset(name)) {
    z.fixed_ = *off;
    return z;
  }
  bool ok = !name.empty() && name.size() < 100 && name.find("..") == std::string::npos && name[0] != '/';
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' || c == '+');
  if (!ok) throw PipelineError("time zone '" + name + "': not a zone name or offset");
  // Zones are few and immutable: one parsed copy per name for the process.
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const std::vector<std::pair<int64_t, int32_t>>>> cache;
  std::lock_guard lock(mu);
  auto& slot = cache[name];
  if (!slot) {
    const char* dir = std::getenv("TZDIR");
    std::ifstream in(std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + name, std::ios::binary);
    if (!in) {
      cache.erase(name);
      throw PipelineError("time zone '" + name + "': unknown (no zoneinfo file)");
    }
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
      slot = std::make_shared<const std::vector<std::pair<int64_t, int32_t>>>(read_tzif(data, name));
    } catch (...) {
      cache.erase(name);
      throw;
    }
  }
  z.transitions_ = slot;
  return z;
}

int32_t TimeZone::offset_at(int64_t utc_seconds) const {
  return transitions_ ? entry_at(*transitions_, utc_seconds)->second : fixed_;
}

int64_t TimeZone::local_to_utc(int64_t local) const {
  if (!transitions_) return local - fixed_;
  // Candidates: the offsets just before and after the instant; take the earliest that
  // maps back to the wall time (a skipped hour falls back to the offset before it).
  int32_t before = offset_at(local - 86400), after = offset_at(local + 86400);
  int64_t a = local - before, b = local - after;
  bool a_ok = offset_at(a) == before, b_ok = offset_at(b) == after;
  if (a_ok && b_ok) return std::min(a, b);
  if (a_ok) return a;
  if (b_ok) return b;
  return a;
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
        offset = parse_fixed_offset(s.substr(start, pos - start));
        if (!offset) return std::nullopt;
        break;
      }
      case 'Z': {
        size_t start = pos;
        while (pos < s.size() && (std::isalnum(static_cast<unsigned char>(s[pos])) || s[pos] == '/' || s[pos] == '_')) ++pos;
        std::string name(s.substr(start, pos - start));
        if (auto fixed = parse_fixed_offset(name)) offset = *fixed;
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
    int64_t utc = offset ? local - *offset : zone.local_to_utc(local);
    return utc * 1000000 + micros;
  };
  auto t = instant(year);
  if (no_year && (!t || *t > now + 86400LL * 1000000)) t = instant(year - 1);  // "Dec 31" read on Jan 1
  return t;
}

}  // namespace bf
