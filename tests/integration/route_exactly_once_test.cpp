// The route step keeps exactly-once (issue 8): a piper that dies after any one of its
// writes, with or without the target's packer running before it is restarted, leaves
// every routed event exactly once in each target's Parquet, and every kept event once
// in the source's. The "crash" is the hooked store failing the piper's run right
// after a write, which leaves the store as a killed process would.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <filesystem>
#include <map>
#include <stdexcept>

#include "common/batch.h"
#include "common/catalog.h"
#include "common/metrics.h"
#include "common/ulid.h"
#include "fixtures/hooked_store.h"
#include "fixtures/packer_options.h"
#include "packer/packer.h"
#include "piper/piper.h"
#include "piper/transform.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

using namespace bf;
namespace fs = std::filesystem;

namespace {

struct SimulatedCrash : std::runtime_error {
  SimulatedCrash() : std::runtime_error("simulated crash") {}
};

class RouteExactlyOnce : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-route-" + new_ulid());
  std::shared_ptr<LocalStore> local = std::make_shared<LocalStore>(dir);
  std::shared_ptr<test::HookedStore> store = std::make_shared<test::HookedStore>(local);
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  DatasetRef logs{"acme", "web", "logs"}, alerts{"acme", "web", "alerts"}, archive{"acme", "web", "archive"};
  static constexpr int kEvents = 30;

  void SetUp() override {
    // Every third event moves to alerts; a copy of the others goes to archive.
    catalog->add_dataset(DatasetInfo{logs, boost::json::parse(R"([
        {"route": {"to": "alerts", "mode": "move", "if": "n % 3 == 0"}},
        {"route": {"to": "archive"}},
        {"set": {"field": "kept", "value": true}}])").as_array()});
    catalog->add_dataset(DatasetInfo{alerts, {}});
    catalog->add_dataset(DatasetInfo{archive, {}});
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string add_raw_batch() {
    std::vector<Event> events;
    for (int n = 0; n < kEvents; ++n) events.push_back(Event{{"n", n}, {"_time", "2026-11-25T10:00:00Z"}});
    const std::string id = new_ulid();
    local->put(raw_key(logs, id), encode_batch(events));
    return id;
  }

  // How often each n is in the dataset's committed Parquet parts.
  std::map<int64_t, int64_t> committed_counts(const DatasetRef& ref) {
    std::string files;
    for (const auto& p : committed_parts(*local, ref)) files += (files.empty() ? "'bf://" : ", 'bf://") + p.key + "'";
    std::map<int64_t, int64_t> out;
    if (files.empty()) return out;
    auto r = SqlEngine(local, {}).query("SELECT n, count(*) FROM read_parquet([" + files + "], union_by_name=true) GROUP BY n");
    for (const auto& row : r.rows) out[std::stoll(*row.at(0))] = std::stoll(*row.at(1));
    return out;
  }

  void expect_exactly_once(const std::string& label) {
    std::map<int64_t, int64_t> want_alerts, want_rest;
    for (int n = 0; n < kEvents; ++n) (n % 3 == 0 ? want_alerts : want_rest)[n] = 1;
    EXPECT_EQ(committed_counts(alerts), want_alerts) << label;
    EXPECT_EQ(committed_counts(archive), want_rest) << label;
    EXPECT_EQ(committed_counts(logs), want_rest) << label;
    EXPECT_TRUE(local->list_all("raw/").empty()) << label;
    EXPECT_TRUE(local->list_all("processed/").empty()) << label;
  }
};

}  // namespace

TEST_F(RouteExactlyOnce, CleanRunWritesEachTargetOnceUnderDerivedIds) {
  const std::string id = add_raw_batch();
  Piper piper(PiperOptions{}, catalog, store);
  ASSERT_EQ(piper.run_once(), 1u);
  // The routed objects come first, each under an id derived from the input's, in its hour.
  std::vector<std::string> keys;
  for (const auto& [key, data] : store->puts()) keys.push_back(key);
  ASSERT_EQ(keys.size(), 3u);
  const std::string to_alerts = derived_ulid(id, "route\x1f" "logs\x1f" "alerts");
  const std::string to_archive = derived_ulid(id, "route\x1f" "logs\x1f" "archive");
  EXPECT_EQ(keys[0], processed_key(alerts, to_alerts));
  EXPECT_EQ(keys[1], processed_key(archive, to_archive));
  EXPECT_EQ(keys[2], processed_key(logs, id));
  EXPECT_EQ(decode_batch(local->get(keys[0])).size(), 10u);
  EXPECT_EQ(decode_batch(local->get(keys[1])).size(), 20u);
  EXPECT_FALSE(decode_batch(local->get(keys[1]))[0].contains("kept"));  // as it was at the route step
  EXPECT_EQ(metrics().value("bf_piper_routed_events_total", {{"tenant", "web"}, {"dataset", "logs"}, {"target", "alerts"}}) >= 10, true);
  Packer packer(bf::test::packing_at_once(), catalog, local);
  packer.run_once();
  expect_exactly_once("clean run");
  // The target's ledger covers the routed batch.
  auto record = get_batch_record(*local, alerts, to_alerts);
  ASSERT_TRUE(record.has_value());
  EXPECT_TRUE(record->committed());
}

TEST_F(RouteExactlyOnce, PiperCrashAfterAnyWriteNeverDuplicatesNorLosesARoutedEvent) {
  const Labels dup_labels{{"tenant", "web"}, {"dataset", "logs"}, {"target", "alerts"}};
  // A clean run makes 3 writes (alerts, archive, logs); crash after each, and between
  // the crash and the restart let the packers run or not.
  for (int crash_after = 1; crash_after <= 3; ++crash_after) {
    for (bool pack_between : {false, true}) {
      const std::string label = "crash after write " + std::to_string(crash_after) + (pack_between ? ", packed between" : "");
      fs::remove_all(dir);
      add_raw_batch();
      int writes = 0;
      store->after_put = [&](const std::string&) {
        if (++writes == crash_after) throw SimulatedCrash();
      };
      {
        Piper crashed(PiperOptions{}, catalog, store);
        EXPECT_EQ(crashed.run_once(), 0u) << label;
      }
      EXPECT_EQ(local->list_all("raw/").size(), 1u) << label;  // the input is still there
      Packer packer(bf::test::packing_at_once(), catalog, local);
      if (pack_between) packer.run_once();
      const double dups_before = metrics().value("bf_piper_routed_duplicate_batches_total", dup_labels);
      store->after_put = nullptr;
      Piper restarted(PiperOptions{}, catalog, store);
      EXPECT_EQ(restarted.run_once(), 1u) << label;
      // The alerts batch was written before every crash point: once packed, the ledger
      // stops the restarted piper from writing it again.
      EXPECT_EQ(metrics().value("bf_piper_routed_duplicate_batches_total", dup_labels) - dups_before, pack_between ? 1 : 0) << label;
      // Without a pack in between, the rewrite landed on the same keys: one object per target.
      if (!pack_between) {
        EXPECT_EQ(local->list_all(processed_prefix(alerts)).size(), 1u) << label;
        EXPECT_EQ(local->list_all(processed_prefix(archive)).size(), 1u) << label;
      }
      packer.run_once();
      expect_exactly_once(label);
    }
  }
}

TEST_F(RouteExactlyOnce, RoutedCopyThatArrivesAfterItsCommitIsNotPackedAgain) {
  // The race the ledger check cannot close: the piper re-writes a routed batch just as
  // the target's packer commits it. The packer skips the late copy as committed.
  const std::string id = add_raw_batch();
  Piper piper(PiperOptions{}, catalog, store);
  ASSERT_EQ(piper.run_once(), 1u);
  const std::string key = processed_key(alerts, derived_ulid(id, "route\x1f" "logs\x1f" "alerts"));
  const std::string copy = local->get(key);
  Packer packer(bf::test::packing_at_once(), catalog, local);
  packer.run_once();
  local->put(key, copy);
  const double before = metrics().value("bf_packer_duplicate_batches_total", {{"tenant", "web"}, {"dataset", "alerts"}});
  packer.run_once();
  EXPECT_EQ(metrics().value("bf_packer_duplicate_batches_total", {{"tenant", "web"}, {"dataset", "alerts"}}) - before, 1);
  expect_exactly_once("late copy");
}

TEST(RouteCompile, UnknownTargetDatasetStopsThePiperNamingIt) {
  auto catalog = std::make_shared<Catalog>();
  catalog->add_dataset(DatasetInfo{{"acme", "web", "logs"}, boost::json::parse(R"([{"route": {"to": "alerts"}}])").as_array()});
  catalog->add_dataset(DatasetInfo{{"acme", "other", "alerts"}, {}});  // another tenant's: not a target
  const fs::path dir = fs::temp_directory_path() / ("bf-route-" + new_ulid());
  try {
    Piper piper(PiperOptions{}, catalog, std::make_shared<LocalStore>(dir));
    ADD_FAILURE() << "compiled";
  } catch (const PipelineError& e) {
    EXPECT_STREQ(e.what(),
                 "dataset acme/web/logs: pipeline step 1 (route): option 'to': unknown dataset 'alerts' (datasets of this tenant: none)");
  }
  fs::remove_all(dir);
}
