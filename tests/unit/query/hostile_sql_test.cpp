// Untrusted tenant SQL against the query service: every way out of the tenant's
// own dataset views must be refused with a message naming what was refused,
// resource limits must end giant results quickly, and ordinary analytics must
// keep working. See docs/sql.md "What the query service refuses".
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/catalog.h"
#include "common/metrics.h"
#include "common/ulid.h"
#include "net/http_client.h"
#include "fixtures/lake.h"
#include "query/query_service.h"
#include "query/sql_guard.h"
#include "storage/layout.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

using namespace bf;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kWebKey = "hostile-test-web-key-0123456789";

class HostileSqlTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-hostile-" + new_ulid());
  fs::path store_dir = dir / "store";
  fs::path temp_root = dir / "query-tmp";
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(store_dir);
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  DatasetRef web{"acme", "web", "logs"};
  DatasetRef web_dns{"acme", "web", "dns"};
  DatasetRef db{"acme", "db", "logs"};
  std::unique_ptr<QueryService> service;

  void SetUp() override {
    catalog->add_dataset(DatasetInfo{web, {}});
    catalog->add_dataset(DatasetInfo{web_dns, {}});
    catalog->add_dataset(DatasetInfo{db, {}});
    catalog->add_query_key(kWebKey, KeyGrant{"acme", "web"});
    test::write_part(store, web,
                     "SELECT range AS n, 'web' AS label, 'h' || (range % 3) AS host, "
                     "TIMESTAMP '2026-01-01 00:00:00' + to_seconds(range * 60) AS _time, "
                     "'{\"user\":\"u' || range || '\",\"code\":' || (200 + range % 2) || '}' AS _raw FROM range(25)",
                     25);
    test::write_part(store, web_dns, "SELECT 'h' || range AS host, '10.0.0.' || range AS ip FROM range(3)", 3);
    test::write_part(store, db, "SELECT range AS n, 'db-secret' AS label FROM range(5)", 5);
    service = std::make_unique<QueryService>(options(), catalog, store);
  }
  void TearDown() override {
    service.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  QueryOptions options() {
    QueryOptions o;
    o.http.listen = "127.0.0.1:0";
    o.max_rows = 100;
    o.timeout = std::chrono::milliseconds(5000);
    o.temp_dir = temp_root.string();
    return o;
  }

  // The query is refused with a 400 whose message contains `expect`.
  void refused(const std::string& sql, const std::string& expect, const std::string& dataset = "web/logs") {
    try {
      auto out = service->run(dataset, sql);
      ADD_FAILURE() << "not refused: " << sql << " (" << out.result.rows.size() << " rows: "
                    << (out.result.rows.empty() || out.result.rows[0].empty() || !out.result.rows[0][0]
                            ? std::string("-")
                            : out.result.rows[0][0]->substr(0, 200))
                    << ")";
    } catch (const QueryError& e) {
      EXPECT_EQ(e.status, 400) << sql;
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << sql << "\n  -> " << e.what();
    }
  }
  std::string one(const std::string& sql, const std::string& dataset = "web/logs") {
    auto out = service->run(dataset, sql);
    EXPECT_EQ(out.result.rows.size(), 1u) << sql;
    if (out.result.rows.empty() || out.result.rows[0].empty() || !out.result.rows[0][0]) return "<null>";
    return *out.result.rows[0][0];
  }
};

// ---------------------------------------------------------------------------
// files

TEST_F(HostileSqlTest, EveryFileReadingTableFunctionIsRefused) {
  for (std::string fn : {"read_csv", "read_csv_auto", "read_json", "read_json_auto", "read_json_objects",
                         "read_ndjson", "read_ndjson_objects", "read_text", "read_blob", "read_parquet",
                         "parquet_scan", "parquet_metadata", "parquet_schema", "parquet_file_metadata",
                         "parquet_kv_metadata", "sniff_csv", "glob", "read_xlsx", "json_execute_serialized_sql"}) {
    refused("SELECT * FROM " + fn + "('/etc/passwd')", "table function '" + fn + "' is not allowed");
  }
  // Hidden deeper in the statement: every place a table can appear is walked.
  const std::string rp = "read_text('/etc/passwd')";
  const std::string msg = "table function 'read_text' is not allowed";
  refused("SELECT * FROM (SELECT * FROM " + rp + ")", msg);
  refused("WITH t AS (SELECT * FROM " + rp + ") SELECT * FROM t", msg);
  refused("WITH RECURSIVE t(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM t, " + rp + " WHERE x < 3) SELECT * FROM t", msg);
  refused("SELECT * FROM events JOIN " + rp + " ON true", msg);
  refused("SELECT * FROM events, LATERAL (SELECT * FROM " + rp + ")", msg);
  refused("SELECT n FROM events WHERE label IN (SELECT content FROM " + rp + ")", msg);
  refused("SELECT (SELECT content FROM " + rp + ")", msg);
  refused("SELECT EXISTS (SELECT 1 FROM " + rp + ")", msg);
  refused("SELECT 1 UNION ALL SELECT size FROM " + rp, msg);
  refused("SELECT 1 EXCEPT SELECT size FROM " + rp, msg);
  refused("SELECT n FROM events ORDER BY (SELECT size FROM " + rp + ")", msg);
  refused("SELECT n FROM events LIMIT (SELECT size FROM " + rp + ")", msg);
  refused("SELECT sum(n) FILTER (WHERE n IN (SELECT size FROM " + rp + ")) FROM events", msg);
  refused("SELECT row_number() OVER (PARTITION BY (SELECT size FROM " + rp + ")) FROM events", msg);
  refused("SELECT CASE WHEN n > 1 THEN (SELECT content FROM " + rp + ") END FROM events", msg);
  refused("SELECT [x FOR x IN (SELECT list(content) FROM " + rp + ")]", msg);
  refused("SELECT list_transform([1], x -> (SELECT size FROM " + rp + "))", msg);
  refused("DESCRIBE SELECT * FROM " + rp, msg);
  refused("SUMMARIZE SELECT * FROM " + rp, msg);
  refused("PIVOT (SELECT * FROM " + rp + ") ON filename IN ('a') USING count(*)", msg);
  refused("SELECT * FROM range(3) WHERE range IN (SELECT size FROM " + rp + ")", msg);
  refused("SELECT * FROM range((SELECT size FROM " + rp + "))", msg);
  refused("SELECT * FROM (VALUES ((SELECT content FROM " + rp + "))) t(x)", msg);
}

TEST_F(HostileSqlTest, ReplacementScansAndOddTableNamesAreRefused) {
  refused("SELECT * FROM '/etc/passwd'", "table '/etc/passwd' is not available");
  refused("FROM '/etc/passwd'", "table '/etc/passwd' is not available");
  refused("SELECT * FROM 'x.parquet'", "table 'x.parquet' is not available");
  refused("SELECT * FROM \"/etc/hostname\"", "table '/etc/hostname' is not available");
  refused("SELECT * FROM 'bf://parquet/account=acme/tenant=db/**/*.parquet'", "is not available");
  refused("SELECT * FROM events.parquet", "names may not be qualified");
  refused("SELECT * FROM main.events", "names may not be qualified");
  refused("SELECT * FROM temp.main.events", "names may not be qualified");
  refused("SELECT * FROM nosuchtable", "table 'nosuchtable' is not available");
  refused("SELECT * FROM events AT (VERSION => 1)", "AT (time travel)");
}

TEST_F(HostileSqlTest, AnotherTenantsFilesAreRefusedByEveryPath) {
  const std::string other = "parquet/account=acme/tenant=db/dataset=logs/";
  for (const std::string& path : std::vector<std::string>{
           "bf://" + other + "**/*.parquet", "bf://parquet/account=acme/tenant=web/../tenant=db/dataset=logs/**/*.parquet",
        "bf://parquet/account=acme/tenant=web/dataset=logs/../../tenant=db/**/*.parquet", "bf://parquet/**/*.parquet",
        (store_dir / other).string() + "**/*.parquet", "store/" + other + "**/*.parquet",
        "../store/" + other + "**/*.parquet", "file://" + (store_dir / other).string() + "**/*.parquet"}) {
    refused("SELECT * FROM read_parquet('" + path + "')", "table function 'read_parquet' is not allowed");
    refused("SELECT * FROM '" + path + "'", "is not available");
    refused("SELECT * FROM glob('" + path + "')", "table function 'glob' is not allowed");
  }
  // The other tenant's dataset by name: this tenant's views only.
  refused("SELECT * FROM db", "table 'db' is not available");
  // A key for web cannot name db's dataset at all (403 on the HTTP API).
  EXPECT_EQ(one("SELECT count(*) FROM events WHERE label = 'db-secret'"), "0");
}

// ---------------------------------------------------------------------------
// statements other than one SELECT

TEST_F(HostileSqlTest, WritesAttachExtensionsSettingsAndSecondStatementsAreRefused) {
  const fs::path out = dir / "out.csv";
  refused("COPY (SELECT * FROM events) TO '" + out.string() + "'", "only SELECT statements are allowed, got COPY");
  refused("COPY events TO 'bf://parquet/account=acme/tenant=db/x.parquet'", "got COPY");
  refused("EXPORT DATABASE '" + (dir / "exp").string() + "'", "got EXPORT");
  refused("ATTACH '" + (dir / "x.duckdb").string() + "' AS x", "got ATTACH");
  refused("DETACH x", "got DETACH");
  refused("INSTALL httpfs", "got LOAD");  // DuckDB parses INSTALL as a LOAD statement
  refused("LOAD httpfs", "got LOAD");
  refused("SET enable_external_access = true", "got SET");
  refused("SET temp_directory = '/tmp'", "got SET");
  refused("RESET lock_configuration", "got SET");
  refused("PRAGMA database_list", "got PRAGMA");
  refused("CALL pragma_version()", "got CALL");
  refused("CREATE TABLE t AS SELECT 1", "got CREATE");
  refused("CREATE MACRO m() AS 1", "got CREATE");
  refused("INSERT INTO events VALUES (1)", "got INSERT");
  refused("DROP VIEW events", "got DROP");
  refused("SELECT 1; SELECT 2", "only one statement allowed, got 2");
  refused("SELECT 1; COPY (SELECT 1) TO '" + out.string() + "'", "only one statement allowed");
  refused("SELECT 1;; DROP VIEW events", "only one statement allowed");
  refused("PIVOT events ON label USING count(*)", "got MULTI");  // a dynamic PIVOT is several statements
  refused("", "empty query");
  refused("SELEC 1", "syntax error");
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(dir / "exp"));
  EXPECT_FALSE(fs::exists(dir / "x.duckdb"));
  EXPECT_EQ(one("SELECT count(*) FROM events"), "25");  // the views are intact
}

// ---------------------------------------------------------------------------
// catalog, settings, secrets, host details

TEST_F(HostileSqlTest, CatalogSettingsAndSecretsAreRefused) {
  for (std::string fn : {"duckdb_settings", "duckdb_secrets", "duckdb_temporary_files", "duckdb_databases",
                         "duckdb_tables", "duckdb_views", "duckdb_functions", "duckdb_extensions",
                         "duckdb_memory", "duckdb_logs", "pragma_database_list", "pragma_version",
                         "pragma_platform", "pragma_table_info", "pragma_storage_info", "which_secret",
                         "test_all_types", "checkpoint", "enable_logging", "icu_calendar_names", "sql_auto_complete"}) {
    refused("SELECT * FROM " + fn + "()", "table function '" + fn + "' is not allowed");
  }
  refused("SELECT * FROM which_secret('bf://x', 's3')", "table function 'which_secret' is not allowed");
  for (std::string table : {"information_schema.tables", "information_schema.columns", "pg_catalog.pg_class",
                            "pg_catalog.pg_settings", "system.main.duckdb_settings"}) {
    refused("SELECT * FROM " + table, "names may not be qualified");
  }
  for (std::string table : {"duckdb_tables", "duckdb_settings", "sqlite_master", "sqlite_schema", "pg_tables",
                            "duckdb_columns", "duckdb_indexes"}) {
    refused("SELECT * FROM " + table, "table '" + table + "' is not available");
  }
  refused("SHOW TABLES", "is not available");
  refused("SHOW ALL TABLES", "is not available");
  refused("SHOW DATABASES", "is not available");
  refused("DESCRIBE duckdb_settings", "table 'duckdb_settings' is not available");
  for (std::string call : {"current_setting('temp_directory')", "current_setting('allowed_directories')",
                           "getenv('HOME')", "getvariable('x')", "current_database()", "current_catalog()",
                           "current_schema()", "current_schemas(true)", "current_user", "version()",
                           "current_query()", "pg_typeof(1)", "pg_get_viewdef(1)",
                           "has_table_privilege('events', 'select')", "in_search_path('memory', 'main')",
                           "json_serialize_sql('SELECT 1')", "nextval('s')", "write_log('x')",
                           "duckdb_api()", "user_agent()", "get_block_size('memory')", "platform()",
                           "inet_server_addr()", "txid_current()", "current_connection_id()"}) {
    const std::string name = call.substr(0, call.find('('));
    refused("SELECT " + call, "function '" + name + "' is not allowed");
  }
  // Qualified function names (reaching past a shadowing view or macro) are refused.
  refused("SELECT system.main.lower('A')", "function names may not be qualified");
  refused("SELECT pg_catalog.lower('A')", "function names may not be qualified");
  refused("SELECT memory.main.lower('A')", "function names may not be qualified");
  EXPECT_EQ(one("SELECT main.lower('A')"), "a");  // main is the default schema: no way around the guard
  // The bare keyword forms bind to the same functions.
  refused("SELECT current_schema", "function 'current_schema' is not allowed");
  refused("SELECT current_catalog", "function 'current_catalog' is not allowed");
  refused("SELECT session_user", "function 'session_user' is not allowed");
  // Hidden inside otherwise legitimate queries.
  refused("SELECT n FROM events WHERE label = current_setting('temp_directory')", "function 'current_setting'");
  refused("SELECT max(n) OVER (ORDER BY length(getenv('HOME'))) FROM events", "function 'getenv'");
}

TEST_F(HostileSqlTest, QueryAndQueryTableAreRefused) {
  refused("SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')", "table function 'query' is not allowed");
  refused("FROM query_table('events')", "table function 'query_table' is not allowed");
  refused("FROM query_table(['events', 'duckdb_settings'])", "table function 'query_table' is not allowed");
  refused("SELECT query('SELECT 1')", "function 'query' is not allowed");
}

TEST_F(HostileSqlTest, CteNamesOnlyShadowWithinTheirScope) {
  // A CTE may take any name; within its scope the name means the CTE.
  EXPECT_EQ(one("WITH sqlite_master AS (SELECT 7 AS x) SELECT x FROM sqlite_master"), "7");
  EXPECT_EQ(one("WITH t AS (SELECT 1 AS x), u AS (SELECT x + 1 AS y FROM t) SELECT y FROM u"), "2");
  // Outside its scope the name would be the real system view: refused.
  refused("SELECT * FROM (WITH duckdb_settings AS (SELECT 1) SELECT 1), duckdb_settings",
          "table 'duckdb_settings' is not available");
  // A non-recursive CTE body does not see its own name.
  refused("WITH duckdb_settings AS (SELECT * FROM duckdb_settings) SELECT * FROM duckdb_settings",
          "table 'duckdb_settings' is not available");
  // A later CTE is not in scope for an earlier one.
  refused("WITH a AS (SELECT * FROM sqlite_master), sqlite_master AS (SELECT 1) SELECT * FROM a",
          "table 'sqlite_master' is not available");
}

// ---------------------------------------------------------------------------
// spill files

TEST_F(HostileSqlTest, SpillFilesArePrivateWhileAnotherTenantSpills) {
  QueryOptions o = options();
  o.memory_limit = 48ull << 20;
  o.max_concurrent = 1;  // the whole limit for this one engine
  o.threads = 1;
  o.timeout = std::chrono::milliseconds(20000);
  service.reset();
  service = std::make_unique<QueryService>(o, catalog, store);
  const fs::path db_tmp = temp_root / "tenant-acme.db";

  std::atomic<bool> done{false};
  std::string spill_error;
  std::thread spiller([&] {
    try {
      // Sorting ~200 MB under a 48 MB limit spills to the engine's temp directory.
      service->run("db/logs",
                   "SELECT range AS r, md5(range::VARCHAR) || md5((range + 1)::VARCHAR) AS h FROM range(2500000) "
                   "ORDER BY h");  // a full sort (no LIMIT: that would be a top-N without spilling)
    } catch (const std::exception& e) {
      spill_error = e.what();
    }
    done = true;
  });
  // Wait until the other tenant's engine has a spill file.
  std::vector<fs::path> spill_files;
  while (!done && spill_files.empty()) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(db_tmp, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file(ec)) spill_files.push_back(it->path());
    if (spill_files.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (spill_files.empty()) {
    spiller.join();
    FAIL() << "the db tenant's query did not spill (" << spill_error << ")";
  }
  // The spill directory is the engine's own, mode 0700; DuckDB's shared .tmp is not used.
  struct stat st {};
  ASSERT_EQ(::stat(db_tmp.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  // While it spills, tenant web tries to read it by every route.
  const std::string abs = spill_files.front().string();
  const std::string name = spill_files.front().filename().string();
  refused("SELECT * FROM read_blob('" + abs + "')", "table function 'read_blob' is not allowed");
  refused("SELECT * FROM read_blob('.tmp/" + name + "')", "table function 'read_blob' is not allowed");
  refused("SELECT * FROM read_text('.tmp/duckdb_temp_storage_DEFAULT-0.tmp')", "table function 'read_text'");
  refused("SELECT * FROM glob('.tmp/**')", "table function 'glob' is not allowed");
  refused("SELECT * FROM glob('" + temp_root.string() + "/**')", "table function 'glob' is not allowed");
  refused("SELECT * FROM '" + abs + "'", "is not available");
  refused("SELECT * FROM duckdb_temporary_files()", "table function 'duckdb_temporary_files' is not allowed");
  spiller.join();
  EXPECT_TRUE(spill_error.empty()) << spill_error;

  // Defence in depth, below the guard: web's DuckDB engine itself cannot read
  // another engine's temp directory (it may only read its own and its lake prefix).
  SqlEngine::Options eo;
  eo.sandboxed = true;
  eo.allowed_prefixes = {"bf://parquet/account=acme/tenant=web/"};
  eo.temp_directory = (temp_root / "tenant-probe").string();
  SqlEngine probe(store, eo);
  std::ofstream(db_tmp / "planted.tmp") << "secret";
  try {
    probe.query("SELECT * FROM read_blob('" + (db_tmp / "planted.tmp").string() + "')");
    ADD_FAILURE() << "engine read another engine's temp directory";
  } catch (const SqlError& e) {
    EXPECT_NE(std::string(e.what()).find("Permission Error"), std::string::npos) << e.what();
  }
}

TEST_F(HostileSqlTest, TempDirectoriesAreWipedAtStartAndWhenTheEngineGoes) {
  fs::create_directories(temp_root / "tenant-acme.db");
  std::ofstream(temp_root / "tenant-acme.db" / "left-over.tmp") << "old spill";
  std::ofstream(temp_root / "keep.txt") << "not ours";
  service.reset();
  service = std::make_unique<QueryService>(options(), catalog, store);
  EXPECT_FALSE(fs::exists(temp_root / "tenant-acme.db" / "left-over.tmp"));
  EXPECT_TRUE(fs::exists(temp_root / "keep.txt"));  // only the engines' own directories are cleared

  const fs::path engine_dir = dir / "engine-tmp";
  fs::create_directories(engine_dir);
  std::ofstream(engine_dir / "stale") << "x";
  {
    SqlEngine::Options eo;
    eo.sandboxed = true;
    eo.temp_directory = engine_dir.string();
    SqlEngine engine(store, eo);
    EXPECT_FALSE(fs::exists(engine_dir / "stale"));
    struct stat st {};
    ASSERT_EQ(::stat(engine_dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
  }
  EXPECT_FALSE(fs::exists(engine_dir));
}

// ---------------------------------------------------------------------------
// big values and big results

TEST_F(HostileSqlTest, GiantValuesAreRefusedBeforeTheyAreBuilt) {
  const auto bound = std::chrono::milliseconds(2000);  // well inside query.timeout (5 s)
  for (std::string sql : {"SELECT repeat('x', 2000000000)", "SELECT repeat('x', 300000000)",
                          "SELECT repeat('x', 10000000) FROM range(100)"}) {
    const auto start = Clock::now();
    refused(sql, "function 'repeat' would build a value of more than 65536 bytes (query.max_value_bytes)");
    EXPECT_LT(Clock::now() - start, bound) << sql;
  }
  refused("SELECT lpad('x', 1000000000, 'y')", "function 'lpad' would build a value");
  refused("SELECT rpad(label, 100000000, 'y') FROM events", "function 'rpad' would build a value");
  refused("SELECT repeat(repeat('x', 60000), 60000)", "function 'repeat' would build a value");
  refused("SELECT repeat(label, 1000000) FROM events", "function 'repeat' would build a value");
  refused("SELECT repeat('x', 40000) || repeat('x', 40000)", "function '||' would build a value");
  refused("SELECT concat(repeat('x', 40000), repeat('y', 40000))", "function 'concat' would build a value");
  refused("SELECT repeat('x', n * 1000000) FROM events", "argument 2 (the result size) must be a constant");
  refused("SELECT repeat('x', (SELECT 2000000000))", "must be a constant");
  refused("SELECT list_resize([1], 100000000)", "function 'list_resize' would build a value");
  refused("SELECT range(0, 1000000000)", "function 'range' would build a list");
  refused("SELECT generate_series(1, 2000000000)", "function 'generate_series' would build a list");
  refused("SELECT bar(1, 0, 1, 1000000000)", "function 'bar' would build a value");
  refused("SELECT range(0, n * 1000000000) FROM events", "needs constant integer bounds");
  refused("SELECT generate_series(TIMESTAMP '2000-01-01', TIMESTAMP '2100-01-01', INTERVAL 1 SECOND)",
          "needs constant integer bounds; for other bounds use the table function");
  // Many producers per row add up (a projection is evaluated 2048 rows at a time).
  std::string wide = "SELECT ";
  for (int i = 0; i < 10; ++i) wide += (i ? ", " : "") + std::string("repeat('x', 60000) AS c") + std::to_string(i);
  refused(wide + " FROM range(2048)", "calls of this query together would build more than 65536 bytes per row");
  refused("SELECT (SELECT repeat('x', 40000)), lpad('y', 10000, 'z')", "together would build more than");
  // Small producers are fine.
  EXPECT_EQ(one("SELECT repeat('ab', 3)"), "ababab");
  EXPECT_EQ(one("SELECT lpad('7', 3, '0')"), "007");
  EXPECT_EQ(one("SELECT length(repeat('x', 65536))"), "65536");
  EXPECT_EQ(one("SELECT len(range(10))"), "10");
  EXPECT_GT(metrics().value("bf_query_rejected_total", {{"reason", "value_size"}}), 0);
}

TEST_F(HostileSqlTest, ResponsesAreCappedAtMaxResponseBytes) {
  QueryOptions o = options();
  o.max_response_bytes = 1 << 20;
  o.max_rows = 100000;
  service.reset();
  service = std::make_unique<QueryService>(o, catalog, store);
  const auto before = metrics().value("bf_query_too_large_total");
  auto too_large = [&](const std::string& sql) {
    const auto start = Clock::now();
    try {
      service->run("web/logs", sql);
      ADD_FAILURE() << "not capped: " << sql;
    } catch (const QueryError& e) {
      EXPECT_EQ(e.status, 413) << sql;
      EXPECT_NE(std::string(e.what()).find("result is larger than 1048576 bytes (query.max_response_bytes)"),
                std::string::npos)
          << e.what();
    }
    EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(3000)) << sql;
  };
  too_large("SELECT repeat('x', 60000) AS s FROM range(2000)");  // 120 MB of rows
  too_large("SELECT range, md5(range::VARCHAR) FROM range(100000)");
  too_large("SELECT [repeat('x', 30000), repeat('y', 30000)] AS l FROM range(100)");  // nested values count too
  EXPECT_EQ(metrics().value("bf_query_too_large_total"), before + 3);
  // Under the cap: complete.
  auto ok = service->run("web/logs", "SELECT repeat('x', 60000) AS s FROM range(10)");
  EXPECT_EQ(ok.result.rows.size(), 10u);
  EXPECT_FALSE(ok.truncated);

  // Over HTTP the body streams once it passes 64 KiB, so the cap ends it in-band:
  // the rows so far, then truncated_reason "max_response_bytes" and the error; the
  // body stays within the cap.
  service->start();
  HttpClient http;
  const std::string url = "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/query";
  Headers auth{{"Authorization", "Bearer " + kWebKey}};
  auto big = http.send("POST", url, auth, R"J({"dataset":"web/logs","sql":"SELECT repeat('x', 60000) FROM range(2000)"})J");
  EXPECT_EQ(big.status, 200);
  EXPECT_EQ(big.headers["Transfer-Encoding"], "chunked");
  EXPECT_LE(big.body.size(), o.max_response_bytes + 1024);
  auto big_doc = boost::json::parse(big.body).as_object();
  EXPECT_EQ(big_doc.at("truncated"), true);
  EXPECT_EQ(big_doc.at("truncated_reason"), "max_response_bytes");
  EXPECT_NE(std::string(big_doc.at("error").as_string()).find("query.max_response_bytes"), std::string::npos);
  EXPECT_EQ(big.headers["X-Truncated-Reason"], "max_response_bytes");  // the trailer
  // (A cap hit before 64 KiB is a 413 with nothing else: QueryApiHttpTest.ByteLimitRefusesEveryFormat.)
  auto refused_http = http.send("POST", url, auth, R"J({"dataset":"web/logs","sql":"SELECT * FROM duckdb_settings()"})J");
  EXPECT_EQ(refused_http.status, 400);
  EXPECT_NE(refused_http.body.find("table function 'duckdb_settings' is not allowed"), std::string::npos)
      << refused_http.body;
  auto small = http.send("POST", url, auth,
                         R"J({"dataset":"web/logs","sql":"SELECT n, _raw::JSON AS j, 'q\"' AS s FROM events ORDER BY n LIMIT 2"})J");
  ASSERT_EQ(small.status, 200) << small.body;
  auto doc = boost::json::parse(small.body).as_object();
  EXPECT_EQ(doc.at("row_count").as_int64(), 2);
  EXPECT_EQ(doc.at("rows").at(1).at("j").at("code").to_number<int64_t>(), 201);
  EXPECT_EQ(doc.at("rows").at(0).at("s").as_string(), "q\"");
  EXPECT_EQ(doc.at("columns").at(1).at("type").as_string(), "JSON");
  EXPECT_FALSE(doc.at("truncated").as_bool());
}

// ---------------------------------------------------------------------------
// what must keep working

TEST_F(HostileSqlTest, LegitimateAnalyticsStillWork) {
  EXPECT_EQ(one("SELECT count(*) FROM events"), "25");
  EXPECT_EQ(one("SELECT count(*) FROM logs"), "25");  // the dataset id view
  EXPECT_EQ(one("SELECT sum(n) FILTER (WHERE n % 2 = 0) FROM events"), "156");
  EXPECT_EQ(one("SELECT string_agg(DISTINCT host, ',' ORDER BY host) FROM events"), "h0,h1,h2");
  // window functions, QUALIFY
  EXPECT_EQ(one("SELECT n FROM events QUALIFY row_number() OVER (PARTITION BY host ORDER BY n DESC) = 1 "
                "ORDER BY n LIMIT 1"),
            "22");
  EXPECT_EQ(one("SELECT max(s) FROM (SELECT sum(n) OVER (ORDER BY n ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) s "
                "FROM events)"),
            "47");
  // CTEs (also recursive), subqueries, set operations
  EXPECT_EQ(one("WITH h AS (SELECT host, count(*) c FROM events GROUP BY host) SELECT max(c) FROM h"), "9");
  EXPECT_EQ(one("WITH RECURSIVE t(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM t WHERE x < 5) SELECT sum(x) FROM t"),
            "15");
  EXPECT_EQ(one("SELECT count(*) FROM events WHERE n IN (SELECT n FROM events WHERE n < 3)"), "3");
  EXPECT_EQ(one("SELECT count(*) FROM events e WHERE EXISTS (SELECT 1 FROM events f WHERE f.n = e.n + 24)"), "1");
  EXPECT_EQ(one("SELECT (SELECT max(n) FROM events) + 1"), "25");
  EXPECT_EQ(one("SELECT count(*) FROM (SELECT host FROM events UNION SELECT host FROM logs)"), "3");
  // joins between the dataset's views (`events` and the dataset id)
  EXPECT_EQ(one("SELECT count(*) FROM events a JOIN logs b USING (n)"), "25");
  EXPECT_EQ(one("SELECT count(*) FROM events a LEFT JOIN logs b ON a.n = b.n + 20 WHERE b.n IS NOT NULL"), "5");
  // another dataset of the same tenant is not a view of this query
  refused("SELECT * FROM dns", "table 'dns' is not available");
  // regexp, json, time functions
  EXPECT_EQ(one("SELECT regexp_extract(_raw, '\"user\":\"(u\\d+)\"', 1) FROM events WHERE n = 7"), "u7");
  EXPECT_EQ(one("SELECT count(*) FROM events WHERE regexp_matches(host, '^h[12]$')"), "16");
  EXPECT_EQ(one("SELECT json_extract_string(_raw, '$.user') FROM events WHERE n = 3"), "u3");
  EXPECT_EQ(one("SELECT sum((_raw::JSON->>'code')::INT) FROM events"), "5012");
  EXPECT_EQ(one("SELECT strftime(date_trunc('hour', max(_time)), '%Y-%m-%d %H') FROM events"), "2026-01-01 00");
  EXPECT_EQ(one("SELECT count(*) FROM events WHERE _time < now() AND _time > current_date - INTERVAL 3650 DAY"),
            "25");
  EXPECT_EQ(one("SELECT count(*) FROM events WHERE _time BETWEEN TIMESTAMP '2026-01-01' AND "
                "TIMESTAMP '2026-01-01 00:10:00'"),
            "11");
  // generators, unnest, values, pivot with a list, columns(), describe/summarize
  EXPECT_EQ(one("SELECT count(*) FROM range(10)"), "10");
  EXPECT_EQ(one("SELECT count(*) FROM generate_series(TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-02', "
                "INTERVAL 1 HOUR)"),
            "25");
  EXPECT_EQ(one("SELECT sum(x) FROM unnest([1, 2, 3]) t(x)"), "6");
  EXPECT_EQ(one("SELECT sum(a) FROM (VALUES (1), (2)) t(a)"), "3");
  EXPECT_EQ(one("SELECT h0 FROM (PIVOT (SELECT host FROM events) ON host IN ('h0', 'h1') USING count(*))"), "9");
  EXPECT_EQ(one("SELECT max(COLUMNS('^n$')) FROM events"), "24");
  auto d = service->run("web/logs", "DESCRIBE events");
  EXPECT_GE(d.result.rows.size(), 5u);
  EXPECT_EQ(d.result.rows[0][0], "n");
  EXPECT_GE(service->run("web/logs", "SUMMARIZE events").result.rows.size(), 5u);
  EXPECT_EQ(one("SELECT column_name FROM (DESCRIBE events) WHERE column_name = 'host'"), "host");
}

TEST_F(HostileSqlTest, GuardVerdictsNameTheReason) {
  SqlGuardOptions g;
  g.tables = {"events", "logs"};
  auto v = check_untrusted_sql("SELECT * FROM read_blob('x')", g);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "table_function");
  EXPECT_EQ(check_untrusted_sql("SELECT * FROM sqlite_master", g).reason, "table");
  EXPECT_EQ(check_untrusted_sql("SELECT getenv('HOME')", g).reason, "function");
  EXPECT_EQ(check_untrusted_sql("SELECT repeat('x', 1000000000)", g).reason, "value_size");
  EXPECT_EQ(check_untrusted_sql("DROP TABLE x", g).reason, "not_select");
  EXPECT_EQ(check_untrusted_sql("SELECT 1; SELECT 2", g).reason, "multiple_statements");
  EXPECT_EQ(check_untrusted_sql("SELEC", g).reason, "syntax");
  EXPECT_TRUE(check_untrusted_sql("SELECT * FROM LOGS", g).allowed);  // names are case-insensitive
  EXPECT_TRUE(check_untrusted_sql("SELECT count(*) FROM events", g).allowed);

  const auto before = metrics().value("bf_query_rejected_total", {{"reason", "table_function"}});
  refused("SELECT * FROM read_csv('/etc/passwd')", "table function 'read_csv'");
  EXPECT_EQ(metrics().value("bf_query_rejected_total", {{"reason", "table_function"}}), before + 1);
}

}  // namespace
