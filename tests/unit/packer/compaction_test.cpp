// Compaction (packer/compaction.h) and flush on size or age (PackerOptions::flush_*):
// merges through one commit, a kill before any store write leaves the old or the new
// set (never both, never neither) and the next run cleans up, queries running during
// compaction see every row once, a fenced compactor commits nothing.
#include <gtest/gtest.h>

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "common/batch.h"
#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/ulid.h"
#include "fixtures/hooked_store.h"
#include "fixtures/packer_options.h"
#include "packer/compaction.h"
#include "packer/packer.h"
#include "packer/schema_registry.h"
#include "storage/layout.h"
#include "storage/lease_store.h"
#include "storage/ledger.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

using namespace bf;
namespace fs = std::filesystem;

namespace {

struct Killed : std::runtime_error {
  Killed() : std::runtime_error("killed (test)") {}
};

PackerOptions compacting() {
  PackerOptions o = bf::test::packing_at_once();
  o.compaction.enabled = true;
  o.compaction.min_files = 2;
  o.compaction.interval = std::chrono::milliseconds(0);
  o.compaction.grace = std::chrono::milliseconds(0);
  return o;
}

// hour 10 of 2026-03-01, minute and second from n, newest first within a part.
std::string time_of(int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "2026-03-01T10:%02d:%02dZ", 59 - (n / 60) % 60, 59 - n % 60);
  return buf;
}

const Labels kLabels{{"tenant", "web"}, {"dataset", "logs"}};

class CompactionTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-compact-" + new_ulid());
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(dir / "store");
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  DatasetRef ref{"acme", "web", "logs"};
  int next_n = 0;
  std::unique_ptr<Packer> filler;  // packs, never compacts

  void SetUp() override {
    catalog->add_dataset(DatasetInfo{ref, {}});
    filler = std::make_unique<Packer>(bf::test::packing_at_once(), catalog, store);
  }
  void TearDown() override {
    filler.reset();
    fs::remove_all(dir);
  }
  // One committed part of `count` events in hour 10 (each with a distinct n).
  void add_part(int count, const Event& extra = {}) {
    std::vector<Event> events;
    for (int i = 0; i < count; ++i) {
      Event e{{"_time", time_of(next_n)}, {"_received", "2026-03-01T11:00:00Z"}, {"n", next_n}};
      ++next_n;
      for (const auto& kv : extra) e[kv.key()] = kv.value();
      events.push_back(std::move(e));
    }
    store->put(processed_key(ref, new_ulid()), encode_batch(events));
    ASSERT_EQ(filler->run_once(), 1u);
  }
  // `count` processed objects of one event each (n = first, first + 1, ...), not packed.
  void add_inputs(int count, int first) {
    for (int n = first; n < first + count; ++n)
      store->put(processed_key(ref, new_ulid()),
                 encode_batch({Event{{"_time", time_of(n)}, {"_received", "2026-03-01T11:00:00Z"}, {"n", n}}}));
  }
  std::set<std::string> keys(ObjectStore& s) {
    std::set<std::string> out;
    for (const auto& p : committed_parts(s, ref)) out.insert(p.key);
    return out;
  }
  std::set<std::string> stored_parts(ObjectStore& s) {
    std::set<std::string> out;
    for (const auto& o : s.list_all(parquet_prefix(ref))) out.insert(o.key);
    return out;
  }
  // count(*) and count(DISTINCT n) over what committed_parts names, as the query service reads.
  std::pair<int64_t, int64_t> counts(const std::shared_ptr<ObjectStore>& s, SqlEngine& engine) {
    std::string files;
    for (const auto& p : committed_parts(*s, ref)) files += (files.empty() ? "'bf://" : ", 'bf://") + p.key + "'";
    if (files.empty()) return {0, 0};
    auto r = engine.query("SELECT count(*), count(DISTINCT n) FROM read_parquet([" + files +
                          "], hive_partitioning=true, union_by_name=true)");
    return {std::stoll(*r.rows[0][0]), std::stoll(*r.rows[0][1])};
  }
};

TEST_F(CompactionTest, SmallPartsOfAnHourBecomeOneSortedFileWithTheRegisteredColumns) {
  add_part(3);
  add_part(3);
  add_part(2, Event{{"extra", "x"}, {"o", boost::json::object{{"a", 1}}}});  // new columns
  add_part(2, Event{{"o", boost::json::object{{"a", 2}, {"b", "y"}}}});       // the struct gains a member
  // Another hour with one part: nothing to merge there.
  store->put(processed_key(ref, new_ulid()),
             encode_batch({Event{{"_time", "2026-03-01T12:00:00Z"}, {"_received", "2026-03-01T12:00:00Z"}, {"n", 1000}}}));
  ASSERT_EQ(filler->run_once(), 1u);
  const std::set<std::string> before = keys(*store);
  ASSERT_EQ(before.size(), 5u);
  const int64_t compactions = metrics().value("bf_packer_compactions_total", kLabels);
  const int64_t compacted = metrics().value("bf_packer_compacted_parts_total", kLabels);
  const int64_t sorts = metrics().value("bf_packer_compaction_sort_passes_total", kLabels);
  const int64_t spliced = metrics().value("bf_packer_compaction_spliced_total", kLabels);

  Packer packer(compacting(), catalog, store);
  EXPECT_EQ(packer.run_once(), 0u);  // no inputs: compaction only
  EXPECT_EQ(metrics().value("bf_packer_compaction_spliced_total", kLabels), spliced)
      << "parts without the later columns are decoded and written with them, not spliced";
  // Each part holds earlier times than the one before (time_of): disjoint ranges, so
  // the merge concatenated them in _time order instead of sorting.
  EXPECT_EQ(metrics().value("bf_packer_compaction_sort_passes_total", kLabels), sorts);
  const std::vector<CommitPart> after = committed_parts(*store, ref);
  ASSERT_EQ(after.size(), 2u);
  std::string merged;
  for (const auto& p : after) {
    if (!before.count(p.key)) merged = p.key;
    else EXPECT_NE(p.key.find("hour=12"), std::string::npos) << "the lone part of hour 12 stays: " << p.key;
  }
  ASSERT_FALSE(merged.empty());
  EXPECT_NE(merged.find("hour=10"), std::string::npos) << merged;
  EXPECT_EQ(metrics().value("bf_packer_compactions_total", kLabels), compactions + 1);
  EXPECT_EQ(metrics().value("bf_packer_compacted_parts_total", kLabels), compacted + 4);
  // The replaced parts are recorded, not yet deleted (grace); the next pass deletes them.
  ASSERT_EQ(replaced_parts(*store, ref).size(), 1u);
  EXPECT_EQ(replaced_parts(*store, ref)[0].keys.size(), 4u);
  EXPECT_EQ(stored_parts(*store).size(), 6u);
  packer.run_once();
  EXPECT_TRUE(replaced_parts(*store, ref).empty());
  EXPECT_EQ(stored_parts(*store), keys(*store));

  SqlEngine engine(store, {});
  const std::string file = "read_parquet('bf://" + merged + "', hive_partitioning=false)";
  // Exactly the registry's columns, in its order, with its types.
  const SchemaRegistry registry(store, ref);
  auto described = engine.query("DESCRIBE SELECT * FROM " + file);
  ASSERT_EQ(described.rows.size(), registry.columns().size());
  for (size_t i = 0; i < described.rows.size(); ++i) {
    EXPECT_EQ(*described.rows[i][0], registry.columns()[i].name);
    const std::string type = *engine.query("SELECT typeof(NULL::" + registry.columns()[i].type.duckdb() + ")").rows[0][0];
    EXPECT_EQ(*described.rows[i][1], type) << registry.columns()[i].name;
  }
  auto r = engine.query("SELECT count(*), count(DISTINCT n), count(extra), count(o.b), sum(n) FROM " + file);
  EXPECT_EQ(*r.rows[0][0], "10");
  EXPECT_EQ(*r.rows[0][1], "10");
  EXPECT_EQ(*r.rows[0][2], "2") << "rows of older parts have NULL in a later column";
  EXPECT_EQ(*r.rows[0][3], "2");
  EXPECT_EQ(*r.rows[0][4], "45");
  auto back = engine.query("SELECT count(*) FROM (SELECT _time < lag(_time) OVER (ORDER BY file_row_number) AS back FROM "
                           "read_parquet('bf://" + merged + "', file_row_number=true)) WHERE back");
  EXPECT_EQ(*back.rows[0][0], "0") << "rows are sorted by _time";
  EXPECT_EQ(counts(store, engine), std::make_pair(int64_t{11}, int64_t{11}));
}

// A merge of more than compaction.sort_bytes of column data is sorted in _time windows
// and concatenated: still one file, every row once, sorted, even when every part
// overlaps every other in time (parts of a live hour do, by a little; these by all).
TEST_F(CompactionTest, ALargeMergeIsSortedInTimeWindowsIntoOneSortedFile) {
  const int kParts = 6, kPerPart = 100;
  for (int p = 0; p < kParts; ++p) {
    std::vector<Event> events;
    for (int i = 0; i < kPerPart; ++i) {
      const int second = i * kParts + (kParts - 1 - p);  // part p holds every kParts-th second
      char t[32];
      std::snprintf(t, sizeof t, "2026-03-01T10:%02d:%02dZ", second / 60, second % 60);
      events.push_back(Event{{"_time", t}, {"_received", "2026-03-01T11:00:00Z"}, {"n", p * kPerPart + i},
                             {"msg", std::string(40, char('a' + p))}});
    }
    store->put(processed_key(ref, new_ulid()), encode_batch(events));
    ASSERT_EQ(filler->run_once(), 1u);
  }
  ASSERT_EQ(keys(*store).size(), size_t(kParts));
  PackerOptions o = compacting();
  o.compaction.sort_bytes = 1;  // as many windows as the rows allow (at least 64 rows each)
  o.temp_dir = (dir / "tmp").string();
  fs::create_directories(o.temp_dir);
  const int64_t passes = metrics().value("bf_packer_compaction_sort_passes_total", kLabels);
  Packer packer(o, catalog, store);
  packer.run_once();
  const std::vector<CommitPart> after = committed_parts(*store, ref);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].rows, uint64_t(kParts * kPerPart));
  EXPECT_GT(metrics().value("bf_packer_compaction_sort_passes_total", kLabels), passes + 2)
      << "the merge was sorted in several windows";
  SqlEngine engine(store, {});
  const std::string file = "read_parquet('bf://" + after[0].key + "', hive_partitioning=false, file_row_number=true)";
  auto r = engine.query("SELECT count(*), count(DISTINCT n), min(_time)::VARCHAR, max(_time)::VARCHAR FROM " + file);
  EXPECT_EQ(*r.rows[0][0], "600");
  EXPECT_EQ(*r.rows[0][1], "600");
  EXPECT_EQ(*r.rows[0][2], "2026-03-01 10:00:00");
  EXPECT_EQ(*r.rows[0][3], "2026-03-01 10:09:59");
  auto back = engine.query("SELECT count(*) FROM (SELECT _time < lag(_time) OVER (ORDER BY file_row_number) AS back FROM " +
                           file + ") WHERE back");
  EXPECT_EQ(*back.rows[0][0], "0") << "rows are sorted by _time across the windows";
  // No window file is left behind in the packer's temp directory.
  for (const auto& e : fs::recursive_directory_iterator(o.temp_dir))
    EXPECT_EQ(e.path().filename().string().find(".parquet.w"), std::string::npos) << e.path();
}

// One part whose _time range overlaps another's (a late batch): that merge is sorted,
// and the file is sorted all the same; parts with equal bounds only touch.
TEST_F(CompactionTest, PartsWhoseTimesOverlapAreSortedDisjointOnesOnlyConcatenated) {
  auto part_at = [&](std::vector<std::string> times) {
    std::vector<Event> events;
    for (const auto& t : times) events.push_back(Event{{"_time", t}, {"_received", "2026-03-01T11:00:00Z"}, {"n", next_n++}});
    store->put(processed_key(ref, new_ulid()), encode_batch(events));
    ASSERT_EQ(filler->run_once(), 1u);
  };
  part_at({"2026-03-01T10:00:00Z", "2026-03-01T10:00:10Z"});
  part_at({"2026-03-01T10:00:10Z", "2026-03-01T10:00:20Z"});  // touches the first: still disjoint
  part_at({"2026-03-01T10:00:30Z", "2026-03-01T10:00:40Z"});
  Packer packer(compacting(), catalog, store);
  const int64_t sorts = metrics().value("bf_packer_compaction_sort_passes_total", kLabels);
  const int64_t spliced = metrics().value("bf_packer_compaction_spliced_total", kLabels);
  packer.run_once();
  ASSERT_EQ(committed_parts(*store, ref).size(), 1u);
  EXPECT_EQ(metrics().value("bf_packer_compaction_sort_passes_total", kLabels), sorts) << "disjoint: no sort";
  EXPECT_EQ(metrics().value("bf_packer_compaction_spliced_total", kLabels), spliced + 1)
      << "disjoint parts with the registered columns: row groups copied, not decoded";

  part_at({"2026-03-01T10:00:50Z", "2026-03-01T10:00:55Z"});
  part_at({"2026-03-01T10:00:05Z", "2026-03-01T10:00:45Z"});  // late: inside the others' ranges
  packer.run_once();
  // The part after the merged one follows it: those two are spliced; the late part
  // overlaps both and, alone, is left for the next pass.
  std::vector<CommitPart> after = committed_parts(*store, ref);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(metrics().value("bf_packer_compaction_sort_passes_total", kLabels), sorts);
  EXPECT_EQ(metrics().value("bf_packer_compaction_spliced_total", kLabels), spliced + 2);
  packer.run_once();  // two overlapping parts: sorted into one
  after = committed_parts(*store, ref);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].rows, 10u);
  EXPECT_EQ(metrics().value("bf_packer_compaction_sort_passes_total", kLabels), sorts + 1) << "overlapping: one sort";
  EXPECT_EQ(metrics().value("bf_packer_compaction_spliced_total", kLabels), spliced + 2) << "overlapping: not spliced";
  SqlEngine engine(store, {});
  auto back = engine.query("SELECT count(*) FROM (SELECT _time < lag(_time) OVER (ORDER BY file_row_number) AS back FROM "
                           "read_parquet('bf://" + after[0].key + "', file_row_number=true)) WHERE back");
  EXPECT_EQ(*back.rows[0][0], "0") << "rows are sorted by _time";
  EXPECT_EQ(counts(store, engine), std::make_pair(int64_t{10}, int64_t{10}));
}

// Runs written one after another overlap at their seams by the stream's disorder (a
// few late events): every part overlaps its neighbours, none the one after next. The
// parts are dealt into two chains of parts that follow each other, each spliced into
// one sorted file, without a sort; a query sees every row once.
TEST_F(CompactionTest, PartsOverlappingOnlyAtTheirSeamsBecomeTwoSortedFilesWithoutASort) {
  const int kParts = 8, kPerPart = 50;
  for (int p = 0; p < kParts; ++p) {
    std::vector<Event> events;
    for (int i = 0; i < kPerPart; ++i) {
      // Part p covers [p * 10 s, p * 10 s + 10.5 s): its last half second overlaps the next part's first.
      const int ms = p * 10000 + i * 10500 / (kPerPart - 1);
      char t[40];
      std::snprintf(t, sizeof t, "2026-03-01T10:%02d:%02d.%03dZ", ms / 60000, ms / 1000 % 60, ms % 1000);
      events.push_back(Event{{"_time", t}, {"_received", "2026-03-01T11:00:00Z"}, {"n", p * kPerPart + i}});
    }
    store->put(processed_key(ref, new_ulid()), encode_batch(events));
    ASSERT_EQ(filler->run_once(), 1u);
  }
  const int64_t sorts = metrics().value("bf_packer_compaction_sort_passes_total", kLabels);
  const int64_t spliced = metrics().value("bf_packer_compaction_spliced_total", kLabels);
  Packer packer(compacting(), catalog, store);
  packer.run_once();
  const std::vector<CommitPart> after = committed_parts(*store, ref);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].rows + after[1].rows, uint64_t(kParts * kPerPart));
  EXPECT_EQ(metrics().value("bf_packer_compaction_sort_passes_total", kLabels), sorts) << "no sort";
  EXPECT_EQ(metrics().value("bf_packer_compaction_spliced_total", kLabels), spliced + 2);
  SqlEngine engine(store, {});
  for (const auto& part : after) {
    auto back = engine.query("SELECT count(*) FROM (SELECT _time < lag(_time) OVER (ORDER BY file_row_number) AS back FROM "
                             "read_parquet('bf://" + part.key + "', file_row_number=true)) WHERE back");
    EXPECT_EQ(*back.rows[0][0], "0") << "each file is sorted by _time: " << part.key;
  }
  EXPECT_EQ(counts(store, engine), std::make_pair(int64_t{kParts * kPerPart}, int64_t{kParts * kPerPart}));
}

// With start(), merges run on their own thread: a packer run commits while a merge is
// held at its upload, and neither commit loses the other's parts.
TEST_F(CompactionTest, PackingCommitsWhileAMergeIsInFlightOnItsOwnThread) {
  for (int i = 0; i < 3; ++i) add_part(4);
  auto hooked = std::make_shared<bf::test::HookedStore>(store);
  std::mutex mu;
  std::condition_variable cv;
  bool merge_held = false, release = false;
  std::string merge_thread;
  hooked->before_write = [&](const std::string& key) {
    char name[32] = {0};
    pthread_getname_np(pthread_self(), name, sizeof name);
    if (key.rfind("parquet/", 0) != 0 || std::string(name) != "bf-compact") return;
    std::unique_lock lock(mu);
    if (merge_held) return;  // only the first upload is held
    merge_held = true;
    merge_thread = name;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  PackerOptions o = compacting();
  o.interval = std::chrono::milliseconds(50);
  o.compaction.interval = std::chrono::hours(1);  // one pass
  Packer packer(o, catalog, hooked);
  packer.start();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return merge_held; })) << "no merge started";
  }
  // The merge is held on bf-compact; a new input is packed and committed meanwhile.
  const std::set<std::string> merging = keys(*store);
  store->put(processed_key(ref, new_ulid()),
             encode_batch({Event{{"_time", "2026-03-01T10:30:00Z"}, {"_received", "2026-03-01T11:00:00Z"}, {"n", 999}}}));
  packer.wake();
  bool packed = false;
  for (int i = 0; i < 1200 && !packed; ++i) {
    packed = store->list_all(processed_prefix(ref)).empty() && keys(*store).size() == merging.size() + 1;
    if (!packed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(packed) << "packing waited for the merge";
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  bool merged = false;
  for (int i = 0; i < 1200 && !merged; ++i) {
    merged = !replaced_parts(*store, ref).empty();
    if (!merged) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  packer.stop();
  ASSERT_TRUE(merged) << "the merge never committed";
  EXPECT_EQ(merge_thread, "bf-compact");
  const std::set<std::string> now = keys(*store);
  EXPECT_EQ(now.size(), 2u) << "the merged part and the part packed during the merge";
  for (const auto& k : merging) EXPECT_FALSE(now.count(k)) << "a replaced part is still named: " << k;
  EXPECT_TRUE(pending_manifests(*store, ref).empty());
  SqlEngine engine(store, {});
  EXPECT_EQ(counts(store, engine), std::make_pair(int64_t{13}, int64_t{13}));
}

TEST_F(CompactionTest, AKillBeforeAnyStoreWriteLeavesTheOldOrTheNewSetAndTheNextRunCleansUp) {
  for (int i = 0; i < 3; ++i) add_part(50);
  filler.reset();
  const fs::path lake = dir / "lake";
  fs::copy(dir / "store", lake, fs::copy_options::recursive);
  const std::set<std::string> old_keys = keys(*store);
  const int64_t total = 150;
  // The victims merge in _time windows (150 rows: two windows of at least 64), so a kill
  // also lands after window files were written; the next packer merges in one sort.
  PackerOptions windowed = compacting();
  windowed.compaction.sort_bytes = 1;
  bool saw_old = false, saw_new = false;
  int k = 1;
  for (;; ++k) {
    SCOPED_TRACE("killed before store write " + std::to_string(k));
    ASSERT_LT(k, 40) << "the compaction never finished";
    const fs::path trial = dir / ("trial-" + std::to_string(k));
    fs::copy(lake, trial, fs::copy_options::recursive);
    auto local = std::make_shared<LocalStore>(trial);
    auto hooked = std::make_shared<bf::test::HookedStore>(local);
    int writes = 0;
    bool dead = false;
    hooked->before_write = [&](const std::string&) {
      if (dead || ++writes == k) {
        dead = true;
        throw Killed();
      }
    };
    {
      // Two passes: the merge and its commit, then the deletion of the replaced parts.
      Packer victim(windowed, catalog, hooked);
      victim.run_once();
      victim.run_once();
    }
    SqlEngine engine(local, {});
    const std::set<std::string> seen = keys(*local);
    if (seen == old_keys) {
      saw_old = true;
    } else {
      ASSERT_EQ(seen.size(), 1u) << "neither the old set nor one merged part";
      EXPECT_FALSE(old_keys.count(*seen.begin()));
      saw_new = true;
    }
    EXPECT_EQ(counts(local, engine), std::make_pair(total, total)) << "every row once, and every part named is readable";

    // The next run (a new packer) finishes what was left and cleans up.
    {
      Packer next(compacting(), catalog, local);
      next.run_once();
      next.run_once();
    }
    EXPECT_EQ(keys(*local).size(), 1u);
    EXPECT_EQ(stored_parts(*local), keys(*local)) << "an uploaded or replaced part was left behind";
    EXPECT_TRUE(replaced_parts(*local, ref).empty());
    EXPECT_TRUE(pending_manifests(*local, ref).empty());
    EXPECT_EQ(counts(local, engine), std::make_pair(total, total));
    fs::remove_all(trial);
    if (!dead) break;  // the whole sequence ran: every step has been cut
  }
  // upload, manifest, parts.json, replaced record, manifest delete, 3 part deletes, record delete
  EXPECT_GE(k, 9);
  EXPECT_TRUE(saw_old && saw_new);
}

TEST_F(CompactionTest, QueriesDuringCompactionSeeEveryRowOnceAndNeverFail) {
  PackerOptions o = compacting();
  o.compaction.grace = std::chrono::seconds(60);  // longer than any query here
  filler = std::make_unique<Packer>(o, catalog, store);  // packs and compacts every run
  add_part(5);
  std::atomic<bool> done{false};
  std::atomic<int> queries{0}, failures{0};
  std::string failure;
  std::thread reader([&] {
    SqlEngine engine(store, {});
    int64_t last = 0;
    while (!done) {
      try {
        auto [rows, distinct] = counts(store, engine);
        if (rows != distinct || rows < last) {
          failure = "rows " + std::to_string(rows) + ", distinct " + std::to_string(distinct) + ", before " + std::to_string(last);
          ++failures;
        }
        last = rows;
      } catch (const std::exception& e) {
        failure = e.what();
        ++failures;
      }
      ++queries;
    }
  });
  const int64_t compactions = metrics().value("bf_packer_compactions_total", kLabels);
  for (int i = 0; i < 5; ++i) add_part(5);
  done = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0) << failure;
  EXPECT_GT(queries.load(), 0);
  EXPECT_GE(metrics().value("bf_packer_compactions_total", kLabels), compactions + 4);
  SqlEngine engine(store, {});
  EXPECT_EQ(counts(store, engine), std::make_pair(int64_t{30}, int64_t{30}));
  EXPECT_LE(committed_parts(*store, ref).size(), 2u) << "many runs, few files";
}

TEST_F(CompactionTest, ACompactorWhoseLeaseWasTakenOverCommitsNothing) {
  for (int i = 0; i < 3; ++i) add_part(2);
  const std::set<std::string> old_keys = keys(*store);
  const std::string lease_file = (dir / "leases.db").string();
  auto hooked = std::make_shared<bf::test::HookedStore>(store);
  Packer packer(compacting(), catalog, hooked,
                WorkerLeases{std::make_shared<SqliteLeaseStore>(lease_file), std::chrono::seconds(30)});
  // Another packer, its clock an hour ahead: for it our lease has expired once the
  // merged part is uploaded.
  SqliteLeaseStore intruder_store(lease_file, [] { return now_us() + 3600LL * 1000000; });
  std::optional<Lease> intruder;
  hooked->after_put = [&](const std::string& key) {
    if (!intruder && key.rfind("parquet/", 0) == 0)
      intruder = intruder_store.acquire("packer/acme/web/logs", "intruder", std::chrono::seconds(30));
  };
  const int64_t fenced = metrics().value("bf_packer_fenced_total", kLabels);
  packer.run_once();
  ASSERT_TRUE(intruder) << "no merged part was uploaded";
  EXPECT_EQ(metrics().value("bf_packer_fenced_total", kLabels), fenced + 1);
  EXPECT_EQ(keys(*store), old_keys);
  EXPECT_EQ(stored_parts(*store), old_keys) << "the merged upload was not removed";
  EXPECT_TRUE(pending_manifests(*store, ref).empty());
  EXPECT_TRUE(replaced_parts(*store, ref).empty());
}

TEST_F(CompactionTest, ManyTinyRunsDoNotLeaveManyTinyFiles) {
  PackerOptions o = compacting();
  o.compaction.min_files = 3;
  filler = std::make_unique<Packer>(o, catalog, store);
  size_t most = 0;
  for (int i = 0; i < 8; ++i) {
    add_part(1);
    most = std::max(most, committed_parts(*store, ref).size());
  }
  EXPECT_LT(most, 3u) << "a partition never holds min_files small parts after a run";
  SqlEngine engine(store, {});
  EXPECT_EQ(counts(store, engine), std::make_pair(int64_t{8}, int64_t{8}));
}

// A backlog of merges is worked off merges_per_run at a time, packing in between, and
// goes on at the next run without waiting for the interval.
TEST_F(CompactionTest, MergesAreSpreadOverRunsAndTheRestDoesNotWaitForTheInterval) {
  for (int hour : {10, 11, 12})
    for (int p = 0; p < 2; ++p) {
      char t[32];
      std::snprintf(t, sizeof t, "2026-03-01T%02d:00:%02dZ", hour, p);
      store->put(processed_key(ref, new_ulid()),
                 encode_batch({Event{{"_time", t}, {"_received", "2026-03-01T13:00:00Z"}, {"n", hour * 10 + p}}}));
      ASSERT_EQ(filler->run_once(), 1u);
    }
  ASSERT_EQ(keys(*store).size(), 6u);
  PackerOptions o = compacting();
  o.compaction.interval = std::chrono::hours(1);
  ASSERT_EQ(o.compaction.merges_per_run, 1u);  // the default
  const int64_t before = metrics().value("bf_packer_compactions_total", kLabels);
  Packer packer(o, catalog, store);
  for (int run = 1; run <= 3; ++run) {
    packer.run_once();
    EXPECT_EQ(metrics().value("bf_packer_compactions_total", kLabels), before + run) << "run " << run;
    EXPECT_EQ(committed_parts(*store, ref).size(), size_t(6 - run)) << "run " << run;
  }
  packer.run_once();  // nothing left, and the interval has not passed
  EXPECT_EQ(metrics().value("bf_packer_compactions_total", kLabels), before + 3);
  SqlEngine engine(store, {});
  EXPECT_EQ(counts(store, engine), std::make_pair(int64_t{6}, int64_t{6}));
}

// Packing goes first: a run that leaves inputs behind does not compact; the run that
// drains them does (run_once repeats rounds while inputs are left) — but a pass waits
// for at most one more interval.
TEST_F(CompactionTest, ARunThatLeavesInputsBehindPutsCompactionOff) {
  add_part(2);
  add_part(2);
  add_inputs(3, 100);
  PackerOptions o = compacting();
  o.compaction.interval = std::chrono::hours(1);  // due at the first run; put off for at most an hour
  o.max_batches_per_part = 1;  // one input per round: two rounds leave inputs behind
  const int64_t deferred = metrics().value("bf_packer_compaction_deferred_total", kLabels);
  const int64_t compactions = metrics().value("bf_packer_compactions_total", kLabels);
  Packer packer(o, catalog, store);
  EXPECT_EQ(packer.run_once(), 3u);
  EXPECT_EQ(metrics().value("bf_packer_compaction_deferred_total", kLabels), deferred + 2);
  EXPECT_EQ(metrics().value("bf_packer_compactions_total", kLabels), compactions + 1)
      << "the round that drained the inputs compacted";
  EXPECT_TRUE(store->list_all(processed_prefix(ref)).empty());
  SqlEngine engine(store, {});
  EXPECT_EQ(counts(store, engine), std::make_pair(int64_t{7}, int64_t{7}));
}

TEST_F(CompactionTest, SustainedBacklogPutsCompactionOffForAtMostOneInterval) {
  add_part(2);
  add_part(2);
  add_part(2);
  add_inputs(3, 100);
  PackerOptions o = compacting();
  o.compaction.interval = std::chrono::milliseconds(1);  // a round (a DuckDB conversion) takes longer
  o.max_batches_per_part = 1;
  const int64_t deferred = metrics().value("bf_packer_compaction_deferred_total", kLabels);
  const int64_t compactions = metrics().value("bf_packer_compactions_total", kLabels);
  Packer packer(o, catalog, store);
  ASSERT_EQ(packer.run_once(), 3u);
  EXPECT_EQ(metrics().value("bf_packer_compaction_deferred_total", kLabels), deferred + 1)
      << "put off in the first round, run in the second despite its backlog";
  EXPECT_GE(metrics().value("bf_packer_compactions_total", kLabels), compactions + 2);
}

TEST(CompactionPlanTest, OnlyHoursWithEnoughSmallPartsInGroupsOfAboutTheTargetSize) {
  CompactionOptions o;
  o.min_files = 3;
  o.target_bytes = 100;
  const std::string h10 = "parquet/account=a/tenant=t/dataset=d/year=2026/month=03/day=01/hour=10/part-";
  const std::string h11 = "parquet/account=a/tenant=t/dataset=d/year=2026/month=03/day=01/hour=11/part-";
  const std::string q = "parquet/account=a/tenant=t/dataset=d/_quarantine/part-";
  std::vector<CommitPart> parts;
  std::map<std::string, uint64_t> sizes;
  auto add = [&](const std::string& key, uint64_t size, uint64_t rows) {
    parts.push_back(CommitPart{key, rows});
    sizes[key] = size;
  };
  // Hour 10: five small parts (40 bytes each), one of half the target (not small: a
  // file compaction wrote) and a large one.
  for (int i = 0; i < 5; ++i) add(h10 + "0" + std::to_string(i) + ".parquet", 40, 1);
  add(h10 + "half.parquet", 50, 50);
  add(h10 + "big.parquet", 500, 100);
  // Hour 11: two small parts, fewer than min_files. Quarantine: three small ones.
  for (int i = 0; i < 2; ++i) add(h11 + std::to_string(i) + ".parquet", 10, 1);
  for (int i = 0; i < 3; ++i) add(q + std::to_string(i) + ".parquet", 10, 1);
  parts.push_back(CommitPart{h10 + "unknown.parquet", 1});  // not in the store listing

  const auto jobs = plan_compaction(parts, sizes, o);
  ASSERT_EQ(jobs.size(), 2u);  // 40+40+40 >= 100, then the last two
  ASSERT_EQ(jobs[0].parts.size(), 3u);
  ASSERT_EQ(jobs[1].parts.size(), 2u);
  EXPECT_EQ(jobs[0].bytes, 120u);
  EXPECT_EQ(jobs[1].bytes, 80u);
  for (const auto& j : jobs) {
    EXPECT_EQ(j.part_bytes, std::vector<uint64_t>(j.parts.size(), 40));
    for (size_t i = 0; i < j.parts.size(); ++i) {
      EXPECT_NE(j.parts[i].key.find("hour=10/part-0"), std::string::npos) << j.parts[i].key;
      if (i) {
        EXPECT_LT(j.parts[i - 1].key, j.parts[i].key) << "oldest first";
      }
    }
  }
  EXPECT_EQ(jobs[0].parts[0].key, h10 + "00.parquet");
  EXPECT_EQ(jobs[1].parts[1].key, h10 + "04.parquet");
  o.min_files = 6;
  EXPECT_TRUE(plan_compaction(parts, sizes, o).empty());
}

// --- flush on size or age ------------------------------------------------------

TEST_F(CompactionTest, ATrickleWaitsForTheFlushAgeThenBecomesQueryable) {
  PackerOptions o = bf::test::packing_at_once();
  o.flush_age = std::chrono::milliseconds(300);
  o.flush_bytes = 1ull << 20;
  Packer packer(o, catalog, store);
  const Labels age{{"tenant", "web"}, {"dataset", "logs"}, {"reason", "age"}};
  const int64_t waits = metrics().value("bf_packer_flush_waits_total", kLabels);
  const int64_t by_age = metrics().value("bf_packer_flushes_total", age);
  store->put(processed_key(ref, new_ulid()), encode_batch({Event{{"_time", time_of(1)}, {"n", 1}}}));
  EXPECT_EQ(packer.run_once(), 0u) << "a young, small input waits";
  EXPECT_EQ(metrics().value("bf_packer_flush_waits_total", kLabels), waits + 1);
  store->put(processed_key(ref, new_ulid()), encode_batch({Event{{"_time", time_of(2)}, {"n", 2}}}));
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  EXPECT_EQ(packer.run_once(), 1u) << "once the oldest input is flush_age old, everything waiting is packed";
  EXPECT_EQ(metrics().value("bf_packer_flushes_total", age), by_age + 1);
  EXPECT_TRUE(store->list_all(processed_prefix(ref)).empty());
  SqlEngine engine(store, {});
  EXPECT_EQ(counts(store, engine), std::make_pair(int64_t{2}, int64_t{2}));
}

TEST_F(CompactionTest, InputsHoldingFlushBytesArePackedAtOnce) {
  PackerOptions o = bf::test::packing_at_once();
  o.flush_age = std::chrono::hours(1);
  o.flush_bytes = 1;
  Packer packer(o, catalog, store);
  const Labels size{{"tenant", "web"}, {"dataset", "logs"}, {"reason", "size"}};
  const int64_t by_size = metrics().value("bf_packer_flushes_total", size);
  store->put(processed_key(ref, new_ulid()), encode_batch({Event{{"_time", time_of(1)}, {"n", 1}}}));
  EXPECT_EQ(packer.run_once(), 1u);
  EXPECT_EQ(metrics().value("bf_packer_flushes_total", size), by_size + 1);
}

TEST(CompactionOptionsTest, FlushAndCompactionKeysAreReadAndBounded) {
  auto read = [](const std::string& yaml) { return parse_packer_options(ConfigNode::parse(yaml, "packer.yaml")); };
  const PackerOptions d = read("{}");
  EXPECT_EQ(d.flush_age, std::chrono::minutes(5));
  EXPECT_EQ(d.flush_bytes, 4ull << 20);
  EXPECT_TRUE(d.compaction.enabled);
  EXPECT_EQ(d.compaction.min_files, 4u);
  EXPECT_EQ(d.compaction.target_bytes, 128ull << 20);
  const PackerOptions o = read(
      "flush: {age: 30s, bytes: 1MiB}\ncompaction: {enabled: false, min_files: 8, target_bytes: 64MiB, interval: 1m, grace: 2m}\n");
  EXPECT_EQ(o.flush_age, std::chrono::seconds(30));
  EXPECT_EQ(o.flush_bytes, 1u << 20);
  EXPECT_FALSE(o.compaction.enabled);
  EXPECT_EQ(o.compaction.min_files, 8u);
  EXPECT_EQ(o.compaction.target_bytes, 64u << 20);
  EXPECT_EQ(o.compaction.interval, std::chrono::minutes(1));
  EXPECT_EQ(o.compaction.grace, std::chrono::minutes(2));
  EXPECT_THROW(read("compaction: {min_files: 1}\n"), ConfigError);
  EXPECT_THROW(read("compaction: {target_bytes: 1KiB}\n"), ConfigError);
  EXPECT_EQ(d.compaction.sort_bytes, 16ull << 20);
  EXPECT_EQ(read("compaction: {sort_bytes: 64MiB}\n").compaction.sort_bytes, 64ull << 20);
  EXPECT_EQ(d.compaction.merges_per_run, 1u);
  EXPECT_EQ(read("compaction: {merges_per_run: 5}\n").compaction.merges_per_run, 5u);
  EXPECT_THROW(read("compaction: {merges_per_run: 0}\n"), ConfigError);
  EXPECT_THROW(read("compaction: {sort_bytes: 64KiB}\n"), ConfigError);
}

}  // namespace
