#pragma once
// Time helpers. Everything internal is UTC microseconds since the epoch.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bf {

int64_t now_us();
int64_t now_ms();

struct CivilTime {
  int year, month, day, hour, minute, second, micros;
};
CivilTime to_civil(int64_t unix_us);
// days_from_civil: Gregorian date -> days since 1970-01-01 (proleptic, UTC).
int64_t days_from_civil(int y, int m, int d);
int days_in_month(int year, int month);  // month 1-12
// A UTC civil time -> µs since the epoch (fields are not range-checked).
int64_t civil_to_us(int y, int mo, int d, int h, int mi, int s, int micros);

// "2026-11-25T13:35:09.123456Z"
std::string format_rfc3339(int64_t unix_us);
// The same into `out`, without an allocation; returns its length (27, more outside
// years 0..9999).
size_t format_rfc3339(int64_t unix_us, char (&out)[40]);
// RFC 3339 / ISO 8601 with 'Z' or numeric offset (+hh:mm or +hhmm), optional
// fraction (truncated to µs); result UTC µs. Without `require_offset`, a time with
// no zone designator is taken as UTC.
std::optional<int64_t> parse_rfc3339(std::string_view s, bool require_offset = false);

// "yyyy/mm/dd/hh" as used by raw/ and processed/ keys.
std::string hour_path(int64_t unix_us);
// "year=YYYY/month=MM/day=DD/hour=HH" as used by parquet/ keys.
std::string hive_hour_path(int64_t unix_us);

}  // namespace bf
