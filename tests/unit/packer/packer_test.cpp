#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "common/batch.h"
#include "common/batch_shape.h"
#include "common/catalog.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/ulid.h"
#include "fixtures/component_contract.h"
#include "fixtures/hooked_store.h"
#include "common/config.h"
#include "fixtures/packer_options.h"
#include "packer/packer.h"
#include "packer/retention.h"
#include "storage/layout.h"
#include "storage/lease_store.h"
#include "storage/ledger.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

using namespace bf;
namespace fs = std::filesystem;

namespace {
// A processed object as the piper writes it: the batch's shape in the envelope.
std::string piper_object(const std::vector<Event>& events) {
  BatchShape shape;
  for (const auto& e : events) shape.add(e);
  return encode_batch(events, BatchEnvelope{{"shape", shape.to_json()}});
}
}  // namespace

class PackerTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-packer-" + new_ulid());
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(dir);
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  DatasetRef ref{"acme", "web", "logs"};
  std::unique_ptr<Packer> packer;

  void SetUp() override {
    catalog->add_dataset(DatasetInfo{ref, {}});
    packer = std::make_unique<Packer>(bf::test::packing_at_once(), catalog, store);
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
  // The dataset's hour partitions (the quarantine partition is outside their Hive tree).
  std::string lake() {
    return "read_parquet('bf://" + parquet_prefix(ref) + "year=*/**/*.parquet', hive_partitioning=true, union_by_name=true, filename=true)";
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

// The lag the packer reports to control: how long the oldest processed/ object the
// last run found had waited; 0 once nothing waits.
TEST_F(PackerTest, TheLastRunsLagIsTheAgeOfTheOldestWaitingInput) {
  add_batch({Event{{"_time", "2026-01-01T00:00:00Z"}, {"n", 1}}});
  fs::path file;
  for (const auto& e : fs::recursive_directory_iterator(dir / "processed"))
    if (e.is_regular_file()) file = e.path();
  ASSERT_FALSE(file.empty());
  fs::last_write_time(file, fs::file_time_type::clock::now() - std::chrono::seconds(40));
  packer->run_once();
  const int64_t lag = metrics().value("bf_packer_lag_milliseconds");
  EXPECT_GE(lag, 39000);
  EXPECT_LT(lag, 80000);
  EXPECT_TRUE(store->list_all("processed/").empty());
  packer->run_once();
  EXPECT_EQ(metrics().value("bf_packer_lag_milliseconds"), 0);
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
  PackerOptions o = bf::test::packing_at_once();
  // Wide enough for a loaded machine and a store whose mtimes are whole seconds.
  o.quarantine_after = std::chrono::milliseconds(1500);
  packer = std::make_unique<Packer>(o, catalog, store);
  std::string bad = processed_key(ref, new_ulid());
  store->put(bad, "garbage");
  add_batch({Event{{"_time", "2026-03-01T10:00:00Z"}, {"_received", "2026-03-01T10:00:00Z"}, {"n", 1}}});
  EXPECT_EQ(packer->run_once(), 1u);
  EXPECT_EQ(store->get(bad), "garbage");  // young: left for the writer's retry
  std::this_thread::sleep_for(std::chrono::milliseconds(2600));
  EXPECT_EQ(packer->run_once(), 0u);
  EXPECT_EQ(store->get("quarantine/" + bad), "garbage");
  EXPECT_TRUE(store->list_all("processed/").empty());
}

TEST_F(PackerTest, BatchDuckDbCannotConvertIsQuarantinedAfterHalving) {
  PackerOptions tight = bf::test::packing_at_once();
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

// --- exactly once through crashes ---------------------------------------------

namespace {
Event ev(int n) { return Event{{"_time", "2026-03-01T10:00:00Z"}, {"_received", "2026-03-01T10:00:00Z"}, {"n", n}}; }
}  // namespace

TEST_F(PackerTest, CommitRecordsPartsAndBatchesThenRemovesInputs) {
  const std::string a = new_ulid(), b = new_ulid();
  put_batch_record(*store, ref, a, BatchRecord{"digest-a", ""});
  store->put(processed_key(ref, a), encode_batch({ev(1), ev(2)}));
  store->put(processed_key(ref, b), encode_batch({ev(3)}));
  EXPECT_EQ(packer->run_once(), 1u);
  auto parts = committed_parts(*store, ref);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].rows, 3u);
  EXPECT_TRUE(store->head(parts[0].key).has_value());
  EXPECT_TRUE(pending_manifests(*store, ref).empty());  // folded into parts.json
  auto ra = get_batch_record(*store, ref, a), rb = get_batch_record(*store, ref, b);
  ASSERT_TRUE(ra && rb);
  EXPECT_TRUE(ra->committed());
  EXPECT_EQ(ra->digest, "digest-a");  // kept, so a later reuse of the id is still told apart
  EXPECT_TRUE(rb->committed());
  EXPECT_TRUE(store->list_all("processed/").empty());
}

TEST_F(PackerTest, CommittedBatchDeliveredAgainIsNeverPackedTwice) {
  const std::string id = new_ulid();
  store->put(processed_key(ref, id), encode_batch({ev(1)}));
  ASSERT_EQ(packer->run_once(), 1u);
  auto& dups = metrics().counter("bf_packer_duplicate_batches_total", "", {{"tenant", "web"}, {"dataset", "logs"}});
  const uint64_t before = dups.value();
  // A stage re-delivers it after a crash (receiver re-upload, piper rerun).
  store->put(processed_key(ref, id), encode_batch({ev(1)}));
  EXPECT_EQ(packer->run_once(), 0u);
  EXPECT_TRUE(store->list_all("processed/").empty());
  EXPECT_EQ(dups.value(), before + 1);
  EXPECT_EQ(query("SELECT count(*) FROM " + lake()).rows[0][0], "1");
}

TEST_F(PackerTest, KilledAfterManifestTheNextRunFinishesTheCommitWithoutRepacking) {
  // State a kill leaves between the manifest and the input deletion.
  const std::string id = new_ulid();
  store->put(processed_key(ref, id), encode_batch({ev(1), ev(2)}));
  const std::string key = parquet_part_key(ref, 0, new_ulid());
  SqlEngine(store, {}).execute("COPY (SELECT 1 AS n UNION ALL SELECT 2) TO 'bf://" + key + "' (FORMAT parquet)");
  write_manifest(*store, ref, CommitManifest{new_ulid(), {CommitPart{key, 2}}, {{id, "d"}}});
  packer.reset();
  packer = std::make_unique<Packer>(bf::test::packing_at_once(), catalog, store);
  EXPECT_EQ(packer->run_once(), 0u);
  EXPECT_TRUE(store->list_all("processed/").empty());
  auto parts = committed_parts(*store, ref);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].key, key);
  EXPECT_TRUE(get_batch_record(*store, ref, id)->committed());
  EXPECT_EQ(query("SELECT count(*) FROM " + lake()).rows[0][0], "2");
}

TEST_F(PackerTest, KilledBeforeManifestTheOrphanPartIsRemovedAndInputsPackedOnce) {
  // State a kill leaves between the part upload and the manifest.
  store->put(processed_key(ref, new_ulid()), encode_batch({ev(1), ev(2)}));
  const std::string orphan = parquet_part_key(ref, 0, new_ulid());
  SqlEngine(store, {}).execute("COPY (SELECT 1 AS n UNION ALL SELECT 2) TO 'bf://" + orphan + "' (FORMAT parquet)");
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  packer.reset();
  packer = std::make_unique<Packer>(bf::test::packing_at_once(), catalog, store);
  EXPECT_EQ(packer->run_once(), 1u);
  EXPECT_FALSE(store->head(orphan).has_value());
  auto parts = store->list_all(parquet_prefix(ref));
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(committed_parts(*store, ref).at(0).key, parts[0].key);
  EXPECT_EQ(query("SELECT count(*) FROM " + lake()).rows[0][0], "2");
}

TEST_F(PackerTest, TempDirectoriesOfKilledPackersAreRemovedAtStart) {
  fs::path temp = dir / "tmp";
  fs::create_directories(temp / "bytefreezer-packer-999999999-01ARZ3NDEKTSV4RRFFQ69G5FAV");  // no such pid
  std::ofstream(temp / "bytefreezer-packer-999999999-01ARZ3NDEKTSV4RRFFQ69G5FAV" / "x.ndjson") << "{}";
  fs::create_directories(temp / "unrelated");
  PackerOptions o = bf::test::packing_at_once();
  o.temp_dir = temp.string();
  auto p = std::make_unique<Packer>(o, catalog, store);
  EXPECT_FALSE(fs::exists(temp / "bytefreezer-packer-999999999-01ARZ3NDEKTSV4RRFFQ69G5FAV"));
  EXPECT_TRUE(fs::exists(temp / "unrelated"));
  auto mine = [&] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(temp))
      if (e.path().filename().string().rfind("bytefreezer-packer-" + std::to_string(::getpid()) + "-", 0) == 0) ++n;
    return n;
  };
  EXPECT_EQ(mine(), 1u);
  p.reset();
  EXPECT_EQ(mine(), 0u);
}

TEST_F(PackerTest, LedgerRecordsOlderThanTheDedupWindowExpire) {
  const std::string old_id = "01ARZ3NDEKTSV4RRFFQ69G5FAV";  // 2016
  const std::string fresh = new_ulid();
  put_batch_record(*store, ref, old_id, BatchRecord{"x", "c"});
  put_batch_record(*store, ref, fresh, BatchRecord{"y", "c"});
  EXPECT_EQ(expire_batch_records(*store, ref, now_us() - 3600LL * 1000000), 1u);
  EXPECT_FALSE(get_batch_record(*store, ref, old_id));
  EXPECT_TRUE(get_batch_record(*store, ref, fresh));
}

// --- leases and fencing --------------------------------------------------------

TEST_F(PackerTest, ManifestRecordsTheFencingTokenAndOldManifestsStayReadable) {
  write_manifest(*store, ref, CommitManifest{"01J00000000000000000000001", {CommitPart{"k1", 1}}, {{"b1", "d"}}, 7});
  // As written before leases: no fencing_token field.
  store->put(commit_manifest_key(ref, "01J00000000000000000000002"),
             R"({"id":"01J00000000000000000000002","parts":[{"key":"k2","rows":2}],"batches":[{"id":"b2","digest":"d"}]})");
  auto pending = pending_manifests(*store, ref);
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].fencing_token, 7u);
  EXPECT_EQ(pending[1].fencing_token, 0u);
  EXPECT_EQ(pending[1].parts.at(0).key, "k2");
  EXPECT_EQ(boost::json::parse(store->get(commit_manifest_key(ref, "01J00000000000000000000001"))).at("fencing_token"), 7);
}

namespace {

// Events with a unique id each, spread over two hours (two parts per commit).
std::vector<Event> id_batch(int batch, int n) {
  std::vector<Event> events;
  for (int i = 0; i < n; ++i)
    events.push_back(Event{{"_time", i % 2 ? "2026-03-01T10:00:00Z" : "2026-03-01T11:00:00Z"},
                           {"_received", "2026-03-01T12:00:00Z"},
                           {"id", std::to_string(batch) + "-" + std::to_string(i)}});
  return events;
}

}  // namespace

TEST_F(PackerTest, TwoPackersOnOneLeaseFileStoreEveryEventExactlyOnce) {
  const std::string lease_file = (dir / "leases.db").string();
  auto make = [&] {
    return std::make_unique<Packer>(bf::test::packing_at_once(), catalog, store,
                                    WorkerLeases{std::make_shared<SqliteLeaseStore>(lease_file), std::chrono::seconds(5)});
  };
  auto a = make(), b = make();
  const Labels labels{{"tenant", "web"}, {"dataset", "logs"}};
  const int64_t busy_before = metrics().value("bf_packer_lease_busy_total", labels);
  constexpr int kBatches = 30, kEvents = 20;
  std::atomic<bool> producing{true};
  std::thread producer([&] {
    for (int i = 0; i < kBatches; ++i) {
      store->put(processed_key(ref, new_ulid()), encode_batch(id_batch(i, kEvents)));
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    }
    producing = false;
  });
  // Both run concurrently; each now and then stops (releasing its lease), so the
  // dataset changes hands while inputs keep arriving.
  auto worker = [&](Packer& p) {
    for (int i = 0; producing || !store->list_all(processed_prefix(ref)).empty(); ++i) {
      p.run_once();
      if (i % 4 == 3) p.stop();
    }
  };
  std::thread ta(worker, std::ref(*a)), tb(worker, std::ref(*b));
  producer.join();
  ta.join();
  tb.join();

  auto parts = committed_parts(*store, ref);
  ASSERT_FALSE(parts.empty());
  std::string files;
  for (const auto& p : parts) files += (files.empty() ? "'bf://" : ", 'bf://") + p.key + "'";
  auto r = query("SELECT count(*), count(DISTINCT id) FROM read_parquet([" + files + "])");
  EXPECT_EQ(r.rows[0][0], std::to_string(kBatches * kEvents));
  EXPECT_EQ(r.rows[0][1], std::to_string(kBatches * kEvents));
  // Every part in the lake is committed (no part of one packer orphaned by the other).
  EXPECT_EQ(store->list_all(parquet_prefix(ref)).size(), parts.size());
  EXPECT_GT(metrics().value("bf_packer_lease_busy_total", labels), busy_before) << "the packers never contended";
}

TEST_F(PackerTest, PackerWhoseLeaseWasTakenOverBeforeTheCommitCommitsNothing) {
  const std::string lease_file = (dir / "leases.db").string();
  auto hooked = std::make_shared<bf::test::HookedStore>(store);
  packer = std::make_unique<Packer>(bf::test::packing_at_once(), catalog, hooked,
                                    WorkerLeases{std::make_shared<SqliteLeaseStore>(lease_file), std::chrono::seconds(30)});
  // Another packer whose clock is an hour ahead: for it the lease has expired, as
  // for a real packer when this one stalls past its ttl after uploading a part.
  SqliteLeaseStore intruder_store(lease_file, [] { return now_us() + 3600LL * 1000000; });
  std::optional<Lease> intruder;
  hooked->after_put = [&](const std::string& key) {
    if (!intruder && key.rfind("parquet/", 0) == 0) intruder = intruder_store.acquire("packer/acme/web/logs", "intruder", std::chrono::seconds(30));
  };
  add_batch({ev(1), ev(2)});
  add_batch({ev(3)});
  const Labels labels{{"tenant", "web"}, {"dataset", "logs"}};
  const int64_t fenced_before = metrics().value("bf_packer_fenced_total", labels);

  EXPECT_EQ(packer->run_once(), 0u);
  ASSERT_TRUE(intruder) << "the hook did not run";
  EXPECT_EQ(metrics().value("bf_packer_fenced_total", labels), fenced_before + 1);
  EXPECT_TRUE(committed_parts(*store, ref).empty());
  EXPECT_TRUE(pending_manifests(*store, ref).empty());
  EXPECT_TRUE(store->list_all(parquet_prefix(ref)).empty()) << "its uploaded part was not deleted";
  EXPECT_FALSE(store->head(schema_key(ref))) << "a fenced packer must not touch the schema";
  EXPECT_EQ(store->list_all(processed_prefix(ref)).size(), 2u) << "inputs must stay for the new holder";
  EXPECT_TRUE(store->list_all(batch_records_prefix(ref)).empty());

  // While the other packer holds the lease, this one skips the dataset.
  EXPECT_EQ(packer->run_once(), 0u);
  EXPECT_EQ(store->list_all(processed_prefix(ref)).size(), 2u);
  // Once it is released, this packer acquires it again (a larger token) and commits.
  intruder_store.release(*intruder);
  EXPECT_EQ(packer->run_once(), 1u);
  EXPECT_TRUE(store->list_all(processed_prefix(ref)).empty());
  EXPECT_EQ(query("SELECT count(*) FROM " + lake()).rows[0][0], "3");
  int64_t token = -1;
  for (const auto& [key, data] : hooked->puts())
    if (key.rfind(commit_manifests_prefix(ref), 0) == 0) token = boost::json::parse(data).at("fencing_token").as_int64();
  EXPECT_GT(token, static_cast<int64_t>(intruder->token)) << "the manifest records the committing packer's token";
}

// --- bounded work ------------------------------------------------------------

namespace {
std::vector<Event> wide_batch(int n) {
  std::vector<Event> events;
  for (int i = 0; i < n; ++i) {
    Event e{{"_time", "2026-03-01T10:00:00Z"}, {"_received", "2026-03-01T10:00:00Z"}, {"n", i}};
    for (int f = 0; f < 20; ++f) e["f" + std::to_string(f)] = "value-" + std::to_string(i * f);
    events.push_back(std::move(e));
  }
  return events;
}
}  // namespace

TEST_F(PackerTest, ConversionBeyondTheTimeoutIsQuarantinedNotLeftSpinning) {
  PackerOptions o = bf::test::packing_at_once();
  o.conversion_timeout = std::chrono::milliseconds(1);
  packer = std::make_unique<Packer>(o, catalog, store);
  store->put(processed_key(ref, new_ulid()), encode_batch(wide_batch(20000)));
  auto& quarantined = metrics().counter("bf_packer_quarantined_total", "", {{"tenant", "web"}, {"dataset", "logs"}});
  const uint64_t before = quarantined.value();
  EXPECT_EQ(packer->run_once(), 0u);
  EXPECT_EQ(quarantined.value(), before + 1);
  EXPECT_EQ(store->list_all("quarantine/processed/").size(), 1u);  // kept for an operator, not lost
  EXPECT_TRUE(committed_parts(*store, ref).empty());
}

TEST_F(PackerTest, StopInterruptsARunningConversionAndKeepsItsInputs) {
  // As the piper writes them (with their shape), so the run is soon in DuckDB.
  for (int b = 0; b < 8; ++b) store->put(processed_key(ref, new_ulid()), piper_object(wide_batch(50000)));
  PackerOptions o = bf::test::packing_at_once();
  o.interval = std::chrono::milliseconds(10);
  o.max_part_bytes = 1ull << 30;
  o.threads = 1;  // two threads on a quiet machine can finish the conversion before stop()
  packer = std::make_unique<Packer>(o, catalog, store);
  packer->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // reading and converting 400,000 wide events
  const auto t0 = std::chrono::steady_clock::now();
  packer->stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, std::chrono::seconds(3));
  std::printf("stop took %lld ms\n", (long long)std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
  // Interrupted before its commit: nothing committed, every input still there,
  // nothing quarantined (an interrupted conversion is not a bad batch).
  EXPECT_TRUE(committed_parts(*store, ref).empty());
  EXPECT_EQ(store->list_all("processed/").size(), 8u);
  EXPECT_TRUE(store->list_all("quarantine/").empty());
}

// --- the read path: shapes, types, time normalisation in SQL --------------------


TEST_F(PackerTest, TheEnvelopeShapeSparesTheDecodeAndDuckDbSkipsTheEnvelopeFrame) {
  const Labels labels{{"tenant", "web"}, {"dataset", "logs"}};
  const int64_t decoded_before = metrics().value("bf_packer_inputs_decoded_total", labels);
  store->put(processed_key(ref, new_ulid()), piper_object({ev(1), ev(2)}));
  ASSERT_EQ(packer->run_once(), 1u);
  EXPECT_EQ(metrics().value("bf_packer_inputs_decoded_total", labels), decoded_before);
  // An object written before the shape existed is decoded once instead.
  add_batch({ev(3)});
  ASSERT_EQ(packer->run_once(), 1u);
  EXPECT_EQ(metrics().value("bf_packer_inputs_decoded_total", labels), decoded_before + 1);
  EXPECT_EQ(query("SELECT string_agg(CAST(n AS VARCHAR), ',' ORDER BY n) FROM " + lake()).rows[0][0], "1,2,3");
  // The registry keeps the dataset's shape (kinds only).
  auto schema = boost::json::parse(store->get(schema_key(ref))).as_object();
  EXPECT_EQ(schema.at("shape").at("fields").at("n").at("kinds").as_array().at(0).as_string(), "int");
}

TEST_F(PackerTest, AnInputCutShortIsLeftWhileYoungAndQuarantinedOnceOld) {
  PackerOptions o = bf::test::packing_at_once();
  // Wide enough for a loaded machine and a store whose mtimes are whole seconds.
  o.quarantine_after = std::chrono::milliseconds(1500);
  packer = std::make_unique<Packer>(o, catalog, store);
  std::string whole = piper_object(wide_batch(200));
  const std::string cut = processed_key(ref, new_ulid());
  store->put(cut, std::string_view(whole).substr(0, whole.size() - 10));  // the envelope is intact, the frame is not
  store->put(processed_key(ref, new_ulid()), piper_object({ev(1)}));
  EXPECT_EQ(packer->run_once(), 1u);
  EXPECT_TRUE(store->head(cut));
  std::this_thread::sleep_for(std::chrono::milliseconds(2600));
  EXPECT_EQ(packer->run_once(), 0u);
  EXPECT_TRUE(store->head("quarantine/" + cut));
  EXPECT_EQ(query("SELECT count(*) FROM " + lake()).rows[0][0], "1");
}

TEST_F(PackerTest, AShapeThatDoesNotMatchTheEventsCommitsNothing) {
  // Claims one event, holds two: the row count check refuses the conversion.
  BatchShape shape;
  shape.add(ev(1));
  store->put(processed_key(ref, new_ulid()), encode_batch({ev(1), ev(2)}, BatchEnvelope{{"shape", shape.to_json()}}));
  EXPECT_EQ(packer->run_once(), 0u);
  EXPECT_TRUE(committed_parts(*store, ref).empty());
  EXPECT_EQ(store->list_all("quarantine/processed/").size(), 1u);  // kept for an operator
}

TEST_F(PackerTest, MixedTypesAcrossAndWithinBatchesAllReadTogether) {
  // Adversarial: the same field as number, string, object, array, bool and null,
  // a struct that gains members, an object with thousands of distinct keys, in
  // separate runs (so parts were written with different types) and in one run.
  int id = 0;
  auto e = [&](const char* field, boost::json::value v) {
    Event x{{"_time", "2026-03-01T10:00:00Z"}, {"_received", "2026-03-01T10:00:00Z"}, {"id", id++}};
    x[field] = std::move(v);
    return x;
  };
  std::vector<std::vector<Event>> runs = {
      {e("v", 1), e("o", boost::json::object{{"a", 1}})},
      {e("v", 2.5), e("o", boost::json::object{{"a", 2}, {"b", "x"}})},
      {e("v", "text"), e("o", "now a string")},
      {e("v", boost::json::object{{"k", 1}}), e("v", boost::json::array{1, 2}), e("v", true), e("v", nullptr),
       e("o", boost::json::array{boost::json::object{{"z", 1}}, 5})},
      {e("v", 18446744073709551615ull), e("arr", boost::json::array{1, 2}), e("arr", boost::json::array{"a"}),
       e("nulls", nullptr)},
  };
  boost::json::object wide;
  for (int k = 0; k < 3000; ++k) wide["key" + std::to_string(k)] = k;
  runs.push_back({e("wide", wide), e("wide", boost::json::object{{"other", "x"}})});
  size_t total = 0;
  for (const auto& r : runs) {
    store->put(processed_key(ref, new_ulid()), piper_object(r));
    total += r.size();
    ASSERT_EQ(packer->run_once(), 1u);
  }
  // And all of it again in one run.
  for (const auto& r : runs) {
    std::vector<Event> again;
    for (auto x : r) {
      x["id"] = id++;
      again.push_back(std::move(x));
    }
    store->put(processed_key(ref, new_ulid()), piper_object(again));
    total += again.size();
  }
  ASSERT_EQ(packer->run_once(), 1u);
  EXPECT_TRUE(store->list_all("quarantine/").empty());
  // Through the committed file list, as the query service reads the lake.
  std::string files;
  for (const auto& p : committed_parts(*store, ref)) files += (files.empty() ? "'bf://" : ", 'bf://") + p.key + "'";
  const std::string all = "read_parquet([" + files + "], hive_partitioning=true, union_by_name=true)";
  auto r = query("SELECT * FROM " + all);
  EXPECT_EQ(r.rows.size(), total);
  EXPECT_EQ(query("SELECT count(DISTINCT id) FROM " + all).rows[0][0], std::to_string(total));
  // Nothing was lost on the way: the mixed values are there as their text.
  EXPECT_EQ(query("SELECT count(*) FROM " + all + " WHERE CAST(v AS VARCHAR) LIKE '%text%'").rows[0][0], "2");
  EXPECT_EQ(query("SELECT count(*) FROM " + all + " WHERE CAST(wide AS VARCHAR) LIKE '%key2999%'").rows[0][0], "2");
  EXPECT_EQ(query("SELECT count(*) FROM " + all + " WHERE CAST(v AS VARCHAR) LIKE '%18446744073709551615%'").rows[0][0], "2");
  // o was a STRUCT first: the string and the array are in its overflow column.
  EXPECT_EQ(query("SELECT count(*) FROM " + all + " WHERE o__json = '\"now a string\"'").rows[0][0], "2");
  EXPECT_EQ(query("SELECT count(*) FROM " + all + " WHERE o.b = 'x'").rows[0][0], "2");
  auto schema = boost::json::parse(store->get(schema_key(ref))).as_object();
  for (const auto& c : schema.at("columns").as_array()) {
    if (c.at("name") == "wide") {
      EXPECT_EQ(c.at("type").as_string(), "MAP(VARCHAR, VARCHAR)");  // 3000 keys
    } else if (c.at("name") == "o") {
      EXPECT_EQ(c.at("type").as_string(), R"(STRUCT("a" BIGINT, "b" VARCHAR))");
    } else if (c.at("name") == "o__json") {
      EXPECT_EQ(c.at("overflow_of").as_string(), "o");
    } else if (c.at("name") == "v") {
      EXPECT_EQ(c.at("type").as_string(), "VARCHAR");
    }
  }
}

TEST_F(PackerTest, TimeNormalisationInSqlMatchesParseEventTime) {
  // Every value is checked against parse_event_time, the C++ rule the SQL follows.
  const int64_t received = 1772359200000000;  // 2026-03-01T10:00:00Z
  std::vector<boost::json::value> values = {
      "2026-03-01T10:15:00Z", "2026-03-01t10:15:00z", "2026-03-01 10:15:00", "2026-03-01T10:15:00.123456789Z",
      "2026-03-01T10:15:00,5+02:00", "2026-03-01T10:15:00+0530", "2026-03-01T10:15:00-02", "2026-03-01T10:15:00+02:",
      "2026-12-31T23:59:60Z", "2024-02-29T00:00:00Z", "2026-02-29T00:00:00Z", "2026-03-01T24:00:00Z",
      "2026-03-01T10:15:00+24:00", "2026-03-01T10:15", "2026-03-01", "last tuesday", "", "2026-03-01T10:15:00.Z",
      1772359200, 1772359200123, 1772359200123456, 1772359200123456789, 1772359200.75, 99999999999.0, 0, -1,
      1e300, 9.3e18, true, nullptr, boost::json::object{{"t", 1}}, boost::json::array{1}};
  std::vector<Event> events;
  for (size_t i = 0; i < values.size(); ++i)
    events.push_back(Event{{"_time", values[i]}, {"_received", "2026-03-01T10:00:00Z"}, {"i", i}});
  events.push_back(Event{{"_received", "2026-03-01T10:00:00Z"}, {"i", values.size()}});  // no _time
  // Only strings: the VARCHAR read path; then everything: the JSON read path.
  std::vector<Event> strings;
  for (const auto& x : events)
    if (x.contains("_time") && x.at("_time").is_string()) strings.push_back(x);
  auto& fallbacks = metrics().counter("bf_packer_time_fallbacks_total", "", {{"field", "_time"}});
  // Normalisation only: no time is out of bounds here (1970, the year 5138).
  PackerOptions unbounded = bf::test::packing_at_once();
  unbounded.earliest_time_us = 0;
  unbounded.max_future = std::chrono::hours(24LL * 365 * 10000);
  for (const auto* batch : {&strings, &events}) {
    PackerTest::TearDown();
    dir = fs::temp_directory_path() / ("bf-packer-" + new_ulid());
    store = std::make_shared<LocalStore>(dir);
    packer = std::make_unique<Packer>(unbounded, catalog, store);
    const uint64_t before = fallbacks.value();
    store->put(processed_key(ref, new_ulid()), piper_object(*batch));
    ASSERT_GE(packer->run_once(), 1u);
    auto r = query("SELECT i, epoch_us(_time), _time_raw FROM " + lake() + " ORDER BY i");
    ASSERT_EQ(r.rows.size(), batch->size());
    uint64_t expected_fallbacks = 0;
    for (size_t k = 0; k < batch->size(); ++k) {
      const Event& x = (*batch)[k];
      const size_t i = x.at("i").to_number<size_t>();
      ASSERT_EQ(r.rows[k][0], std::to_string(i));
      std::optional<int64_t> t;
      if (x.contains("_time")) t = parse_event_time(x.at("_time"));
      if (!t) ++expected_fallbacks;
      EXPECT_EQ(r.rows[k][1], std::to_string(t.value_or(received))) << "value " << i << ": " << boost::json::serialize(x);
      const bool unusable = x.contains("_time") && !t && !x.at("_time").is_null();
      if (unusable) {
        const auto& v = x.at("_time");
        ASSERT_TRUE(r.rows[k][2].has_value()) << "value " << i;
        if (v.is_string()) EXPECT_EQ(*r.rows[k][2], v.get_string()) << "value " << i;
        else EXPECT_EQ(boost::json::parse(*r.rows[k][2]), v) << "value " << i;  // the JSON text as sent
      } else {
        EXPECT_FALSE(r.rows[k][2].has_value()) << "value " << i;
      }
    }
    EXPECT_EQ(fallbacks.value(), before + expected_fallbacks);
  }
}

// A backlog of several parts' worth drains in one run (rounds repeat while a run had
// to leave inputs behind), not one part per polling interval.
TEST_F(PackerTest, ABacklogOfSeveralPartsDrainsInOneRun) {
  PackerOptions options = bf::test::packing_at_once();
  options.max_batches_per_part = 2;
  packer = std::make_unique<Packer>(options, catalog, store);
  for (int i = 0; i < 5; ++i) store->put(processed_key(ref, new_ulid()), encode_batch({ev(i)}));
  EXPECT_EQ(packer->run_once(), 3u);  // 2 + 2 + 1 batches
  EXPECT_TRUE(store->list_all("processed/").empty());
  EXPECT_EQ(committed_parts(*store, ref).size(), 3u);
  EXPECT_EQ(query("SELECT count(*) FROM " + lake()).rows[0][0], "5");
}

TEST(PackerOptionsTest, ThreadsCompressionAndRowGroupsAreReadAndBounded) {
  auto read = [](const std::string& yaml) { return parse_packer_options(ConfigNode::parse(yaml, "packer.yaml")); };
  const PackerOptions defaults = read("{}");
  EXPECT_EQ(defaults.threads, 1);
  EXPECT_EQ(defaults.compression_level, 3);
  EXPECT_EQ(defaults.row_group_size, 32768u);
  const PackerOptions o = read("threads: 2\ncompression_level: 9\nrow_group_size: 4096\n");
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.compression_level, 9);
  EXPECT_EQ(o.row_group_size, 4096u);
  EXPECT_THROW(read("threads: 0\n"), ConfigError);
  EXPECT_THROW(read("compression_level: 23\n"), ConfigError);
  EXPECT_THROW(read("row_group_size: 10\n"), ConfigError);
}

// --- the component contract (docs/metrics.md) --------------------------------------

TEST_F(PackerTest, ContractCountsCommittedEventsPartsAndUndecodableInputsAsUnintentionalDiscards) {
  const DatasetRef cref{"acme", "contract", "packer"};
  catalog->add_dataset(DatasetInfo{cref, {}});
  PackerOptions o = bf::test::packing_at_once();
  o.quarantine_after = std::chrono::milliseconds(0);  // undecodable inputs are quarantined at once
  packer = std::make_unique<Packer>(o, catalog, store);
  const Labels labels{{"tenant", "contract"}, {"dataset", "packer"}};
  EXPECT_TRUE(metrics().sum("bf_component_sent_events_total", labels).has_value());  // before any event
  const std::string a = piper_object({Event{{"_time", "2026-03-01T10:00:00Z"}, {"n", 1}}, Event{{"_time", "2026-03-01T10:01:00Z"}, {"n", 2}}});
  const std::string b = piper_object({Event{{"_time", "2026-03-01T11:00:00Z"}, {"n", 3}}});
  // A shape that declares 4 events in front of a payload that is not zstd.
  BatchShape four;
  for (int i = 0; i < 4; ++i) four.add(Event{{"n", i}});
  const std::string broken = wrap_batch_object(BatchEnvelope{{"shape", four.to_json()}}, "not zstd at all");
  store->put(processed_key(cref, new_ulid()), a);
  store->put(processed_key(cref, new_ulid()), b);
  store->put(processed_key(cref, new_ulid()), broken);
  EXPECT_EQ(packer->run_once(), 2u);  // hours 10 and 11
  const auto c = test::ContractCounts::of("stage", "packer", "packer", labels);
  EXPECT_EQ(c.received_events, 3);
  EXPECT_EQ(c.received_bytes, int64_t(a.size() + b.size()));
  EXPECT_EQ(c.sent_events, 3);
  uint64_t parts = 0;
  for (const auto& obj : store->list_all(parquet_prefix(cref))) parts += obj.size;
  EXPECT_EQ(c.sent_bytes, int64_t(parts));
  EXPECT_EQ(c.unintentional, 4);
  EXPECT_EQ(c.intentional, 0);
  EXPECT_EQ(test::contract_count("errors", "stage", "packer", "packer",
                                 {{"tenant", "contract"}, {"dataset", "packer"}, {"stage", "decode"}}),
            1);
  test::expect_component_contract("stage", "packer", {.errors = true, .unintentional_discards = true});
}

TEST_F(PackerTest, EmptyKeysGetANameAndKeepTheirValues) {
  // DuckDB refuses empty column and member names: "" becomes __empty, at the top
  // level and inside a STRUCT, and the values are kept.
  Event e{{"_time", "2026-03-01T10:00:00Z"}, {"", "top"}, {"o", boost::json::object{{"", 1}, {"x", 2}}}};
  store->put(processed_key(ref, new_ulid()), piper_object({e}));
  ASSERT_EQ(packer->run_once(), 1u);
  auto r = query("SELECT __empty, o.__empty, o.x FROM " + lake());
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0], (SqlRow{"top", "1", "2"}));
  auto schema = boost::json::parse(store->get(schema_key(ref))).as_object();
  bool renamed = false;
  for (const auto& c : schema.at("columns").as_array())
    if (c.at("name") == "__empty") renamed = c.at("source") == "";
  EXPECT_TRUE(renamed);
}

// --- event-time partitions, order within files, file sizes ----------------------

TEST_F(PackerTest, LateEventsGoToTheirEventHourAndAbsurdTimesToTheQuarantinePartition) {
  auto& quarantined = metrics().counter("bf_packer_time_quarantined_events_total", "", {{"tenant", "web"}, {"dataset", "logs"}});
  const uint64_t before = quarantined.value();
  const int64_t hour = 3600LL * 1000000, now = now_us();
  const std::string received = format_rfc3339(now);
  // One batch, arriving now: current, late by a day, out of order, two days ahead, 1999.
  const std::string id = new_ulid();
  put_batch_record(*store, ref, id, BatchRecord{"digest", ""});
  store->put(processed_key(ref, id),
             piper_object({Event{{"_time", format_rfc3339(now)}, {"_received", received}, {"n", 1}},
                           Event{{"_time", format_rfc3339(now - 24 * hour)}, {"_received", received}, {"n", 2}},
                           Event{{"_time", format_rfc3339(now + 2 * 24 * hour)}, {"_received", received}, {"n", 3}},
                           Event{{"_time", "1999-12-31T23:59:59Z"}, {"_received", received}, {"n", 4}},
                           Event{{"_time", format_rfc3339(now - 3 * hour)}, {"_received", received}, {"n", 5}}}));
  EXPECT_EQ(packer->run_once(), 4u);  // three event hours and the quarantine partition
  EXPECT_EQ(quarantined.value(), before + 2);
  // One commit covers the batch split across four partitions.
  auto parts = committed_parts(*store, ref);
  ASSERT_EQ(parts.size(), 4u);
  std::map<std::string, uint64_t> rows_by_partition;
  for (const auto& p : parts) {
    const auto hour_us = parquet_part_hour_us(p.key);
    rows_by_partition[hour_us ? hive_hour_path(*hour_us) : "quarantine"] += p.rows;
    EXPECT_EQ(is_quarantine_part(p.key), !hour_us) << p.key;
  }
  EXPECT_EQ(rows_by_partition["quarantine"], 2u);
  EXPECT_EQ(rows_by_partition[hive_hour_path(now)], 1u);
  EXPECT_EQ(rows_by_partition[hive_hour_path(now - 24 * hour)], 1u);
  EXPECT_EQ(rows_by_partition[hive_hour_path(now - 3 * hour)], 1u);
  auto record = get_batch_record(*store, ref, id);
  ASSERT_TRUE(record && record->committed());
  EXPECT_TRUE(store->list_all("processed/").empty());
  // The quarantine part keeps the events with their times, typed like the rest.
  auto q = query("SELECT n, CAST(_time AS VARCHAR) FROM read_parquet('bf://" + parquet_prefix(ref) +
                 "_quarantine/*.parquet') ORDER BY n");
  ASSERT_EQ(q.rows.size(), 2u);
  EXPECT_EQ(q.rows[0][0], "3");
  EXPECT_EQ(q.rows[1][0], "4");
  EXPECT_EQ(q.rows[1][1], "1999-12-31 23:59:59");
  EXPECT_EQ(query("SELECT count(*) FROM " + lake()).rows[0][0], "3");
}

TEST_F(PackerTest, TimeBoundsAreConfigurable) {
  PackerOptions o = parse_packer_options(
      ConfigNode::parse("time_bounds:\n  earliest: 2026-03-01T11:00:00Z\n  max_future: 1h\nflush: {age: 0s}\ncompaction: {enabled: false}\n",
                        "packer.yaml"));
  EXPECT_EQ(o.earliest_time_us, 1772362800LL * 1000000);
  EXPECT_EQ(o.max_future, std::chrono::hours(1));
  packer = std::make_unique<Packer>(o, catalog, store);
  add_batch({Event{{"_time", "2026-03-01T10:59:59Z"}, {"_received", "2026-03-01T12:00:00Z"}, {"n", 1}},
             Event{{"_time", "2026-03-01T11:00:00Z"}, {"_received", "2026-03-01T12:00:00Z"}, {"n", 2}}});
  ASSERT_EQ(packer->run_once(), 2u);
  auto r = query("SELECT n, hour FROM " + lake());
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], "2");
  EXPECT_EQ(r.rows[0][1], "11");
  EXPECT_THROW(parse_packer_options(ConfigNode::parse("time_bounds:\n  earliest: yesterday\n", "p.yaml")), ConfigError);
  EXPECT_THROW(parse_packer_options(ConfigNode::parse("target_file_size: 1KiB\n", "p.yaml")), ConfigError);
  EXPECT_EQ(parse_packer_options(ConfigNode::parse("target_file_size: 64MiB\n", "p.yaml")).target_file_size, 64u << 20);
}

namespace {
// Events of one hour in shuffled order, each with a random (incompressible) payload.
std::vector<Event> shuffled_hour(size_t n, uint64_t seed) {
  std::vector<Event> events;
  uint64_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const int64_t t = 1772359200LL * 1000000 + static_cast<int64_t>((x >> 11) % (3600ULL * 1000000));
    events.push_back(Event{{"_time", format_rfc3339(t)}, {"_received", "2026-03-01T12:00:00Z"}, {"pad", new_ulid() + new_ulid()}});
  }
  return events;
}
}  // namespace

TEST_F(PackerTest, RowsAreSortedByTimeWithinAFileAndRowGroupsCarryTimeStatistics) {
  PackerOptions o = bf::test::packing_at_once();
  o.row_group_size = 1024;
  packer = std::make_unique<Packer>(o, catalog, store);
  store->put(processed_key(ref, new_ulid()), piper_object(shuffled_hour(20000, 7)));
  ASSERT_EQ(packer->run_once(), 1u);
  const std::string file = "'bf://" + committed_parts(*store, ref).at(0).key + "'";
  auto unsorted = query("SELECT count(*) FROM (SELECT _time < lag(_time) OVER (ORDER BY file_row_number) AS back FROM "
                        "read_parquet(" + file + ", file_row_number=true)) WHERE back");
  EXPECT_EQ(unsorted.rows[0][0], "0");
  // Statistics on: each row group's _time range is recorded, and the ranges do not
  // overlap (sorted), so a time filter skips row groups.
  auto groups = query("SELECT count(*), count(stats_min), sum(CASE WHEN next_min < stats_max THEN 1 ELSE 0 END) FROM ("
                      "SELECT stats_min, stats_max, lead(stats_min) OVER (ORDER BY row_group_id) AS next_min "
                      "FROM parquet_metadata(" + file + ") WHERE path_in_schema = '_time')");
  EXPECT_GE(std::stoi(*groups.rows[0][0]), 5);
  EXPECT_EQ(groups.rows[0][1], groups.rows[0][0]);
  EXPECT_EQ(groups.rows[0][2], "0");
}

TEST_F(PackerTest, ARunLargerThanTheTargetFileSizeIsWrittenAsSeveralSortedFiles) {
  PackerOptions o = bf::test::packing_at_once();
  o.row_group_size = 1024;
  o.target_file_size = 1u << 20;
  packer = std::make_unique<Packer>(o, catalog, store);
  store->put(processed_key(ref, new_ulid()), piper_object(shuffled_hour(200000, 11)));
  const size_t written = packer->run_once();
  EXPECT_GE(written, 2u);
  auto parts = committed_parts(*store, ref);
  ASSERT_EQ(parts.size(), written);
  uint64_t rows = 0;
  for (const auto& p : parts) {
    rows += p.rows;
    const auto size = store->head(p.key)->size;
    EXPECT_LT(size, 2u << 20) << p.key;  // DuckDB rotates files at row group boundaries
  }
  EXPECT_EQ(rows, 200000u);
  // Sorted within each file, and the files cover consecutive time ranges.
  auto r = query("SELECT count(*) FILTER (WHERE back), count(DISTINCT filename) FROM (SELECT filename, _time < lag(_time) "
                 "OVER (PARTITION BY filename ORDER BY file_row_number) AS back FROM " + lake() + ")");
  EXPECT_EQ(r.rows[0][0], "0");
  EXPECT_EQ(r.rows[0][1], std::to_string(written));
  auto ranges = query("SELECT count(*) FROM (SELECT max(_time) AS hi, min(_time) AS lo FROM " + lake() +
                      " GROUP BY filename) a, (SELECT max(_time) AS hi, min(_time) AS lo FROM " + lake() +
                      " GROUP BY filename) b WHERE a.lo < b.lo AND a.hi > b.lo");
  EXPECT_EQ(ranges.rows[0][0], "0");
}

// --- retention ---------------------------------------------------------------------

TEST_F(PackerTest, RetentionDeletesExpiredHoursFromThePartListThenTheStore) {
  const int64_t now = now_us(), day = 24 * 3600LL * 1000000;
  const std::string received = format_rfc3339(now);
  add_batch({Event{{"_time", format_rfc3339(now - 40 * day)}, {"_received", received}, {"n", 1}},
             Event{{"_time", format_rfc3339(now - 31 * day)}, {"_received", received}, {"n", 2}},
             Event{{"_time", format_rfc3339(now - 29 * day)}, {"_received", received}, {"n", 3}},
             Event{{"_time", format_rfc3339(now)}, {"_received", received}, {"n", 4}}});
  ASSERT_EQ(packer->run_once(), 4u);  // no retention yet: everything is kept
  const auto before = committed_parts(*store, ref);
  ASSERT_EQ(before.size(), 4u);
  const auto listed = expired_parts(before, 30, now_us());
  ASSERT_EQ(listed.size(), 2u);  // what the dry run lists is what goes
  auto& parts_deleted = metrics().counter("bf_packer_retention_parts_deleted_total", "", {{"tenant", "web"}, {"dataset", "logs"}});
  auto& events_deleted = metrics().counter("bf_packer_retention_events_deleted_total", "", {{"tenant", "web"}, {"dataset", "logs"}});
  const uint64_t p0 = parts_deleted.value(), e0 = events_deleted.value();
  auto with_retention = std::make_shared<Catalog>();
  DatasetInfo info{ref, {}};
  info.retention_days = 30;
  with_retention->add_dataset(info);
  packer = std::make_unique<Packer>(bf::test::packing_at_once(), with_retention, store);
  EXPECT_EQ(packer->run_once(), 0u);
  EXPECT_EQ(parts_deleted.value(), p0 + 2);
  EXPECT_EQ(events_deleted.value(), e0 + 2);
  const auto after = committed_parts(*store, ref);
  ASSERT_EQ(after.size(), 2u);
  for (const auto& p : listed) EXPECT_FALSE(store->head(p.key).has_value()) << p.key;
  auto r = query("SELECT n FROM " + lake() + " ORDER BY n");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0][0], "3");
  EXPECT_EQ(r.rows[1][0], "4");
}

TEST(RetentionTest, QuarantinePartsExpireByTheirWriteTimeAndUnknownKeysNever) {
  const DatasetRef ref{"acme", "web", "logs"};
  const int64_t now = 1772359200LL * 1000000, day = 24 * 3600LL * 1000000;
  const std::vector<CommitPart> parts = {
      {parquet_part_key(ref, now - 10 * day - 3600LL * 1000000, new_ulid()), 1},  // hour ends 10 days ago
      {parquet_part_key(ref, now - 10 * day, new_ulid()), 1},                      // ends 10 days ago + 1h
      {parquet_quarantine_part_key(ref, ulid_at((now - 11 * day) / 1000)), 1},
      {parquet_quarantine_part_key(ref, ulid_at((now - 9 * day) / 1000)), 1},
      {parquet_prefix(ref) + "odd/file.parquet", 1}};
  const auto expired = expired_parts(parts, 10, now);
  ASSERT_EQ(expired.size(), 2u);
  EXPECT_EQ(expired[0].key, parts[0].key);
  EXPECT_EQ(expired[1].key, parts[2].key);
  EXPECT_TRUE(expired_parts(parts, 0, now).empty());
}

TEST(RetentionTest, DatasetRetentionIsReadFromTheCatalogAndCheckedThere) {
  auto parse = [](const std::string& retention) {
    return Catalog::parse(ConfigNode::parse(
        "accounts: [{id: a, tenants: [{id: t, datasets: [{id: d" + retention + "}]}]}]\n", "bf.yaml"));
  };
  EXPECT_EQ(parse("").datasets().at(0).retention_days, 0);
  EXPECT_EQ(parse(", retention: {days: 30}").datasets().at(0).retention_days, 30);
  EXPECT_THROW(parse(", retention: {days: 0}"), ConfigError);
  EXPECT_THROW(parse(", retention: {weeks: 2}"), ConfigError);
  EXPECT_THROW(parse(", retention: 30"), ConfigError);
}
