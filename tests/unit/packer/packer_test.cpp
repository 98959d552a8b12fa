#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>

#include "common/batch.h"
#include "common/catalog.h"
#include "common/metrics.h"
#include "common/ulid.h"
#include "packer/packer.h"
#include "storage/layout.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

using namespace bf;
namespace fs = std::filesystem;

class PackerTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-packer-" + new_ulid());
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(dir);
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  DatasetRef ref{"acme", "web", "logs"};
  std::unique_ptr<Packer> packer;

  void SetUp() override {
    catalog->add_dataset(DatasetInfo{ref, {}});
    packer = std::make_unique<Packer>(PackerOptions{}, catalog, store);
  }
  void TearDown() override {
    packer.reset();
    fs::remove_all(dir);
  }
  void add_batch(std::vector<Event> events) { store->put(processed_key(ref, new_ulid()), encode_batch(events)); }
  SqlResult query(const std::string& select) {
    SqlEngine engine(store, {});
    return engine.query(select);
  }
  std::string lake() {
    return "read_parquet('bf://" + parquet_prefix(ref) + "**/*.parquet', hive_partitioning=true, union_by_name=true, filename=true)";
  }
};

TEST_F(PackerTest, PartitionsByEventHourAndRemovesInputs) {
  add_batch({Event{{"_time", "2026-03-01T10:15:00Z"}, {"_received", "2026-03-01T12:00:00Z"}, {"n", 1}},
             Event{{"_time", "2026-03-01T11:59:59.999999+00:00"}, {"_received", "2026-03-01T12:00:00Z"}, {"n", 2}}});
  add_batch({Event{{"_time", "2026-03-01T12:30:00+02:00"}, {"_received", "2026-03-01T12:00:00Z"}, {"n", 3}}});
  EXPECT_EQ(packer->run_once(), 2u);  // hours 10 and 11 (12:30+02:00 is 10:30Z)
  EXPECT_TRUE(store->list_all("processed/").empty());
  auto parts = store->list_all(parquet_prefix(ref));
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_NE(parts[0].key.find("year=2026/month=03/day=01/hour=10/part-"), std::string::npos) << parts[0].key;
  EXPECT_NE(parts[1].key.find("year=2026/month=03/day=01/hour=11/part-"), std::string::npos) << parts[1].key;
  auto r = query("SELECT n, CAST(_time AS VARCHAR), typeof(_time) FROM " + lake() + " ORDER BY n");
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[2][1], "2026-03-01 10:30:00");
  EXPECT_EQ(r.rows[1][1], "2026-03-01 11:59:59.999999");
  EXPECT_EQ(r.rows[0][2], "TIMESTAMP");
  EXPECT_EQ(packer->run_once(), 0u);
}

TEST_F(PackerTest, LaterFieldsBecomeNewColumnsAndTheSchemaRegistryRecordsThem) {
  add_batch({Event{{"_time", "2026-03-01T10:00:00Z"}, {"_received", "2026-03-01T10:00:00Z"}, {"a", 1}}});
  ASSERT_EQ(packer->run_once(), 1u);
  add_batch({Event{{"_time", "2026-03-01T10:05:00Z"}, {"_received", "2026-03-01T10:05:00Z"}, {"a", 2}, {"b", "new"}}});
  ASSERT_EQ(packer->run_once(), 1u);
  auto r = query("SELECT a, b FROM " + lake() + " ORDER BY a");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_FALSE(r.rows[0][1].has_value());  // the old file has no b
  EXPECT_EQ(r.rows[1][1], "new");
  auto schema = boost::json::parse(store->get(schema_key(ref))).as_object();
  EXPECT_EQ(schema.at("version").as_int64(), 2);
  bool found_b = false;
  for (const auto& c : schema.at("columns").as_array()) {
    if (c.at("name") == "b") {
      found_b = true;
      EXPECT_EQ(c.at("added_in_version").as_int64(), 2);
      EXPECT_EQ(c.at("type").as_string(), "VARCHAR");
    }
    if (c.at("name") == "_time") {
      EXPECT_EQ(c.at("type").as_string(), "TIMESTAMP");
    }
  }
  EXPECT_TRUE(found_b);
}

TEST_F(PackerTest, UnusableTimeFallsBackToReceivedAndKeepsTheOriginal) {
  auto& fallbacks = metrics().counter("bf_packer_time_fallbacks_total", "", {{"field", "_time"}});
  uint64_t before = fallbacks.value();
  add_batch({Event{{"_time", "last tuesday"}, {"_received", "2026-03-01T10:00:00Z"}, {"n", 1}}});
  ASSERT_EQ(packer->run_once(), 1u);
  auto r = query("SELECT CAST(_time AS VARCHAR), _time_raw FROM " + lake());
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], "2026-03-01 10:00:00");
  EXPECT_EQ(r.rows[0][1], "last tuesday");
  EXPECT_EQ(fallbacks.value(), before + 1);
}

TEST_F(PackerTest, EpochNumbersAreEventTimes) {
  add_batch({Event{{"_time", 1772359200}, {"_received", 1772359200123}, {"n", 1}}});  // 2026-03-01T10:00:00Z
  ASSERT_EQ(packer->run_once(), 1u);
  auto r = query("SELECT CAST(_time AS VARCHAR), CAST(_received AS VARCHAR), hour FROM " + lake());
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], "2026-03-01 10:00:00");
  EXPECT_EQ(r.rows[0][1], "2026-03-01 10:00:00.123");
  EXPECT_EQ(r.rows[0][2], "10");
}

TEST_F(PackerTest, CorruptInputIsQuarantinedNotLost) {
  std::string bad = processed_key(ref, new_ulid());
  store->put(bad, "garbage");
  add_batch({Event{{"_time", "2026-03-01T10:00:00Z"}, {"_received", "2026-03-01T10:00:00Z"}, {"n", 1}}});
  EXPECT_EQ(packer->run_once(), 1u);
  EXPECT_EQ(store->get("quarantine/" + bad), "garbage");
  EXPECT_TRUE(store->list_all("processed/").empty());
}

TEST_F(PackerTest, BatchDuckDbCannotConvertIsQuarantinedAfterHalving) {
  PackerOptions tight;
  tight.memory_limit = "1KB";  // every conversion fails: the packer must not loop forever
  packer = std::make_unique<Packer>(tight, catalog, store);
  add_batch({Event{{"_time", "2026-03-01T10:00:00Z"}, {"_received", "2026-03-01T10:00:00Z"}, {"n", 1}}});
  add_batch({Event{{"_time", "2026-03-01T10:00:00Z"}, {"_received", "2026-03-01T10:00:00Z"}, {"n", 2}}});
  EXPECT_EQ(packer->run_once(), 0u);
  EXPECT_EQ(store->list_all("quarantine/processed/").size(), 1u);  // one per run, after halving to 1
  EXPECT_EQ(store->list_all("processed/").size(), 1u);
  EXPECT_EQ(packer->run_once(), 0u);
  EXPECT_EQ(store->list_all("quarantine/processed/").size(), 2u);
  EXPECT_TRUE(store->list_all(parquet_prefix(ref)).empty());
}
