// The enrichment steps (geoip, lookup) through Pipeline::compile + run as the piper
// uses them, on files written during the test.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <algorithm>
#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "common/metrics.h"
#include "fixtures/enrich_files.h"
#include "fixtures/net_helpers.h"
#include "piper/transform.h"
#include "unit/piper/compile_error.h"

using namespace bf;
using bf::test::TempDir;
namespace json = boost::json;

namespace {

Pipeline compile(const std::string& steps, const std::string& dataset = "d") {
  auto p = Pipeline::compile(json::parse(steps).as_array(), "dataset a/t/" + dataset);
  p.count_as({{"tenant", "t"}, {"dataset", dataset}});
  return p;
}
Event ev(const std::string& text) { return json::parse(text).as_object(); }
using bf::test::compile_error;
int64_t lookups(const std::string& dataset, const std::string& result) {
  return metrics().sum("bf_piper_enrich_lookups_total", {{"dataset", dataset}, {"result", result}}).value_or(-1);
}
int64_t reloads(const std::string& dataset, const std::string& result) {
  return metrics().sum("bf_piper_enrich_reloads_total", {{"dataset", dataset}, {"result", result}}).value_or(-1);
}
std::string str(const json::value& v) { return json::serialize(v); }
// JSON text of a string, for building step options around temp paths.
std::string q(const std::string& s) { return json::serialize(json::value(s)); }

const char* kCitySpec = R"({"database_type": "GeoLite2-City", "networks": [
  {"network": "81.2.69.0/24", "data": {"continent": {"code": "EU"},
     "country": {"iso_code": "GB", "names": {"en": "United Kingdom", "de": "Vereinigtes Königreich"}},
     "city": {"names": {"en": "London"}}, "postal": {"code": "EC1A"},
     "location": {"latitude": 51.5142, "longitude": -0.0931, "time_zone": "Europe/London", "accuracy_radius": 100},
     "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}], "traits": {"tier": "gold"}}},
  {"network": "2001:db8:1::/48", "data": {"continent": {"code": "EU"}, "country": {"iso_code": "SE", "names": {"en": "Sweden"}}}}]})";
const char* kAsnSpec = R"({"database_type": "GeoLite2-ASN", "networks": [
  {"network": "81.2.64.0/18", "data": {"autonomous_system_number": 20712, "autonomous_system_organization": "Andrews & Arnold Ltd"}}]})";
std::string country_spec(const std::string& code) {
  return R"({"database_type": "GeoLite2-Country", "networks": [{"network": "81.2.69.0/24", "data": {"country": {"iso_code": ")" +
         code + R"("}}}]})";
}

}  // namespace

TEST(GeoIp, CityIpv4AndIpv6MissAndInvalid) {
  TempDir dir;
  bf::test::write_mmdb(dir.file("city.mmdb"), kCitySpec);
  auto p = compile(R"([{"geoip": {"database": )" + q(dir.file("city.mmdb")) + R"(, "field": "client.ip",
                          "fields": ["country_code", "country_name", "city_name", "region_code", "latitude",
                                     "timezone", "accuracy_radius", "network"], "paths": {"tier": "traits.tier"}}}])",
                   "geo1");
  auto out = p.run({ev(R"({"client": {"ip": "81.2.69.160"}})"), ev(R"({"client": {"ip": "2001:db8:1::7"}})"),
                    ev(R"({"client": {"ip": "::ffff:81.2.69.1"}})"), ev(R"({"client": {"ip": "8.8.8.8"}})"),
                    ev(R"({"client": {"ip": "2001:db8:2::1"}})"), ev(R"({"client": {"ip": "not-an-ip"}})"),
                    ev(R"({"client": {"ip": 42}})"), ev(R"({"other": 1})")});
  ASSERT_EQ(out.events.size(), 8u);
  ASSERT_TRUE(out.dead_letters.empty());
  const auto& gb = out.events[0].at("geo").as_object();
  EXPECT_EQ(gb.at("country_code"), "GB");
  EXPECT_EQ(gb.at("country_name"), "United Kingdom");
  EXPECT_EQ(gb.at("city_name"), "London");
  EXPECT_EQ(gb.at("region_code"), "ENG");
  EXPECT_DOUBLE_EQ(gb.at("latitude").as_double(), 51.5142);
  EXPECT_EQ(gb.at("timezone"), "Europe/London");
  EXPECT_EQ(gb.at("accuracy_radius"), 100);
  EXPECT_EQ(gb.at("network"), "81.2.69.0/24");
  EXPECT_EQ(gb.at("tier"), "gold");
  const auto& se = out.events[1].at("geo").as_object();
  EXPECT_EQ(se.at("country_code"), "SE");
  EXPECT_EQ(se.at("network"), "2001:db8:1::/48");
  EXPECT_FALSE(se.contains("city_name"));  // not in that record
  EXPECT_EQ(out.events[2].at("geo").at("country_code"), "GB");  // IPv4-mapped IPv6 is IPv4
  for (size_t i = 3; i < 8; ++i) EXPECT_FALSE(out.events[i].contains("geo")) << str(out.events[i]);
  EXPECT_EQ(lookups("geo1", "hit"), 3);
  EXPECT_EQ(lookups("geo1", "miss"), 2);
  EXPECT_EQ(lookups("geo1", "invalid"), 2);  // the absent field is not a lookup
}

TEST(GeoIp, DefaultFieldsPerDatabaseTypeLanguageAndMergedTarget) {
  TempDir dir;
  bf::test::write_mmdb(dir.file("city.mmdb"), kCitySpec);
  bf::test::write_mmdb(dir.file("asn.mmdb"), kAsnSpec);
  auto e = compile(R"([{"geoip": {"database": )" + q(dir.file("city.mmdb")) + R"(, "field": "ip", "language": "de"}},
                       {"geoip": {"database": )" + q(dir.file("asn.mmdb")) + R"(, "field": "ip"}}])")
               .run({ev(R"({"ip": "81.2.69.160"})")})
               .events.at(0);
  const auto& geo = e.at("geo").as_object();
  EXPECT_EQ(geo.at("country_name"), "Vereinigtes Königreich");
  EXPECT_EQ(geo.at("continent_code"), "EU");
  EXPECT_EQ(geo.at("postal_code"), "EC1A");
  EXPECT_FALSE(geo.contains("city_name"));  // no German name in the record
  EXPECT_EQ(geo.at("asn"), 20712);          // the second database merged into the same target
  EXPECT_EQ(geo.at("as_org"), "Andrews & Arnold Ltd");
  EXPECT_FALSE(geo.contains("network"));    // not a default
}

TEST(GeoIp, OptionsAreCheckedWhenThePipelineCompiles) {
  TempDir dir;
  bf::test::write_mmdb(dir.file("asn.mmdb"), kAsnSpec);
  bf::test::replace_file(dir.file("junk.mmdb"), "not a database");
  auto step = [](const std::string& options) { return "[{\"geoip\": {" + options + "}}]"; };
  EXPECT_NE(compile_error(step(R"("database": "/nonexistent.mmdb", "field": "ip")"))
                .find("dataset a/t/d: pipeline step 1 (geoip): option 'database': /nonexistent.mmdb: No such file"),
            std::string::npos);
  EXPECT_NE(compile_error(step(R"("database": )" + q(dir.file("junk.mmdb")) + R"(, "field": "ip")"))
                .find("option 'database': " + dir.file("junk.mmdb") + ": not an MMDB database"),
            std::string::npos);
  EXPECT_NE(compile_error(step(R"("database": )" + q(dir.file("asn.mmdb")) + R"(, "field": "ip", "fields": ["city_name"])"))
                .find("option 'fields': 'city_name' is not in a ASN database (GeoLite2-ASN)"),
            std::string::npos);
  EXPECT_NE(compile_error(step(R"("database": )" + q(dir.file("asn.mmdb")) + R"(, "field": "ip", "fields": ["town"])"))
                .find("option 'fields': 'town' is not one of continent_code, continent_name"),
            std::string::npos);
  EXPECT_NE(compile_error(step(R"("database": )" + q(dir.file("asn.mmdb")) + R"(, "field": "ip", "databse": 1)"))
                .find("pipeline step 1 (geoip): unknown option 'databse'"),
            std::string::npos);
  EXPECT_NE(compile_error(step(R"("database": )" + q(dir.file("asn.mmdb")))).find("missing option 'field'"), std::string::npos);
}

TEST(GeoIp, ReloadsWhenTheFileChangesAndKeepsTheOldOneOnAFailedReload) {
  TempDir dir;
  const std::string db = dir.file("country.mmdb");
  bf::test::write_mmdb(db, country_spec("GB"));
  auto p = compile(R"([{"geoip": {"database": )" + q(db) + R"(, "field": "ip"}}])", "geo-reload");
  auto country = [&] {
    auto e = p.run({ev(R"({"ip": "81.2.69.5"})")}).events.at(0);
    return std::string(e.at("geo").at("country_code").as_string());
  };
  EXPECT_EQ(country(), "GB");
  bf::test::write_mmdb(db, country_spec("FR"));  // a new file renamed over the old one
  EXPECT_TRUE(bf::test::eventually(std::chrono::seconds(5), [&] { return country() == "FR"; }));
  EXPECT_EQ(reloads("geo-reload", "ok"), 1);
  bf::test::replace_file(db, "garbage, not a database");
  EXPECT_TRUE(bf::test::eventually(std::chrono::seconds(5), [&] { return country() == "FR" && reloads("geo-reload", "failed") == 1; }));
  EXPECT_EQ(country(), "FR");  // the old database stays in use (files are looked at when a batch runs)
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  EXPECT_EQ(country(), "FR");
  EXPECT_EQ(reloads("geo-reload", "failed"), 1);  // a bad file is not retried until it changes again
  bf::test::write_mmdb(db, country_spec("DE"));
  EXPECT_TRUE(bf::test::eventually(std::chrono::seconds(5), [&] { return country() == "DE"; }));
  EXPECT_EQ(reloads("geo-reload", "ok"), 2);
}

TEST(Lookup, ExactMatchWithColumnsTargetAndNumericKeys) {
  TempDir dir;
  bf::test::replace_file(dir.file("users.csv"), "user,team,owner,note\nann,web,\"Smith, A\",x\r\nbob,db,,y\n\n\"multi\nline\",ops,Z,z\n");
  bf::test::replace_file(dir.file("ports.csv"), "port;service\n443;https\n22;ssh\n");
  auto p = compile(R"([{"lookup": {"file": )" + q(dir.file("users.csv")) + R"(, "field": "user", "columns": ["team", "owner"]}},
                       {"lookup": {"file": )" + q(dir.file("ports.csv")) + R"(, "field": "dst.port", "delimiter": ";", "target": "dst"}}])",
                   "lk1");
  auto out = p.run({ev(R"({"user": "ann", "dst": {"port": 443}})"), ev(R"({"user": "bob", "dst": {"port": "22"}})"),
                    ev(R"({"user": "multi\nline"})"), ev(R"({"user": "carol", "dst": {"port": 80}})"), ev(R"({"user": [1]})")});
  ASSERT_EQ(out.events.size(), 5u);
  EXPECT_EQ(out.events[0].at("team"), "web");
  EXPECT_EQ(out.events[0].at("owner"), "Smith, A");
  EXPECT_FALSE(out.events[0].contains("note"));                 // not selected
  EXPECT_EQ(str(out.events[0].at("dst")), R"({"port":443,"service":"https"})");  // merged into the target
  EXPECT_EQ(out.events[1].at("team"), "db");
  EXPECT_FALSE(out.events[1].contains("owner"));                // an empty cell sets nothing
  EXPECT_EQ(out.events[1].at("dst").at("service"), "ssh");
  EXPECT_EQ(out.events[2].at("team"), "ops");                   // a quoted key over two lines
  EXPECT_FALSE(out.events[3].contains("team"));
  EXPECT_FALSE(out.events[3].at("dst").as_object().contains("service"));
  EXPECT_EQ(lookups("lk1", "hit"), 5);
  EXPECT_EQ(lookups("lk1", "miss"), 2);
  EXPECT_EQ(lookups("lk1", "invalid"), 1);
}

TEST(Lookup, CidrMatchTakesTheLongestPrefix) {
  TempDir dir;
  bf::test::replace_file(dir.file("nets.csv"),
                         "zone,network\ncorp,10.0.0.0/8\nlab,10.1.0.0/16\nhost,10.1.2.3\nv6,2001:db8::/32\nv6-lab,2001:db8:ff::/48\n"
                         "internet,0.0.0.0/0\nsloppy,192.168.7.9/24\n");
  auto p = compile(R"([{"lookup": {"file": )" + q(dir.file("nets.csv")) + R"(, "field": "ip", "match": "cidr", "key": "network"}}])", "lk2");
  auto zone = [&](const std::string& ip) {
    auto e = p.run({ev("{\"ip\": " + q(ip) + "}")}).events.at(0);
    return e.contains("zone") ? std::string(e.at("zone").as_string()) : std::string("-");
  };
  EXPECT_EQ(zone("10.1.2.3"), "host");
  EXPECT_EQ(zone("10.1.9.9"), "lab");
  EXPECT_EQ(zone("10.200.0.1"), "corp");
  EXPECT_EQ(zone("8.8.8.8"), "internet");
  EXPECT_EQ(zone("::ffff:10.1.2.3"), "host");
  EXPECT_EQ(zone("2001:db8:ff::1"), "v6-lab");
  EXPECT_EQ(zone("2001:db8:1::1"), "v6");
  EXPECT_EQ(zone("2001:db9::1"), "-");      // no IPv6 default route in the table
  EXPECT_EQ(zone("192.168.7.200"), "sloppy");  // host bits in the table are ignored
  EXPECT_EQ(zone("10.1.2"), "-");
  EXPECT_EQ(lookups("lk2", "invalid"), 1);
  EXPECT_EQ(lookups("lk2", "miss"), 1);
}

TEST(Lookup, BadTablesGiveClearErrorsNamingStepKeyAndLine) {
  TempDir dir;
  auto err = [&](const std::string& csv, const std::string& options) {
    bf::test::replace_file(dir.file("t.csv"), csv);
    return compile_error(R"([{"set": {"field": "x", "value": 1}}, {"lookup": {"file": )" + q(dir.file("t.csv")) +
                         R"(, "field": "k")" + options + "}}]");
  };
  const std::string at = "dataset a/t/d: pipeline step 2 (lookup): option 'file': " + dir.file("t.csv") + ": ";
  EXPECT_NE(err("k,v\na,1\nb\n", "").find(at + "line 3: 1 values for 2 columns"), std::string::npos) << err("k,v\na,1\nb\n", "");
  EXPECT_NE(err("k,v\na,1\na,2\n", "").find(at + "line 3: key 'a' appears twice"), std::string::npos);
  EXPECT_NE(err("k,v\n10.0.0.0/33,1\n", R"(, "match": "cidr")").find(at + "line 2: '10.0.0.0/33' is not a network"),
            std::string::npos);
  EXPECT_NE(err("k,v\na,\"open\n", "").find(at + "line 2: a quote is not closed"), std::string::npos);
  EXPECT_NE(err("k,v\na,1\n", R"(, "columns": ["w"])").find(at + "no column 'w' in the header"), std::string::npos);
  EXPECT_NE(err("", "").find(at + "empty"), std::string::npos);
  EXPECT_NE(err("k,v\na,12345678\n", R"(, "max_bytes": 10)").find(at + "larger than max_bytes (10 bytes)"), std::string::npos);
  EXPECT_NE(err("k,v\n", R"(, "match": "prefix")").find("option 'match': 'prefix' is not one of exact, cidr"), std::string::npos);
  EXPECT_NE(compile_error(R"([{"lookup": {"file": "/nonexistent.csv", "field": "k"}}])")
                .find("pipeline step 1 (lookup): option 'file': /nonexistent.csv: No such file"),
            std::string::npos);
}

TEST(Lookup, ReloadsReplacedAndInPlaceChangesAndKeepsTheOldTableOnErrors) {
  TempDir dir;
  const std::string csv = dir.file("t.csv");
  bf::test::replace_file(csv, "k,v\na,1\n");
  auto p = compile(R"([{"lookup": {"file": )" + q(csv) + R"(, "field": "k"}}])", "lk-reload");
  auto v = [&] {
    auto e = p.run({ev(R"({"k": "a"})")}).events.at(0);
    return e.contains("v") ? std::string(e.at("v").as_string()) : std::string("-");
  };
  EXPECT_EQ(v(), "1");
  bf::test::replace_file(csv, "k,v\na,2\n");
  EXPECT_TRUE(bf::test::eventually(std::chrono::seconds(5), [&] { return v() == "2"; }));
  bf::test::replace_file(csv, "k,v\na,3\na,4\n");  // a duplicate key: refused, the old table stays
  EXPECT_TRUE(bf::test::eventually(std::chrono::seconds(5), [&] { return v() == "2" && reloads("lk-reload", "failed") == 1; }));
  EXPECT_EQ(v(), "2");
  {  // rewritten in place (same inode): loaded once it holds still
    std::ofstream out(csv, std::ios::trunc);
    out << "k,v\na,five\n";
  }
  EXPECT_TRUE(bf::test::eventually(std::chrono::seconds(6), [&] { return v() == "five"; }));
  EXPECT_EQ(reloads("lk-reload", "ok"), 2);
}

TEST(Lookup, BatchedStepsKeepEventOrderAndWorkAfterExplodeAndBeforeDrop) {
  TempDir dir;
  bf::test::replace_file(dir.file("t.csv"), "k,v\na,1\nb,2\nc,3\n");
  auto out = compile(R"([{"explode": {"field": "ks", "target": "k"}},
                         {"lookup": {"file": )" + q(dir.file("t.csv")) + R"(, "field": "k", "if": "k != \"c\""}},
                         {"drop": {"if": "v == \"2\""}},
                         {"coerce": {"field": "v", "type": "int"}}])")
                 .run({ev(R"({"ks": ["a", "b", "c"], "n": 1})"), ev(R"({"ks": ["c", "a"], "n": 2})")});
  ASSERT_EQ(out.events.size(), 4u);
  auto fields = [&](size_t i) {  // n, k, v as one string
    const auto& e = out.events[i];
    return str(e.at("n")) + str(e.at("k")) + (e.contains("v") ? str(e.at("v")) : "-");
  };
  EXPECT_EQ(fields(0), "1\"a\"1");
  EXPECT_EQ(fields(1), "1\"c\"-");  // not selected by the if:
  EXPECT_EQ(fields(2), "2\"c\"-");
  EXPECT_EQ(fields(3), "2\"a\"1");
  EXPECT_EQ(out.dropped, 1u);
  EXPECT_EQ(out.dropped_by_step.at(2), 1u);
}

namespace {
int64_t queries(const std::string& dataset) {
  return metrics().sum("bf_piper_rdns_queries_total", {{"dataset", dataset}}).value_or(-1);
}
std::string host_of(const Event& e) { return e.contains("host") ? std::string(e.at("host").as_string()) : "-"; }
}  // namespace

TEST(Rdns, NamesFromARealDnsServerWithCacheAndNegativeAnswers) {
  TempDir dir;
  bf::test::Dnsmasq dns(dir, "10.1.2.3 web1.test\n10.1.2.4 db1.test\n2001:db8::5 v6host.test\n");
  auto p = compile(R"([{"rdns": {"field": "ip", "target": "host", "server": ")" + dns.address() + R"(", "timeout_ms": 2000}}])",
                   "rdns1");
  auto out = p.run({ev(R"({"ip": "10.1.2.3"})"), ev(R"({"ip": "2001:db8::5"})"), ev(R"({"ip": "10.9.9.9"})"),
                    ev(R"({"ip": "10.1.2.3"})"), ev(R"({"ip": "::ffff:10.1.2.4"})"), ev(R"({"ip": "web1"})"), ev(R"({})")});
  ASSERT_EQ(out.events.size(), 7u);
  EXPECT_EQ(host_of(out.events[0]), "web1.test");
  EXPECT_EQ(host_of(out.events[1]), "v6host.test");
  EXPECT_EQ(host_of(out.events[2]), "-");  // NXDOMAIN
  EXPECT_EQ(host_of(out.events[3]), "web1.test");
  EXPECT_EQ(host_of(out.events[4]), "db1.test");
  EXPECT_EQ(host_of(out.events[5]), "-");
  EXPECT_EQ(queries("rdns1"), 4);  // one per distinct address
  EXPECT_EQ(lookups("rdns1", "hit"), 4);
  EXPECT_EQ(lookups("rdns1", "miss"), 1);
  EXPECT_EQ(lookups("rdns1", "invalid"), 1);
  // The next batch is answered from the cache, names and "no name" alike.
  auto again = p.run({ev(R"({"ip": "10.1.2.3"})"), ev(R"({"ip": "10.9.9.9"})")});
  EXPECT_EQ(host_of(again.events.at(0)), "web1.test");
  EXPECT_EQ(host_of(again.events.at(1)), "-");
  EXPECT_EQ(queries("rdns1"), 4);
  EXPECT_EQ(lookups("rdns1", "miss"), 2);
}

TEST(Rdns, CacheIsBoundedAndEntriesExpire) {
  TempDir dir;
  bf::test::Dnsmasq dns(dir, "10.1.2.1 a.test\n10.1.2.2 b.test\n10.1.2.3 c.test\n");
  auto p = compile(R"([{"rdns": {"field": "ip", "target": "host", "server": ")" + dns.address() +
                       R"(", "cache_size": 2, "ttl_s": 1, "timeout_ms": 2000}}])",
                   "rdns2");
  auto run = [&](const std::string& ip) { return host_of(p.run({ev("{\"ip\": \"" + ip + "\"}")}).events.at(0)); };
  EXPECT_EQ(run("10.1.2.1"), "a.test");
  EXPECT_EQ(run("10.1.2.2"), "b.test");
  EXPECT_EQ(run("10.1.2.1"), "a.test");  // cached
  EXPECT_EQ(queries("rdns2"), 2);
  EXPECT_EQ(run("10.1.2.3"), "c.test");  // evicts the least recently used: 10.1.2.2
  EXPECT_EQ(run("10.1.2.1"), "a.test");
  EXPECT_EQ(queries("rdns2"), 3);
  EXPECT_EQ(run("10.1.2.2"), "b.test");
  EXPECT_EQ(queries("rdns2"), 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past ttl_s
  EXPECT_EQ(run("10.1.2.2"), "b.test");
  EXPECT_EQ(queries("rdns2"), 5);
}

TEST(Rdns, ASilentServerCostsATimeoutOrTheBudgetAndLeavesTheFieldUnset) {
  bf::test::SilentUdpServer silent;
  auto timeouts = compile(R"([{"rdns": {"field": "ip", "target": "host", "server": ")" + silent.address() +
                              R"(", "timeout_ms": 50, "budget_ms": 5000}}])",
                          "rdns3");
  auto out = timeouts.run({ev(R"({"ip": "10.0.0.1"})"), ev(R"({"ip": "10.0.0.2"})")});
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_FALSE(out.events[0].contains("host"));
  EXPECT_EQ(lookups("rdns3", "timeout"), 2);
  timeouts.run({ev(R"({"ip": "10.0.0.1"})")});  // a timeout is cached like "no name"
  EXPECT_EQ(queries("rdns3"), 2);

  std::vector<Event> many;
  for (int i = 0; i < 300; ++i) many.push_back(ev("{\"ip\": \"10.7." + std::to_string(i / 250) + "." + std::to_string(i % 250) + "\"}"));
  auto budget = compile(R"([{"rdns": {"field": "ip", "target": "host", "server": ")" + silent.address() +
                            R"(", "timeout_ms": 30000, "budget_ms": 100, "max_in_flight": 16}}])",
                        "rdns4");
  auto cut = budget.run(many);
  ASSERT_EQ(cut.events.size(), 300u);  // nothing lost, nothing failed
  for (const auto& e : cut.events) EXPECT_FALSE(e.contains("host"));
  EXPECT_EQ(lookups("rdns4", "over_budget"), 300);
  budget.run({ev(R"({"ip": "10.7.0.1"})")});  // not cached: asked again
  EXPECT_EQ(queries("rdns4"), 301);
}

TEST(Rdns, OptionsAreChecked) {
  EXPECT_NE(compile_error(R"([{"rdns": {"field": "ip", "target": "h", "server": "dns.example:53"}}])")
                .find("pipeline step 1 (rdns): option 'server': 'dns.example:53' is not an address[:port]"),
            std::string::npos);
  EXPECT_NE(compile_error(R"([{"rdns": {"field": "ip", "target": "h", "server": "127.0.0.1", "cache_size": 0}}])")
                .find("option 'cache_size': must be between 1 and"),
            std::string::npos);
  EXPECT_NE(compile_error(R"([{"rdns": {"field": "ip", "server": "127.0.0.1"}}])").find("missing option 'target'"),
            std::string::npos);
  EXPECT_NE(compile_error(R"([{"rdns": {"field": "ip", "target": "h", "server": "[::1]:70000"}}])").find("option 'server'"),
            std::string::npos);
}

TEST(Rdns, MalformedAnswersAreMissesNotCrashes) {
  // A server answering every query with a broken PTR record: the name in the answer
  // points at itself (a compression loop) for one address, runs past the end of the
  // message for the other, and a stray datagram with another id comes first.
  bf::test::SilentUdpServer socket;
  std::thread server([fd = socket.fd()] {
    for (int n = 0; n < 2; ++n) {
      uint8_t q[512];
      sockaddr_in from{};
      socklen_t flen = sizeof from;
      ssize_t got = ::recvfrom(fd, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (got < 12) return;
      std::string reply(reinterpret_cast<char*>(q), static_cast<size_t>(got));
      std::string stray = reply;
      stray[0] = static_cast<char>(stray[0] ^ 0x55);
      ::sendto(fd, stray.data(), stray.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
      reply[2] = static_cast<char>(0x81);  // a response, recursion desired
      reply[3] = static_cast<char>(0x80);
      reply[7] = 1;  // one answer
      const bool loop = reply.find("\x01" "1\x01" "0") != std::string::npos;  // 10.0.0.1 → loop
      const size_t rdata = reply.size() + 12;
      reply += std::string("\xC0\x0C\x00\x0C\x00\x01\x00\x00\x00\x3C\x00\x02", 12);
      if (loop) {
        reply += static_cast<char>(0xC0 | (rdata >> 8));
        reply += static_cast<char>(rdata & 0xFF);
      } else {
        reply += std::string("\x3F" "ab", 3);  // a 63-byte label with 2 bytes left
      }
      ::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  });
  auto p = compile(R"([{"rdns": {"field": "ip", "target": "host", "server": ")" + socket.address() +
                       R"(", "timeout_ms": 2000, "max_in_flight": 1}}])",
                   "rdns5");
  auto out = p.run({ev(R"({"ip": "10.0.0.1"})"), ev(R"({"ip": "10.0.0.2"})")});
  server.join();
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_FALSE(out.events[0].contains("host"));
  EXPECT_FALSE(out.events[1].contains("host"));
  EXPECT_EQ(lookups("rdns5", "miss"), 2);
  EXPECT_EQ(lookups("rdns5", "timeout"), 0);
}

namespace {
struct Quiet final : StepObserver {  // a run with an observer goes over the batch unsliced
  void step(size_t, const Event&, StepResult, const Event*, size_t, const std::string&) override {}
};
std::string lines(std::vector<Event> events, bool sorted) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(str(e));
  if (sorted) std::sort(out.begin(), out.end());
  std::string all;
  for (const auto& l : out) all += l + "\n";
  return all;
}
}  // namespace

// A run of steps whose batched steps are sliceable (geoip, lookup) goes over a large
// batch a slice at a time (Pipeline::run_all). It must make what the plain run makes:
// the same events in the same order, the same dead letters and drops, with explode
// making events inside a slice, a step failing some events and if: on a batched step.
TEST(Pipeline, SlicedRunsGiveWhatTheWholeBatchGives) {
  TempDir dir;
  bf::test::write_mmdb(dir.file("city.mmdb"), kCitySpec);
  bf::test::replace_file(dir.file("t.csv"), "k,v,w\na,1,x\nb,2,\nc,3,z\n");
  auto p = compile(R"([{"explode": {"field": "ks", "target": "k"}},
                       {"geoip": {"database": )" + q(dir.file("city.mmdb")) + R"(, "field": "ip", "if": "n % 7 != 0"}},
                       {"coerce": {"field": "num", "type": "int"}},
                       {"lookup": {"file": )" + q(dir.file("t.csv")) + R"(, "field": "k", "target": "row"}},
                       {"drop": {"if": "n % 11 == 0"}},
                       {"lookup": {"file": )" + q(dir.file("t.csv")) + R"(, "field": "k", "if": "k != \"b\""}},
                       {"remove": {"field": "ks"}}])",
                   "sliced");
  std::vector<Event> events;
  for (int n = 0; n < 1500; ++n) {
    json::array ks;
    for (int j = 0; j <= n % 3; ++j) ks.emplace_back(std::string(1, static_cast<char>('a' + (n + j) % 4)));
    events.push_back(Event{{"n", n},
                           {"ks", ks},
                           {"ip", n % 5 == 0 ? "8.8.8.8" : n % 5 == 1 ? "not an ip" : "81.2.69." + std::to_string(n % 250)},
                           {"num", n % 13 == 0 ? json::value("twelve") : json::value(std::to_string(n))}});
  }
  Quiet quiet;
  auto whole = p.run(events, quiet);
  auto sliced = p.run(events);
  ASSERT_GT(whole.events.size(), 2000u);  // explode made more events than came in
  EXPECT_EQ(lines(sliced.events, false), lines(whole.events, false));
  // Dead letters of different steps come in another order (slice by slice), each the same.
  ASSERT_GT(whole.dead_letters.size(), 100u);
  EXPECT_EQ(lines(sliced.dead_letters, true), lines(whole.dead_letters, true));
  EXPECT_GT(whole.dropped, 100u);
  EXPECT_EQ(sliced.dropped, whole.dropped);
  EXPECT_EQ(sliced.dropped_by_step, whole.dropped_by_step);
  size_t located = 0, looked_up = 0;
  for (const auto& e : sliced.events) {
    located += e.contains("geo") && e.at("geo").at("country_code") == "GB";
    looked_up += e.contains("row") && e.contains("v");
  }
  EXPECT_GT(located, 1000u);
  EXPECT_GT(looked_up, 1000u);
}

// The slices of one batch use one version of each file (docs/pipelines.md): a reload
// that falls due while a batch runs waits for the next batch, though the batch's
// geoip records are shared across its slices.
TEST(Pipeline, SlicesOfABatchShareOneVersionOfEachFile) {
  TempDir dir;
  const std::string db = dir.file("c.mmdb"), csv = dir.file("t.csv");
  bf::test::write_mmdb(db, country_spec("DE"));
  bf::test::replace_file(csv, "k,v\na,0\n");
  auto p = compile(R"([{"geoip": {"database": )" + q(db) + R"(, "field": "ip"}},
                       {"lookup": {"file": )" + q(csv) + R"(, "field": "k"}}])",
                   "sliced-reload");
  std::vector<Event> events;
  for (int n = 0; n < 4000; ++n) events.push_back(Event{{"ip", "81.2.69." + std::to_string(n % 3)}, {"k", "a"}});
  // Files rewritten all the time, while batches run back to back: a reload falls due
  // (at most once a second) inside some batch far more often than between two.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 1; !stop; ++i) {
      bf::test::write_mmdb(db, country_spec(i % 2 ? "FR" : "DE"));
      bf::test::replace_file(csv, "k,v\na," + std::to_string(i) + "\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::set<std::string> versions;
  int batches = 0;
  const bool reloaded = bf::test::eventually(std::chrono::seconds(20), [&] {
    auto out = p.run(events);
    ++batches;
    EXPECT_EQ(out.events.size(), events.size());
    std::set<std::string> seen;
    for (const auto& e : out.events) seen.insert(str(e.at("geo").at("country_code")) + str(e.at("v")));
    EXPECT_EQ(seen.size(), 1u) << "batch " << batches << " saw " << seen.size() << " versions";
    versions.insert(seen.begin(), seen.end());
    return reloads("sliced-reload", "ok") >= 4;
  }, std::chrono::milliseconds(0));
  stop = true;
  writer.join();
  EXPECT_TRUE(reloaded);
  EXPECT_GE(versions.size(), 3u);
}

// Compiled without files (the control plane), geoip and lookup fail every event of a
// sliced run too, saying why, and the events are all there, in order, as dead letters.
TEST(Pipeline, SlicedRunWithoutFilesFailsEveryEventSayingWhy) {
  PipelineContext validate{"d", {}};
  validate.open_files = false;
  auto p = Pipeline::compile(json::parse(R"([{"set": {"field": "seen", "value": true}},
                                             {"geoip": {"database": "/nowhere/city.mmdb", "field": "ip", "fields": ["country_code"], "if": "n % 2 == 0"}},
                                             {"lookup": {"file": "/nowhere/t.csv", "field": "ip"}}])")
                                 .as_array(),
                             "dataset a/t/nofiles", &validate);
  std::vector<Event> events;
  for (int n = 0; n < 300; ++n) events.push_back(Event{{"n", n}, {"ip", "81.2.69.1"}});
  auto out = p.run(events);
  EXPECT_TRUE(out.events.empty());
  ASSERT_EQ(out.dead_letters.size(), 300u);
  size_t at_geoip = 0;
  for (const auto& e : out.dead_letters) {
    const std::string error(e.at("_error").as_string());
    EXPECT_NE(error.find(kFileNotOpenedHere), std::string::npos) << error;
    at_geoip += error.rfind("step 2 (geoip)", 0) == 0;
    EXPECT_EQ(e.at("seen"), true);
  }
  EXPECT_EQ(at_geoip, 150u);  // the odd ones skip geoip and fail at lookup
}
