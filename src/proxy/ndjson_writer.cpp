#include "proxy/ndjson_writer.h"

#include "common/time.h"

namespace bf {

namespace {
void put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}
}  // namespace

std::string_view Rfc3339Formatter::format(int64_t unix_us) {
  const int64_t secs = unix_us >= 0 ? unix_us / 1000000 : (unix_us - 999999) / 1000000;
  const int micros = static_cast<int>(unix_us - secs * 1000000);
  if (secs != second_) {
    const CivilTime c = to_civil(secs * 1000000);
    if (c.year < 0 || c.year > 9999) {
      second_ = INT64_MIN;
      fallback_ = format_rfc3339(unix_us);
      return fallback_;
    }
    put2(buf_, c.year / 100);
    put2(buf_ + 2, c.year % 100);
    buf_[4] = '-';
    put2(buf_ + 5, c.month);
    buf_[7] = '-';
    put2(buf_ + 8, c.day);
    buf_[10] = 'T';
    put2(buf_ + 11, c.hour);
    buf_[13] = ':';
    put2(buf_ + 14, c.minute);
    buf_[16] = ':';
    put2(buf_ + 17, c.second);
    buf_[19] = '.';
    buf_[26] = 'Z';
    len_ = 27;
    second_ = secs;
  }
  int m = micros;
  for (int k = 25; k >= 20; --k) {
    buf_[k] = static_cast<char>('0' + m % 10);
    m /= 10;
  }
  return std::string_view(buf_, len_);
}

}  // namespace bf
