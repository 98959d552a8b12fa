// ParquetSplice (packer/parquet_splice.h): Parquet files DuckDB wrote, concatenated
// by copying their row groups, read back by DuckDB with every value and type the
// sources had; files it must not splice are refused before anything is written; a
// corrupt or hostile footer is an error, never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "common/ulid.h"
#include "packer/parquet_splice.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

using namespace bf;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream is(p, std::ios::binary);
  std::stringstream ss;
  ss << is.rdbuf();
  return ss.str();
}

ParquetSpliceSource from_file(const fs::path& p) {
  return {p.string(), fs::file_size(p), [p](uint64_t offset, uint64_t length) {
            std::string all = slurp(p);
            return all.substr(std::min<uint64_t>(offset, all.size()), length);
          }};
}

ParquetSpliceSource from_bytes(std::string name, std::string bytes) {
  auto shared = std::make_shared<std::string>(std::move(bytes));
  return {std::move(name), shared->size(), [shared](uint64_t offset, uint64_t length) {
            return shared->substr(std::min<uint64_t>(offset, shared->size()), length);
          }};
}

class ParquetSpliceTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-splice-" + new_ulid());
  std::shared_ptr<LocalStore> store;
  std::unique_ptr<SqlEngine> engine;
  void SetUp() override {
    fs::create_directories(dir);
    store = std::make_shared<LocalStore>(dir / "store");
    engine = std::make_unique<SqlEngine>(store, SqlEngine::Options{});
  }
  void TearDown() override {
    engine.reset();
    fs::remove_all(dir);
  }
  std::string q(const std::string& sql) {
    auto r = engine->query(sql);
    return r.rows.empty() || r.rows[0].empty() || !r.rows[0][0] ? "" : *r.rows[0][0];
  }
  // rows [from, to) of a table with every kind of column the lake writes, NULLs in
  // some, as DuckDB writes a part (zstd, small row groups so files have several).
  fs::path part(const std::string& name, int from, int to, int row_group = 1000) {
    const fs::path p = dir / (name + ".parquet");
    engine->query(
        "COPY (SELECT i AS n, (TIMESTAMP '2026-03-01 10:00:00' + to_microseconds(i * 1000))::TIMESTAMP AS _time, "
        "'host' || (i % 7) AS hostname, CASE WHEN i % 5 = 0 THEN NULL ELSE md5(i::VARCHAR) END AS message, "
        "i * 1.5 AS ratio, i % 2 = 0 AS even, "
        "{'a': i, 'b': CASE WHEN i % 3 = 0 THEN NULL ELSE 'b' || i END, 'c': {'d': [i, i + 1]}} AS o, "
        "CASE WHEN i % 4 = 0 THEN [] ELSE ['x' || i, 'y'] END AS tags, "
        "MAP {'k' || (i % 3): i::VARCHAR} AS m, "
        "encode('bytes' || i)::BLOB AS raw "
        "FROM range(" + std::to_string(from) + ", " + std::to_string(to) + ") t(i) ORDER BY i) TO '" + p.string() +
        "' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE " + std::to_string(row_group) + ")");
    return p;
  }
};

TEST_F(ParquetSpliceTest, RowGroupsOfFilesWithOneSchemaBecomeOneFileWithEveryValue) {
  const fs::path a = part("a", 0, 2500), b = part("b", 2500, 2600), c = part("c", 2600, 7000, 2048);
  ParquetSplice splice({from_file(a), from_file(b), from_file(c)});
  ASSERT_EQ(splice.refusal(), "");
  EXPECT_EQ(splice.rows(), 7000u);
  const fs::path out = dir / "out.parquet";
  const uint64_t written = splice.write(out);
  EXPECT_EQ(written, fs::file_size(out));
  const std::string merged = "read_parquet('" + out.string() + "')";
  const std::string sources = "read_parquet(['" + a.string() + "', '" + b.string() + "', '" + c.string() + "'])";
  EXPECT_EQ(q("SELECT count(*) FROM " + merged), "7000");
  EXPECT_EQ(q("SELECT count(*) FROM parquet_metadata('" + out.string() + "') WHERE path_in_schema = 'n'"),
            q("SELECT count(*) FROM parquet_metadata(" + sources.substr(13) + " WHERE path_in_schema = 'n'"))
      << "every source row group, none merged or split";
  // The same rows with the same values and types, in the files' order.
  EXPECT_EQ(q("SELECT count(*) FROM (SELECT * FROM " + merged + " EXCEPT ALL SELECT * FROM " + sources + ")"), "0");
  EXPECT_EQ(q("SELECT count(*) FROM (SELECT * FROM " + sources + " EXCEPT ALL SELECT * FROM " + merged + ")"), "0");
  EXPECT_EQ(q("SELECT string_agg(column_type, ',') FROM (DESCRIBE SELECT * FROM " + merged + ")"),
            q("SELECT string_agg(column_type, ',') FROM (DESCRIBE SELECT * FROM read_parquet('" + a.string() + "'))"));
  EXPECT_EQ(q("SELECT count(*) FROM (SELECT n, lag(n) OVER (ORDER BY file_row_number) AS prev FROM read_parquet('" +
              out.string() + "', file_row_number=true)) WHERE n <> prev + 1"),
            "0")
      << "rows in the order of the files given";
  // Statistics and Bloom filters still work on the moved row groups: a point lookup
  // and a range filter give the right rows.
  EXPECT_EQ(q("SELECT count(*) FROM " + merged + " WHERE hostname = 'host3'"), "1000");
  EXPECT_EQ(q("SELECT count(*) FROM " + merged + " WHERE message = md5('6001')"), "1");
  EXPECT_EQ(q("SELECT count(*) FROM " + merged + " WHERE _time >= TIMESTAMP '2026-03-01 10:00:05'"), "2000");
  EXPECT_EQ(q("SELECT sum(o.c.d[2]) FROM " + merged), q("SELECT sum(o.c.d[2]) FROM " + sources));
}

TEST_F(ParquetSpliceTest, FilesThatDoNotShareALayoutAreRefusedBeforeAnythingIsWritten) {
  const fs::path a = part("a", 0, 100);
  const fs::path other = dir / "other.parquet";
  engine->query("COPY (SELECT i AS n, 'x' AS extra FROM range(10) t(i)) TO '" + other.string() + "' (FORMAT parquet)");
  ParquetSplice splice({from_file(a), from_file(other)});
  EXPECT_NE(splice.refusal().find("another schema"), std::string::npos) << splice.refusal();
  EXPECT_THROW(splice.write(dir / "out.parquet"), std::logic_error);
  EXPECT_FALSE(fs::exists(dir / "out.parquet"));
  // The same columns in another order are another schema too.
  const fs::path swapped = dir / "swapped.parquet";
  engine->query("COPY (SELECT _time, n, hostname, message, ratio, even, o, tags, m, raw FROM read_parquet('" + a.string() +
                "')) TO '" + swapped.string() + "' (FORMAT parquet)");
  EXPECT_NE(ParquetSplice({from_file(a), from_file(swapped)}).refusal(), "");
}

TEST_F(ParquetSpliceTest, CorruptAndHostileFootersAreErrorsNeverCrashes) {
  const std::string good = slurp(part("a", 0, 300, 100));
  EXPECT_THROW(ParquetSplice({from_bytes("empty", "")}), std::runtime_error);
  EXPECT_THROW(ParquetSplice({from_bytes("text", std::string(100, 'x'))}), std::runtime_error);
  std::string huge_length = good;
  huge_length[huge_length.size() - 5] = '\x7f';  // footer length past the start
  EXPECT_THROW(ParquetSplice({from_bytes("length", huge_length)}), std::runtime_error);
  // Every truncation of the footer, and random bytes in it: an error or a refusal, and
  // whatever is accepted still writes a file.
  const uint32_t footer = static_cast<uint8_t>(good[good.size() - 8]) | static_cast<uint8_t>(good[good.size() - 7]) << 8 |
                          static_cast<uint8_t>(good[good.size() - 6]) << 16;
  const size_t start = good.size() - 8 - footer;
  std::mt19937 rng(7);
  int accepted = 0;
  for (int round = 0; round < 400; ++round) {
    std::string bad = good;
    if (round < 100) {  // cut the footer short, keeping the length word and magic
      const size_t keep = rng() % footer;
      bad = good.substr(0, start + keep) + good.substr(good.size() - 8);
      const uint32_t len = static_cast<uint32_t>(keep);
      for (int k = 0; k < 4; ++k) bad[bad.size() - 8 + k] = static_cast<char>(len >> (8 * k));
    } else {
      for (int k = 0; k < 1 + round % 8; ++k) bad[start + rng() % footer] = static_cast<char>(rng());
    }
    try {
      ParquetSplice splice({from_bytes("bad", bad), from_bytes("bad2", bad)});
      if (splice.refusal().empty()) {
        // Whatever is accepted was checked to lie inside the file: it writes a whole file.
        const fs::path out = dir / "fuzzed.parquet";
        EXPECT_EQ(splice.write(out), fs::file_size(out));
        ++accepted;
      }
    } catch (const std::runtime_error&) {
    }
  }
  EXPECT_LT(accepted, 400) << "corruption must be noticed at least sometimes";
  ParquetSplice ok({from_bytes("good", good)});
  EXPECT_EQ(ok.refusal(), "");
  EXPECT_EQ(ok.rows(), 300u);
}

}  // namespace
