// A `bytefreezer piper` process whose catalog has a dataset with a lookup table
// missing on this host (docs/pipelines.md, "A missing file holds its dataset"): it
// starts, the other dataset flows, the held one's raw/ objects wait and the hold is
// counted on /metrics, and once the table appears they flow — enriched.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/batch.h"
#include "common/catalog.h"
#include "common/ulid.h"
#include "fixtures/net_helpers.h"
#include "fixtures/process.h"
#include "net/http_client.h"
#include "storage/layout.h"
#include "storage/local_store.h"

namespace fs = std::filesystem;

namespace {

bool eventually(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

TEST(PiperHeld, AMissingLookupTableHoldsItsDatasetUntilItAppears) {
  const fs::path dir = fs::temp_directory_path() / ("bf-piper-held-" + bf::new_ulid());
  fs::create_directories(dir);
  const uint16_t admin = bf::test::free_port();
  const std::string table = (dir / "assets" / "owners.csv").string();
  std::ofstream(dir / "piper.yaml") << "log: {level: info}\nadmin: {listen: 127.0.0.1:" << admin
                                    << "}\nstorage: {type: local, path: " << (dir / "store").string()
                                    << "}\npiper: {interval: 100ms}\naccounts:\n  - id: acme\n    tenants:\n      - id: web\n"
                                       "        datasets:\n          - id: plain\n          - id: enriched\n"
                                       "            pipeline: [{lookup: {file: \""
                                    << table << "\", field: ip, target: asset}}]\n";
  bf::LocalStore store(dir / "store");
  const bf::DatasetRef plain{"acme", "web", "plain"}, enriched{"acme", "web", "enriched"};
  const std::string a = bf::new_ulid(), b = bf::new_ulid();
  store.put(bf::raw_key(enriched, a), bf::encode_batch({bf::Event{{"ip", "10.0.0.1"}}}));
  store.put(bf::raw_key(plain, b), bf::encode_batch({bf::Event{{"n", 1}}}));

  bf::test::ChildOptions opts;
  opts.log_file = (dir / "piper.log").string();
  bf::test::ChildProcess piper({BF_BINARY, "piper", "--config", (dir / "piper.yaml").string()}, opts);
  ASSERT_TRUE(bf::test::wait_for_port(admin, std::chrono::seconds(20))) << "the piper did not start: " << piper.log();
  // The other dataset flows; the held one's object waits where it is.
  ASSERT_TRUE(eventually([&] { return store.head(bf::processed_key(plain, b)).has_value(); })) << piper.log();
  bf::HttpClient http;
  const std::string metrics_url = "http://127.0.0.1:" + std::to_string(admin) + "/metrics";
  const std::string held_series = "bf_piper_pipeline_held_total{tenant=\"web\",dataset=\"enriched\"}";
  auto held_count = [&]() -> long {
    const std::string body = http.send("GET", metrics_url, {}, "").body;
    const size_t at = body.find(held_series);
    return at == std::string::npos ? -1 : std::stol(body.substr(at + held_series.size() + 1));
  };
  ASSERT_TRUE(eventually([&] { return held_count() >= 3; })) << http.send("GET", metrics_url, {}, "").body;
  EXPECT_TRUE(store.head(bf::raw_key(enriched, a)).has_value());
  EXPECT_FALSE(store.head(bf::processed_key(enriched, a)).has_value());
  EXPECT_NE(http.send("GET", metrics_url, {}, "").body.find("bf_piper_datasets_held 1"), std::string::npos);
  EXPECT_NE(piper.log().find("holding dataset acme/web/enriched"), std::string::npos) << piper.log();
  EXPECT_NE(piper.log().find(table), std::string::npos) << piper.log();

  // The table arrives: the waiting object is processed with it, no restart.
  fs::create_directories(dir / "assets");
  { std::ofstream(table + ".tmp") << "ip,owner\n10.0.0.1,corp\n"; }
  fs::rename(table + ".tmp", table);
  ASSERT_TRUE(eventually([&] { return store.head(bf::processed_key(enriched, a)).has_value(); })) << piper.log();
  auto events = bf::decode_batch(store.get(bf::processed_key(enriched, a)));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("asset").at("owner").as_string(), "corp");
  EXPECT_FALSE(store.head(bf::raw_key(enriched, a)).has_value());
  EXPECT_TRUE(eventually([&] { return http.send("GET", metrics_url, {}, "").body.find("bf_piper_datasets_held 0") != std::string::npos; }));
  fs::remove_all(dir);
}

}  // namespace
