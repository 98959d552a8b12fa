#include "proxy/syslog_parser.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/time.h"
#include "common/utf8.h"
#include "syslog_test_helpers.h"

namespace bf {
namespace {

namespace json = boost::json;

using syslog_test::at;
using syslog_test::num;
using syslog_test::str;

const int64_t kRecv = at("2024-06-15T12:00:00Z");

TEST(SyslogParser, Rfc5424WithStructuredDataAndBom) {
  const std::string line =
      "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
      "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] "
      "\xEF\xBB\xBF" "An application event log entry...";
  Event e = parse_syslog(line, kRecv);
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(num(e, "facility"), 20);
  EXPECT_EQ(num(e, "severity"), 5);
  EXPECT_EQ(str(e, "hostname"), "mymachine.example.com");
  EXPECT_EQ(str(e, "app_name"), "evntslog");
  EXPECT_FALSE(e.contains("procid"));
  EXPECT_EQ(str(e, "msgid"), "ID47");
  EXPECT_EQ(str(e, "message"), "An application event log entry...");
  EXPECT_EQ(str(e, "_time"), "2003-10-11T22:14:15.003000Z");
  EXPECT_EQ(str(e, "_raw"), line);
  ASSERT_TRUE(e.contains("structured_data"));
  const auto& sd = e.at("structured_data").as_object();
  ASSERT_EQ(sd.size(), 1u);
  const auto& p = sd.at("exampleSDID@32473").as_object();
  EXPECT_EQ(p.at("iut"), "3");
  EXPECT_EQ(p.at("eventSource"), "Application");
  EXPECT_EQ(p.at("eventID"), "1011");
}

TEST(SyslogParser, Rfc5424StructuredDataEscapesAndRepeats) {
  const std::string line =
      R"(<13>1 2024-02-29T12:00:00Z h app 42 m )"
      R"([a@1 q="say \"hi\"" b="back\\slash" c="br\]acket" d="keep\n"][b@2 x="1" x="2"] the msg)";
  Event e = parse_syslog(line, kRecv);
  ASSERT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(str(e, "procid"), "42");
  EXPECT_EQ(str(e, "message"), "the msg");
  EXPECT_EQ(str(e, "_time"), "2024-02-29T12:00:00.000000Z");
  const auto& a = e.at("structured_data").at("a@1").as_object();
  EXPECT_EQ(a.at("q"), "say \"hi\"");
  EXPECT_EQ(a.at("b"), "back\\slash");
  EXPECT_EQ(a.at("c"), "br]acket");
  EXPECT_EQ(a.at("d"), "keep\\n");  // backslash before another char stays
  const auto& x = e.at("structured_data").at("b@2").at("x");
  ASSERT_TRUE(x.is_array());
  EXPECT_EQ(x.as_array(), (json::array{"1", "2"}));
}

TEST(SyslogParser, Rfc5424NilValues) {
  Event e = parse_syslog("<34>1 - - - - - -", kRecv);
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(num(e, "facility"), 4);
  EXPECT_EQ(num(e, "severity"), 2);
  for (const char* k : {"hostname", "app_name", "procid", "msgid", "structured_data"})
    EXPECT_FALSE(e.contains(k)) << k;
  EXPECT_EQ(str(e, "message"), "");
  EXPECT_EQ(str(e, "_time"), format_rfc3339(kRecv));  // no timestamp: receive time
}

TEST(SyslogParser, Rfc5424FractionsAndOffsetsToUtc) {
  Event e = parse_syslog(
      "<14>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
      kRecv);
  EXPECT_FALSE(has_parse_error(e));
  EXPECT_EQ(str(e, "_time"), "2003-08-24T12:14:15.000003Z");
  EXPECT_EQ(str(e, "hostname"), "192.0.2.1");
  EXPECT_EQ(str(e, "procid"), "8710");
  EXPECT_EQ(str(e, "message"), "%% It's time to make the do-nuts.");

  // A positive offset that moves the instant into the previous year.
  e = parse_syslog("<14>1 2024-01-01T03:00:00.5+05:30 h a - - - x", kRecv);
  EXPECT_EQ(str(e, "_time"), "2023-12-31T21:30:00.500000Z");
  // Nanoseconds are truncated to microseconds.
  e = parse_syslog("<14>1 2024-01-01T00:00:00.123456789Z h a - - - x", kRecv);
  EXPECT_EQ(str(e, "_time"), "2024-01-01T00:00:00.123456Z");
}

TEST(SyslogParser, Rfc5424InvalidTimestampUsesReceiveTime) {
  Event e = parse_syslog("<14>1 2024-13-01T00:00:00Z host app - - - msg", kRecv);
  EXPECT_EQ(str(e, "_time"), format_rfc3339(kRecv));
  EXPECT_NE(str(e, "_parse_error").find("TIMESTAMP"), std::string::npos) << str(e, "_parse_error");
  EXPECT_EQ(str(e, "hostname"), "host");
  EXPECT_EQ(str(e, "message"), "msg");
  // Without an offset the time is read in the source's zone (UTC by default) and flagged.
  e = parse_syslog("<14>1 2024-01-01T00:00:00 host app - - - msg", kRecv);
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(str(e, "_time"), "2024-01-01T00:00:00.000000Z");
  EXPECT_TRUE(e.at("_zone_inferred").as_bool());
  EXPECT_FALSE(e.contains("_year_inferred"));
}

TEST(SyslogParser, Rfc3164Basic) {
  Event e = parse_syslog("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
                         at("2024-10-12T00:00:00Z"));
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(num(e, "facility"), 4);
  EXPECT_EQ(num(e, "severity"), 2);
  EXPECT_EQ(str(e, "_time"), "2024-10-11T22:14:15.000000Z");
  EXPECT_EQ(str(e, "hostname"), "mymachine");
  EXPECT_EQ(str(e, "app_name"), "su");
  EXPECT_FALSE(e.contains("procid"));
  EXPECT_EQ(str(e, "message"), "'su root' failed for lonvick on /dev/pts/8");
}

TEST(SyslogParser, Rfc3164PidAndSpacePaddedDay) {
  Event e = parse_syslog("<38>Feb  5 01:02:03 host sshd[1234]: Accepted password for root",
                         at("2024-02-05T01:00:00Z"));
  EXPECT_FALSE(has_parse_error(e));
  EXPECT_EQ(str(e, "_time"), "2024-02-05T01:02:03.000000Z");
  EXPECT_EQ(str(e, "hostname"), "host");
  EXPECT_EQ(str(e, "app_name"), "sshd");
  EXPECT_EQ(str(e, "procid"), "1234");
  EXPECT_EQ(str(e, "message"), "Accepted password for root");
}

TEST(SyslogParser, Rfc3164YearRollover) {
  // December log received just after new year: last year.
  Event e = parse_syslog("<13>Dec 31 23:59:50 host app: x", at("2025-01-01T00:00:05Z"));
  EXPECT_EQ(str(e, "_time"), "2024-12-31T23:59:50.000000Z");
  // January log from a sender whose clock is slightly ahead: next year.
  e = parse_syslog("<13>Jan  1 00:00:05 host app: y", at("2024-12-31T23:59:58Z"));
  EXPECT_EQ(str(e, "_time"), "2025-01-01T00:00:05.000000Z");
  // Feb 29 only exists in 2024 among 2024..2026.
  e = parse_syslog("<13>Feb 29 10:00:00 host app: z", at("2025-03-01T00:00:00Z"));
  EXPECT_EQ(str(e, "_time"), "2024-02-29T10:00:00.000000Z");
  // Same year in the normal case.
  e = parse_syslog("<13>Jun 15 11:00:00 host app: w", kRecv);
  EXPECT_EQ(str(e, "_time"), "2024-06-15T11:00:00.000000Z");
}

TEST(SyslogParser, Rfc3164WithIsoTimestampAsRsyslogSends) {
  Event e = parse_syslog("<30>2024-03-10T08:15:30.123456+01:00 web01 nginx[99]: GET / HTTP/1.1", kRecv);
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(num(e, "facility"), 3);
  EXPECT_EQ(num(e, "severity"), 6);
  EXPECT_EQ(str(e, "_time"), "2024-03-10T07:15:30.123456Z");
  EXPECT_EQ(str(e, "hostname"), "web01");
  EXPECT_EQ(str(e, "app_name"), "nginx");
  EXPECT_EQ(str(e, "procid"), "99");
  EXPECT_EQ(str(e, "message"), "GET / HTTP/1.1");
}

TEST(SyslogParser, Rfc3164WithoutHostnameOrHeader) {
  Event e = parse_syslog("<13>Oct 11 22:14:15 su: failed", at("2024-10-12T00:00:00Z"));
  EXPECT_FALSE(e.contains("hostname"));
  EXPECT_EQ(str(e, "app_name"), "su");
  EXPECT_EQ(str(e, "message"), "failed");

  // No header at all: everything after PRI is the message, time is receive time.
  e = parse_syslog("<13>hello world", kRecv);
  EXPECT_FALSE(has_parse_error(e));
  EXPECT_EQ(num(e, "severity"), 5);
  EXPECT_EQ(str(e, "message"), "hello world");
  EXPECT_EQ(str(e, "_time"), format_rfc3339(kRecv));

  // A TAG needs neither ':' nor [pid] (RFC 3164 4.1.3: it ends at the first
  // non-alphanumeric character): the first word after the host.
  e = parse_syslog("<13>Oct 11 22:14:15 host just words here", at("2024-10-12T00:00:00Z"));
  EXPECT_EQ(str(e, "hostname"), "host");
  EXPECT_EQ(str(e, "app_name"), "just");
  EXPECT_EQ(str(e, "message"), "words here");
}

TEST(SyslogParser, NoPriIsDefaultedAndBrokenPriKeptWithParseError) {
  // RFC 3164 4.3.3: a message without PRI gets PRI 13 and is content.
  const std::string line = "this is not syslog at all";
  Event e = parse_syslog(line, kRecv);
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(num(e, "facility"), 1);
  EXPECT_EQ(num(e, "severity"), 5);
  EXPECT_TRUE(e.at("_pri_defaulted").as_bool());
  EXPECT_EQ(str(e, "message"), line);
  EXPECT_EQ(str(e, "_raw"), line);
  EXPECT_EQ(str(e, "_time"), format_rfc3339(kRecv));

  // A '<' that opens no valid PRI: 13 as well, the whole line as message, and an error.
  e = parse_syslog("<999>1 - - - - - -", kRecv);
  ASSERT_TRUE(has_parse_error(e));
  EXPECT_NE(str(e, "_parse_error").find("191"), std::string::npos);
  EXPECT_EQ(num(e, "severity"), 5);
  EXPECT_EQ(str(e, "message"), "<999>1 - - - - - -");
  e = parse_syslog("<13", kRecv);
  EXPECT_TRUE(has_parse_error(e));
  EXPECT_EQ(str(e, "_raw"), "<13");

  // Valid PRI, broken structured data: the header that parsed stays, the rest is the message.
  const std::string bad_sd = "<13>1 2024-01-01T00:00:00Z h a p m [unterminated x=\"1\" msg";
  e = parse_syslog(bad_sd, kRecv);
  ASSERT_TRUE(has_parse_error(e));
  EXPECT_EQ(num(e, "facility"), 1);
  EXPECT_EQ(num(e, "version"), 1);
  EXPECT_EQ(str(e, "hostname"), "h");
  EXPECT_EQ(str(e, "app_name"), "a");
  EXPECT_EQ(str(e, "procid"), "p");
  EXPECT_EQ(str(e, "msgid"), "m");
  EXPECT_EQ(str(e, "_time"), "2024-01-01T00:00:00.000000Z");
  EXPECT_EQ(str(e, "message"), "[unterminated x=\"1\" msg");
  EXPECT_EQ(str(e, "_raw"), bad_sd);

  e = parse_syslog("<13>1 2024-01-01T00:00:00Z host-only", kRecv);
  ASSERT_TRUE(has_parse_error(e));
  EXPECT_NE(str(e, "_parse_error").find("APP-NAME"), std::string::npos) << str(e, "_parse_error");
  EXPECT_EQ(str(e, "hostname"), "host-only");
  EXPECT_EQ(str(e, "_time"), "2024-01-01T00:00:00.000000Z");
}

TEST(SyslogParser, InvalidUtf8IsRepaired) {
  const std::string line = "<13>1 2024-01-01T00:00:00Z h\xC3\x28 a - - - bad \xFF\xFE and \xC3( end \xE2\x82";
  Event e = parse_syslog(line, kRecv);
  EXPECT_EQ(str(e, "message"), "bad \xEF\xBF\xBD\xEF\xBF\xBD and \xEF\xBF\xBD( end \xEF\xBF\xBD");
  EXPECT_EQ(str(e, "hostname"), "h\xEF\xBF\xBD(");
  // The serialized event is valid JSON (Boost.JSON's parser rejects invalid UTF-8).
  const std::string text = json::serialize(e);
  json::error_code ec;
  json::value back = json::parse(text, ec);
  ASSERT_FALSE(ec) << ec.message();
  // The original bytes are not replaced: `_raw_b64` holds them (syslog_devices_test decodes it).
  EXPECT_FALSE(back.as_object().contains("_raw"));
  EXPECT_TRUE(back.as_object().contains("_raw_b64"));

  // Garbage with invalid bytes is repaired too.
  e = parse_syslog("\xFF\xFF junk", kRecv);
  EXPECT_TRUE(e.at("_pri_defaulted").as_bool());
  EXPECT_EQ(str(e, "message"), "\xEF\xBF\xBD\xEF\xBF\xBD junk");
}

TEST(SyslogParser, TrailingNewlineAndKeepRaw) {
  Event e = parse_syslog("<13>1 - h a - - - msg\r\n", kRecv);
  EXPECT_EQ(str(e, "message"), "msg");
  EXPECT_EQ(str(e, "_raw"), "<13>1 - h a - - - msg");
  SyslogParseOptions no_raw;
  no_raw.keep_raw = false;
  e = parse_syslog("<13>1 - h a - - - msg", kRecv, no_raw);
  EXPECT_FALSE(e.contains("_raw"));
  e = parse_syslog("<garbage", kRecv, no_raw);
  EXPECT_TRUE(has_parse_error(e));
  EXPECT_TRUE(e.contains("_raw"));  // failures always keep the line
}

TEST(SyslogTimestamp, Parse) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:01Z", true), 1000000);
  EXPECT_EQ(parse_rfc3339("1970-01-01T01:00:00+01:00", true), 0);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00", false), 0);
  EXPECT_FALSE(parse_rfc3339("1970-01-01T00:00:00", true));
  EXPECT_FALSE(parse_rfc3339("2023-02-29T00:00:00Z", true));  // not a leap year
  EXPECT_FALSE(parse_rfc3339("2024-01-01T24:00:00Z", true));
  EXPECT_FALSE(parse_rfc3339("2024-01-01T00:00:00Zjunk", true));
  EXPECT_FALSE(parse_rfc3339("2024-01-01T00:00:00.Z", true));
}

TEST(Utf8, ValidateAndRepair) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("abc\xE2\x82"));       // truncated
  const std::string R = "\xEF\xBF\xBD";
  EXPECT_EQ(repair_utf8("\xC0\xAF"), R + R);
  EXPECT_EQ(repair_utf8("\xED\xA0\x80"), R + R + R);
  EXPECT_EQ(repair_utf8("a\xF0\x9F\x98z"), "a" + R + "z");  // one per maximal subpart
  EXPECT_EQ(repair_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  std::string s = "ok";
  EXPECT_FALSE(repair_utf8_inplace(s));
  s = "x\x80y";
  EXPECT_TRUE(repair_utf8_inplace(s));
  EXPECT_EQ(s, "x" + R + "y");
}

}  // namespace
}  // namespace bf
