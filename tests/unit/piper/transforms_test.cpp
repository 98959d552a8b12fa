// One test per step kind, through Pipeline::compile + run as the piper uses them.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstdio>
#include <map>
#include <random>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/digest.h"
#include "common/metrics.h"
#include "fixtures/enrich_files.h"
#include "piper/grok_patterns.h"
#include "piper/transform.h"

using namespace bf;
namespace json = boost::json;

namespace {
Pipeline compile(const std::string& steps) { return Pipeline::compile(json::parse(steps).as_array(), "dataset a/t/d"); }

Event ev(const std::string& text) { return json::parse(text).as_object(); }

// Runs one event through a pipeline; the event must come out (not dropped or failed).
Event one(const std::string& steps, const std::string& event) {
  auto out = compile(steps).run({ev(event)});
  EXPECT_EQ(out.events.size(), 1u) << steps;
  EXPECT_TRUE(out.dead_letters.empty()) << (out.dead_letters.empty() ? "" : json::serialize(out.dead_letters[0]));
  return out.events.empty() ? Event{} : out.events[0];
}

// The _error of an event the pipeline must dead-letter.
std::string failure(const std::string& steps, const std::string& event) {
  auto out = compile(steps).run({ev(event)});
  EXPECT_TRUE(out.events.empty()) << steps;
  if (out.dead_letters.size() != 1) {
    ADD_FAILURE() << "not dead-lettered: " << steps;
    return "";
  }
  return std::string(out.dead_letters[0].at("_error").as_string());
}

std::string compile_error(const std::string& steps) {
  try {
    compile(steps);
  } catch (const PipelineError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Steps, SetWithValueOrExpression) {
  auto e = one(R"([{"set": {"field": "kb", "expr": "bytes / 1024"}},
                  {"set": {"field": "a.b", "value": [1, 2]}},
                  {"add": {"field": "bytes", "value": 0, "overwrite": false}}])",
               R"({"bytes": 4096})");
  EXPECT_EQ(e.at("kb"), 4);
  EXPECT_EQ(json::serialize(e.at("a")), R"({"b":[1,2]})");
  EXPECT_EQ(e.at("bytes"), 4096);
  EXPECT_NE(compile_error(R"([{"set": {"field": "x"}}])").find("exactly one of 'value'"), std::string::npos);
  EXPECT_NE(compile_error(R"([{"set": {"field": "x", "expr": "a +"}}])")
                .find("dataset a/t/d: pipeline step 1 (set): option 'expr': line 1, column 4: expected a value"),
            std::string::npos);
}

TEST(Steps, IfConditionSelectsEvents) {
  auto out = compile(R"j([{"set": {"field": "class", "value": "server_error", "if": "status >= 500"}},
                         {"set": {"field": "internal", "value": true, "if": "cidr_match(ip, \"10.0.0.0/8\")"}}])j")
                 .run({ev(R"({"status": 503, "ip": "10.0.0.1"})"), ev(R"({"status": 200, "ip": "8.8.8.8"})")});
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].at("class"), "server_error");
  EXPECT_EQ(out.events[0].at("internal"), true);
  EXPECT_FALSE(out.events[1].contains("class"));
  EXPECT_FALSE(out.events[1].contains("internal"));
  EXPECT_NE(compile_error(R"([{"drop": {"if": "status = 5"}}])").find("pipeline step 1 (drop): option 'if': line 1, column 8"),
            std::string::npos);
  EXPECT_NE(compile_error(R"([{"drop": {"if": 5}}])").find("option 'if': must be a string"), std::string::npos);
}

TEST(Steps, RemoveRenameCopy) {
  auto e = one(R"([{"copy": {"from": "host", "to": "origin.host"}}, {"rename": {"from": "msg", "to": "message"}},
                  {"remove": {"fields": ["secret", "origin.none"]}}, {"copy": {"from": "absent", "to": "x"}}])",
               R"({"host": "h1", "msg": "hi", "secret": 1})");
  EXPECT_EQ(e, ev(R"({"host":"h1","message":"hi","origin":{"host":"h1"}})"));  // object equality ignores member order
}

TEST(Steps, CoerceConvertsOrDeadLettersWithoutPartialChanges) {
  auto e = one(R"([{"coerce": {"fields": {"status": "int", "took": "float", "ok": "bool", "n": "string", "at": "timestamp"}}}])",
               R"({"status": "503", "took": "0.25", "ok": "yes", "n": 12, "at": 1772373909})");
  EXPECT_EQ(e.at("status"), 503);
  EXPECT_EQ(e.at("took"), 0.25);
  EXPECT_EQ(e.at("ok"), true);
  EXPECT_EQ(e.at("n"), "12");
  EXPECT_EQ(e.at("at"), "2026-03-01T14:05:09.000000Z");
  auto out = compile(R"([{"coerce": {"fields": {"a": "int", "b": "int"}}}])").run({ev(R"({"a": "1", "b": "x1"})")});
  ASSERT_EQ(out.dead_letters.size(), 1u);
  EXPECT_EQ(out.dead_letters[0].at("a"), "1");  // untouched although it would convert
  EXPECT_EQ(out.dead_letters[0].at("_error"), "step 1 (coerce): field 'b': \"x1\" is not a valid int");
  EXPECT_NE(compile_error(R"([{"coerce": {"field": "a", "type": "decimal"}}])").find("option 'type': 'decimal' is not one of int, integer, float"),
            std::string::npos);
  EXPECT_NE(compile_error(R"([{"coerce": {"fields": {"a": "nope"}}}])").find("option 'fields.a': unknown type"),
            std::string::npos);
}

TEST(Steps, RegexReplace) {
  auto e = one(R"([{"regex_replace": {"field": "msg", "pattern": "(password=)\\S+", "replacement": "\\1***"}}])",
               R"({"msg": "login password=hunter2 ok password=x"})");
  EXPECT_EQ(e.at("msg"), "login password=*** ok password=***");
  auto first = one(R"([{"regex_replace": {"field": "msg", "pattern": "a", "replacement": "b", "all": false}}])", R"({"msg": "aaa"})");
  EXPECT_EQ(first.at("msg"), "baa");
  EXPECT_EQ(failure(R"([{"regex_replace": {"field": "msg", "pattern": "a"}}])", R"({"msg": 5})"),
            "step 1 (regex_replace): field 'msg' is not a string");
  EXPECT_NE(compile_error(R"([{"regex_replace": {"field": "m", "pattern": "(a"}}])").find("option 'pattern': invalid regex"),
            std::string::npos);
  EXPECT_NE(compile_error(R"([{"regex_replace": {"field": "m", "pattern": "a", "replacement": "\\3"}}])").find("option 'replacement'"),
            std::string::npos);
}

TEST(Steps, CaseAndTrim) {
  auto e = one(R"([{"lowercase": {"field": "host"}}, {"uppercase": {"fields": ["method", "n"]}},
                  {"trim": {"fields": ["user", "blank"]}}, {"trim": {"field": "q", "chars": "\""}}])",
               R"({"host": "WEB-01", "method": "get", "n": 5, "user": "  ann\t", "blank": "   ", "q": "\"x\""})");
  EXPECT_EQ(e.at("host"), "web-01");
  EXPECT_EQ(e.at("method"), "GET");
  EXPECT_EQ(e.at("n"), 5);
  EXPECT_EQ(e.at("user"), "ann");
  EXPECT_EQ(e.at("blank"), "");
  EXPECT_EQ(e.at("q"), "x");
}

TEST(Steps, Split) {
  auto e = one(R"([{"split": {"field": "tags", "separator": ",", "trim": true, "skip_empty": true}},
                  {"split": {"field": "path", "separator": "/", "target": "parts", "max": 3}}])",
               R"({"tags": "a, b,,c ", "path": "x/y/z/w"})");
  EXPECT_EQ(json::serialize(e.at("tags")), R"(["a","b","c"])");
  EXPECT_EQ(json::serialize(e.at("parts")), R"(["x","y","z/w"])");
  EXPECT_EQ(e.at("path"), "x/y/z/w");
}

TEST(Steps, ExplodeMakesOneEventPerElement) {
  auto p = compile(R"([{"explode": {"field": "to", "target": "recipient"}}, {"set": {"field": "seen", "value": true}}])");
  auto out = p.run({ev(R"({"id": 1, "to": ["a", "b", "c"]})"), ev(R"({"id": 2, "to": []})"), ev(R"({"id": 3})"),
                    ev(R"({"id": 4, "to": "x"})")});
  ASSERT_EQ(out.events.size(), 4u);  // three from id 1, id 3 unchanged
  EXPECT_EQ(out.events[0].at("recipient"), "a");
  EXPECT_EQ(out.events[2].at("recipient"), "c");
  EXPECT_EQ(out.events[2].at("id"), 1);
  EXPECT_FALSE(out.events[0].contains("to"));
  EXPECT_EQ(out.events[1].at("seen"), true);  // later steps run on each new event
  EXPECT_EQ(out.events[3].at("id"), 3);
  EXPECT_EQ(out.dropped, 1u);  // the empty array
  ASSERT_EQ(out.dead_letters.size(), 1u);
  EXPECT_EQ(out.dead_letters[0].at("_error"), "step 1 (explode): field 'to' is not an array");
  EXPECT_NE(failure(R"([{"explode": {"field": "a", "max_events": 2}}])", R"({"a": [1, 2, 3]})").find("more than max_events (2)"),
            std::string::npos);
}

TEST(Steps, JsonParse) {
  auto e = one(R"([{"json_parse": {"field": "message", "merge": true}}, {"json_parse": {"field": "raw", "target": "doc"}}])",
               R"({"message": "{\"user\": \"ann\", \"n\": 2}", "raw": "[1, {\"a\": null}]"})");
  EXPECT_EQ(e.at("user"), "ann");
  EXPECT_EQ(e.at("n"), 2);
  EXPECT_EQ(json::serialize(e.at("doc")), R"([1,{"a":null}])");
  EXPECT_NE(failure(R"([{"json_parse": {}}])", R"({"message": "{not json"})").find("step 1 (json_parse): field 'message' is not JSON"),
            std::string::npos);
  EXPECT_NE(failure(R"([{"json_parse": {"merge": true}}])", R"({"message": "[1]"})").find("not an object"), std::string::npos);
  std::string deep(100, '[');
  EXPECT_NE(failure(R"([{"json_parse": {}}])", json::serialize(json::object{{"message", deep}})).find("not JSON"), std::string::npos);
}

TEST(Steps, JsonFlatten) {
  auto e = one(R"([{"json_flatten": {}}])", R"({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}, "f": 3})");
  EXPECT_EQ(json::serialize(e), R"({"a.b":1,"a.c.d":[1,2],"e":{},"f":3})");
  auto arrays = one(R"([{"json_flatten": {"field": "req", "separator": "_", "arrays": true}}])", R"({"req": {"h": {"x": 1}, "l": [5, {"y": 6}]}, "top": {"k": 1}})");
  EXPECT_EQ(json::serialize(arrays), R"({"req":{"h_x":1,"l_0":5,"l_1_y":6},"top":{"k":1}})");
}

TEST(Steps, KeyValuePairs) {
  auto e = one(R"([{"kv": {"field": "message", "target": "kv"}}])",
               R"({"message": "user=ann action=\"log in\" note='it''s' bare src=10.0.0.1 empty= q=\"a \\\"b\\\"\""})");
  EXPECT_EQ(e.at("kv").at("user"), "ann");
  EXPECT_EQ(e.at("kv").at("action"), "log in");
  EXPECT_EQ(e.at("kv").at("src"), "10.0.0.1");
  EXPECT_EQ(e.at("kv").at("empty"), "");
  EXPECT_EQ(e.at("kv").at("q"), "a \"b\"");
  EXPECT_FALSE(e.at("kv").as_object().contains("bare"));
  auto custom = one(R"([{"kv": {"field_split": ";", "value_split": ":", "include": ["a", "c"], "prefix": "kv_"}}])",
                    R"({"message": "a:1; b:2;c: 3"})");
  EXPECT_EQ(custom.at("kv_a"), "1");
  EXPECT_EQ(custom.at("kv_c"), " 3");
  EXPECT_FALSE(custom.contains("kv_b"));
  auto excl = one(R"([{"kv": {"exclude": ["password"]}}])", R"({"message": "user=x password=y"})");
  EXPECT_EQ(excl.at("user"), "x");
  EXPECT_FALSE(excl.contains("password"));
}

TEST(Steps, CsvWithHeader) {
  auto e = one(R"([{"csv": {"header": ["ts", "user", "note", "n"], "target": "rec"}}])",
               R"({"message": "2026-01-01,ann,\"a, \"\"quoted\"\" note\",7"})");
  EXPECT_EQ(json::serialize(e.at("rec")), R"({"ts":"2026-01-01","user":"ann","note":"a, \"quoted\" note","n":"7"})");
  auto semi = one(R"([{"csv": {"field": "line", "header": "a;b;c", "delimiter": ";"}}])", R"({"line": "1;;3"})");
  EXPECT_EQ(semi.at("a"), "1");
  EXPECT_EQ(semi.at("b"), "");
  EXPECT_EQ(semi.at("c"), "3");
  auto fewer = one(R"([{"csv": {"header": ["a", "b"]}}])", R"({"message": "1"})");
  EXPECT_EQ(fewer.at("a"), "1");
  EXPECT_FALSE(fewer.contains("b"));
  EXPECT_EQ(failure(R"([{"csv": {"header": ["a"]}}])", R"({"message": "1,2"})"), "step 1 (csv): field 'message': 2 values for 1 header names");
  EXPECT_NE(failure(R"([{"csv": {"header": ["a"]}}])", R"({"message": "\"open"})").find("unterminated quote"), std::string::npos);
  EXPECT_NE(compile_error(R"([{"csv": {"header": ["a"], "delimiter": ";;"}}])").find("option 'delimiter': must be one character"),
            std::string::npos);
}

TEST(Steps, DateParseIntoTime) {
  auto e = one(R"([{"date_parse": {"field": "ts", "formats": ["%d/%b/%Y:%H:%M:%S %z", "epoch_ms"]}}])",
               R"({"ts": "01/Mar/2026:16:05:09 +0200"})");
  EXPECT_EQ(e.at("_time"), "2026-03-01T14:05:09.000000Z");
  auto ms = one(R"([{"date_parse": {"field": "ts", "formats": ["%d/%b/%Y:%H:%M:%S %z", "epoch_ms"]}}])", R"({"ts": 1772373909250})");
  EXPECT_EQ(ms.at("_time"), "2026-03-01T14:05:09.250000Z");
  auto zoned = one(R"([{"date_parse": {"field": "ts", "formats": "%Y-%m-%d %H:%M:%S", "timezone": "Europe/Berlin", "target": "at"}}])",
                   R"({"ts": "2026-07-01 12:00:00"})");
  EXPECT_EQ(zoned.at("at"), "2026-07-01T10:00:00.000000Z");
  EXPECT_EQ(failure(R"([{"date_parse": {"field": "ts", "formats": "%Y"}}])", R"({"ts": "soon"})"),
            "step 1 (date_parse): field 'ts': \"soon\" matches none of the formats");
  EXPECT_NE(compile_error(R"([{"date_parse": {"field": "ts", "timezone": "Nowhere/City"}}])").find("option 'timezone'"), std::string::npos);
  EXPECT_NE(compile_error(R"([{"date_parse": {"field": "ts", "formats": "%Q"}}])").find("option 'formats'"), std::string::npos);
}

TEST(Steps, HashFingerprints) {
  auto e = one(R"([{"hash": {"fields": ["a", "b"], "target": "fp"}}, {"hash": {"fields": "a", "algorithm": "xxhash64", "target": "x"}},
                  {"hash": {"fields": ["a", "n"], "algorithm": "xxh3"}}])",
               R"({"a": "ab", "b": "c", "n": 1})");
  EXPECT_EQ(e.at("fp").as_string(), sha256_hex("ab\x1f" "c"));
  EXPECT_EQ(e.at("x").as_string().size(), 16u);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH64("ab", 2, 0)));
  EXPECT_EQ(e.at("x").as_string(), hex);
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH3_64bits("ab\x1f" "1", 4)));
  EXPECT_EQ(e.at("_hash").as_string(), hex);  // non-strings hash as their JSON text
  auto other = one(R"([{"hash": {"fields": ["a", "b"], "target": "fp"}}])", R"({"a": "a", "b": "bc"})");
  EXPECT_NE(other.at("fp"), e.at("fp"));  // field boundaries count
  EXPECT_NE(compile_error(R"([{"hash": {"fields": "a", "algorithm": "md5"}}])").find("option 'algorithm': 'md5' is not one of"),
            std::string::npos);
}

TEST(Steps, Truncate) {
  auto e = one(R"([{"truncate": {"fields": ["m", "u", "n"], "max_bytes": 4, "suffix": "..."}}])",
               R"({"m": "abcdefgh", "u": "ab\u00e9\u00e9", "n": 12345})");
  EXPECT_EQ(e.at("m"), "abcd...");
  EXPECT_EQ(e.at("u"), "ab\xc3\xa9...");  // not inside the second é
  EXPECT_EQ(e.at("n"), 12345);
  EXPECT_NE(compile_error(R"([{"truncate": {"field": "m"}}])").find("missing option 'max_bytes'"), std::string::npos);
  EXPECT_NE(compile_error(R"([{"truncate": {"field": "m", "max_bytes": 0}}])").find("option 'max_bytes': must be between 1"),
            std::string::npos);
}

TEST(Steps, DropIsCountedPerDatasetAndStep) {
  auto p = compile(R"([{"set": {"field": "x", "value": 1}}, {"drop": {"if": "level == \"debug\""}}, {"coerce": {"field": "n", "type": "int"}}])");
  p.count_as({{"tenant", "t"}, {"dataset", "drop-test"}});
  auto out = p.run({ev(R"({"level": "debug"})"), ev(R"({"level": "info"})"), ev(R"({"level": "debug"})"), ev(R"({"n": "x"})")});
  EXPECT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.dropped, 2u);
  EXPECT_EQ(out.dead_letters.size(), 1u);
  EXPECT_EQ(metrics().value("bf_piper_step_dropped_events_total", {{"tenant", "t"}, {"dataset", "drop-test"}, {"step", "2"}, {"kind", "drop"}}), 2);
  EXPECT_EQ(metrics().value("bf_piper_step_failed_events_total", {{"tenant", "t"}, {"dataset", "drop-test"}, {"step", "3"}, {"kind", "coerce"}}), 1);
  EXPECT_NE(metrics().prometheus_text().find("bf_piper_step_dropped_events_total{tenant=\"t\",dataset=\"drop-test\",step=\"2\",kind=\"drop\"} 2"),
            std::string::npos);
}

TEST(Steps, IncludeAndExclude) {
  auto e = one(R"([{"include": {"fields": ["host", "http_*"]}}])",
               R"({"_time": "t", "host": "h", "http_status": 200, "http_path": "/", "other": 1})");
  EXPECT_EQ(e.size(), 4u);
  EXPECT_TRUE(e.contains("_time"));
  EXPECT_FALSE(e.contains("other"));
  auto strict = one(R"([{"include": {"fields": "host", "keep_system": false}}])", R"({"_time": "t", "host": "h"})");
  EXPECT_EQ(json::serialize(strict), R"({"host":"h"})");
  auto ex = one(R"([{"exclude": {"fields": ["debug_*", "pass?ord"]}}])",
                R"({"debug_a": 1, "debug_": 2, "password": 3, "passwords": 4, "keep": 5})");
  EXPECT_EQ(ex.size(), 2u);
  EXPECT_TRUE(ex.contains("passwords"));
  EXPECT_TRUE(ex.contains("keep"));
}

TEST(Steps, UnknownOptionsNameDatasetStepKindAndKey) {
  EXPECT_EQ(compile_error(R"([{"set": {"field": "a", "value": 1}}, {"kv": {"field_spilt": ","}}])"),
            "dataset a/t/d: pipeline step 2 (kv): unknown option 'field_spilt' (known: field, target, field_split, "
            "value_split, quotes, include, exclude, prefix, overwrite, if)");
  EXPECT_EQ(compile_error(R"([{"split": {"field": "a", "separator": ""}}])"),
            "dataset a/t/d: pipeline step 1 (split): option 'separator': must not be empty");
  EXPECT_EQ(compile_error(R"([{"split": {"field": "a", "max": "3"}}])"),
            "dataset a/t/d: pipeline step 1 (split): option 'max': must be an integer, got \"3\"");
  EXPECT_EQ(compile_error(R"([{"explode": {"field": 3}}])"),
            "dataset a/t/d: pipeline step 1 (explode): option 'field': must be a string, got 3");
  EXPECT_EQ(compile_error(R"([{"json_parse": {"merge": true, "target": "x"}}])"),
            "dataset a/t/d: pipeline step 1 (json_parse): option 'target': cannot be combined with merge: true");
}

TEST(Steps, EveryRegisteredKindCompilesAndRunsOnHostileEvents) {
  // Minimal options for each kind; every kind in the registry must be listed here.
  bf::test::TempDir dir;
  bf::test::SilentUdpServer silent;
  bf::test::write_mmdb(dir.file("c.mmdb"), R"({"database_type": "GeoLite2-Country", "networks": [{"network": "10.0.0.0/8", "data": {"country": {"iso_code": "ZZ"}}}]})");
  bf::test::replace_file(dir.file("t.csv"), "f,v\na=b c,1\n");
  const std::map<std::string, std::string> minimal{
      {"set", R"({"field": "f", "value": 1})"}, {"add", R"({"field": "f", "value": 1})"}, {"remove", R"({"field": "f"})"},
      {"rename", R"({"from": "f", "to": "g"})"}, {"copy", R"({"from": "f", "to": "g"})"}, {"coerce", R"({"field": "f", "type": "int"})"},
      {"regex_replace", R"({"field": "f", "pattern": "a"})"}, {"lowercase", R"({"field": "f"})"}, {"uppercase", R"({"field": "f"})"},
      {"trim", R"({"field": "f"})"}, {"split", R"({"field": "f"})"}, {"explode", R"({"field": "f"})"}, {"json_parse", R"({"field": "f"})"},
      {"json_flatten", R"({})"}, {"kv", R"({"field": "f"})"}, {"csv", R"({"field": "f", "header": ["a"]})"},
      {"date_parse", R"({"field": "f"})"}, {"hash", R"({"fields": "f"})"}, {"truncate", R"({"field": "f", "max_bytes": 2})"},
      {"drop", R"({})"}, {"include", R"({"fields": "f"})"}, {"exclude", R"({"fields": "f"})"},
      {"grok", R"({"field": "f", "patterns": "%{WORD:w}"})"}, {"route", R"({"to": "other"})"},
      {"sample", R"({"rate": 2, "key": "f", "mode": "dynamic"})"},
      {"community_id", R"({"source_ip": "f", "destination_ip": "o", "source_port": "f", "destination_port": "o", "protocol": "o"})"},
      {"geoip", R"({"field": "f", "database": ")" + dir.file("c.mmdb") + "\"}"},
      {"lookup", R"({"field": "f", "file": ")" + dir.file("t.csv") + "\"}"},
      {"rdns", R"({"field": "f", "target": "h", "server": ")" + silent.address() + R"(", "timeout_ms": 5, "budget_ms": 20})"}};
  const std::vector<std::string> values{"null", "true", "-1", "1e308", "\"\"", "\"a=b c\"", "[]", "[1,[2]]", "{}", "{\"x\":{\"y\":1}}",
                                        "\"\\u0000\"", "18446744073709551615"};
  for (const auto& f : transform_factories()) {
    ASSERT_TRUE(minimal.count(f.type)) << "no minimal options for step kind " << f.type;
    auto p = compile("[{\"" + f.type + "\": " + minimal.at(f.type) + "}]");
    for (const auto& v : values) {
      std::vector<Event> in{ev("{\"f\": " + v + ", \"o\": 1}"), ev("{}"), ev("{\"f\": \"10.1.2.3\"}")};
      auto out = p.run(in);
      EXPECT_EQ(out.events.size() + out.dead_letters.size() + out.dropped + out.routed_count() >= in.size(), true) << f.type << " lost an event on " << v;
      for (const auto& d : out.dead_letters) EXPECT_TRUE(d.contains("_error")) << f.type;
    }
  }
}

TEST(Steps, GrokSyslogBase) {
  auto e = one(R"([{"grok": {"patterns": "%{SYSLOGBASE} %{GREEDYDATA:msg}"}}])",
               R"({"message": "Nov 25 10:00:00 host02 sshd[77]: Accepted publickey for ann from 10.0.0.1 port 51234 ssh2"})");
  EXPECT_EQ(e.at("timestamp"), "Nov 25 10:00:00");
  EXPECT_EQ(e.at("logsource"), "host02");
  EXPECT_EQ(e.at("program"), "sshd");
  EXPECT_EQ(e.at("pid"), "77");
  EXPECT_EQ(e.at("msg"), "Accepted publickey for ann from 10.0.0.1 port 51234 ssh2");
  auto nopid = one(R"([{"grok": {"patterns": "%{SYSLOGBASE}"}}])", R"({"message": "Jan  5 01:02:03 10.1.1.1 cron: x"})");
  EXPECT_EQ(nopid.at("program"), "cron");
  EXPECT_EQ(nopid.at("logsource"), "10.1.1.1");
  EXPECT_FALSE(nopid.contains("pid"));  // the optional part did not take part
}

// Grok leaves room in the event for the fields later steps add: a set and a lookup's
// columns after it must not grow (and rehash) the member table again.
TEST(Steps, GrokLeavesRoomForTheFieldsLaterStepsAdd) {
  auto out = compile(R"([{"grok": {"patterns": "%{SYSLOGBASE} %{GREEDYDATA:msg}"}}])")
                 .run({ev(R"({"message": "Nov 25 10:00:00 host02 sshd[77]: Accepted publickey for ann", "a": 1})")});
  ASSERT_EQ(out.events.size(), 1u);
  const Event& e = out.events[0];  // not a copy: a copy is sized to its members
  ASSERT_EQ(e.at("program"), "sshd");
  EXPECT_GE(e.capacity(), e.size() + 6);
}

TEST(Steps, GrokApacheLogsWithTypedCaptures) {
  const std::string line =
      R"j(203.0.113.9 - frank [10/Oct/2026:13:55:36 -0700] "GET /apache_pb.gif?a=1 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)")j";
  auto e = one(R"([{"grok": {"patterns": "%{COMBINEDAPACHELOG}"}}, {"coerce": {"fields": {"bytes": "int"}}}])",
               json::serialize(json::object{{"message", line}}));
  EXPECT_EQ(e.at("clientip"), "203.0.113.9");
  EXPECT_EQ(e.at("ident"), "-");
  EXPECT_EQ(e.at("auth"), "frank");
  EXPECT_EQ(e.at("timestamp"), "10/Oct/2026:13:55:36 -0700");
  EXPECT_EQ(e.at("verb"), "GET");
  EXPECT_EQ(e.at("request"), "/apache_pb.gif?a=1");
  EXPECT_EQ(e.at("httpversion"), "1.0");
  EXPECT_EQ(e.at("response"), "200");
  EXPECT_EQ(e.at("bytes"), 2326);
  EXPECT_EQ(e.at("referrer"), "\"http://www.example.com/start.html\"");
  EXPECT_EQ(e.at("agent"), "\"Mozilla/4.08 [en] (Win98; I ;Nav)\"");
  auto common = one(R"([{"grok": {"patterns": "%{COMMONAPACHELOG}", "target": "http"}}])",
                    R"({"message": "::1 - - [01/Mar/2026:14:05:09 +0000] \"-\" 408 -"})");
  EXPECT_EQ(common.at("http").at("clientip"), "::1");
  EXPECT_EQ(common.at("http").at("rawrequest"), "-");
  EXPECT_FALSE(common.at("http").as_object().contains("bytes"));
}

TEST(Steps, GrokTypesCustomPatternsAndOrder) {
  auto e = one(R"([{"grok": {"patterns": ["^%{IP:src} took %{NUMBER:ms:float}ms$", "^%{IP:client.ip} %{TICKET:ticket} %{NUMBER:bytes:int} (?P<rest>.*)$"],
                             "pattern_definitions": {"TICKET": "[A-Z]{3}-%{INT}"}}}])",
               R"({"message": "2001:db8::1 ABC-42 1234 tail text"})");
  EXPECT_EQ(e.at("client").at("ip"), "2001:db8::1");
  EXPECT_EQ(e.at("ticket"), "ABC-42");
  EXPECT_EQ(e.at("bytes"), 1234);
  EXPECT_EQ(e.at("rest"), "tail text");
  auto first = one(R"([{"grok": {"patterns": ["^%{IP:src} took %{NUMBER:ms:float}ms$", "%{GREEDYDATA:all}"]}}])",
                   R"({"message": "10.0.0.1 took 2.5ms"})");
  EXPECT_EQ(first.at("src"), "10.0.0.1");
  EXPECT_EQ(first.at("ms"), 2.5);
  EXPECT_FALSE(first.contains("all"));
  auto iso = one(R"([{"grok": {"patterns": "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{UUID:id}"}}])",
                 R"({"message": "2026-03-01T14:05:09.123+02:00 WARN 123e4567-e89b-12d3-a456-426614174000"})");
  EXPECT_EQ(iso.at("ts"), "2026-03-01T14:05:09.123+02:00");
  EXPECT_EQ(iso.at("level"), "WARN");
  EXPECT_EQ(failure(R"([{"grok": {"patterns": "^%{IPV4:ip}$"}}])", R"({"message": "999.1.1.1"})"),
            "step 1 (grok): field 'message' matches none of the patterns: 999.1.1.1");
  auto kept = one(R"([{"grok": {"patterns": "^%{IPV4:ip}$", "on_mismatch": "keep"}}])", R"({"message": "x"})");
  EXPECT_FALSE(kept.contains("ip"));
  EXPECT_NE(compile_error(R"([{"grok": {"patterns": "%{NOPE:x}"}}])").find("pipeline step 1 (grok): option 'patterns': unknown grok pattern 'NOPE'"),
            std::string::npos);
  EXPECT_NE(compile_error(R"([{"grok": {"patterns": "%{A}", "pattern_definitions": {"A": "x%{B}", "B": "%{A}"}}}])").find("refers to itself"),
            std::string::npos);
  EXPECT_NE(compile_error(R"([{"grok": {"patterns": "%{INT:n:decimal}"}}])").find("unknown capture type 'decimal'"), std::string::npos);
  EXPECT_NE(compile_error(R"([{"grok": {"patterns": "(%{INT:n}"}}])").find("invalid regex"), std::string::npos);
}

TEST(Steps, GrokLibraryPatternsAllCompile) {
  for (const auto& [name, body] : grok_library()) {
    EXPECT_EQ(compile_error("[{\"grok\": {\"patterns\": \"%{" + name + ":x}\"}}]"), "") << name;
  }
}

// grok's fast paths must give what the whole pattern gives: the head/tail split (a
// trailing %{GREEDYDATA:f}: the head alone is matched and the field is the rest of the
// line) and the lean program without IPV6 and with unbounded HOSTNAME labels (used
// where the match holds no "::", no six colons in a row of hex digits, and no run of 64
// label characters). "(?:)" after the
// reference matches nothing and turns the split off; IPV6 and HOSTNAME given as custom
// patterns with the library's own text turn the lean program off. Each pattern is run
// both ways over generated lines: syslog-like text with newlines, tabs, UTF-8 and
// invalid bytes after the head, IPv4, IPv6 and odd hosts, colons before and after the
// match, lines the pattern does not match.
TEST(Steps, GrokFastPathsMatchTheWholePattern) {
  const std::vector<std::string> patterns = {
      "^<%{NONNEGINT:pri:int}>%{SYSLOGBASE} %{GREEDYDATA:msg}$",
      "%{SYSLOGBASE} %{GREEDYDATA:msg}",
      "%{SYSLOGBASE}%{GREEDYDATA:msg}",
      "from %{IP:src} port %{GREEDYDATA:port:int}",
      "(?:%{WORD:w}|x) %{GREEDYDATA:rest}$",
      "%{WORD:w}[|] %{GREEDYDATA:rest:float}",
      "%{GREEDYDATA:all}",
      "^%{WORD:a}(?P<b> [a-z]+)? %{GREEDYDATA:a}",  // the tail replaces an earlier capture
      "%{WORD:k}=|%{GREEDYDATA:rest}",                // a top-level |: never split
      "from %{IP:src}",
      "%{IPORHOST:h}(?::%{POSINT:port})? %{WORD:w}",
      "^%{IPV6:v6}",
      "%{IP:a}[^:]*%{IP:b}",
      "%{HOSTNAME:h}%{NOTSPACE:more}",  // a label past 63 characters: HOSTNAME stops at 63
      "%{IPORHOST:h}%{NOTSPACE:more}",  // IPv6 first, else a host name
      // Anchored at the start, with IPORHOST early, a group or a top-level | after the ^.
      "^<%{NONNEGINT:pri:int}>%{SYSLOGBASE} Accepted %{WORD:auth} for %{USERNAME:user} from %{IP:src_ip} port "
      "%{INT:src_port:int} %{GREEDYDATA:msg}$",  // issue 8's
      "^%{IPORHOST:h} %{GREEDYDATA:rest}",
      "^(?:<%{INT:pri}>)?%{IPORHOST:h}(?::%{POSINT:port})?",
      "^(?:%{IP:a}|%{HOSTNAME:b})",
      "^%{WORD:a} |%{IP:b}",     // a top-level |: not anchored
      "^(?i)%{WORD:a} %{IP:b}",  // a flag group: not taken as a plain sequence
  };
  std::mt19937 rng(20261203);
  auto pick = [&](std::initializer_list<const char*> xs) { return std::string(xs.begin()[rng() % xs.size()]); };
  // Host labels at HOSTNAME's bound of 63 characters and past it.
  const std::string label63 = std::string(63, 'a') + ".b ", label64 = "x" + std::string(63, '7') + " ",
                    label70 = std::string(70, 'z') + " ";
  std::vector<std::string> lines;
  for (int i = 0; i < 1500; ++i) {
    std::string l = pick({"<38>", "<13>", "", "<x>"}) + pick({"Nov 25 10:12:03 ", "Jan  5 01:02:03 ", "Feb 30 99:99:99 ", ""}) +
                    pick({"web-3.example.net ", "10.20.3.4 ", "2001:db8::1 ", "::ffff:10.1.2.3 ", "h_1 ", "fe80::1%eth0 ", "1.2.3.4:80 ", "2001:db8:0:0:1:0:0:1 ",
                          "0:0:0:0:0:ffff:10.1.2.3 ", "0:0:0:0:0:ffff:10.1.2.3/96 ", "1:2:3:4:5:6:7:8x ", "a:b:c:d:e:f ",
                          "10:12:03:04 ", ""}) +
                    pick({"", "", "", label63.c_str(), label64.c_str(), label70.c_str()}) +
                    pick({"sshd[1234]: ", "cron: ", "su[x]: ", "app ", ""}) +
                    pick({"Accepted publickey for ann from 10.20.3.4 port 40003 ssh2", "from 198.51.7.9 port 22",
                          "from ::1 port 2.5e3", "k=v | 1.5", "from 10.1.1.1:8080 to 2001:db8:0:1::7 x", "a:b 1.1.1.1", "", " "});
    l += pick({"", "", "\nsecond line", "\r\n", "\tTAB", " caf\xc3\xa9", " \xff\xfe bad", " port 7"});
    lines.push_back(l);
  }
  size_t matched = 0;
  for (const auto& pattern : patterns) {
    std::string off = pattern;
    const bool anchored = off.back() == '$';
    off.insert(off.size() - (anchored ? 1 : 0), "(?:)");
    for (const char* target : {"", ", \"target\": \"g\""}) {
      auto step = [&](const std::string& p, const std::string& definitions) {
        return compile("[{\"grok\": {\"field\": \"m\", \"patterns\": " + json::serialize(json::value(p)) + target + definitions + "}}]");
      };
      const std::string ipv6 = ", \"pattern_definitions\": {\"IPV6\": " + json::serialize(json::value(grok_library().at("IPV6"))) +
                               ", \"HOSTNAME\": " + json::serialize(json::value(grok_library().at("HOSTNAME"))) + "}";
      auto split = step(pattern, ""), whole = step(off, ipv6);
      for (const auto& line : lines) {
        auto run = [&](const Pipeline& p) {
          Event e;
          e["m"] = json::string(line);  // as is: invalid UTF-8 too
          e["n"] = 1;
          auto out = p.run({e});
          return out.events.empty() ? "failed: " + std::string(out.dead_letters.at(0).at("_error").as_string())
                                    : json::serialize(out.events.at(0));
        };
        const std::string a = run(split), b = run(whole);
        ASSERT_EQ(a, b) << "pattern " << pattern << " on " << json::serialize(json::value(line));
        matched += a.rfind("failed", 0) != 0;
      }
    }
  }
  EXPECT_GT(matched, lines.size() * 6);  // most lines matched some patterns: the fast paths were exercised
}
