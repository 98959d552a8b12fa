#pragma once
// Time parsing for date_parse and the parse_time() expression function: strptime-style
// formats, epoch numbers, RFC 3339, wall times read in a time zone.
// Written here rather than with strptime(3) because that is locale-dependent, has no
// fractions or zone names, and is not fully thread-safe with TZ.
#include <boost/json/value.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/time_zone.h"
#include <vector>

namespace bf {

// The zone named in a step's options (common/time_zone.h: fixed offsets or IANA
// names); throws PipelineError naming it when unknown.
std::shared_ptr<const TimeZone> load_time_zone(const std::string& name);

class TimeFormat {
 public:
  // A strptime-style format (%Y %m %d %H %M %S %f %z %Z %b %B %a %A %y %e %j %I %p %s
  // %T %F %D %%), or one of: rfc3339, epoch_s, epoch_ms, epoch_us, epoch_ns, auto
  // (RFC 3339 text or an epoch number whose unit is read from its size).
  // Throws PipelineError for an unknown directive.
  static TimeFormat compile(const std::string& format);
  // UTC µs, or nullopt if the value does not match. A time without a zone is read in
  // `zone`; a format without a year takes the current year (the previous one if that
  // would put the time more than a day ahead).
  std::optional<int64_t> parse(const boost::json::value& v, const TimeZone& zone) const;
  std::optional<int64_t> parse(std::string_view text, const TimeZone& zone) const;

 private:
  enum class Kind { pattern, rfc3339, epoch_s, epoch_ms, epoch_us, epoch_ns, automatic };
  Kind kind_ = Kind::automatic;
  std::string pattern_;  // with %T %F %D expanded
};

}  // namespace bf
