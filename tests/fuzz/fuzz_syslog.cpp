// libFuzzer target: the syslog parser (RFC 5424 / RFC 3164 and device variants,
// CEF / LEEF / key=value payloads) and its NDJSON writer on arbitrary messages.
#include "common/time_zone.h"
#include "fuzz_check.h"
#include "proxy/ndjson_writer.h"
#include "proxy/syslog_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A zone with DST, so zone-less timestamps go through the TZif rules.
  static const bf::SyslogParseOptions options = [] {
    bf::SyslogParseOptions o;
    try {
      o.timezone = bf::TimeZone::load("Europe/Berlin");
    } catch (...) {
    }
    return o;
  }();
  bf::SyslogRecord record;
  bf::parse_syslog_record(std::string_view(reinterpret_cast<const char*>(data), size), 1764676800000000LL, options,
                          record);
  std::string out;
  bf::JsonObjectWriter w(out);
  bf::Rfc3339Formatter time_format;
  bf::write_syslog_fields(w, record, time_format);
  w.close();
  out.push_back('\n');
  check_ndjson(out);
  return 0;
}
