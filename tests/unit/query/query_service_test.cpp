#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>

#include "common/batch.h"
#include "common/catalog.h"
#include "common/ulid.h"
#include "net/http_client.h"
#include "fixtures/lake.h"
#include "query/query_service.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

using namespace bf;
namespace fs = std::filesystem;

namespace {

const std::string kWebKey = "query-test-web-key-0123456789";

class QueryServiceTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-query-" + new_ulid());
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(dir);
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  DatasetRef web{"acme", "web", "logs"};
  DatasetRef db{"acme", "db", "logs"};
  std::unique_ptr<QueryService> service;

  void SetUp() override {
    catalog->add_dataset(DatasetInfo{web, {}});
    catalog->add_dataset(DatasetInfo{db, {}});
    catalog->add_dataset(DatasetInfo{DatasetRef{"acme", "web", "empty"}, {}});
    catalog->add_query_key(kWebKey, KeyGrant{"acme", "web"});
    write_parquet(web, 25, "web");
    write_parquet(db, 5, "db-secret");
    QueryOptions o;
    o.http.listen = "127.0.0.1:0";
    o.max_rows = 10;
    o.temp_dir = (dir / "query-tmp").string();
    service = std::make_unique<QueryService>(o, catalog, store);
  }
  void TearDown() override {
    service.reset();
    fs::remove_all(dir);
  }
  void write_parquet(const DatasetRef& ref, int rows, const std::string& label, bool commit = true) {
    test::write_part(store, ref, "SELECT range AS n, '" + label + "' AS label FROM range(" + std::to_string(rows) + ")",
                     static_cast<uint64_t>(rows), commit);
  }
};

TEST_F(QueryServiceTest, ReadsOnlyCommittedParts) {
  write_parquet(web, 1000, "uncommitted", /*commit=*/false);  // a killed packer run's part
  auto out = service->run("web/logs", "SELECT count(*), count(*) FILTER (WHERE label = 'uncommitted') FROM events");
  ASSERT_EQ(out.result.rows.size(), 1u);
  EXPECT_EQ(out.result.rows[0][0], "25");
  EXPECT_EQ(out.result.rows[0][1], "0");
  // A part named by a pending manifest (committed, not yet folded) is visible.
  const std::string key = test::write_part(store, web, "SELECT 7 AS n, 'pending' AS label", 1, /*commit=*/false);
  write_manifest(*store, web, CommitManifest{new_ulid(), {CommitPart{key, 1}}, {}});
  out = service->run("web/logs", "SELECT count(*) FROM events");
  EXPECT_EQ(out.result.rows[0][0], "26");
}

TEST_F(QueryServiceTest, QuarantinePartsStayOutOfTheEventsView) {
  // Committed like any part, but outside the Hive tree: mixed in, the view would not bind.
  const std::string key = parquet_quarantine_part_key(web, new_ulid());
  SqlEngine(store, {}).execute("COPY (SELECT 99 AS n, 'quarantined' AS label) TO 'bf://" + key + "' (FORMAT parquet)");
  test::commit_part(*store, web, key, 1);
  auto out = service->run("web/logs", "SELECT count(*), count(*) FILTER (WHERE label = 'quarantined'), min(year) FROM events");
  ASSERT_EQ(out.result.rows.size(), 1u);
  EXPECT_EQ(out.result.rows[0][0], "25");
  EXPECT_EQ(out.result.rows[0][1], "0");
  EXPECT_EQ(out.result.rows[0][2], "2026");
}

TEST_F(QueryServiceTest, QueriesTheDatasetViewWithPartitionColumns) {
  auto out = service->run("web/logs", "SELECT count(*) AS c, min(label) AS l, min(year) AS y FROM events");
  ASSERT_EQ(out.result.rows.size(), 1u);
  EXPECT_EQ(out.result.rows[0][0], "25");
  EXPECT_EQ(out.result.rows[0][1], "web");
  EXPECT_EQ(out.result.rows[0][2], "2026");
  EXPECT_EQ(service->run("acme/web/logs", "SELECT count(*) FROM logs").result.rows[0][0], "25");
}

TEST_F(QueryServiceTest, RowLimitCutsAndSaysSo) {
  auto out = service->run("web/logs", "SELECT n FROM events ORDER BY n");
  EXPECT_EQ(out.result.rows.size(), 10u);
  EXPECT_TRUE(out.truncated);
  EXPECT_FALSE(service->run("web/logs", "SELECT n FROM events LIMIT 10").truncated);
}

TEST_F(QueryServiceTest, HostileSqlIsRejected) {
  auto status_of = [&](const std::string& sql) {
    try {
      service->run("web/logs", sql);
      return 200;
    } catch (const QueryError& e) {
      return e.status;
    }
  };
  EXPECT_EQ(status_of("DROP VIEW events"), 400);
  EXPECT_EQ(status_of("CREATE TABLE t AS SELECT 1"), 400);
  EXPECT_EQ(status_of("SELECT 1; SELECT 2"), 400);
  EXPECT_EQ(status_of("SELECT * FROM read_csv('/etc/passwd')"), 400);
  EXPECT_EQ(status_of("COPY (SELECT 1) TO '/tmp/x.csv'"), 400);
  EXPECT_EQ(status_of("ATTACH '/tmp/x.db'"), 400);
  EXPECT_EQ(status_of("SELECT * FROM events WHERE"), 400);
  // Another tenant's data is outside this tenant's sandbox, even by full path.
  EXPECT_EQ(status_of("SELECT * FROM read_parquet('bf://" + parquet_prefix(db) + "**/*.parquet')"), 400);
  EXPECT_EQ(status_of("SELECT * FROM read_parquet('bf://parquet/**/*.parquet')"), 400);
  EXPECT_EQ(status_of("SELECT count(*) FROM events"), 200);  // and the engine still works
}

TEST_F(QueryServiceTest, UnknownAndEmptyDatasetsAre404) {
  EXPECT_THROW(
      {
        try {
          service->run("web/nope", "SELECT 1");
        } catch (const QueryError& e) {
          EXPECT_EQ(e.status, 404);
          throw;
        }
      },
      QueryError);
  try {
    service->run("web/empty", "SELECT 1");
    FAIL();
  } catch (const QueryError& e) {
    EXPECT_EQ(e.status, 404);
    EXPECT_NE(std::string(e.what()).find("no data"), std::string::npos);
  }
}

TEST_F(QueryServiceTest, HttpApiChecksKeysAndTenants) {
  service->start();
  HttpClient http;
  std::string url = "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/query";
  Headers auth{{"Authorization", "Bearer " + kWebKey}};
  auto ok = http.send("POST", url, auth, R"({"dataset":"web/logs","sql":"SELECT n, label FROM events ORDER BY n LIMIT 2"})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto doc = boost::json::parse(ok.body).as_object();
  EXPECT_EQ(doc.at("row_count").as_int64(), 2);
  EXPECT_EQ(doc.at("rows").at(1).at("n").to_number<int64_t>(), 1);
  EXPECT_EQ(doc.at("rows").at(1).at("label").as_string(), "web");
  EXPECT_EQ(doc.at("columns").at(0).at("name").as_string(), "n");
  EXPECT_EQ(doc.at("truncated").as_bool(), false);

  EXPECT_EQ(http.send("POST", url, {}, R"({"dataset":"web/logs","sql":"SELECT 1"})").status, 401);
  EXPECT_EQ(http.send("POST", url, {{"Authorization", "Bearer nope-nope-nope-nope"}}, R"({"dataset":"web/logs","sql":"SELECT 1"})").status, 401);
  EXPECT_EQ(http.send("POST", url, auth, R"({"dataset":"db/logs","sql":"SELECT 1"})").status, 403);
  EXPECT_EQ(http.send("POST", url, auth, R"({"dataset":"web/logs"})").status, 400);
  EXPECT_EQ(http.send("POST", url, auth, "not json").status, 400);
  EXPECT_EQ(http.send("GET", url, auth, "").status, 405);
}

// Browsers (the web UI's query console on control's origin): loopback origins and
// query.cors_origins get CORS headers, on results and on errors; others get none.
TEST_F(QueryServiceTest, BrowsersOfAllowedOriginsGetCorsHeadersOnResultsAndErrors) {
  QueryOptions o;
  o.http.listen = "127.0.0.1:0";
  o.temp_dir = (dir / "query-tmp-cors").string();
  o.cors_origins = {"https://ui.example.com"};
  service = std::make_unique<QueryService>(o, catalog, store);
  service->start();
  HttpClient http;
  const std::string url = "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/query";
  const Headers ui{{"Origin", "https://ui.example.com"}};
  auto pre = http.send("OPTIONS", url, {{"Origin", "https://ui.example.com"}, {"Access-Control-Request-Method", "POST"}}, "");
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.headers["Access-Control-Allow-Origin"], "https://ui.example.com");
  EXPECT_EQ(pre.headers["Access-Control-Allow-Headers"], "Authorization, Content-Type");
  EXPECT_EQ(http.send("OPTIONS", url, {{"Origin", "http://127.0.0.1:8090"}}, "").status, 204);  // loopback
  EXPECT_EQ(http.send("OPTIONS", url, {{"Origin", "https://evil.example.com"}}, "").status, 403);

  Headers auth{{"Authorization", "Bearer " + kWebKey}, {"Origin", "https://ui.example.com"}};
  auto ok = http.send("POST", url, auth, R"({"dataset":"web/logs","sql":"SELECT n FROM events LIMIT 1"})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.headers["Access-Control-Allow-Origin"], "https://ui.example.com");
  EXPECT_NE(ok.headers["Access-Control-Expose-Headers"].find("X-Row-Count"), std::string::npos);
  // An SQL error replaces the streamed response: it keeps the headers, so the page can show it.
  auto bad = http.send("POST", url, auth, R"({"dataset":"web/logs","sql":"SELECT nope FROM events"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bad.headers["Access-Control-Allow-Origin"], "https://ui.example.com");
  auth["Origin"] = "https://evil.example.com";
  auto other = http.send("POST", url, auth, R"({"dataset":"web/logs","sql":"SELECT 1 AS x"})");
  EXPECT_EQ(other.headers.count("Access-Control-Allow-Origin"), 0u);
}

// A catalog from control (a new dataset, a new query key) applies to the next request.
TEST_F(QueryServiceTest, ANewCatalogAppliesWithoutARestart) {
  service->start();
  HttpClient http;
  const std::string url = "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/query";
  const std::string fresh_key = "query-test-fresh-key-0123456789";
  const std::string body = R"({"dataset":"db/logs","sql":"SELECT count(*) AS n FROM events"})";
  EXPECT_EQ(http.send("POST", url, {{"Authorization", "Bearer " + fresh_key}}, body).status, 401);
  auto next = std::make_shared<Catalog>(*catalog);
  next->add_query_key(fresh_key, KeyGrant{"acme", "db"});
  service->set_catalog(next);
  auto r = http.send("POST", url, {{"Authorization", "Bearer " + fresh_key}}, body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(boost::json::parse(r.body).at("rows").at(0).at("n").to_number<int64_t>(), 5);
}

}  // namespace

TEST_F(QueryServiceTest, LongQueriesAreCancelledAtTheTimeout) {
  QueryOptions o;
  o.timeout = std::chrono::milliseconds(300);
  o.temp_dir = (dir / "query-tmp-quick").string();
  QueryService quick(o, catalog, store);
  try {
    quick.run("web/logs", "SELECT count(*) FROM range(100000000000) a, events");
    FAIL() << "not cancelled";
  } catch (const QueryError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
  }
  EXPECT_EQ(quick.run("web/logs", "SELECT count(*) FROM events").result.rows[0][0], "25");  // still usable
}
