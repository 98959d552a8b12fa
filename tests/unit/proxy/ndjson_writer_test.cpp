// The syslog sources write NDJSON text themselves (proxy/ndjson_writer.h,
// write_syslog_fields); these tests hold that text to be the same bytes as the DOM
// path: boost::json::serialize(parse_syslog(...) + stamp_event(...)).
#include "proxy/ndjson_writer.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "common/batch.h"
#include "common/time.h"
#include "common/utf8.h"
#include "proxy/sources/common.h"
#include "proxy/syslog_parser.h"

namespace bf {
namespace {

namespace json = boost::json;

const int64_t kRecv = *parse_rfc3339("2024-06-15T12:00:00.25Z");

std::string via_dom(std::string_view line, const SyslogParseOptions& opt, const std::string& peer) {
  Event ev = parse_syslog(line, kRecv, opt);
  stamp_event(ev, format_rfc3339(kRecv + 7), "syslog_tcp:5514", peer);
  std::string out;
  append_ndjson(out, ev);
  return out;
}

std::string via_writer(std::string_view line, const SyslogParseOptions& opt, const std::string& peer,
                       SyslogRecord& record) {
  parse_syslog_record(line, kRecv, opt, record);
  std::string out = "prefix";  // the writer appends
  Rfc3339Formatter tf, rf;
  JsonObjectWriter w(out);
  write_syslog_fields(w, record, tf);
  w.field("_received", rf.format(kRecv + 7));
  w.field("_source", "syslog_tcp:5514");
  if (!peer.empty()) w.field("_peer", peer);
  w.close();
  out.push_back('\n');
  return out.substr(6);
}

std::vector<std::string> corpus() {
  std::vector<std::string> c = {
      "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
      "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBF" "An application event",
      R"(<13>1 2024-02-29T12:00:00Z h app 42 m )"
      R"([a@1 q="say \"hi\"" b="back\\slash" c="br\]acket" d="keep\n"][b@2 x="1" x="2"] the msg)",
      // a repeated SD-ID merges; a param repeated across elements becomes an array
      R"(<13>1 - h a - - [a@1 x="1" y="2"][b@1 z="3"][a@1 x="4" w="5" x="6"] m)",
      R"(<13>1 - h a - - [empty@1] no params)",
      R"(<13>1 - h a - - [a@1 k="v"])",
      "<14>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
      "<34>1 - - - - - -",
      "<14>1 2024-01-01T03:00:00.5+05:30 h a - - - x",
      "<14>1 2024-01-01T00:00:00.123456789Z h a - - - x",
      "<14>1 2024-13-01T00:00:00Z host app - - - msg",
      "<14>1 2024-01-01T00:00:00 host app - - - msg",
      "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
      "<38>Feb  5 01:02:03 host sshd[1234]: Accepted password for root",
      "<13>Feb 29 10:00:00 host app: z",
      "<13>Jun 15 11:00:00 host app: w",
      "<13>Jun 15 2023 11:00:00.123 host app[]: w",
      "<30>2024-03-10T08:15:30.123456+01:00 web01 nginx[99]: GET / HTTP/1.1",
      "<13>Oct 11 22:14:15 su: failed",
      "<13>hello world",
      "<13>Oct 11 22:14:15 host just words here",
      "<999>1 - - - - - -",
      "<13",
      "<>1 - - - - - -",
      "<13>1 2024-01-01T00:00:00Z host-only",
      "<13>1 2024-01-01T00:00:00Z h a p m [unterminated x=\"1\" msg",
      "<13>1 2024-01-01T00:00:00Z h a p m [a@1 x=1] msg",
      "<13>1 2024-01-01T00:00:00Z h a p m [a@1 =\"1\"] msg",
      "<13>1 2024-01-01T00:00:00Z h a p m [] msg",
      "<13>1 2024-01-01T00:00:00Z h a p m x msg",
      "<13>1 2024-01-01T00:00:00Z h a p m -x",
      "<13>1 2024-01-01T00:00:00Z h  a p m - x",
      "<13>1 2024-01-01T00:00:00Z h a p m [a@1 x=\"1\"]x",
      "<13>1 2024-01-01T00:00:00Z h a p m [a@1 x=\"1\"",
      "\xFF\xFF junk",
      "garbage",
      "",
      "<13>1 - h a - - - msg\r\n",
      "<13>1 - h a - - - msg\n\n\r\0",
      "<13>1 2024-01-01T00:00:00Z h\xC3\x28 a - - - bad \xFF\xFE and \xC3( end \xE2\x82",
      "<13>1 - h a - - [a@1 x=\"\xC3\x28\"] \xF0\x9F\x98\x80 emoji",
      "<13>Oct 11 22:14:15 h\xE9st app: latin-1 \xE9",
      "<13>1 - h a - - - tab\there \"quoted\" back\\slash",
      "<13>1 - h a - - - \xEF\xBB\xBF",
      // device variants and vendor payloads (syslog_devices_test.cpp checks their fields)
      "<189>49: 000041: *Mar  1 00:21:03.487 UTC: %SYS-5-CONFIG_I: Configured from console by console",
      "<166>Jan 15 2024 10:20:30 fw01 : %ASA-6-106023: Deny tcp src outside:203.0.113.9/4444",
      "<182>Nov 25 10:50:04 bigip1 info tmm[12345]: Rule fired",
      "<189>date=2020-03-29 time=16:41:30 logid=\"0113022923\" type=\"event\" tz=\"-0700\" msg=\"a \\\"q\\\"\"",
      "<134>1 2018-03-21 17:25:25 MDS-72 CheckPoint 13752 - [action:\"Update\"; flags:\"150784\";]",
      "CEF:0|security|threatmanager|1.0|100|detected a \\| in message|10|src=10.0.0.1 act=blocked a \\= dst=1.1.1.1",
      "LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5",
      "time=1557767758|hostname=r80test|action=Accept|time=1|",
  };
  // Every control character (and DEL) inside a message, an SD value and an SD-ID-like token.
  std::string all_controls = "<13>1 - h a - - [c@1 v=\"";
  for (int ch = 1; ch < 0x20; ++ch) all_controls.push_back(static_cast<char>(ch));
  all_controls += "\x7F\"] ";
  for (int ch = 1; ch < 0x20; ++ch)
    if (ch != '\n' && ch != '\r') all_controls.push_back(static_cast<char>(ch));
  all_controls += "\x7F end";
  c.push_back(all_controls);
  std::string with_nul = "<13>1 - h a - - - nul";
  with_nul.push_back('\0');
  with_nul += "inside";
  c.push_back(with_nul);
  c.push_back("<13>1 - h a - - - " + std::string(70000, 'x'));
  return c;
}

TEST(SyslogNdjsonWriter, SameBytesAsTheDomPathForEveryKindOfMessage) {
  SyslogRecord record;  // reused across messages, as a source does
  for (bool keep_raw : {true, false}) {
    SyslogParseOptions opt;
    opt.keep_raw = keep_raw;
    for (const std::string& line : corpus()) {
      for (const std::string peer : {"127.0.0.1:40000", ""}) {
        const std::string dom = via_dom(line, opt, peer);
        const std::string text = via_writer(line, opt, peer, record);
        EXPECT_EQ(text, dom) << "line: " << json::serialize(json::string(repair_utf8(line)));
        // and it is valid JSON that parses back to the same event
        const auto parsed = parse_ndjson(text);
        ASSERT_EQ(parsed.size(), 1u);
        EXPECT_EQ(parsed[0], parse_ndjson(dom)[0]);
      }
    }
  }
}

TEST(SyslogNdjsonWriter, RecordFieldsMatchTheEvent) {
  SyslogRecord r;
  parse_syslog_record(R"(<165>1 2003-10-11T22:14:15.003Z host app 99 ID7 [a@1 x="1" x="2"] hello)", kRecv, {}, r);
  EXPECT_EQ(r.pri, 165);
  EXPECT_EQ(r.hostname, "host");
  EXPECT_EQ(r.app_name, "app");
  EXPECT_EQ(r.procid, "99");
  EXPECT_EQ(r.msgid, "ID7");
  EXPECT_EQ(r.message, "hello");
  ASSERT_EQ(r.sd_ids.size(), 1u);
  ASSERT_EQ(r.sd_params.size(), 2u);
  EXPECT_EQ(r.sd_params[1].value, "2");
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(format_rfc3339(r.time_us), "2003-10-11T22:14:15.003000Z");
  // The same record, parsed into again, holds nothing of the previous message.
  parse_syslog_record("<13>plain", kRecv, {}, r);
  EXPECT_TRUE(r.hostname.empty());
  EXPECT_TRUE(r.sd_ids.empty());
  EXPECT_EQ(r.message, "plain");
  parse_syslog_record("nope", kRecv, {}, r);
  EXPECT_TRUE(r.pri_defaulted);
  EXPECT_EQ(r.pri, 13);
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(r.message, "nope");
  parse_syslog_record("", kRecv, {}, r);
  EXPECT_EQ(r.pri, -1);
  EXPECT_FALSE(r.error.empty());
}

TEST(JsonStringWriter, EscapesAsBoostJsonDoes) {
  std::string every;  // every byte that can stand alone in valid UTF-8, and a few sequences
  for (int ch = 0; ch < 0x80; ++ch) every.push_back(static_cast<char>(ch));
  every += "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBD";
  for (size_t i = 0; i < every.size(); ++i) {
    const std::string_view one = std::string_view(every).substr(i, 1);
    if (static_cast<unsigned char>(one[0]) >= 0x80) break;
    std::string mine;
    append_json_string(mine, one);
    EXPECT_EQ(mine, json::serialize(json::string(one))) << "byte " << int(one[0]);
  }
  std::string mine;
  append_json_string(mine, every);
  EXPECT_EQ(mine, json::serialize(json::string(every)));
  std::string empty;
  append_json_string(empty, "");
  EXPECT_EQ(empty, "\"\"");
}

TEST(JsonObjectWriter, NumbersAndMembers) {
  std::string out;
  JsonObjectWriter w(out);
  for (int64_t v : {int64_t(0), int64_t(7), int64_t(-1), int64_t(191), INT64_MAX, INT64_MIN}) {
    w.key("n" + std::to_string(v));
    w.num(v);
  }
  w.field("s", "x");
  w.close();
  json::object expect;
  for (int64_t v : {int64_t(0), int64_t(7), int64_t(-1), int64_t(191), INT64_MAX, INT64_MIN})
    expect["n" + std::to_string(v)] = v;
  expect["s"] = "x";
  EXPECT_EQ(out, json::serialize(expect));
}

TEST(Rfc3339Formatter, SameTextAsFormatRfc3339) {
  Rfc3339Formatter f;
  std::vector<int64_t> times = {0, 1, 999999, 1000000, -1, -1000000, -1000001, kRecv, kRecv + 1,
                                kRecv + 999999, kRecv + 1000000, *parse_rfc3339("2024-02-29T23:59:59.999999Z"),
                                *parse_rfc3339("2024-03-01T00:00:00Z"), *parse_rfc3339("9999-12-31T23:59:59.5Z"),
                                *parse_rfc3339("0001-01-01T00:00:00Z")};
  // a stream of nearby times, as a source formats them
  for (int64_t t = kRecv; t < kRecv + 5'000'000; t += 123'457) times.push_back(t);
  times.push_back(*parse_rfc3339("9999-12-31T23:59:59Z") + 2'000'000);  // year 10000: the fallback
  for (int64_t t : times) EXPECT_EQ(f.format(t), format_rfc3339(t)) << t;
}

}  // namespace
}  // namespace bf
