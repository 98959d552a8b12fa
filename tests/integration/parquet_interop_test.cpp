// The packer's Parquet read by implementations other than the one that wrote it:
// hyparquet (npm, pure JavaScript) checks physical and logical types and values, and
// DuckDB's hive_partitioning resolves the year/month/day/hour partition columns.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>

#include "common/batch.h"
#include "common/batch_shape.h"
#include "common/catalog.h"
#include "common/metrics.h"
#include "common/ulid.h"
#include "fixtures/process.h"
#include "fixtures/packer_options.h"
#include "packer/packer.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

using namespace bf;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

class ParquetInterop : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-interop-" + new_ulid());
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(dir);
  DatasetRef ref{"acme", "web", "logs"};

  void TearDown() override { fs::remove_all(dir); }
  // Packs the events as the piper would hand them over; returns the committed parts.
  std::vector<CommitPart> pack(const std::vector<Event>& events) {
    auto catalog = std::make_shared<Catalog>();
    catalog->add_dataset(DatasetInfo{ref, {}});
    BatchShape shape;
    for (const auto& e : events) shape.add(e);
    store->put(processed_key(ref, new_ulid()), encode_batch(events, BatchEnvelope{{"shape", shape.to_json()}}));
    Packer(bf::test::packing_at_once(), catalog, store).run_once();
    return committed_parts(*store, ref);
  }
  json::object hyparquet(const std::string& key) {
    auto [code, out] = test::run_command("node " + std::string(BF_SOURCE_DIR) + "/tests/servers/read_parquet.mjs " +
                                         (dir / key).string());
    EXPECT_EQ(code, 0) << out;
    return json::parse(out).as_object();
  }
};

Event event(const std::string& time, int64_t n, double ratio, const std::string& host, bool ok) {
  return Event{{"_time", time},
               {"_received", "2026-03-01T12:00:00Z"},
               {"n", n},
               {"ratio", ratio},
               {"host", host},
               {"ok", ok},
               {"tags", json::array{"a", host}},
               {"geo", json::object{{"city", host + "-city"}, {"lat", ratio}}}};
}

TEST_F(ParquetInterop, HyparquetReadsTypesAndValuesAsWritten) {
  // Out of order within one hour: hyparquet must see them sorted by _time.
  const auto parts = pack({event("2026-03-01T10:30:00.000001Z", 2, 0.25, "web-2", false),
                           event("2026-03-01T10:05:00Z", 1, 1.5, "web-1", true),
                           event("2026-03-01T10:59:59.5Z", -3, -2.0, "web-3", true)});
  ASSERT_EQ(parts.size(), 1u);
  const json::object file = hyparquet(parts[0].key);
  EXPECT_EQ(file.at("codecs"), (json::array{"ZSTD"}));
  std::map<std::string, std::pair<std::string, std::string>> types;
  for (const auto& c : file.at("columns").as_array()) {
    const auto& o = c.as_object();
    types[std::string(o.at("name").as_string())] = {
        std::string(o.at("type").as_string()), o.at("logical").is_string() ? std::string(o.at("logical").as_string()) : ""};
  }
  EXPECT_EQ(types["_time"].first, "INT64");
  EXPECT_EQ(types["_time"].second, "TIMESTAMP");
  EXPECT_EQ(types["n"].first, "INT64");
  EXPECT_EQ(types["ratio"].first, "DOUBLE");
  EXPECT_EQ(types["host"].first, "BYTE_ARRAY");
  EXPECT_EQ(types["host"].second, "UTF8");
  EXPECT_EQ(types["ok"].first, "BOOLEAN");
  EXPECT_EQ(types["tags"].second, "LIST");
  EXPECT_EQ(types["geo"].first, "GROUP");  // a STRUCT, not JSON text
  const auto& rows = file.at("rows").as_array();
  ASSERT_EQ(rows.size(), 3u);
  const std::vector<std::string> times = {"2026-03-01T10:05:00.000Z", "2026-03-01T10:30:00.000Z", "2026-03-01T10:59:59.500Z"};
  const std::vector<std::string> n = {"1", "2", "-3"};
  const std::vector<double> ratio = {1.5, 0.25, -2.0};
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i].as_object();
    EXPECT_EQ(r.at("_time"), json::value(times[i])) << i;  // ms in a JS Date; the µs stay in the file
    EXPECT_EQ(r.at("n"), json::value(n[i])) << i;          // INT64 read as BigInt
    EXPECT_EQ(r.at("ratio").to_number<double>(), ratio[i]) << i;
    EXPECT_EQ(r.at("host"), json::value("web-" + n[i].substr(n[i].size() - 1))) << i;
    EXPECT_EQ(r.at("ok").as_bool(), i != 1) << i;
    EXPECT_EQ(r.at("tags"), (json::array{"a", r.at("host")})) << i;
    EXPECT_EQ(r.at("geo").as_object().at("city"), json::value(std::string(r.at("host").as_string()) + "-city")) << i;
    EXPECT_EQ(r.at("geo").as_object().at("lat").to_number<double>(), ratio[i]) << i;
  }
}

// Compaction of parts that do not overlap in time copies their row groups as bytes
// into one file with a footer of its own (packer/parquet_splice.h): an independent
// reader must read that file as it reads the packer's own.
TEST_F(ParquetInterop, HyparquetReadsASplicedCompactionAsThePartsItReplaced) {
  auto catalog = std::make_shared<Catalog>();
  catalog->add_dataset(DatasetInfo{ref, {}});
  Packer filler(bf::test::packing_at_once(), catalog, store);
  int64_t n = 0;
  for (int part = 0; part < 3; ++part) {
    std::vector<Event> events;
    for (int i = 0; i < 40; ++i, ++n) {
      char t[40];
      std::snprintf(t, sizeof t, "2026-03-01T10:%02d:%02d.25Z", int(n / 60), int(n % 60));
      events.push_back(event(t, n, n * 0.5, "web-" + std::to_string(n % 3), n % 2 == 0));
    }
    BatchShape shape;
    for (const auto& e : events) shape.add(e);
    store->put(processed_key(ref, new_ulid()), encode_batch(events, BatchEnvelope{{"shape", shape.to_json()}}));
    ASSERT_EQ(filler.run_once(), 1u);
  }
  ASSERT_EQ(committed_parts(*store, ref).size(), 3u);
  const Labels labels{{"tenant", "web"}, {"dataset", "logs"}};
  const int64_t spliced = metrics().value("bf_packer_compaction_spliced_total", labels);
  PackerOptions o = bf::test::packing_at_once();
  o.compaction.enabled = true;
  o.compaction.min_files = 2;
  o.compaction.interval = std::chrono::milliseconds(0);
  Packer(o, catalog, store).run_once();
  const auto parts = committed_parts(*store, ref);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].rows, 120u);
  EXPECT_EQ(metrics().value("bf_packer_compaction_spliced_total", labels), spliced + 1) << "the row groups were copied";

  const json::object file = hyparquet(parts[0].key);
  EXPECT_EQ(file.at("codecs"), (json::array{"ZSTD"}));
  const auto& rows = file.at("rows").as_array();
  ASSERT_EQ(rows.size(), 120u);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i].as_object();
    const std::string host = "web-" + std::to_string(i % 3);
    EXPECT_EQ(r.at("n"), json::value(std::to_string(i))) << i;  // in _time order across the three parts
    EXPECT_EQ(r.at("ratio").to_number<double>(), i * 0.5) << i;
    EXPECT_EQ(r.at("host"), json::value(host)) << i;
    EXPECT_EQ(r.at("ok").as_bool(), i % 2 == 0) << i;
    EXPECT_EQ(r.at("tags"), (json::array{"a", json::value(host)})) << i;
    EXPECT_EQ(r.at("geo").as_object().at("city"), json::value(host + "-city")) << i;
  }
}

TEST_F(ParquetInterop, DuckDbHivePartitioningResolvesThePartitionColumns) {
  const auto parts = pack({event("2026-03-01T10:05:00Z", 1, 0, "a", true), event("2026-03-01T23:59:59Z", 2, 0, "b", true),
                           event("2026-03-02T00:00:00Z", 3, 0, "c", true), event("2027-01-01T00:00:00Z", 4, 0, "d", true)});
  ASSERT_EQ(parts.size(), 4u);  // three hours; 2027 is more than a day ahead: quarantined, outside the Hive tree
  SqlEngine engine(store, {});
  const std::string lake = "read_parquet('bf://" + parquet_prefix(ref) + "year=*/**/*.parquet', hive_partitioning=true)";
  // DuckDB infers year as BIGINT; the zero-padded month/day/hour stay VARCHAR ('03')
  // unless hive_types says otherwise (docs/storage.md).
  auto r = engine.query("SELECT n, typeof(year), typeof(month), year, month, day, hour, account, tenant, dataset FROM " + lake +
                        " ORDER BY n");
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0], (SqlRow{"1", "BIGINT", "VARCHAR", "2026", "03", "01", "10", "acme", "web", "logs"}));
  EXPECT_EQ(r.rows[1], (SqlRow{"2", "BIGINT", "VARCHAR", "2026", "03", "01", "23", "acme", "web", "logs"}));
  EXPECT_EQ(r.rows[2], (SqlRow{"3", "BIGINT", "VARCHAR", "2026", "03", "02", "00", "acme", "web", "logs"}));
  auto typed = engine.query("SELECT typeof(month), max(hour) FROM read_parquet('bf://" + parquet_prefix(ref) +
                            "year=*/**/*.parquet', hive_partitioning=true, hive_types={'year': INTEGER, 'month': INTEGER, "
                            "'day': INTEGER, 'hour': INTEGER}) GROUP BY ALL");
  EXPECT_EQ(typed.rows.at(0), (SqlRow{"INTEGER", "23"}));
  // The partition columns agree with _time, and a filter on them prunes files.
  EXPECT_EQ(engine.query("SELECT count(*) FROM " + lake + " WHERE year <> year(_time) OR month <> month(_time) OR day <> "
                         "day(_time) OR hour <> hour(_time)").rows[0][0], "0");
  auto pruned = engine.query("SELECT count(DISTINCT filename), min(n) FROM read_parquet('bf://" + parquet_prefix(ref) +
                             "year=*/**/*.parquet', hive_partitioning=true, filename=true) WHERE day = '02'");
  EXPECT_EQ(pruned.rows[0], (SqlRow{"1", "3"}));
}

}  // namespace
