#pragma once
// IANA time zones from the system's zoneinfo (Debian's tzdata, /usr/share/zoneinfo or
// $TZDIR): libstdc++ 12 has no std::chrono::tzdb. Used where a source's timestamps
// carry no zone (RFC 3164 syslog) to turn the sender's wall time into UTC.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bf {

class TimeZone {
 public:
  // "UTC" (also "Etc/UTC", "Z") needs no file. Throws std::invalid_argument naming the
  // zone when the name is malformed or no TZif file for it exists.
  static std::shared_ptr<const TimeZone> load(const std::string& name);
  static std::shared_ptr<const TimeZone> utc();

  const std::string& name() const { return name_; }
  bool is_utc() const { return transitions_.empty() && offsets_.size() == 1 && offsets_[0] == 0; }
  // Offset from UTC in seconds at a UTC instant.
  int offset_at(int64_t utc_us) const;
  // A wall-clock time in this zone, given as if it were UTC µs, -> UTC µs. In a DST gap
  // the offset before the gap is used; an ambiguous time (fall back) takes the first.
  int64_t local_to_utc(int64_t local_us) const;

 private:
  std::string name_;
  std::vector<int64_t> transitions_;  // UTC seconds, ascending
  std::vector<int> offsets_;          // offsets_[i]: in force from transitions_[i-1] (offsets_[0]: before the first)
};

}  // namespace bf
