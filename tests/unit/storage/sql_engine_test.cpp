// SqlEngine + the bf:// DuckDB file system over a LocalStore.
#include "storage/sql_engine.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "common/compression.h"
#include "storage/duckdb_fs.h"
#include "storage/local_store.h"

namespace fs = std::filesystem;

namespace bf {
namespace {

class SqlEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("bf-sql-test-" + std::to_string(rd()) + std::to_string(::getpid()));
    fs::create_directories(dir_ / "store");
    store_ = std::make_shared<LocalStore>(dir_ / "store");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Two Parquet files in Hive-style directories with different columns.
  void write_two_partitions(SqlEngine& engine) {
    engine.execute(
        "COPY (SELECT * FROM (VALUES (1, 'one'), (2, 'two')) t(a, b)) "
        "TO 'bf://parquet/ds/year=2026/month=01/p1.parquet' (FORMAT parquet, COMPRESSION zstd)");
    engine.execute(
        "COPY (SELECT 3 AS a, 3.5::DOUBLE AS c) "
        "TO 'bf://parquet/ds/year=2026/month=02/p2.parquet' (FORMAT parquet, COMPRESSION zstd)");
  }

  static std::string cell(const SqlResult& r, size_t row, size_t col) {
    const auto& v = r.rows.at(row).at(col);
    return v ? *v : std::string("<null>");
  }

  fs::path dir_;
  std::shared_ptr<ObjectStore> store_;
};

TEST_F(SqlEngineTest, CopyToBfStoresTheObject) {
  SqlEngine engine(store_, {});
  engine.execute(
      "COPY (SELECT range AS id, 'v' || range AS s FROM range(1000)) "
      "TO 'bf://parquet/a/x.parquet' (FORMAT parquet, COMPRESSION zstd)");
  auto info = store_->head("parquet/a/x.parquet");
  ASSERT_TRUE(info.has_value());
  EXPECT_GT(info->size, 100u);
  // The object is a real Parquet file (magic at both ends).
  std::string head = store_->get("parquet/a/x.parquet", ByteRange{0, 4});
  std::string tail = store_->get("parquet/a/x.parquet", ByteRange{info->size - 4, 4});
  EXPECT_EQ(head, "PAR1");
  EXPECT_EQ(tail, "PAR1");
  // No local temp files left behind in the store.
  auto all = store_->list_all("");
  ASSERT_EQ(all.size(), 1u);

  auto r = engine.query("SELECT count(*), sum(id), max(s) FROM read_parquet('bf://parquet/a/x.parquet')");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(cell(r, 0, 0), "1000");
  EXPECT_EQ(cell(r, 0, 1), "499500");
  EXPECT_EQ(cell(r, 0, 2), "v999");
}

TEST_F(SqlEngineTest, CopyOverwritesAnExistingObject) {
  SqlEngine engine(store_, {});
  engine.execute("COPY (SELECT 1 AS a) TO 'bf://parquet/o.parquet' (FORMAT parquet)");
  engine.execute("COPY (SELECT 2 AS a UNION ALL SELECT 3) TO 'bf://parquet/o.parquet' (FORMAT parquet)");
  auto r = engine.query("SELECT sum(a) FROM 'bf://parquet/o.parquet'");
  EXPECT_EQ(cell(r, 0, 0), "5");
  auto all = store_->list_all("parquet/");
  ASSERT_EQ(all.size(), 1u) << all.back().key;  // no tmp_ object left over
}

TEST_F(SqlEngineTest, CopyCsvAndJsonToBf) {
  SqlEngine engine(store_, {});
  engine.execute("COPY (SELECT 1 AS a, 'x' AS b) TO 'bf://out/x.csv' (FORMAT csv, HEADER)");
  EXPECT_EQ(store_->get("out/x.csv"), "a,b\n1,x\n");
  engine.execute("COPY (SELECT 1 AS a, 'x' AS b) TO 'bf://out/x.ndjson' (FORMAT json)");
  EXPECT_EQ(store_->get("out/x.ndjson"), "{\"a\":1,\"b\":\"x\"}\n");
}

TEST_F(SqlEngineTest, PartitionedCopyWritesHiveKeys) {
  SqlEngine engine(store_, {});
  engine.execute(
      "COPY (SELECT range AS id, range % 2 AS part FROM range(10)) TO 'bf://parquet/pt' "
      "(FORMAT parquet, PARTITION_BY (part))");
  auto objs = store_->list_all("parquet/pt/");
  ASSERT_EQ(objs.size(), 2u);
  EXPECT_EQ(objs[0].key.rfind("parquet/pt/part=0/", 0), 0u) << objs[0].key;
  EXPECT_EQ(objs[1].key.rfind("parquet/pt/part=1/", 0), 0u) << objs[1].key;
  auto r = engine.query("SELECT part, count(*) FROM read_parquet('bf://parquet/pt/**/*.parquet') GROUP BY 1 ORDER BY 1");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(cell(r, 1, 1), "5");
}

TEST_F(SqlEngineTest, HiveGlobUnionByName) {
  SqlEngine engine(store_, {});
  write_two_partitions(engine);
  auto r = engine.query(
      "SELECT a, b, c, year, month FROM read_parquet('bf://parquet/**/*.parquet', "
      "hive_partitioning=true, union_by_name=true) ORDER BY a");
  ASSERT_EQ(r.columns, (std::vector<std::string>{"a", "b", "c", "year", "month"}));
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(cell(r, 0, 1), "one");
  EXPECT_EQ(cell(r, 0, 2), "<null>");
  EXPECT_EQ(cell(r, 2, 1), "<null>");
  EXPECT_EQ(cell(r, 2, 2), "3.5");
  EXPECT_EQ(cell(r, 0, 3), "2026");
  EXPECT_EQ(cell(r, 2, 3), "2026");
  EXPECT_EQ(cell(r, 0, 4), "01");  // kept as text: a cast would lose the zero
  EXPECT_EQ(cell(r, 2, 4), "02");
  EXPECT_EQ(r.types[3], "BIGINT");
  EXPECT_EQ(r.types[4], "VARCHAR");

  // Partition pruning by a hive column still returns the right rows.
  auto p = engine.query(
      "SELECT count(*) FROM read_parquet('bf://parquet/ds/*/*/*.parquet', hive_partitioning=true, "
      "union_by_name=true) WHERE month = 2");
  EXPECT_EQ(cell(p, 0, 0), "1");
}

TEST_F(SqlEngineTest, GlobSemantics) {
  SqlEngine engine(store_, {});
  store_->put("g/a.txt", "1");
  store_->put("g/b.csv", "2");
  store_->put("g/sub/c.txt", "3");
  store_->put("g/sub/deeper/d.txt", "4");
  store_->put("gx/e.txt", "5");
  auto files = [&](const std::string& pattern) {
    std::vector<std::string> out;
    for (auto& row : engine.query("SELECT file FROM glob(" + sql_quote(pattern) + ") ORDER BY 1").rows)
      out.push_back(*row[0]);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(files("bf://g/*.txt"), (V{"bf://g/a.txt"}));
  EXPECT_EQ(files("bf://g/**/*.txt"), (V{"bf://g/a.txt", "bf://g/sub/c.txt", "bf://g/sub/deeper/d.txt"}));
  EXPECT_EQ(files("bf://g*/?.txt"), (V{"bf://g/a.txt", "bf://gx/e.txt"}));
  EXPECT_EQ(files("bf://g/[ab].*"), (V{"bf://g/a.txt", "bf://g/b.csv"}));
  EXPECT_EQ(files("bf://g/[!a]*"), (V{"bf://g/b.csv"}));
  EXPECT_EQ(files("bf://g/sub/c.txt"), (V{"bf://g/sub/c.txt"}));
  EXPECT_TRUE(files("bf://g/none/*.txt").empty());

  EXPECT_TRUE(object_glob_match("a/**", "a/b/c"));
  EXPECT_FALSE(object_glob_match("a/**", "a"));
  EXPECT_TRUE(object_glob_match("a/**/b/**/c", "a/b/c"));
  EXPECT_TRUE(object_glob_match("a/**/b/**/c", "a/x/y/b/z/c"));
  EXPECT_FALSE(object_glob_match("a/*/c", "a/x/y/c"));
  EXPECT_TRUE(object_glob_match("a/x*y/c", "a/xaaay/c"));
}

TEST_F(SqlEngineTest, GlobWithoutMatchIsAnError) {
  SqlEngine engine(store_, {});
  try {
    engine.query("SELECT * FROM read_parquet('bf://parquet/nothing/**/*.parquet')");
    FAIL() << "expected SqlError";
  } catch (const SqlError& e) {
    EXPECT_NE(std::string(e.what()).find("No files found"), std::string::npos) << e.what();
  }
  EXPECT_THROW(engine.query("SELECT * FROM read_parquet('bf://parquet/missing.parquet')"), SqlError);
  EXPECT_THROW(engine.query("SELECT * FROM read_parquet('bf://../etc/passwd')"), SqlError);
  EXPECT_THROW(engine.query("SELEC 1"), SqlError);
  EXPECT_THROW(engine.query("SELECT * FROM no_such_table"), SqlError);
}

TEST_F(SqlEngineTest, ReadJsonNdjson) {
  SqlEngine engine(store_, {});
  const std::string ndjson =
      "{\"_time\":\"2026-01-02T03:04:05Z\",\"host\":\"a\",\"n\":1}\n"
      "{\"_time\":\"2026-01-02T03:04:06Z\",\"host\":\"b\",\"n\":2,\"extra\":true}\n";
  store_->put("processed/x.ndjson", ndjson);
  auto r = engine.query(
      "SELECT host, n, extra FROM read_json('bf://processed/x.ndjson', format='newline_delimited') ORDER BY n");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(cell(r, 0, 0), "a");
  EXPECT_EQ(cell(r, 1, 1), "2");
  EXPECT_EQ(cell(r, 1, 2), "true");

  // zstd-compressed batches as the piper writes them (processed/...ndjson.zst).
  store_->put("processed/y.ndjson.zst", compress(Encoding::zstd, ndjson));
  auto z = engine.query(
      "SELECT count(*) FROM read_json('bf://processed/y.ndjson.zst', format='newline_delimited', "
      "compression='zstd')");
  EXPECT_EQ(cell(z, 0, 0), "2");
  auto za = engine.query("SELECT count(*) FROM read_json('bf://processed/*.ndjson.zst', format='newline_delimited')");
  EXPECT_EQ(cell(za, 0, 0), "2");  // compression detected from the extension
}

TEST_F(SqlEngineTest, ResultToJsonTypes) {
  SqlEngine engine(store_, {});
  auto r = engine.query(
      "SELECT 42::INTEGER AS i, 170141183460469231731687303715884105727::HUGEINT AS h, 2.5::DOUBLE AS d, "
      "123456789012345.678::DECIMAL(18,3) AS dec, true AS b, NULL::VARCHAR AS n, 'say \"hi\"\n' AS s, "
      "TIMESTAMP '2026-01-02 03:04:05.123456' AS ts, DATE '2026-01-02' AS dt, [1, 2] AS l, "
      "'nan'::DOUBLE AS nan, {'k': 1} AS st, TIMESTAMPTZ '2026-01-02 03:04:05+05:30' AS tz, "
      "'{\"a\":[1,2]}'::JSON AS j");
  ASSERT_EQ(r.types.size(), 14u);
  EXPECT_EQ(r.types[0], "INTEGER");
  EXPECT_EQ(r.types[3], "DECIMAL(18,3)");
  EXPECT_EQ(r.types[7], "TIMESTAMP");
  const std::string json = r.to_json();
  EXPECT_NE(json.find("\"h\":170141183460469231731687303715884105727"), std::string::npos) << json;
  EXPECT_NE(json.find("\"dec\":123456789012345.678"), std::string::npos) << json;
  auto v = boost::json::parse(json);
  ASSERT_TRUE(v.is_array());
  ASSERT_EQ(v.as_array().size(), 1u);
  const auto& o = v.as_array()[0].as_object();
  EXPECT_EQ(o.at("i").as_int64(), 42);
  EXPECT_TRUE(o.at("h").is_number());
  EXPECT_DOUBLE_EQ(o.at("d").as_double(), 2.5);
  EXPECT_TRUE(o.at("dec").is_number());
  EXPECT_EQ(o.at("b").as_bool(), true);
  EXPECT_TRUE(o.at("n").is_null());
  EXPECT_EQ(o.at("s").as_string(), "say \"hi\"\n");
  EXPECT_EQ(o.at("ts").as_string(), "2026-01-02T03:04:05.123456Z");
  EXPECT_EQ(o.at("dt").as_string(), "2026-01-02");
  EXPECT_EQ(o.at("l").as_string(), "[1, 2]");
  EXPECT_EQ(o.at("nan").as_string(), "nan");
  EXPECT_TRUE(o.at("st").is_string());
  EXPECT_EQ(o.at("tz").as_string(), "2026-01-01T21:34:05Z");  // sessions run in UTC
  EXPECT_EQ(o.at("j").as_object().at("a").as_array().size(), 2u);  // JSON values are embedded

  // Column order is kept; no rows -> empty array.
  EXPECT_EQ(engine.query("SELECT 1 AS z, 2 AS a WHERE false").to_json(), "[]");
  EXPECT_EQ(engine.query("SELECT 1 AS z, 2 AS a").to_json(), "[{\"z\":1,\"a\":2}]");
}

TEST_F(SqlEngineTest, ResultToTable) {
  SqlEngine engine(store_, {});
  auto r = engine.query("SELECT * FROM (VALUES (1, 'alpha'), (100, NULL)) t(num, name) ORDER BY num");
  EXPECT_EQ(r.to_table(),
            " num | name\n"
            "-----+-------\n"
            "   1 | alpha\n"
            " 100 | NULL\n"
            "(2 rows)\n");
  EXPECT_EQ(engine.query("SELECT 'x' AS a").to_table(),
            " a\n"
            "---\n"
            " x\n"
            "(1 row)\n");
  EXPECT_EQ(engine.query("SELECT 1 AS a WHERE false").to_table(),
            " a\n"
            "---\n"
            "(0 rows)\n");
}

TEST_F(SqlEngineTest, SandboxBlocksLocalFilesAndExtensions) {
  {
    SqlEngine writer(store_, {});
    write_two_partitions(writer);
  }
  const fs::path local_csv = dir_ / "local.csv";
  std::ofstream(local_csv) << "a,b\n1,2\n";
  const fs::path out = dir_ / "out.csv";

  SqlEngine::Options opts;
  opts.sandboxed = true;
  SqlEngine engine(store_, opts);

  // The lake is readable.
  auto r = engine.query(
      "SELECT count(*) FROM read_parquet('bf://parquet/**/*.parquet', hive_partitioning=true, union_by_name=true)");
  EXPECT_EQ(cell(r, 0, 0), "3");
  EXPECT_EQ(cell(engine.query("SELECT count(*) FROM glob('bf://parquet/**')"), 0, 0), "2");

  auto blocked = [&](const std::string& sql) {
    try {
      engine.query(sql);
      ADD_FAILURE() << "not blocked: " << sql;
    } catch (const SqlError& e) {
      // Blocked by the sandbox, not by some unrelated error.
      const std::string msg = e.what();
      EXPECT_TRUE(msg.find("Permission Error") != std::string::npos ||
                  msg.find("the configuration has been locked") != std::string::npos)
          << sql << " -> " << msg;
    }
  };
  const std::string csv = sql_quote(local_csv.string());
  // local reads, by every route
  blocked("SELECT * FROM read_csv(" + csv + ")");
  blocked("SELECT * FROM read_csv('/etc/passwd')");
  blocked("SELECT * FROM " + csv);
  blocked("SELECT * FROM read_text('/etc/hostname')");
  blocked("SELECT * FROM read_blob('/etc/hostname')");
  blocked("SELECT * FROM glob('/etc/*')");
  blocked("SELECT * FROM read_json('/etc/hostname')");
  blocked("SELECT * FROM read_parquet('file:///etc/hostname')");
  blocked("SELECT * FROM read_csv('bf://../../etc/passwd')");
  // local writes
  blocked("COPY (SELECT 1) TO " + sql_quote(out.string()));
  blocked("EXPORT DATABASE " + sql_quote((dir_ / "exp").string()));
  blocked("ATTACH " + sql_quote((dir_ / "x.duckdb").string()) + " AS x");
  // the lake is read-only for untrusted SQL
  blocked("COPY (SELECT 1 AS a) TO 'bf://parquet/evil.parquet' (FORMAT parquet)");
  // extensions
  blocked("INSTALL httpfs");
  blocked("LOAD httpfs");
  blocked("LOAD " + sql_quote((dir_ / "x.duckdb_extension").string()));
  // undoing the lock
  blocked("SET enable_external_access=true");
  blocked("SET lock_configuration=false");
  blocked("RESET enable_external_access");
  blocked("SET allowed_directories=['/']");
  blocked("SET GLOBAL enable_external_access=true");
  blocked("SET temp_directory='/tmp'");
  blocked("PRAGMA profiling_output='/tmp/bf-profile.json'");
  blocked("SELECT * FROM read_csv(" + csv + ")");  // still blocked after the attempts

  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(dir_ / "exp"));
  EXPECT_FALSE(fs::exists(dir_ / "x.duckdb"));
  EXPECT_FALSE(store_->head("parquet/evil.parquet").has_value());

  // A non-sandboxed engine can read local files (the control for the above).
  SqlEngine open(store_, {});
  EXPECT_EQ(cell(open.query("SELECT count(*) FROM read_csv(" + csv + ")"), 0, 0), "1");
}

TEST_F(SqlEngineTest, OptionsAreApplied) {
  SqlEngine::Options opts;
  opts.threads = 2;
  opts.memory_limit = "256MB";
  SqlEngine engine(store_, opts);
  EXPECT_EQ(cell(engine.query("SELECT current_setting('threads')"), 0, 0), "2");
  auto mem = cell(engine.query("SELECT current_setting('memory_limit')"), 0, 0);
  EXPECT_NE(mem.find("MiB"), std::string::npos) << mem;

  SqlEngine::Options bad;
  bad.memory_limit = "lots";
  EXPECT_THROW(SqlEngine(store_, bad), SqlError);
}

TEST_F(SqlEngineTest, QueryLimitsBoundTheFetchedBytes) {
  SqlEngine engine(store_, {});
  SqlEngine::QueryLimits limits;
  limits.max_bytes = 10000;
  // A big text value is refused by its length, before it is copied.
  try {
    engine.query("SELECT repeat('x', 100000) AS s", {}, limits);
    FAIL() << "not refused";
  } catch (const SqlResultTooLarge& e) {
    EXPECT_STREQ(e.what(), "result is larger than 10000 bytes");
  }
  // Many small values add up; non-text values count as rendered.
  EXPECT_THROW(engine.query("SELECT range FROM range(100000)", {}, limits), SqlResultTooLarge);
  EXPECT_THROW(engine.query("SELECT [range, range] FROM range(5000)", {}, limits), SqlResultTooLarge);
  // Under the limit: complete, NULLs kept.
  auto r = engine.query("SELECT 'abc' AS s, NULL::VARCHAR AS n, 42 AS i", {}, limits);
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(cell(r, 0, 0), "abc");
  EXPECT_EQ(cell(r, 0, 1), "<null>");
  EXPECT_EQ(cell(r, 0, 2), "42");
  limits.max_rows = 3;  // the row limit stops before the byte limit is reached
  EXPECT_EQ(engine.query("SELECT range FROM range(100000)", {}, limits).rows.size(), 3u);
}

TEST_F(SqlEngineTest, ConcurrentQueries) {
  SqlEngine engine(store_, {});
  write_two_partitions(engine);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = engine.query(
            "SELECT sum(a) FROM read_parquet('bf://parquet/**/*.parquet', union_by_name=true)");
        if (r.rows.size() == 1 && r.rows[0][0] == std::optional<std::string>("6")) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
}

TEST_F(SqlEngineTest, IsSingleSelect) {
  SqlEngine engine(store_, {});
  std::string why;
  EXPECT_TRUE(engine.is_single_select("SELECT 1", &why)) << why;
  EXPECT_TRUE(engine.is_single_select("  select * from read_parquet('bf://x/*.parquet') ;  ", &why)) << why;
  EXPECT_TRUE(engine.is_single_select("WITH t AS (SELECT 1 AS a) SELECT a FROM t", &why)) << why;
  EXPECT_TRUE(engine.is_single_select("SELECT 1 UNION ALL SELECT 2", &why)) << why;
  EXPECT_TRUE(engine.is_single_select("FROM range(3)", &why)) << why;

  EXPECT_FALSE(engine.is_single_select("INSERT INTO t VALUES (1)", &why));
  EXPECT_EQ(why, "only SELECT statements are allowed, got INSERT");
  EXPECT_FALSE(engine.is_single_select("DROP TABLE t", &why));
  EXPECT_NE(why.find("got DROP"), std::string::npos) << why;
  EXPECT_FALSE(engine.is_single_select("COPY (SELECT 1) TO '/tmp/x'", &why));
  EXPECT_NE(why.find("got COPY"), std::string::npos) << why;
  EXPECT_FALSE(engine.is_single_select("SELECT 1; SELECT 2", &why));
  EXPECT_NE(why.find("only one statement allowed"), std::string::npos) << why;
  EXPECT_FALSE(engine.is_single_select("SELECT 1; DROP TABLE t", &why));
  EXPECT_FALSE(engine.is_single_select("this is not sql", &why));
  EXPECT_NE(why.find("syntax error"), std::string::npos) << why;
  EXPECT_FALSE(engine.is_single_select("", &why));
  EXPECT_FALSE(engine.is_single_select("ATTACH 'x.db'", &why));
  EXPECT_FALSE(engine.is_single_select("SET enable_external_access=true", &why));
  EXPECT_FALSE(engine.is_single_select("PRAGMA version", &why));
  EXPECT_FALSE(engine.is_single_select("SELECT 1", nullptr) == false);
}

TEST(SqlQuoting, QuoteAndIdent) {
  EXPECT_EQ(sql_quote("it's"), "'it''s'");
  EXPECT_EQ(sql_quote(""), "''");
  EXPECT_EQ(sql_ident("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(sql_ident("year"), "\"year\"");
}

}  // namespace
}  // namespace bf
