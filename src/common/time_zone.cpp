#include "common/time_zone.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace bf {
namespace {

int64_t be(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  if (n == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<int64_t>(v);
}

bool valid_zone_name(const std::string& n) {
  if (n.empty() || n.size() > 128 || n.front() == '/' || n.find("..") != std::string::npos) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' || c == '+')) return false;
  return true;
}

}  // namespace

std::shared_ptr<const TimeZone> TimeZone::utc() {
  static const std::shared_ptr<const TimeZone> z = [] {
    auto t = std::make_shared<TimeZone>();
    t->name_ = "UTC";
    t->offsets_ = {0};
    return t;
  }();
  return z;
}

std::optional<int> TimeZone::fixed_offset(std::string_view s) {
  if (s == "UTC" || s == "Z" || s == "GMT" || s == "Etc/UTC") return 0;
  if (s.size() < 3 || (s[0] != '+' && s[0] != '-')) return std::nullopt;
  std::string digits;
  for (char c : s.substr(1)) {
    if (c == ':') continue;
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    digits += c;
  }
  if (digits.size() != 2 && digits.size() != 4) return std::nullopt;
  const int h = std::stoi(digits.substr(0, 2)), m = digits.size() == 4 ? std::stoi(digits.substr(2)) : 0;
  if (h > 23 || m > 59) return std::nullopt;
  const int off = h * 3600 + m * 60;
  return s[0] == '-' ? -off : off;
}

std::shared_ptr<const TimeZone> TimeZone::load(const std::string& name) {
  if (name == "UTC" || name == "Etc/UTC" || name == "Z" || name == "Etc/UCT" || name == "UCT" || name == "GMT")
    return utc();
  if (auto off = fixed_offset(name)) {
    if (*off == 0) return utc();
    auto z = std::make_shared<TimeZone>();
    z->name_ = name;
    z->offsets_ = {*off};
    return z;
  }
  if (!valid_zone_name(name)) throw std::invalid_argument("invalid time zone name '" + name + "'");
  // Zones are few and immutable: one parsed copy per name for the process.
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const TimeZone>> cache;
  std::lock_guard lock(mu);
  auto& slot = cache[name];
  if (!slot) {
    try {
      slot = read(name);
    } catch (...) {
      cache.erase(name);
      throw;
    }
  }
  return slot;
}

std::shared_ptr<const TimeZone> TimeZone::read(const std::string& name) {
  const char* dir = std::getenv("TZDIR");
  const std::string path = std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("unknown time zone '" + name + "' (no " + path + "; is tzdata installed?)");
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const auto bad = [&] { return std::invalid_argument("time zone '" + name + "': " + path + " is not a TZif file"); };
  if (data.size() < 44 || std::memcmp(p, "TZif", 4) != 0) throw bad();
  // Header: magic, version, 15 reserved, then isutcnt isstdcnt leapcnt timecnt typecnt charcnt.
  auto counts = [&](size_t at, int64_t c[6]) {
    if (at + 44 > data.size()) throw bad();
    for (int i = 0; i < 6; ++i) c[i] = be(p + at + 20 + 4 * i, 4);
  };
  int64_t c[6];
  counts(0, c);
  size_t at = 44;
  int time_size = 4;
  if (p[4] >= '2') {  // skip the 32-bit block; the 64-bit one follows with its own header
    at += c[3] * 4 + c[3] + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    counts(at, c);
    at += 44;
    time_size = 8;
  }
  const int64_t timecnt = c[3], typecnt = c[4];
  if (typecnt < 1 || at + timecnt * (time_size + 1) + typecnt * 6 > data.size()) throw bad();
  auto zone = std::make_shared<TimeZone>();
  zone->name_ = name;
  const unsigned char* times = p + at;
  const unsigned char* idx = times + timecnt * time_size;
  const unsigned char* types = idx + timecnt;
  auto type_offset = [&](int64_t k) {
    if (k < 0 || k >= typecnt) throw bad();
    return static_cast<int>(be(types + 6 * k, 4));
  };
  // Before the first transition: the first standard-time type (RFC 8536 §3.2), else type 0.
  int64_t first = 0;
  for (int64_t k = 0; k < typecnt; ++k)
    if (types[6 * k + 4] == 0) {
      first = k;
      break;
    }
  zone->offsets_.push_back(type_offset(first));
  for (int64_t i = 0; i < timecnt; ++i) {
    zone->transitions_.push_back(be(times + i * time_size, time_size));
    zone->offsets_.push_back(type_offset(idx[i]));
  }
  // Past the last transition the last offset holds (Debian's "fat" files list DST
  // transitions up to 2037; the TZ footer rule beyond is not read).
  return zone;
}

int TimeZone::offset_at(int64_t utc_us) const {
  if (transitions_.empty()) return offsets_[0];
  const int64_t s = utc_us >= 0 ? utc_us / 1000000 : -((-utc_us + 999999) / 1000000);
  const size_t i = std::upper_bound(transitions_.begin(), transitions_.end(), s) - transitions_.begin();
  return offsets_[i];
}

int64_t TimeZone::local_to_utc(int64_t local_us) const {
  constexpr int64_t kUs = 1000000;
  if (transitions_.empty()) return local_us - int64_t(offsets_[0]) * kUs;
  const int64_t guess = local_us - int64_t(offset_at(local_us)) * kUs;
  const int o = offset_at(guess);
  const int64_t utc = local_us - int64_t(o) * kUs;
  return offset_at(utc) == o ? utc : guess;  // not consistent: a wall time in a gap
}

}  // namespace bf
