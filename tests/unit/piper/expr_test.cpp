#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <random>

#include "common/time.h"
#include "piper/expr/cidr.h"
#include "piper/expr/expr.h"
#include "piper/time_format.h"

using namespace bf;

namespace {
const Event kEvent = boost::json::parse(R"({
  "status": 503, "bytes": 1200, "ratio": 0.25, "method": "GET", "ok": false,
  "host": "Web-01.example.com", "src_ip": "10.1.2.3", "v6": "2001:db8::17",
  "tags": ["prod", "edge"], "req": {"path": "/api/v1/users", "headers": {"user-agent": "curl/8.1"}},
  "user name": "ann", "empty": "", "nothing": null, "n_str": " 42 ", "f_str": "2.5",
  "when": "2026-11-25T10:00:00Z", "items": [{"id": 7}, {"id": 9}]
})").as_object();

boost::json::value eval(const std::string& src) { return Expr::compile(src).value(kEvent); }
bool test(const std::string& src) { return Expr::compile(src).test(kEvent); }

std::string compile_error(const std::string& src) {
  try {
    Expr::compile(src);
  } catch (const ExprError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Expr, FieldPathsIndexesAndQuotedNames) {
  EXPECT_EQ(eval("status"), 503);
  EXPECT_EQ(eval("req.path"), "/api/v1/users");
  EXPECT_EQ(eval("req.headers.\"user-agent\""), "curl/8.1");
  EXPECT_EQ(eval("req[\"headers\"][\"user-agent\"]"), "curl/8.1");
  EXPECT_EQ(eval("`user name`"), "ann");
  EXPECT_EQ(eval("tags[0]"), "prod");
  EXPECT_EQ(eval("tags[-1]"), "edge");
  EXPECT_EQ(eval("items[1].id"), 9);
  EXPECT_TRUE(eval("tags[5]").is_null());
  EXPECT_TRUE(eval("req.path.deeper").is_null());  // through a string
  EXPECT_TRUE(eval("missing.x").is_null());
}

TEST(Expr, LiteralsComparisonsAndLogic) {
  EXPECT_TRUE(test("status == 503"));
  EXPECT_TRUE(test("status >= 500 && status < 600"));
  EXPECT_FALSE(test("status < 500 || method != \"GET\""));
  EXPECT_TRUE(test("!ok"));
  EXPECT_TRUE(test("not ok and status == 503.0"));  // int == float compares numerically
  EXPECT_TRUE(test("ratio < 1"));
  EXPECT_TRUE(test("'abc' < 'abd'"));
  EXPECT_FALSE(test("status == \"503\""));  // no implicit conversion
  EXPECT_FALSE(test("status < \"x\""));     // unordered: false, never an error
  EXPECT_TRUE(test("nothing == null"));
  EXPECT_TRUE(test("missing == null"));
  EXPECT_FALSE(test("empty"));
  EXPECT_TRUE(test("true && (false || 1)"));
  EXPECT_EQ(eval("-3"), -3);
  EXPECT_EQ(eval("bytes / 100 + 1"), 13);
  EXPECT_EQ(eval("bytes * ratio"), 300.0);
  EXPECT_EQ(eval("7 % 4"), 3);
  EXPECT_TRUE(eval("1 / 0").is_null());
  EXPECT_EQ(eval("method + \"-\" + host"), "GET-Web-01.example.com");
  EXPECT_EQ(eval("9223372036854775807 + 1"), 9223372036854775808.0);  // overflow goes to float
}

TEST(Expr, InAndRegex) {
  EXPECT_TRUE(test("method in [\"GET\", \"HEAD\"]"));
  EXPECT_FALSE(test("method in [\"POST\"]"));
  EXPECT_TRUE(test("method not in [\"POST\"]"));
  EXPECT_TRUE(test("status in [500, 503]"));
  EXPECT_TRUE(test("\"prod\" in tags"));
  EXPECT_TRUE(test("\"api\" in req.path"));
  EXPECT_TRUE(test("\"headers\" in req"));
  EXPECT_TRUE(test("status in [method, 503]"));  // a list with a field in it
  EXPECT_TRUE(test("req.path =~ \"^/api/v[0-9]+/\""));
  EXPECT_TRUE(test("host =~ \"(?i)^web-\\d+\""));
  EXPECT_FALSE(test("host =~ \"^web\""));
  EXPECT_TRUE(test("host !~ \"^web\""));
  EXPECT_FALSE(test("status =~ \"5\""));  // not a string: no match
}

TEST(Expr, CidrMatchIPv4AndIPv6) {
  EXPECT_TRUE(test("cidr_match(src_ip, \"10.0.0.0/8\")"));
  EXPECT_FALSE(test("cidr_match(src_ip, \"10.2.0.0/16\")"));
  EXPECT_TRUE(test("cidr_match(src_ip, \"192.168.0.0/16\", \"10.1.2.0/24\")"));
  EXPECT_TRUE(test("cidr_match(v6, \"2001:db8::/32\")"));
  EXPECT_FALSE(test("cidr_match(v6, \"2001:db9::/32\")"));
  EXPECT_FALSE(test("cidr_match(v6, \"10.0.0.0/8\")"));
  EXPECT_TRUE(test("cidr_match(\"::ffff:10.9.9.9\", \"10.0.0.0/8\")"));
  EXPECT_TRUE(test("cidr_match(\"10.1.2.3\", \"10.1.2.3\")"));
  EXPECT_FALSE(test("cidr_match(host, \"0.0.0.0/0\")"));  // not an address
  EXPECT_TRUE(test("cidr_match(\"8.8.8.8\", \"0.0.0.0/0\")"));
  EXPECT_TRUE(test("cidr_match(src_ip, \"10.1.2.3/31\")"));
  EXPECT_FALSE(test("cidr_match(\"10.1.2.4\", \"10.1.2.3/31\")"));
  EXPECT_NE(compile_error("cidr_match(src_ip, \"10.0.0.0/33\")").find("not an IPv4 or IPv6 network"), std::string::npos);
  EXPECT_NE(compile_error("cidr_match(src_ip, host)").find("must be a string literal"), std::string::npos);
}

TEST(Expr, Functions) {
  EXPECT_TRUE(test("exists(req.headers.\"user-agent\")"));
  EXPECT_TRUE(test("exists(nothing)"));  // present, although null
  EXPECT_FALSE(test("exists(req.cookie)"));
  EXPECT_EQ(eval("lower(host)"), "web-01.example.com");
  EXPECT_EQ(eval("upper(method + \"x\")"), "GETX");
  EXPECT_EQ(eval("len(host)"), 18);
  EXPECT_EQ(eval("len(\"h\xC3\xA9llo\")"), 5);  // code points, not bytes
  EXPECT_EQ(eval("len(tags)"), 2);
  EXPECT_TRUE(eval("len(status)").is_null());
  EXPECT_TRUE(test("starts_with(req.path, \"/api\")"));
  EXPECT_TRUE(test("ends_with(host, \".com\")"));
  EXPECT_TRUE(test("contains(host, \"example\")"));
  EXPECT_TRUE(test("contains(tags, \"edge\")"));
  EXPECT_EQ(eval("to_int(n_str)"), 42);
  EXPECT_EQ(eval("to_int(f_str)"), 2);
  EXPECT_EQ(eval("to_int(ratio * 10)"), 2);
  EXPECT_TRUE(eval("to_int(host)").is_null());
  EXPECT_EQ(eval("to_float(f_str)"), 2.5);
  EXPECT_EQ(eval("to_string(status)"), "503");
  EXPECT_EQ(eval("coalesce(missing, nothing, method)"), "GET");
  EXPECT_EQ(eval("parse_time(when)"), civil_to_us(2026, 11, 25, 10, 0, 0, 0));
  EXPECT_EQ(eval("parse_time(\"25/11/2026 11:00\", \"%d/%m/%Y %H:%M\", \"+01:00\")"), civil_to_us(2026, 11, 25, 10, 0, 0, 0));
  EXPECT_TRUE(eval("parse_time(host)").is_null());
  int64_t before = now_us();
  int64_t n = eval("now()").as_int64();
  EXPECT_GE(n, before);
  EXPECT_TRUE(test("now() - parse_time(when) > -86400000000 * 3650"));
}

TEST(Expr, ParseErrorsNameLineAndColumn) {
  EXPECT_EQ(compile_error("status == "), "line 1, column 11: expected a value, found end of expression");
  EXPECT_EQ(compile_error("status ==\n  (503 && )"), "line 2, column 11: expected a value, found ')'");
  EXPECT_EQ(compile_error("a = 1"), "line 1, column 3: '=' is not an operator (use '==' to compare)");
  EXPECT_EQ(compile_error("lower(a, b)"), "line 1, column 1: lower() takes 1 argument, not 2");
  EXPECT_NE(compile_error("frob(a)").find("line 1, column 1: unknown function 'frob'"), std::string::npos);
  EXPECT_NE(compile_error("x =~ \"(unclosed\"").find("line 1, column 6: invalid regex"), std::string::npos);
  EXPECT_EQ(compile_error("\"abc"), "line 1, column 1: unterminated string");
  EXPECT_EQ(compile_error("a < b < c"), "line 1, column 7: comparisons do not chain; use parentheses or &&");
  EXPECT_EQ(compile_error(""), "line 1, column 1: empty expression");
  EXPECT_EQ(compile_error("a b"), "line 1, column 3: unexpected name 'b'");
  EXPECT_EQ(compile_error("x =~ y"), "line 1, column 6: the right side of =~ must be a string literal (the regex)");
  EXPECT_NE(compile_error("exists(1)").find("exists() takes a field path"), std::string::npos);
  EXPECT_NE(compile_error("parse_time(a, \"%Q\")").find("unknown directive '%Q'"), std::string::npos);
}

TEST(Expr, DeepNestingIsRefusedNotACrash) {
  std::string deep(10000, '(');
  deep += "1" + std::string(10000, ')');
  EXPECT_NE(compile_error(deep).find("nested deeper than"), std::string::npos);
  EXPECT_NE(compile_error(std::string(10000, '!') + "a").find("nested deeper than"), std::string::npos);
  std::string chain = "a";
  for (int i = 0; i < 5000; ++i) chain += " + a";
  EXPECT_NE(compile_error(chain).find("nested deeper than"), std::string::npos);
  // Within the bounds it works.
  std::string ok(60, '(');
  ok += "status" + std::string(60, ')') + " == 503";
  EXPECT_TRUE(test(ok));
  EXPECT_NE(compile_error(std::string(70000, ' ') + "a").find("longer than"), std::string::npos);
}

// Random and hostile input: every string either compiles and evaluates, or is refused
// with an ExprError. Anything else (a crash, another exception) fails the test.
TEST(Expr, RandomExpressionsNeverCrash) {
  const std::vector<std::string> pieces{
      "status", "req.path", "tags[0]", "tags[-9]", "`user name`", "\"s\"", "'q'", "1", "2.5", "-", "+", "*", "/", "%",
      "==", "!=", "<", ">=", "&&", "||", "!", "(", ")", "[", "]", ",", ".", "in", "not", "=~", "\"[a-z\"", "\"^a.*\"",
      "lower(", "len(", "exists(", "cidr_match(", "parse_time(", "now()", "to_int(", "coalesce(", "\"10.0.0.0/8\"", "null",
      "true", "\n", "\\", "\"", "`", "@", "#", "\x01", "\xff", "9999999999999999999999", "1e999", "0/0", "items",
      "[1,2]", "\"%Y\"", "and", "or"};
  std::mt19937 rng(12345);
  int compiled = 0;
  for (int round = 0; round < 10000; ++round) {
    std::string src;
    int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) src += pieces[rng() % pieces.size()] + (rng() % 2 ? " " : "");
    try {
      auto e = Expr::compile(src);
      ++compiled;
      boost::json::value v = e.value(kEvent);
      (void)boost::json::serialize(v);
      (void)e.test(kEvent);
    } catch (const ExprError&) {
    }
  }
  EXPECT_GT(compiled, 100);  // the generator does reach the evaluator
}

TEST(Cidr, ParsesAndMatches) {
  auto net = CidrNetwork::parse("fe80::/10");
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->contains(*IpAddress::parse("fe80::1")));
  EXPECT_TRUE(net->contains(*IpAddress::parse("febf:ffff::1")));
  EXPECT_FALSE(net->contains(*IpAddress::parse("fec0::1")));
  EXPECT_FALSE(CidrNetwork::parse("10.0.0.0/"));
  EXPECT_FALSE(CidrNetwork::parse("10.0.0/8"));
  EXPECT_FALSE(CidrNetwork::parse("::/129"));
  EXPECT_TRUE(CidrNetwork::parse("::/0")->contains(*IpAddress::parse("::1")));
}

TEST(TimeFormat, StrptimeDirectivesZonesAndEpochs) {
  const TimeZone& utc = *TimeZone::utc();
  auto parse = [&](const std::string& fmt, const std::string& text, const TimeZone& z) {
    return TimeFormat::compile(fmt).parse(std::string_view(text), z);
  };
  const int64_t t = civil_to_us(2026, 3, 1, 14, 5, 9, 0);
  EXPECT_EQ(parse("%Y-%m-%d %H:%M:%S", "2026-03-01 14:05:09", utc), t);
  EXPECT_EQ(parse("%d/%b/%Y:%H:%M:%S %z", "01/Mar/2026:16:05:09 +0200", utc), t);  // Apache
  EXPECT_EQ(parse("%FT%T.%f%z", "2026-03-01T14:05:09.1234567Z", utc), t + 123456);
  EXPECT_EQ(parse("%a, %d %B %Y %I:%M:%S %p", "Sun, 01 March 2026 02:05:09 PM", utc), t);
  EXPECT_EQ(parse("%s", "1772373909", utc), t);
  EXPECT_EQ(parse("%Y-%m-%d %H:%M:%S %Z", "2026-03-01 14:05:09 UTC", utc), t);
  EXPECT_FALSE(parse("%Y-%m-%d", "2026-02-30", utc));
  EXPECT_FALSE(parse("%Y-%m-%d", "2026-03-01 trailing", utc));
  EXPECT_FALSE(parse("%H:%M", "25:00", utc));
  EXPECT_EQ(parse("epoch_s", "1772373909", utc), t);
  EXPECT_EQ(parse("epoch_ms", "1772373909000", utc), t);
  EXPECT_EQ(parse("epoch_s", "1772373909.5", utc), t + 500000);
  auto fmt = TimeFormat::compile("epoch_ns");
  EXPECT_EQ(fmt.parse(boost::json::value(int64_t{1772373909123456789}), utc), t + 123456);
  EXPECT_EQ(TimeFormat::compile("epoch_us").parse(boost::json::value(t), utc), t);
  EXPECT_EQ(TimeFormat::compile("epoch_ms").parse(boost::json::value(1772373909000.0), utc), t);
  EXPECT_EQ(TimeFormat::compile("auto").parse(boost::json::value(1772373909), utc), t);
  EXPECT_EQ(TimeFormat::compile("rfc3339").parse(boost::json::value("2026-03-01T15:05:09+01:00"), utc), t);
  EXPECT_THROW(TimeFormat::compile("%Y %Q"), PipelineError);
}

TEST(TimeFormat, IanaZonesFollowDaylightSaving) {
  const TimeZone& ams = *load_time_zone("Europe/Amsterdam");
  auto fmt = TimeFormat::compile("%Y-%m-%d %H:%M:%S");
  // CET (+1) in winter, CEST (+2) in summer.
  EXPECT_EQ(fmt.parse(std::string_view("2026-01-15 13:00:00"), ams), civil_to_us(2026, 1, 15, 12, 0, 0, 0));
  EXPECT_EQ(fmt.parse(std::string_view("2026-07-15 14:00:00"), ams), civil_to_us(2026, 7, 15, 12, 0, 0, 0));
  const TimeZone& ny = *load_time_zone("America/New_York");
  EXPECT_EQ(fmt.parse(std::string_view("2026-07-15 08:00:00"), ny), civil_to_us(2026, 7, 15, 12, 0, 0, 0));
  EXPECT_EQ(load_time_zone("+05:30")->offset_at(0), 19800);
  EXPECT_EQ(load_time_zone("-0800")->offset_at(0), -28800);
  EXPECT_EQ(fmt.parse(std::string_view("2026-07-15 17:30:00"), *load_time_zone("+05:30")),
            civil_to_us(2026, 7, 15, 12, 0, 0, 0));
  EXPECT_EQ(load_time_zone("Europe/Amsterdam"), load_time_zone("Europe/Amsterdam"));  // read once
  EXPECT_THROW(load_time_zone("Mars/Olympus_Mons"), PipelineError);
  EXPECT_THROW(load_time_zone("../../etc/passwd"), PipelineError);
}

TEST(TimeFormat, MissingYearIsTheCurrentOneUnlessThatIsInTheFuture) {
  auto fmt = TimeFormat::compile("%b %e %H:%M:%S");
  CivilTime now = to_civil(now_us());
  static const char* kMon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::string today = std::string(kMon[now.month - 1]) + " " + std::to_string(now.day) + " 00:00:00";
  EXPECT_EQ(to_civil(*fmt.parse(std::string_view(today), *TimeZone::utc())).year, now.year);
  // Two days ahead is read as last year (a syslog "Dec 31" line read on Jan 1).
  CivilTime ahead = to_civil(now_us() + 2 * 86400LL * 1000000);
  std::string future = std::string(kMon[ahead.month - 1]) + " " + std::to_string(ahead.day) + " 00:00:00";
  EXPECT_EQ(to_civil(*fmt.parse(std::string_view(future), *TimeZone::utc())).year, ahead.year - 1);
}
