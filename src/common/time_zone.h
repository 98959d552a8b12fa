#pragma once
// Time zones: fixed offsets ("+02:00", "-0530", "+05") and IANA names read from the
// system's zoneinfo (Debian's tzdata, /usr/share/zoneinfo or $TZDIR): libstdc++ 12 has
// no std::chrono::tzdb. Used where timestamps carry no zone (RFC 3164 syslog, the
// piper's date_parse and parse_time) to turn a wall time into UTC. The one TimeZone of
// the project: a second class of this name would be an ODR violation.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bf {

class TimeZone {
 public:
  // "UTC" (also "Etc/UTC", "Z", "GMT") and fixed offsets need no file; a named zone is
  // read once per process. Throws std::invalid_argument naming the zone when the name
  // is malformed or no TZif file for it exists.
  static std::shared_ptr<const TimeZone> load(const std::string& name);
  static std::shared_ptr<const TimeZone> utc();
  // Seconds east of UTC for "+02:00", "-0530", "+05", "UTC", "Z", "GMT"; nullopt for
  // anything else (zone names, abbreviations).
  static std::optional<int> fixed_offset(std::string_view text);

  const std::string& name() const { return name_; }
  bool is_utc() const { return transitions_.empty() && offsets_.size() == 1 && offsets_[0] == 0; }
  // Offset from UTC in seconds at a UTC instant.
  int offset_at(int64_t utc_us) const;
  // A wall-clock time in this zone, given as if it were UTC µs, -> UTC µs. In a DST gap
  // the offset before the gap is used; an ambiguous time (fall back) takes the first.
  int64_t local_to_utc(int64_t local_us) const;

 private:
  static std::shared_ptr<const TimeZone> read(const std::string& name);  // a TZif file
  std::string name_;
  std::vector<int64_t> transitions_;  // UTC seconds, ascending
  std::vector<int> offsets_;          // offsets_[i]: in force from transitions_[i-1] (offsets_[0]: before the first)
};

}  // namespace bf
