// Syslog as devices send it: the RFC 5424 / 3164 examples, Cisco IOS / NX-OS / ASA,
// F5, FortiGate, Sophos, Check Point, CEF and LEEF lines written from the RFCs and the
// vendors' published log formats; per-source time zones; byte-exact `_raw`.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <boost/json.hpp>

#include "common/time.h"
#include "common/time_zone.h"
#include "common/utf8.h"
#include "proxy/ndjson_writer.h"
#include "proxy/syslog_parser.h"
#include "syslog_test_helpers.h"

namespace bf {
namespace {

namespace json = boost::json;

using syslog_test::at;
using syslog_test::flag;
using syslog_test::num;
using syslog_test::obj;
using syslog_test::str;

std::string unbase64(const std::string& b64) {
  std::string out(b64.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) throw std::runtime_error("bad base64");
  size_t pad = 0;
  while (pad < b64.size() && b64[b64.size() - 1 - pad] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

SyslogParseOptions in_zone(const char* zone) {
  SyslogParseOptions o;
  o.timezone = TimeZone::load(zone);
  return o;
}

// ---- RFC 5424 --------------------------------------------------------------------

TEST(Syslog5424, RfcExamplesCarryVersion) {
  // RFC 5424 6.5, examples 1 and 4.
  Event e = parse_syslog(
      "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick "
      "on /dev/pts/8",
      at("2003-10-11T22:15:00Z"));
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(num(e, "version"), 1);
  EXPECT_EQ(str(e, "app_name"), "su");
  EXPECT_EQ(str(e, "msgid"), "ID47");
  EXPECT_EQ(str(e, "message"), "'su root' failed for lonvick on /dev/pts/8");
  EXPECT_FALSE(e.contains("_zone_inferred"));
  EXPECT_FALSE(e.contains("_year_inferred"));
  e = parse_syslog(
      "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" "
      "eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
      at("2003-10-11T22:15:00Z"));
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(obj(obj(e, "structured_data"), "examplePriority@32473").at("class"), "high");
  EXPECT_EQ(str(e, "message"), "");
  // RFC 3164 has no version field.
  EXPECT_FALSE(parse_syslog("<13>Oct 11 22:14:15 host app: x", at("2024-10-11T22:00:00Z")).contains("version"));
}

TEST(Syslog5424, BrokenStructuredDataKeepsTheHeader) {
  const int64_t recv = at("2024-05-01T00:00:00Z");
  struct Case {
    const char* sd;
    const char* problem;
  } cases[] = {
      {R"([a@1 x="1")", "unterminated"},                   // element never closed
      {R"([a@1 x="say "hi"" y="2"] tail)", "unescaped"},   // unescaped quote inside a value
      {R"([a@1  x="1"] tail)", "invalid character"},       // stray space
      {R"([a@1 x = "1"] tail)", "expected"},               // spaces around '='
  };
  for (const Case& c : cases) {
    const std::string line = std::string("<14>1 2024-05-01T10:00:00.5+02:00 fw01 app 77 ID9 ") + c.sd;
    Event e = parse_syslog(line, recv);
    SCOPED_TRACE(line);
    ASSERT_TRUE(has_parse_error(e));
    EXPECT_NE(str(e, "_parse_error").find(c.problem), std::string::npos) << str(e, "_parse_error");
    EXPECT_EQ(num(e, "version"), 1);
    EXPECT_EQ(str(e, "hostname"), "fw01");
    EXPECT_EQ(str(e, "app_name"), "app");
    EXPECT_EQ(str(e, "procid"), "77");
    EXPECT_EQ(str(e, "msgid"), "ID9");
    EXPECT_EQ(str(e, "_time"), "2024-05-01T08:00:00.500000Z");
    EXPECT_EQ(str(e, "message"), c.sd);
    EXPECT_EQ(str(e, "_raw"), line);
    EXPECT_FALSE(e.contains("structured_data"));
  }
  // Elements before the broken one are kept; the broken one and what follows is the message.
  Event e = parse_syslog(R"(<14>1 - h a - - [ok@1 k="v"][bad@1 k="v] m)", recv);
  ASSERT_TRUE(has_parse_error(e));
  EXPECT_EQ(obj(obj(e, "structured_data"), "ok@1").at("k"), "v");
  EXPECT_FALSE(obj(e, "structured_data").contains("bad@1"));
  EXPECT_EQ(str(e, "message"), R"([bad@1 k="v] m)");
}

TEST(Syslog5424, BadTimestampKeepsEverythingElse) {
  const int64_t recv = at("2024-05-01T00:00:00Z");
  Event e = parse_syslog(R"(<14>1 2024-05-01T25:61:00Z host app 1 M [a@1 k="v"] text)", recv);
  ASSERT_TRUE(has_parse_error(e));
  EXPECT_NE(str(e, "_parse_error").find("TIMESTAMP"), std::string::npos);
  EXPECT_EQ(str(e, "_time"), format_rfc3339(recv));
  EXPECT_EQ(str(e, "hostname"), "host");
  EXPECT_EQ(str(e, "msgid"), "M");
  EXPECT_EQ(obj(obj(e, "structured_data"), "a@1").at("k"), "v");
  EXPECT_EQ(str(e, "message"), "text");
}

TEST(Syslog5424, OffsetLessTimestampIsReadInTheSourceZone) {
  // Summer and winter in Berlin: +02:00 and +01:00.
  Event e = parse_syslog("<14>1 2024-07-01T12:00:00.25 h a - - - x", at("2024-07-01T10:30:00Z"), in_zone("Europe/Berlin"));
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(str(e, "_time"), "2024-07-01T10:00:00.250000Z");
  EXPECT_TRUE(flag(e, "_zone_inferred"));
  e = parse_syslog("<14>1 2024-01-15T12:00:00 h a - - - x", at("2024-01-15T11:30:00Z"), in_zone("Europe/Berlin"));
  EXPECT_EQ(str(e, "_time"), "2024-01-15T11:00:00.000000Z");
  // A time with its own offset ignores the source zone.
  e = parse_syslog("<14>1 2024-01-15T12:00:00Z h a - - - x", at("2024-01-15T11:30:00Z"), in_zone("Europe/Berlin"));
  EXPECT_EQ(str(e, "_time"), "2024-01-15T12:00:00.000000Z");
  EXPECT_FALSE(e.contains("_zone_inferred"));
}

// ---- RFC 3164 and variants ------------------------------------------------------------

TEST(Syslog3164, RfcExamples) {
  // RFC 3164 5.4 example 2 as a relay forwards it, and example 3 (zone and year after the time).
  Event e = parse_syslog("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", at("2024-02-05T18:00:00Z"));
  EXPECT_EQ(str(e, "hostname"), "10.0.0.99");
  EXPECT_EQ(str(e, "app_name"), "Use");
  EXPECT_EQ(str(e, "message"), "the BFG!");
  EXPECT_TRUE(flag(e, "_year_inferred"));
  EXPECT_TRUE(flag(e, "_zone_inferred"));
  e = parse_syslog(
      "<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.  %%  Ingredients: "
      "Mix=OK, Jelly=OK",
      at("2024-01-01T00:00:00Z"));
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(str(e, "_time"), "1987-08-24T11:34:00.000000Z");  // CST = -06:00
  EXPECT_FALSE(e.contains("_year_inferred"));
  EXPECT_FALSE(e.contains("_zone_inferred"));
  EXPECT_EQ(str(e, "hostname"), "mymachine");
  EXPECT_EQ(str(e, "app_name"), "myproc");
  EXPECT_EQ(str(e, "procid"), "10");
  EXPECT_EQ(str(e, "message"), "%% It's time to make the do-nuts.  %%  Ingredients: Mix=OK, Jelly=OK");
}

TEST(Syslog3164, NoPriStillParsesTheHeader) {
  Event e = parse_syslog("Oct 11 22:14:15 mymachine su: 'su root' failed", at("2024-10-12T00:00:00Z"));
  EXPECT_FALSE(has_parse_error(e));
  EXPECT_TRUE(flag(e, "_pri_defaulted"));
  EXPECT_EQ(num(e, "facility"), 1);
  EXPECT_EQ(num(e, "severity"), 5);
  EXPECT_EQ(str(e, "hostname"), "mymachine");
  EXPECT_EQ(str(e, "app_name"), "su");
  EXPECT_EQ(str(e, "_time"), "2024-10-11T22:14:15.000000Z");
  EXPECT_FALSE(parse_syslog("<13>Oct 11 22:14:15 h a: x", at("2024-10-12T00:00:00Z")).contains("_pri_defaulted"));
}

TEST(Syslog3164, TagForms) {
  const int64_t recv = at("2024-10-12T00:00:00Z");
  Event e = parse_syslog("<13>Oct 11 22:14:15 host kernel[0] eth0 link up", recv);  // [pid] without ':'
  EXPECT_EQ(str(e, "app_name"), "kernel");
  EXPECT_EQ(str(e, "procid"), "0");
  EXPECT_EQ(str(e, "message"), "eth0 link up");
  e = parse_syslog("<13>Oct 11 22:14:15 host CRON started job", recv);  // bare word
  EXPECT_EQ(str(e, "app_name"), "CRON");
  EXPECT_EQ(str(e, "message"), "started job");
  e = parse_syslog("<13>Oct 11 22:14:15 host", recv);  // host and nothing else
  EXPECT_EQ(str(e, "hostname"), "host");
  EXPECT_EQ(str(e, "message"), "");
}

TEST(Syslog3164, YearAndDateVariants) {
  const int64_t recv = at("2026-11-25T11:00:00Z");
  for (const char* line : {"<13>Nov 25 10:50:04 2026 host app: x",     // year after the time
                           "<13>Nov 25 2026 10:50:04 host app: x",     // Mmm dd yyyy hh:mm:ss
                           "<13>2026 Nov 25 10:50:04 host app: x",     // NX-OS order
                           "<13>2026-11-25 10:50:04 host app: x"}) {   // ISO date, SP, time
    Event e = parse_syslog(line, recv);
    SCOPED_TRACE(line);
    EXPECT_FALSE(has_parse_error(e));
    EXPECT_EQ(str(e, "_time"), "2026-11-25T10:50:04.000000Z");
    EXPECT_FALSE(e.contains("_year_inferred"));
    EXPECT_TRUE(flag(e, "_zone_inferred"));
    EXPECT_EQ(str(e, "hostname"), "host");
    EXPECT_EQ(str(e, "app_name"), "app");
    EXPECT_EQ(str(e, "message"), "x");
  }
}

TEST(Syslog3164, Feb29GoesToTheNearestLeapYear) {
  // Received in 2026 (no Feb 29 in 2025..2027): 2024 is nearer than 2028.
  Event e = parse_syslog("<13>Feb 29 10:00:00 host app: z", at("2026-01-10T00:00:00Z"));
  EXPECT_EQ(str(e, "_time"), "2024-02-29T10:00:00.000000Z");
  EXPECT_TRUE(flag(e, "_year_inferred"));
  EXPECT_EQ(str(e, "hostname"), "host");
  // Received on Feb 29 itself.
  e = parse_syslog("<13>Feb 29 23:59:59 host app: z", at("2028-02-29T23:59:00Z"));
  EXPECT_EQ(str(e, "_time"), "2028-02-29T23:59:59.000000Z");
  // Feb 30 is no date: the line is the message, nothing is invented.
  e = parse_syslog("<13>Feb 30 10:00:00 host app: z", at("2026-01-10T00:00:00Z"));
  EXPECT_EQ(str(e, "message"), "Feb 30 10:00:00 host app: z");
  EXPECT_EQ(str(e, "_time"), "2026-01-10T00:00:00.000000Z");
  EXPECT_FALSE(e.contains("_year_inferred"));
}

TEST(Syslog3164, SourceTimezoneAndInferredYear) {
  // New York wall time: EST in January (-5), EDT in July (-4). The year is inferred in
  // local time: 23:30 on Dec 31 in New York is already Jan 1 in UTC.
  const auto ny = in_zone("America/New_York");
  Event e = parse_syslog("<13>Jul  4 09:00:00 host app: x", at("2024-07-04T13:05:00Z"), ny);
  EXPECT_EQ(str(e, "_time"), "2024-07-04T13:00:00.000000Z");
  EXPECT_TRUE(flag(e, "_zone_inferred"));
  EXPECT_TRUE(flag(e, "_year_inferred"));
  e = parse_syslog("<13>Dec 31 23:30:00 host app: x", at("2025-01-01T04:31:00Z"), ny);
  EXPECT_EQ(str(e, "_time"), "2025-01-01T04:30:00.000000Z");
  // A zone word in the message wins over the source's zone.
  e = parse_syslog("<189>12: Jul  4 09:00:00.5 UTC: %SYS-5-CONFIG_I: x", at("2024-07-04T09:05:00Z"), ny);
  EXPECT_EQ(str(e, "_time"), "2024-07-04T09:00:00.500000Z");
  EXPECT_FALSE(e.contains("_zone_inferred"));
}

TEST(TimeZone, LoadsIanaZonesAndRejectsBadNames) {
  auto berlin = TimeZone::load("Europe/Berlin");
  EXPECT_EQ(berlin->offset_at(at("2024-01-15T00:00:00Z")), 3600);
  EXPECT_EQ(berlin->offset_at(at("2024-07-15T00:00:00Z")), 7200);
  // DST starts 2024-03-31 01:00Z; 02:30 local does not exist, 03:30 is CEST.
  EXPECT_EQ(berlin->local_to_utc(at("2024-03-31T03:30:00Z")), at("2024-03-31T01:30:00Z"));
  EXPECT_EQ(berlin->local_to_utc(at("2024-03-31T01:30:00Z")), at("2024-03-31T00:30:00Z"));
  auto kolkata = TimeZone::load("Asia/Kolkata");
  EXPECT_EQ(kolkata->offset_at(at("2024-01-15T00:00:00Z")), 19800);
  EXPECT_TRUE(TimeZone::load("UTC")->is_utc());
  for (const char* bad : {"Mars/Olympus", "../etc/passwd", "", "Europe/Berlin "}) {
    try {
      TimeZone::load(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

// ---- devices ---------------------------------------------------------------------------

TEST(SyslogDevices, CiscoIos) {
  const int64_t recv = at("2024-03-01T00:30:00Z");
  // Message counter, service sequence number, '*' (clock not authoritative), zone word.
  Event e = parse_syslog("<189>49: 000041: *Mar  1 00:21:03.487 UTC: %SYS-5-CONFIG_I: Configured from console by console",
                         recv);
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(num(e, "sequence"), 41);
  EXPECT_EQ(str(e, "_time"), "2024-03-01T00:21:03.487000Z");
  EXPECT_TRUE(flag(e, "_time_unsynced"));
  EXPECT_TRUE(flag(e, "_year_inferred"));
  EXPECT_FALSE(e.contains("_zone_inferred"));
  EXPECT_EQ(str(e, "app_name"), "%SYS-5-CONFIG_I");
  EXPECT_FALSE(e.contains("hostname"));
  EXPECT_EQ(str(e, "message"), "Configured from console by console");
  // '.' marker, a zone the table does not know (the source's zone applies), one counter.
  e = parse_syslog("<187>50: .Mar  1 00:22:00 XST: %LINK-3-UPDOWN: Interface Gi0/1, changed state to down", recv);
  EXPECT_EQ(num(e, "sequence"), 50);
  EXPECT_TRUE(flag(e, "_time_unsynced"));
  EXPECT_TRUE(flag(e, "_zone_inferred"));
  EXPECT_EQ(str(e, "_time"), "2024-03-01T00:22:00.000000Z");
  EXPECT_EQ(str(e, "app_name"), "%LINK-3-UPDOWN");
  EXPECT_EQ(str(e, "message"), "Interface Gi0/1, changed state to down");
  // No timestamp at all (service timestamps off).
  e = parse_syslog("<189>51: %SYS-5-RESTART: System restarted --", recv);
  EXPECT_EQ(str(e, "app_name"), "%SYS-5-RESTART");
  EXPECT_EQ(str(e, "_time"), format_rfc3339(recv));
}

TEST(SyslogDevices, CiscoNxos) {
  Event e = parse_syslog("<189>: 2024 Jan 15 10:20:30 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/1 is up in mode access",
                         at("2024-01-15T10:21:00Z"));
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(str(e, "_time"), "2024-01-15T10:20:30.000000Z");
  EXPECT_FALSE(e.contains("_year_inferred"));
  EXPECT_FALSE(e.contains("_zone_inferred"));
  EXPECT_EQ(str(e, "app_name"), "%ETHPORT-5-IF_UP");
  EXPECT_EQ(str(e, "message"), "Interface Ethernet1/1 is up in mode access");
}

TEST(SyslogDevices, CiscoAsa) {
  const int64_t recv = at("2024-01-15T10:21:00Z");
  Event e = parse_syslog(
      "<166>Jan 15 2024 10:20:30: %ASA-6-302013: Built outbound TCP connection 123 for outside:203.0.113.5/443 "
      "(203.0.113.5/443) to inside:10.0.0.5/51000 (10.0.0.5/51000)",
      recv);
  EXPECT_EQ(str(e, "_time"), "2024-01-15T10:20:30.000000Z");
  EXPECT_EQ(str(e, "app_name"), "%ASA-6-302013");
  EXPECT_FALSE(e.contains("hostname"));
  EXPECT_EQ(str(e, "message").rfind("Built outbound TCP connection 123", 0), 0u);
  // logging device-id hostname: "host : %ASA-…"
  e = parse_syslog("<164>Jan 15 2024 10:20:31 fw01 : %ASA-4-106023: Deny tcp src outside:203.0.113.9/4444", recv);
  EXPECT_EQ(str(e, "hostname"), "fw01");
  EXPECT_EQ(str(e, "app_name"), "%ASA-4-106023");
  EXPECT_EQ(str(e, "message"), "Deny tcp src outside:203.0.113.9/4444");
  // No timestamp (logging timestamp off).
  e = parse_syslog("<166>%ASA-6-305011: Built dynamic TCP translation", recv);
  EXPECT_EQ(str(e, "app_name"), "%ASA-6-305011");
  EXPECT_EQ(str(e, "message"), "Built dynamic TCP translation");
  EXPECT_EQ(num(e, "severity"), 6);
}

TEST(SyslogDevices, F5SeverityWordBeforeTheTag) {
  Event e = parse_syslog("<182>Nov 25 10:50:04 bigip1 info tmm[12345]: Rule /Common/r1 <HTTP_REQUEST>: hit",
                         at("2026-11-25T11:00:00Z"));
  EXPECT_EQ(str(e, "hostname"), "bigip1");
  EXPECT_EQ(str(e, "severity_text"), "info");
  EXPECT_EQ(str(e, "app_name"), "tmm");
  EXPECT_EQ(str(e, "procid"), "12345");
  EXPECT_EQ(str(e, "message"), "Rule /Common/r1 <HTTP_REQUEST>: hit");
}

TEST(SyslogDevices, FortiGateKeyValue) {
  // FortiOS log reference sample (SD-WAN event).
  Event e = parse_syslog(
      "<189>date=2020-03-29 time=16:41:30 logid=\"0113022923\" type=\"event\" subtype=\"sdwan\" level=\"notice\" "
      "vd=\"root\" eventtime=1585525290513555981 tz=\"-0700\" logdesc=\"Virtual WAN Link status\" "
      "msg=\"Number of pass member changed.\"",
      at("2020-03-30T00:00:00Z"));
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  const auto& kv = obj(e, "kv");
  EXPECT_EQ(kv.at("logid"), "0113022923");
  EXPECT_EQ(kv.at("subtype"), "sdwan");
  EXPECT_EQ(kv.at("eventtime"), "1585525290513555981");  // values stay strings: stable types
  EXPECT_EQ(kv.at("logdesc"), "Virtual WAN Link status");
  EXPECT_EQ(kv.at("msg"), "Number of pass member changed.");
  EXPECT_EQ(str(e, "_time"), "2020-03-29T23:41:30.000000Z");
  EXPECT_FALSE(e.contains("_zone_inferred"));
  EXPECT_FALSE(e.contains("_year_inferred"));
}

TEST(SyslogDevices, SophosKeyValueWithZoneWord) {
  Event e = parse_syslog(
      "<30>device=\"SFW\" date=2017-02-06 time=11:17:17 timezone=\"CET\" device_name=\"SF01V\" "
      "log_id=\"010101600001\" log_type=\"Firewall\" log_component=\"Firewall Rule\" status=\"Allow\" "
      "priority=Information src_ip=10.8.142.181 dst_ip=10.8.142.255",
      at("2017-02-06T11:00:00Z"));
  const auto& kv = obj(e, "kv");
  EXPECT_EQ(kv.at("log_component"), "Firewall Rule");
  EXPECT_EQ(kv.at("priority"), "Information");
  EXPECT_EQ(kv.at("dst_ip"), "10.8.142.255");
  EXPECT_EQ(str(e, "_time"), "2017-02-06T10:17:17.000000Z");
  // Without a zone the source's zone applies and is flagged.
  e = parse_syslog("<30>device=\"SFW\" date=2017-02-06 time=11:17:17 log_type=\"Firewall\"", at("2017-02-06T11:00:00Z"),
                   in_zone("Europe/Berlin"));
  EXPECT_EQ(str(e, "_time"), "2017-02-06T10:17:17.000000Z");
  EXPECT_TRUE(flag(e, "_zone_inferred"));
}

TEST(SyslogDevices, CheckPointFormats) {
  // Log Exporter "syslog" format: its [key:"value"; …] is not RFC 5424 SD, and its
  // timestamp has a space instead of the T.
  Event e = parse_syslog(
      "<134>1 2018-03-21 17:25:25 MDS-72 CheckPoint 13752 - [action:\"Update\"; flags:\"150784\"; ifdir:\"inbound\"; "
      "loguid:\"{0x5ab27965,0x0,0x5b20a8c0,0x7d5707b6}\";]",
      at("2018-03-21T17:26:00Z"));
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(str(e, "hostname"), "MDS-72");
  EXPECT_EQ(str(e, "app_name"), "CheckPoint");
  EXPECT_EQ(str(e, "procid"), "13752");
  EXPECT_EQ(str(e, "_time"), "2018-03-21T17:25:25.000000Z");
  EXPECT_TRUE(flag(e, "_zone_inferred"));
  const auto& kv = obj(e, "kv");
  EXPECT_EQ(kv.at("action"), "Update");
  EXPECT_EQ(kv.at("loguid"), "{0x5ab27965,0x0,0x5b20a8c0,0x7d5707b6}");
  // "Splunk" format: '|'-separated, '\=' escapes, epoch time=; a repeated key keeps its first value.
  e = parse_syslog(
      "<134>time=1557767758|hostname=r80test|product=Firewall|action=Accept|originsicname=cn\\=cp_mgmt,o\\=r80test"
      "..ymydp2|time=1557767758|src=192.168.96.27|",
      at("2019-05-13T17:16:00Z"));
  const auto& kv2 = obj(e, "kv");
  EXPECT_EQ(kv2.at("originsicname"), "cn=cp_mgmt,o=r80test..ymydp2");
  EXPECT_EQ(kv2.at("src"), "192.168.96.27");
  EXPECT_EQ(str(e, "_time"), "2019-05-13T17:15:58.000000Z");
  EXPECT_FALSE(e.contains("_zone_inferred"));
}

TEST(SyslogDevices, CefWithEscapesAndTime) {
  // ArcSight CEF spec examples: escaped '|' in the header, '=' and '\' in extension values.
  Event e = parse_syslog(
      "<134>Sep 19 08:26:10 host CEF:0|security|threatmanager|1.0|100|detected a \\| in message|10|src=10.0.0.1 "
      "act=blocked a \\= b dst=1.1.1.1 msg=line one\\nline two rt=1695111970000 cs1Label=path cs1=C:\\\\temp",
      at("2023-09-19T08:27:00Z"));
  EXPECT_FALSE(has_parse_error(e)) << json::serialize(e);
  EXPECT_EQ(str(e, "hostname"), "host");
  EXPECT_FALSE(e.contains("app_name"));
  const auto& cef = obj(e, "cef");
  EXPECT_EQ(cef.at("version"), "0");
  EXPECT_EQ(cef.at("device_vendor"), "security");
  EXPECT_EQ(cef.at("device_product"), "threatmanager");
  EXPECT_EQ(cef.at("signature_id"), "100");
  EXPECT_EQ(cef.at("name"), "detected a | in message");
  EXPECT_EQ(cef.at("severity"), "10");
  EXPECT_EQ(cef.at("src"), "10.0.0.1");
  EXPECT_EQ(cef.at("act"), "blocked a = b");
  EXPECT_EQ(cef.at("dst"), "1.1.1.1");
  EXPECT_EQ(cef.at("msg"), "line one\nline two");
  EXPECT_EQ(cef.at("cs1"), "C:\\temp");
  EXPECT_EQ(str(e, "_time"), "2023-09-19T08:26:10.000000Z");
  EXPECT_FALSE(e.contains("_year_inferred"));  // rt= replaced the header's yearless time
  // rt= in the text form, and CEF without any syslog header.
  e = parse_syslog("CEF:0|Vendor|Prod|2|sig|Name|3|rt=Jan 15 2024 10:20:30 UTC src=10.1.1.1", at("2024-01-15T11:00:00Z"));
  EXPECT_EQ(obj(e, "cef").at("rt"), "Jan 15 2024 10:20:30 UTC");
  EXPECT_EQ(str(e, "_time"), "2024-01-15T10:20:30.000000Z");
  EXPECT_TRUE(flag(e, "_pri_defaulted"));
  // Too few header fields: not CEF, the message is kept as it is.
  e = parse_syslog("<13>CEF:0|only|three", at("2024-01-15T11:00:00Z"));
  EXPECT_FALSE(e.contains("cef"));
  EXPECT_EQ(str(e, "message"), "CEF:0|only|three");
}

TEST(SyslogDevices, Leef) {
  // LEEF 1.0: tab-separated attributes (IBM QRadar LEEF guide sample).
  Event e = parse_syslog(
      "<13>Jan 15 10:20:30 exch01 LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.0\tdst=172.50.123.1\t"
      "sev=5\tcat=anomaly\tusrName=joe.black\tdevTime=Jan 15 2024 10:20:29",
      at("2024-01-15T10:21:00Z"));
  const auto& leef = obj(e, "leef");
  EXPECT_EQ(leef.at("device_vendor"), "Microsoft");
  EXPECT_EQ(leef.at("device_version"), "4.0 SP1");
  EXPECT_EQ(leef.at("event_id"), "15345");
  EXPECT_EQ(leef.at("usrName"), "joe.black");
  EXPECT_EQ(leef.at("cat"), "anomaly");
  EXPECT_EQ(str(e, "_time"), "2024-01-15T10:20:29.000000Z");
  EXPECT_EQ(str(e, "hostname"), "exch01");
  // LEEF 2.0 with its own delimiter, as a character and as a hex code.
  e = parse_syslog("<13>LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5", at("2024-01-15T10:21:00Z"));
  EXPECT_EQ(obj(e, "leef").at("dst"), "10.0.0.5");
  EXPECT_EQ(obj(e, "leef").at("sev"), "5");
  e = parse_syslog("<13>LEEF:2.0|V|P|1.0|7|x7C|src=10.0.1.8|dst=10.0.0.5|msg=a\\|b", at("2024-01-15T10:21:00Z"));
  EXPECT_EQ(obj(e, "leef").at("src"), "10.0.1.8");
  EXPECT_EQ(obj(e, "leef").at("dst"), "10.0.0.5");
}

TEST(SyslogDevices, VendorPayloadsCanBeTurnedOff) {
  SyslogParseOptions o;
  o.vendor_payloads = false;
  Event e = parse_syslog("<189>date=2020-03-29 time=16:41:30 logid=\"1\" tz=\"-0700\"", at("2020-03-30T00:00:00Z"), o);
  EXPECT_FALSE(e.contains("kv"));
  EXPECT_EQ(str(e, "_time"), "2020-03-30T00:00:00.000000Z");
  // Text that only looks a little like key=value stays a plain message.
  e = parse_syslog("<13>Oct 11 22:14:15 host app: user=root logged in", at("2024-10-12T00:00:00Z"));
  EXPECT_FALSE(e.contains("kv"));
  EXPECT_EQ(str(e, "message"), "user=root logged in");
}

// ---- bytes ---------------------------------------------------------------------------

TEST(SyslogBytes, RawIsByteExactWhenNotUtf8OrWithNul) {
  const int64_t recv = at("2024-01-01T00:00:00Z");
  std::string line = "<13>1 2024-01-01T00:00:00Z h a - - - bad \xFF\xFE and \xC3( end";
  Event e = parse_syslog(line + "\r\n", recv);
  EXPECT_FALSE(e.contains("_raw"));
  EXPECT_EQ(unbase64(str(e, "_raw_b64")), line);  // less the CRLF terminator only
  EXPECT_EQ(str(e, "message"), "bad \xEF\xBF\xBD\xEF\xBF\xBD and \xEF\xBF\xBD( end");
  EXPECT_EQ(str(e, "hostname"), "h");

  // NUL inside and trailing NULs: `_raw_b64` keeps them, `message` keeps the inner one.
  std::string with_nul("<13>1 - h a - - - nul\0inside\0\0", 30);
  e = parse_syslog(with_nul, recv);
  EXPECT_EQ(unbase64(str(e, "_raw_b64")), with_nul);
  EXPECT_EQ(str(e, "message"), std::string("nul\0inside", 10));
  // Valid UTF-8 without NUL stays text in `_raw`.
  e = parse_syslog("<13>1 - h a - - - caf\xC3\xA9", recv);
  EXPECT_EQ(str(e, "_raw"), "<13>1 - h a - - - caf\xC3\xA9");
  EXPECT_FALSE(e.contains("_raw_b64"));
  // With keep_raw off an unparseable line still keeps its bytes.
  SyslogParseOptions no_raw;
  no_raw.keep_raw = false;
  e = parse_syslog("<1\xFF", recv, no_raw);
  EXPECT_EQ(unbase64(str(e, "_raw_b64")), "<1\xFF");
  EXPECT_TRUE(has_parse_error(e));
}

TEST(SyslogRecordReuse, NothingLeaksFromOneMessageToTheNext) {
  SyslogRecord r;
  parse_syslog_record("<189>49: 000041: *Mar  1 00:21:03.487 UTC: %SYS-5-CONFIG_I: x", at("2024-03-01T00:30:00Z"), {}, r);
  EXPECT_EQ(r.sequence, 41);
  EXPECT_TRUE(r.time_unsynced);
  parse_syslog_record("CEF:0|a|b|c|d|e|f|k=v", at("2024-03-01T00:30:00Z"), {}, r);
  EXPECT_EQ(r.payload_kind, "cef");
  EXPECT_EQ(r.sequence, -1);
  EXPECT_FALSE(r.time_unsynced);
  parse_syslog_record("<13>1 - h a - - - plain", at("2024-03-01T00:30:00Z"), {}, r);
  EXPECT_TRUE(r.payload_kind.empty());
  EXPECT_TRUE(r.payload.empty());
  EXPECT_TRUE(r.raw_is_text);
  EXPECT_FALSE(r.pri_defaulted);
}

}  // namespace
}  // namespace bf

namespace bf {
namespace {

// Every prefix of every device line above, and random byte mutations of them, parse to
// an event that is valid JSON, whatever is cut or changed.
TEST(SyslogHostileInput, PrefixesAndMutationsAlwaysGiveAValidEvent) {
  const std::vector<std::string> lines = {
      "<189>49: 000041: *Mar  1 00:21:03.487 UTC: %SYS-5-CONFIG_I: Configured from console by console",
      "<166>Jan 15 2024 10:20:31 fw01 : %ASA-4-106023: Deny tcp src outside:203.0.113.9/4444",
      "<189>: 2024 Jan 15 10:20:30 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/1 is up",
      "<182>Nov 25 10:50:04 bigip1 info tmm[12345]: Rule fired",
      "<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time",
      "<189>date=2020-03-29 time=16:41:30 logid=\"0113022923\" tz=\"-0700\" msg=\"a \\\"b\\\" c\"",
      "<134>1 2018-03-21 17:25:25 MDS-72 CheckPoint 13752 - [action:\"Update\"; flags:\"150784\";]",
      "<134>time=1557767758|hostname=r80test|originsicname=cn\\=cp_mgmt|",
      "<134>Sep 19 08:26:10 host CEF:0|security|tm|1.0|100|a \\| b|10|src=10.0.0.1 act=x \\= y rt=1695111970000",
      "<13>LEEF:2.0|V|P|1.0|7|x7C|src=10.0.1.8|dst=10.0.0.5|devTime=Jan 15 2024 10:20:30",
      "<13>LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.0\tdst=172.50.123.1",
      R"(<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App"][x@1 a="\]\"\\"] msg)",
  };
  const auto zone = TimeZone::load("America/New_York");
  SyslogParseOptions opt;
  opt.timezone = zone;
  SyslogRecord r;  // reused, as a source does
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  size_t parsed = 0;
  auto check = [&](const std::string& input) {
    parse_syslog_record(input, at("2024-06-15T12:00:00Z"), opt, r);
    std::string out;
    JsonObjectWriter w(out);
    Rfc3339Formatter tf;
    write_syslog_fields(w, r, tf);
    w.close();
    json::error_code ec;
    json::value v = json::parse(out, ec);
    ASSERT_FALSE(ec) << "input " << json::serialize(json::string(repair_utf8(input))) << " -> " << out;
    ASSERT_TRUE(v.as_object().contains("message"));
    ++parsed;
  };
  for (const std::string& line : lines) {
    for (size_t n = 0; n <= line.size(); ++n) check(line.substr(0, n));
    for (int k = 0; k < 300; ++k) {
      std::string m = line;
      for (int flips = 1 + int(next() % 4); flips > 0; --flips) {
        const size_t at_pos = next() % m.size();
        static constexpr char kSpecial[] = {'<', '>', ' ', '[', ']', '"', '\\', '=', '|', ':', '\0', '\n', '\x80', '\xff', '9', '%', '*'};
        m[at_pos] = next() % 2 ? kSpecial[next() % sizeof kSpecial] : static_cast<char>(next());
      }
      check(m);
    }
  }
  EXPECT_GT(parsed, 4000u);
}

}  // namespace
}  // namespace bf
