// POST /api/v1/query formats (json, ndjson, csv) and their limit reporting, the
// from/to time range and its partition pruning, the engine pool (max_engines,
// idle timeout, in-use engines kept) and the streaming path.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/ulid.h"
#include "fixtures/component_contract.h"
#include "fixtures/lake.h"
#include "net/http_client.h"
#include "query/query_service.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

using namespace bf;
namespace fs = std::filesystem;

namespace {

const std::string kWebKey = "query-api-test-web-key-0123456789";

class QueryApiTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-query-api-" + new_ulid());
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(dir);
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  DatasetRef web{"acme", "web", "logs"};
  DatasetRef timed{"acme", "web", "timed"};
  std::vector<std::string> tenants{"web", "db", "ops", "sec"};

  void SetUp() override {
    for (const auto& t : tenants) catalog->add_dataset(DatasetInfo{DatasetRef{"acme", t, "logs"}, {}});
    catalog->add_dataset(DatasetInfo{timed, {}});
    catalog->add_query_key(kWebKey, KeyGrant{"acme", "web"});
    for (const auto& t : tenants)
      test::write_part(store, DatasetRef{"acme", t, "logs"},
                       "SELECT range AS n, '" + t + "' AS label FROM range(25)", 25);
    // Three hours of `timed`, two rows each (at :10 and :50).
    for (int h = 0; h < 3; ++h) {
      const std::string hh = "0" + std::to_string(h);
      test::write_part(store, timed,
                       "SELECT TIMESTAMP '2026-01-01 " + hh + ":10:00' AS _time, 'h" + hh +
                           "a' AS label UNION ALL SELECT TIMESTAMP '2026-01-01 " + hh + ":50:00', 'h" + hh + "b'",
                       2, true, "year=2026/month=01/day=01/hour=" + hh);
    }
  }
  void TearDown() override { fs::remove_all(dir); }

  QueryOptions options(const std::string& tmp = "query-tmp") {
    QueryOptions o;
    o.http.listen = "127.0.0.1:0";
    o.max_rows = 10;
    o.temp_dir = (dir / tmp).string();
    return o;
  }
  fs::path engine_dir(const QueryOptions& o, const std::string& tenant) {
    return fs::path(o.temp_dir) / ("tenant-acme." + tenant);
  }
  static std::string sorted_labels(const QueryOutcome& out) {
    std::vector<std::string> labels;
    for (const auto& row : out.result.rows) labels.push_back(row.at(0).value_or("NULL"));
    std::sort(labels.begin(), labels.end());
    std::string s;
    for (const auto& l : labels) s += (s.empty() ? "" : ",") + l;
    return s;
  }
  static QueryRequest ranged(const std::string& sql, std::optional<std::string> from, std::optional<std::string> to) {
    QueryRequest r;
    r.dataset = "web/timed";
    r.sql = sql;
    if (from) r.from_us = *parse_rfc3339(*from);
    if (to) r.to_us = *parse_rfc3339(*to);
    return r;
  }
};

// --- formats -----------------------------------------------------------------

class QueryApiHttpTest : public QueryApiTest {
 protected:
  std::unique_ptr<QueryService> service;
  std::string url;
  HttpClient http;
  void SetUp() override {
    QueryApiTest::SetUp();
    service = std::make_unique<QueryService>(options(), catalog, store);
    service->start();
    url = "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/query";
  }
  void TearDown() override {
    service.reset();
    QueryApiTest::TearDown();
  }
  HttpResult post(boost::json::object body) {
    if (!body.contains("dataset")) body["dataset"] = "web/logs";
    return http.send("POST", url, {{"Authorization", "Bearer " + kWebKey}}, boost::json::serialize(body));
  }
  static std::vector<std::string> lines(const std::string& body, const std::string& sep = "\n") {
    std::vector<std::string> out;
    size_t at = 0;
    while (at < body.size()) {
      size_t end = body.find(sep, at);
      if (end == std::string::npos) end = body.size();
      out.push_back(body.substr(at, end - at));
      at = end + sep.size();
    }
    return out;
  }
};

TEST_F(QueryApiHttpTest, JsonIsTheDefaultAndReportsTheCut) {
  auto r = post({{"sql", "SELECT n FROM events ORDER BY n"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  auto doc = boost::json::parse(r.body).as_object();
  EXPECT_EQ(doc.at("rows").as_array().size(), 10u);
  EXPECT_EQ(doc.at("row_count").as_int64(), 10);
  EXPECT_TRUE(doc.at("truncated").as_bool());
  EXPECT_EQ(doc.at("truncated_reason").as_string(), "max_rows");
  EXPECT_EQ(r.headers["X-Result-Truncated"], "true");

  auto whole = post({{"sql", "SELECT n FROM events ORDER BY n LIMIT 10"}, {"format", "json"}});
  ASSERT_EQ(whole.status, 200) << whole.body;
  auto d2 = boost::json::parse(whole.body).as_object();
  EXPECT_FALSE(d2.at("truncated").as_bool());
  EXPECT_TRUE(d2.at("truncated_reason").is_null());
  EXPECT_EQ(d2.at("rows").at(9).at("n").to_number<int64_t>(), 9);
}

// The component contract (docs/metrics.md): a query in, its rows and rendered bytes
// out, a refused or failed query an error by stage.
// A catalog from control replaces the one the service started with, while it runs:
// a new key and a new dataset answer at once, a removed key is refused, on the
// query API and on the MCP endpoint alike.
TEST_F(QueryApiHttpTest, ACatalogChangeAppliesWithoutRestart) {
  const std::string new_key = "query-api-test-new-key-0123456789";
  DatasetRef fresh{"acme", "web", "fresh"};
  test::write_part(store, fresh, "SELECT 7 AS n", 1);
  auto query_as = [&](const std::string& key, const std::string& dataset) {
    return http.send("POST", url, {{"Authorization", "Bearer " + key}},
                     R"({"dataset":")" + dataset + R"(","sql":"SELECT count(*) AS c FROM events"})");
  };
  const std::string mcp_url = "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/mcp";
  auto mcp_list = [&](const std::string& key) {
    return http.send("POST", mcp_url,
                     {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"},
                      {"Accept", "application/json, text/event-stream"}, {"MCP-Protocol-Version", "2025-06-18"}},
                     R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_datasets","arguments":{}}})");
  };
  EXPECT_EQ(query_as(kWebKey, "web/fresh").status, 404);
  EXPECT_EQ(query_as(new_key, "web/logs").status, 401);
  EXPECT_EQ(mcp_list(new_key).status, 401);

  auto next = std::make_shared<Catalog>();
  next->add_dataset(DatasetInfo{web, {}});
  next->add_dataset(DatasetInfo{fresh, {}});
  next->add_query_key(new_key, KeyGrant{"acme", "web"});
  service->set_catalog(next);

  HttpResult r = query_as(new_key, "web/fresh");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(boost::json::parse(r.body).at("rows").at(0).at("c").to_number<int64_t>(), 1);
  EXPECT_EQ(query_as(new_key, "web/logs").status, 200);
  EXPECT_EQ(query_as(kWebKey, "web/logs").status, 401);  // the old key is gone
  EXPECT_EQ(query_as(new_key, "web/timed").status, 404);  // and so is the dataset not in the new catalog
  HttpResult listed = mcp_list(new_key);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_NE(listed.body.find("fresh"), std::string::npos) << listed.body;
  EXPECT_EQ(listed.body.find("timed"), std::string::npos) << listed.body;
  EXPECT_EQ(mcp_list(kWebKey).status, 401);
}

TEST_F(QueryApiHttpTest, ContractCountsQueriesInRowsOutAndRefusalsAsErrors) {
  const auto before = test::ContractCounts::of("sink", "query", "query");
  auto errors = [](const Labels& which) { return test::contract_count("errors", "sink", "query", "query", which); };
  const int64_t guard0 = errors({{"stage", "guard"}}), failed0 = errors({{"stage", "execute"}, {"error_type", "failed"}});
  const std::string ok = "SELECT n FROM events ORDER BY n LIMIT 5";
  const std::string refused = "SELECT * FROM read_csv('/etc/passwd')";
  const std::string failing = "SELECT no_such_column FROM events";
  auto r = post({{"sql", ok}, {"format", "ndjson"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(post({{"sql", refused}}).status, 400);
  EXPECT_EQ(post({{"sql", failing}}).status, 400);
  const auto c = test::ContractCounts::of("sink", "query", "query") - before;
  EXPECT_EQ(c.received_events, 3);
  EXPECT_EQ(c.received_bytes, int64_t(ok.size() + refused.size() + failing.size()));
  EXPECT_EQ(c.sent_events, 5);
  EXPECT_EQ(c.sent_bytes, int64_t(r.body.find("{\"_meta\"")));  // the five rendered rows
  EXPECT_EQ(c.errors, 2);
  EXPECT_EQ(errors({{"stage", "guard"}}) - guard0, 1);
  EXPECT_EQ(errors({{"stage", "execute"}, {"error_type", "failed"}}) - failed0, 1);
  EXPECT_EQ(c.intentional + c.unintentional, 0);
  test::expect_component_contract("sink", "query", {.errors = true});
}

TEST_F(QueryApiHttpTest, NdjsonIsOneObjectPerRowThenMeta) {
  auto r = post({{"sql", "SELECT n, label FROM events ORDER BY n"}, {"format", "ndjson"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["Content-Type"], "application/x-ndjson");
  ASSERT_EQ(r.body.back(), '\n');
  auto ls = lines(r.body);
  ASSERT_EQ(ls.size(), 11u) << r.body;  // 10 rows + _meta
  for (size_t i = 0; i < 10; ++i) {
    auto row = boost::json::parse(ls[i]).as_object();
    EXPECT_EQ(row.at("n").to_number<int64_t>(), static_cast<int64_t>(i));
    EXPECT_EQ(row.at("label").as_string(), "web");
  }
  auto meta = boost::json::parse(ls[10]).as_object().at("_meta").as_object();
  EXPECT_EQ(meta.at("row_count").as_int64(), 10);
  EXPECT_TRUE(meta.at("truncated").as_bool());
  EXPECT_EQ(meta.at("truncated_reason").as_string(), "max_rows");
  EXPECT_TRUE(meta.contains("elapsed_ms"));

  auto small = post({{"sql", "SELECT n FROM events ORDER BY n LIMIT 3"}, {"format", "ndjson"}});
  ASSERT_EQ(small.status, 200);
  auto sl = lines(small.body);
  ASSERT_EQ(sl.size(), 4u) << small.body;
  auto m2 = boost::json::parse(sl[3]).as_object().at("_meta").as_object();
  EXPECT_FALSE(m2.at("truncated").as_bool());
  EXPECT_TRUE(m2.at("truncated_reason").is_null());
  EXPECT_EQ(m2.at("row_count").as_int64(), 3);
}

TEST_F(QueryApiHttpTest, CsvIsRfc4180WithLimitsInHeaders) {
  auto r = post({{"sql", "SELECT n, label FROM events ORDER BY n"}, {"format", "csv"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["Content-Type"].rfind("text/csv", 0), 0u) << r.headers["Content-Type"];
  EXPECT_EQ(r.headers["X-Result-Truncated"], "true");
  EXPECT_EQ(r.headers["X-Truncated-Reason"], "max_rows");
  EXPECT_EQ(r.headers["X-Row-Count"], "10");
  auto ls = lines(r.body, "\r\n");
  ASSERT_EQ(ls.size(), 11u) << r.body;  // header + 10 rows
  EXPECT_EQ(ls[0], "n,label");
  EXPECT_EQ(ls[1], "0,web");
  EXPECT_EQ(ls[10], "9,web");

  // Quoting: separators, quotes and line breaks quoted; NULL empty, '' quoted.
  auto q = post({{"sql",
                  "SELECT 'a,b' AS \"x,y\", 'say \"hi\"' AS q, NULL AS z, '' AS e, 'l1' || chr(10) || 'l2' AS nl, "
                  "TIMESTAMP '2026-01-02 03:04:05' AS t, true AS b"},
                 {"format", "csv"}});
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_EQ(q.body,
            "\"x,y\",q,z,e,nl,t,b\r\n"
            "\"a,b\",\"say \"\"hi\"\"\",,\"\",\"l1\nl2\",2026-01-02T03:04:05Z,true\r\n");
  EXPECT_EQ(q.headers["X-Result-Truncated"], "false");
  EXPECT_EQ(q.headers.count("X-Truncated-Reason"), 0u);
  EXPECT_EQ(q.headers["X-Row-Count"], "1");
}

TEST_F(QueryApiHttpTest, ByteLimitRefusesEveryFormat) {
  QueryOptions o = options("query-tmp-small");
  o.max_rows = 100000;
  o.max_response_bytes = 2000;
  service = std::make_unique<QueryService>(o, catalog, store);
  service->start();
  url = "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/query";
  for (const char* format : {"json", "ndjson", "csv"}) {
    auto r = post({{"sql", "SELECT range AS n, 'some text to fill the body' AS t FROM range(1000)"}, {"format", format}});
    EXPECT_EQ(r.status, 413) << format << ": " << r.body.substr(0, 200);
    EXPECT_NE(r.body.find("query.max_response_bytes"), std::string::npos) << r.body;
    auto ok = post({{"sql", "SELECT range AS n FROM range(5)"}, {"format", format}});
    EXPECT_EQ(ok.status, 200) << format << ": " << ok.body;
  }
}

TEST_F(QueryApiHttpTest, BadFormatAndTimesAre400) {
  auto bad = post({{"sql", "SELECT 1"}, {"format", "xml"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("'format'"), std::string::npos) << bad.body;
  auto bad_from = post({{"sql", "SELECT 1"}, {"from", "yesterday"}});
  EXPECT_EQ(bad_from.status, 400);
  EXPECT_NE(bad_from.body.find("'from'"), std::string::npos) << bad_from.body;
  EXPECT_EQ(post({{"sql", "SELECT 1"}, {"to", "2026-01-01T00:00:00"}}).status, 400);  // no zone
  auto reversed = post({{"sql", "SELECT 1"}, {"from", "2026-01-02T00:00:00Z"}, {"to", "2026-01-01T00:00:00Z"}});
  EXPECT_EQ(reversed.status, 400);
  EXPECT_NE(reversed.body.find("before"), std::string::npos) << reversed.body;
}

TEST_F(QueryApiHttpTest, FromToOverHttp) {
  auto r = post({{"dataset", "web/timed"},
                 {"sql", "SELECT label FROM events ORDER BY label"},
                 {"format", "csv"},
                 {"from", "2026-01-01T01:30:00Z"},
                 {"to", "2026-01-01T02:30:00+00:00"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "label\r\nh01b\r\nh02a\r\n");
}

// --- time range ----------------------------------------------------------------

// GET /api/v1/datasets/{dataset}/parts: the committed parts of a dataset of the
// key's tenant, with rows, bytes and hour; scoped and authenticated as the schema.
TEST_F(QueryApiHttpTest, PartsListsTheCommittedPartsOfTheKeysTenantOnly) {
  const std::string base = "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/datasets/";
  const Headers auth{{"Authorization", "Bearer " + kWebKey}};
  // Neither an uncommitted part (a killed packer run) nor another tenant's dataset shows.
  const std::string orphan = test::write_part(store, timed, "SELECT 1 AS n", 1, false, "year=2026/month=01/day=01/hour=05");
  catalog->add_dataset(DatasetInfo{DatasetRef{"acme", "db", "secret"}, {}});
  test::write_part(store, DatasetRef{"acme", "db", "secret"}, "SELECT 1 AS n", 1);
  catalog->add_dataset(DatasetInfo{DatasetRef{"acme", "web", "empty"}, {}});

  auto r = http.send("GET", base + "timed/parts", auth, "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  auto doc = boost::json::parse(r.body).as_object();
  EXPECT_EQ(doc.at("dataset").as_string(), "acme/web/timed");
  const auto& parts = doc.at("parts").as_array();
  ASSERT_EQ(parts.size(), 3u) << r.body;
  EXPECT_EQ(doc.at("part_count").as_int64(), 3);
  EXPECT_EQ(doc.at("rows").as_int64(), 6);
  uint64_t bytes = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i].as_object();
    const std::string key(p.at("key").as_string());
    EXPECT_NE(key, orphan);
    EXPECT_EQ(key.rfind(parquet_prefix(timed) + "year=2026/month=01/day=01/hour=0" + std::to_string(i) + "/part-", 0), 0u) << key;
    EXPECT_EQ(p.at("rows").as_int64(), 2);
    EXPECT_EQ(p.at("hour").as_string(), "2026-01-01T0" + std::to_string(i) + ":00:00.000000Z");
    EXPECT_FALSE(p.at("quarantine").as_bool());
    auto head = store->head(key);
    ASSERT_TRUE(head);
    EXPECT_GT(head->size, 0u);
    EXPECT_EQ(p.at("bytes").to_number<uint64_t>(), head->size);
    bytes += head->size;
  }
  EXPECT_EQ(doc.at("bytes").to_number<uint64_t>(), bytes);

  // A quarantine part (events with absurd times) has no hour.
  const std::string quarantined = test::write_part(store, web, "SELECT 7 AS n", 1, true, "_quarantine");
  r = http.send("GET", base + "logs/parts", auth, "");
  ASSERT_EQ(r.status, 200) << r.body;
  size_t seen = 0;
  const auto logs = boost::json::parse(r.body);
  for (const auto& v : logs.at("parts").as_array()) {
    const bool q = v.at("key").as_string() == quarantined;
    seen += q;
    EXPECT_EQ(v.at("quarantine").as_bool(), q);
    EXPECT_EQ(v.at("hour").is_null(), q);
  }
  EXPECT_EQ(seen, 1u) << r.body;
  r = http.send("GET", base + "empty/parts", auth, "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(boost::json::parse(r.body).at("part_count").as_int64(), 0);
  r = http.send("GET", base + "secret/parts", auth, "");  // a dataset of tenant db
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(r.body.find("secret/part"), std::string::npos);
  EXPECT_EQ(http.send("GET", base + "nope/parts", auth, "").status, 404);
  EXPECT_EQ(http.send("GET", base + "timed/parts", {{"Authorization", "Bearer wrong-key-wrong-key-0123"}}, "").status, 401);
  EXPECT_EQ(http.send("GET", base + "timed/parts", {}, "").status, 401);
  // A browser page on a loopback origin may read it (CORS, as the schema).
  r = http.send("GET", base + "timed/parts", {{"Authorization", "Bearer " + kWebKey}, {"Origin", "http://127.0.0.1:8090"}}, "");
  EXPECT_EQ(r.headers["Access-Control-Allow-Origin"], "http://127.0.0.1:8090");
  EXPECT_EQ(http.send("OPTIONS", base + "timed/parts", {{"Origin", "http://127.0.0.1:8090"}}, "").status, 204);
  // The list is bounded like a result.
  QueryOptions small = options("small-tmp");
  small.max_response_bytes = 300;
  QueryService bounded(small, catalog, store);
  try {
    bounded.parts("acme/web/timed");
    ADD_FAILURE() << "a part list over max_response_bytes was answered";
  } catch (const QueryError& e) {
    EXPECT_EQ(e.status, 413);
    EXPECT_NE(std::string(e.what()).find("query.max_response_bytes"), std::string::npos) << e.what();
  }
}

TEST_F(QueryApiTest, FromToFiltersOnTimeWithHalfOpenBounds) {
  QueryService service(options(), catalog, store);
  auto all = service.run(ranged("SELECT label FROM events", std::nullopt, std::nullopt));
  EXPECT_EQ(sorted_labels(all), "h00a,h00b,h01a,h01b,h02a,h02b");
  // [01:10, 02:10): 01:10 is in, 02:10 is out.
  auto mid = service.run(ranged("SELECT label FROM events", "2026-01-01T01:10:00Z", "2026-01-01T02:10:00Z"));
  EXPECT_EQ(sorted_labels(mid), "h01a,h01b");
  // Open-ended either side; the dataset's own view name sees the same range.
  EXPECT_EQ(sorted_labels(service.run(ranged("SELECT label FROM timed", "2026-01-01T02:00:00Z", std::nullopt))),
            "h02a,h02b");
  EXPECT_EQ(sorted_labels(service.run(ranged("SELECT label FROM events", std::nullopt, "2026-01-01T00:50:00Z"))),
            "h00a");
  // An offset is honoured: 03:30+02:00 is 01:30Z.
  EXPECT_EQ(sorted_labels(service.run(ranged("SELECT label FROM events", "2026-01-01T03:30:00+02:00",
                                             "2026-01-01T02:00:00Z"))),
            "h01b");
}

TEST_F(QueryApiTest, PartsOutsideTheRangeAreNotRead) {
  // A committed object in hour 05 that is not Parquet: reading it fails.
  const std::string bad = parquet_prefix(timed) + "year=2026/month=01/day=01/hour=05/part-" + new_ulid() + ".parquet";
  store->put(bad, "this is not a parquet file");
  test::commit_part(*store, timed, bad, 1);
  QueryService service(options(), catalog, store);
  // Without a range (and with one that covers hour 05) the corrupt part is read: the query fails.
  EXPECT_THROW(service.run(ranged("SELECT count(*) FROM events", std::nullopt, std::nullopt)), QueryError);
  EXPECT_THROW(service.run(ranged("SELECT count(*) FROM events", "2026-01-01T05:59:59Z", std::nullopt)), QueryError);
  // A range that ends before hour 05 never touches it.
  auto out = service.run(ranged("SELECT count(*) FROM events", "2026-01-01T00:00:00Z", "2026-01-01T05:00:00Z"));
  EXPECT_EQ(out.result.rows.at(0).at(0), "6");
  // The partition columns prune, too (another hour's parts are not named): hour 01 only.
  const uint64_t before = static_cast<uint64_t>(metrics().value("bf_query_parts_read_total"));
  out = service.run(ranged("SELECT count(*) FROM events", "2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"));
  EXPECT_EQ(out.result.rows.at(0).at(0), "2");
  EXPECT_EQ(static_cast<uint64_t>(metrics().value("bf_query_parts_read_total")) - before, 1u);
}

TEST_F(QueryApiTest, RangeWithNoPartsIsEmptyNotAnError) {
  QueryService service(options(), catalog, store);
  auto out = service.run(ranged("SELECT label, _time FROM events", "2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z"));
  EXPECT_TRUE(out.result.rows.empty());
  ASSERT_EQ(out.result.columns.size(), 2u);
  EXPECT_EQ(out.result.columns[0], "label");
  EXPECT_FALSE(out.truncated);
}

// --- engine pool -----------------------------------------------------------------

TEST_F(QueryApiTest, MoreTenantsThanMaxEnginesEvictsTheLeastRecentlyUsed) {
  QueryOptions o = options();
  o.max_engines = 2;
  o.max_concurrent = 1;
  QueryService service(o, catalog, store);
  const int64_t lru_before = metrics().value("bf_query_engine_evictions_total", {{"reason", "lru"}});
  const int64_t gauge_before = metrics().value("bf_query_engines");
  auto count = [&](const std::string& tenant) {
    return service.run(tenant + "/logs", "SELECT count(*), min(label) FROM events").result.rows.at(0);
  };
  EXPECT_EQ(count("web").at(1), "web");
  EXPECT_EQ(count("db").at(1), "db");
  EXPECT_EQ(service.engine_count(), 2u);
  EXPECT_EQ(metrics().value("bf_query_engines") - gauge_before, 2);
  EXPECT_TRUE(fs::exists(engine_dir(o, "web")));
  // A third tenant: web (least recently used) goes, with its temp directory.
  EXPECT_EQ(count("ops").at(1), "ops");
  EXPECT_EQ(service.engine_count(), 2u);
  EXPECT_EQ(metrics().value("bf_query_engine_evictions_total", {{"reason", "lru"}}) - lru_before, 1);
  EXPECT_FALSE(fs::exists(engine_dir(o, "web")));
  EXPECT_TRUE(fs::exists(engine_dir(o, "db")));
  EXPECT_TRUE(fs::exists(engine_dir(o, "ops")));
  // Every tenant still gets answers (db is now the oldest and goes next).
  for (const auto& t : tenants) EXPECT_EQ(count(t).at(0), "25") << t;
  EXPECT_EQ(service.engine_count(), 2u);
  // web evicts db, db evicts ops, ops evicts web, sec evicts db.
  EXPECT_EQ(metrics().value("bf_query_engine_evictions_total", {{"reason", "lru"}}) - lru_before, 5);
  EXPECT_EQ(metrics().value("bf_query_engines") - gauge_before, 2);
}

TEST_F(QueryApiTest, IdleEngineIsClosedAfterTheTimeout) {
  QueryOptions o = options();
  o.engine_idle_timeout = std::chrono::milliseconds(1000);  // margin for the checks right after the query
  QueryService service(o, catalog, store);
  const int64_t idle_before = metrics().value("bf_query_engine_evictions_total", {{"reason", "idle"}});
  EXPECT_EQ(service.run("web/logs", "SELECT count(*) FROM events").result.rows.at(0).at(0), "25");
  EXPECT_EQ(service.engine_count(), 1u);
  EXPECT_TRUE(fs::exists(engine_dir(o, "web")));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (service.engine_count() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(service.engine_count(), 0u);
  EXPECT_FALSE(fs::exists(engine_dir(o, "web")));
  EXPECT_EQ(metrics().value("bf_query_engine_evictions_total", {{"reason", "idle"}}) - idle_before, 1);
  // And a new engine answers the next query.
  EXPECT_EQ(service.run("web/logs", "SELECT count(*) FROM events").result.rows.at(0).at(0), "25");
}

TEST_F(QueryApiTest, EngineRunningAQueryIsNeverEvicted) {
  QueryOptions o = options();
  o.max_engines = 2;
  o.max_concurrent = 2;
  o.engine_idle_timeout = std::chrono::milliseconds(1000);
  QueryService service(o, catalog, store);
  // web's query holds its engine: the sink blocks on its first row until released.
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, release = false;
  size_t web_rows = 0;
  std::string web_error;
  std::thread web([&] {
    SqlRowSink sink;
    sink.on_row = [&](SqlRow&) {
      std::unique_lock lock(mu);
      if (!started) {
        started = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
      }
      ++web_rows;
      return true;
    };
    try {
      QueryRequest r;
      r.dataset = "web/logs";
      r.sql = "SELECT n FROM events";
      service.stream(r, sink, 0);
    } catch (const std::exception& e) {
      web_error = e.what();
    }
  });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return started; }));
  }
  // Two more tenants need engines; web is the least recently used but busy.
  EXPECT_EQ(service.run("db/logs", "SELECT count(*) FROM events").result.rows.at(0).at(0), "25");
  EXPECT_EQ(service.run("ops/logs", "SELECT count(*) FROM events").result.rows.at(0).at(0), "25");
  EXPECT_EQ(service.engine_count(), 2u);
  EXPECT_TRUE(fs::exists(engine_dir(o, "web")));
  EXPECT_FALSE(fs::exists(engine_dir(o, "db")));  // the idle one went instead
  // Longer than the idle timeout: ops goes, web (busy for all that time) stays.
  const auto idle_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (service.engine_count() > 1 && std::chrono::steady_clock::now() < idle_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // web has been busy past its idle timeout
  EXPECT_EQ(service.engine_count(), 1u);
  EXPECT_TRUE(fs::exists(engine_dir(o, "web")));
  EXPECT_FALSE(fs::exists(engine_dir(o, "ops")));
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  web.join();
  EXPECT_EQ(web_error, "");
  EXPECT_EQ(web_rows, 25u);
  // Idle now: closed after the timeout.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (service.engine_count() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(service.engine_count(), 0u);
  EXPECT_FALSE(fs::exists(engine_dir(o, "web")));
}

TEST_F(QueryApiTest, PoolOptionsAreValidated) {
  auto parse = [](const std::string& yaml) { return parse_query_options(ConfigNode::parse(yaml, "q.yaml")); };
  QueryOptions o = parse("max_engines: 3\nmax_concurrent: 2\nengine_idle_timeout: 2s\nmemory_limit: 512MiB\n");
  EXPECT_EQ(o.max_engines, 3);
  EXPECT_EQ(o.max_concurrent, 2);
  EXPECT_EQ(o.engine_idle_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(o.memory_limit, 512ull << 20);
  try {
    parse("max_engines: 2\nmax_concurrent: 4\n");
    FAIL() << "max_engines < max_concurrent accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("max_engines"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse("max_concurrent: 0\n"), ConfigError);
  EXPECT_THROW(parse("memory_limit: 1MiB\nmax_concurrent: 4\n"), ConfigError);
  // The constructor checks too.
  QueryOptions bad = options();
  bad.max_engines = 1;
  bad.max_concurrent = 2;
  EXPECT_THROW(QueryService(bad, catalog, store), std::invalid_argument);
}

TEST_F(QueryApiTest, QueriesBeyondMaxConcurrentWaitThenGet503) {
  QueryOptions o = options();
  o.max_engines = 2;
  o.max_concurrent = 1;
  o.timeout = std::chrono::milliseconds(300);
  QueryService service(o, catalog, store);
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, release = false;
  std::thread holder([&] {
    SqlRowSink sink;
    sink.on_row = [&](SqlRow&) {
      std::unique_lock lock(mu);
      started = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
      return false;
    };
    QueryRequest r;
    r.dataset = "web/logs";
    r.sql = "SELECT n FROM events";
    try {
      service.stream(r, sink, 0);
    } catch (const std::exception&) {
      // it may hit its own timeout while held; not what this test checks
    }
  });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return started; }));
  }
  try {
    service.run("db/logs", "SELECT 1");
    ADD_FAILURE() << "ran beyond max_concurrent";
  } catch (const QueryError& e) {
    EXPECT_EQ(e.status, 503);
    EXPECT_NE(std::string(e.what()).find("max_concurrent"), std::string::npos) << e.what();
  }
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  holder.join();
  EXPECT_EQ(service.run("db/logs", "SELECT count(*) FROM events").result.rows.at(0).at(0), "25");
}

// --- streaming -----------------------------------------------------------------

TEST_F(QueryApiTest, StreamHandsOverRowsWithoutTheByteLimit) {
  QueryOptions o = options();
  o.max_response_bytes = 1000;
  o.max_rows = 1000000;
  QueryService service(o, catalog, store);
  QueryRequest r;
  r.dataset = "web/logs";
  r.sql = "SELECT range AS n FROM range(100000)";
  // The buffered path refuses it...
  try {
    service.run(r);
    FAIL() << "not refused";
  } catch (const QueryError& e) {
    EXPECT_EQ(e.status, 413);
  }
  // ...the stream hands over every row, in order, with the columns first.
  std::vector<std::string> columns;
  size_t rows = 0;
  bool in_order = true;
  SqlRowSink sink;
  sink.on_columns = [&](const std::vector<std::string>& c, const std::vector<std::string>&) { columns = c; };
  sink.on_row = [&](SqlRow& row) {
    in_order = in_order && row.at(0) == std::to_string(rows);
    ++rows;
    return true;
  };
  QueryStats stats = service.stream(r, sink, 0);
  EXPECT_EQ(columns, std::vector<std::string>{"n"});
  EXPECT_EQ(rows, 100000u);
  EXPECT_TRUE(in_order);
  EXPECT_EQ(stats.row_count, 100000u);
  EXPECT_FALSE(stats.truncated);
  // With a row limit the stream stops there and says it cut.
  rows = 0;
  stats = service.stream(r, sink, 7);
  EXPECT_EQ(rows, 7u);
  EXPECT_TRUE(stats.truncated);
  // The guard still applies.
  r.sql = "SELECT * FROM read_csv('/etc/passwd')";
  EXPECT_THROW(service.stream(r, sink, 0), QueryError);
}

TEST_F(QueryApiTest, StreamKeepsTheTimeout) {
  QueryOptions o = options();
  o.timeout = std::chrono::milliseconds(300);
  QueryService service(o, catalog, store);
  QueryRequest r;
  r.dataset = "web/logs";
  r.sql = "SELECT range AS n FROM range(1000000000)";
  SqlRowSink sink;
  sink.on_row = [](SqlRow&) { return true; };
  const auto start = std::chrono::steady_clock::now();
  try {
    service.stream(r, sink, 0);
    FAIL() << "not cancelled";
  } catch (const QueryError& e) {
    EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(TableWriter, BlocksGiveTheSameTableAsOneBlockWhenWidthsFit) {
  SqlResult result;
  result.columns = {"n", "label"};
  result.types = {"BIGINT", "VARCHAR"};
  result.rows = {{std::string("22"), std::string("ab")}, {std::string("1"), std::nullopt}};
  const std::string whole = result.to_table();
  EXPECT_EQ(whole, " n  | label\n----+-------\n 22 | ab\n  1 | NULL\n(2 rows)\n");
  TableWriter writer(result.columns, result.types);
  std::string blocks = writer.block({result.rows[0]});
  blocks += writer.block({result.rows[1]});
  blocks += writer.footer(2);
  EXPECT_EQ(blocks, whole);
  // A later, wider value widens its column from then on.
  TableWriter wide(result.columns, result.types);
  std::string out = wide.block({result.rows[0]});
  out += wide.block({{std::string("333"), std::string("longer")}});
  EXPECT_NE(out.find("\n 333 | longer\n"), std::string::npos) << out;
}

}  // namespace
