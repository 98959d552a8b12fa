// Config distribution (the document, its ETag, the long-poll, the catalog a
// component builds from it, the on-disk cache) and health (reports, the silent-
// component timeout, bounded history), against a real store.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "common/api_key.h"
#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
#include "control/agent.h"
#include "control/config_document.h"
#include "control/health.h"
#include "control/lease_client.h"
#include "control_test_util.h"

namespace bf::control {
namespace {

using test::ApiHarness;

// On both store backends (the document is read from the store).
class ConfigDoc : public ::testing::TestWithParam<std::string> {
 protected:
  ApiHarness h{ApiHarness::generous(), GetParam()};
  std::string sys, svc_receiver, svc_piper, ingest_token;
  void SetUp() override {
    h.add_account("acme");
    h.add_tenant("acme", "web");
    h.store->create_dataset(
        Dataset{"acme", "web", "nginx", "", R"({"pipeline":[{"add":{"field":"v","value":"one"}}]})", false, 1, 1},
        test::audit("d", "acme"));
    sys = h.add_key("system_admin");
    svc_receiver = h.add_key("service", "", "", "receiver");
    svc_piper = h.add_key("service", "", "", "piper");
    ingest_token = h.add_key("ingest", "acme", "web");
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, ConfigDoc, test::both_backends(), test::backend_name);

TEST_P(ConfigDoc, TheReceiversCatalogAuthenticatesKeysByHashAndRoutesDatasets) {
  const std::string doc = config_document(*h.store, "receiver");
  EXPECT_EQ(doc.find(ingest_token.substr(21)), std::string::npos);  // the secret never leaves control
  Catalog c = catalog_from_config_document(doc);
  ASSERT_NE(c.find(DatasetRef{"acme", "web", "nginx"}), nullptr);
  EXPECT_EQ(boost::json::serialize(c.find(DatasetRef{"acme", "web", "nginx"})->pipeline),
            R"([{"add":{"field":"v","value":"one"}}])");
  auto grant = c.authenticate(ingest_token);
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->account, "acme");
  EXPECT_EQ(grant->tenant, "web");
  // A changed secret, another id, a query key: refused.
  std::string wrong = ingest_token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_FALSE(c.authenticate(wrong));
  EXPECT_FALSE(c.authenticate("bfk_" + std::string(16, '0') + "_" + std::string(64, '0')));
  EXPECT_FALSE(c.authenticate_query(ingest_token));
  // The piper's document carries no key hashes at all.
  EXPECT_EQ(config_document(*h.store, "piper").find("secret_sha256"), std::string::npos);
}

TEST_P(ConfigDoc, ImportedKeysAndDatasetScopeSurviveTheTrip) {
  // A key imported from the static YAML: id derived from the whole key.
  ApiKey k;
  k.id = imported_key_id("an-imported-ingest-key-42");
  k.secret_hash = hash_secret("an-imported-ingest-key-42");
  k.role = "ingest";
  k.account = "acme";
  k.tenant = "web";
  k.dataset = "nginx";
  h.store->create_key(k, test::audit("key.create", "acme"));
  ApiKey revoked = k;
  revoked.id = imported_key_id("a-revoked-ingest-key-4242");
  revoked.secret_hash = hash_secret("a-revoked-ingest-key-4242");
  revoked.dataset.clear();
  revoked.revoked_us = 1;
  h.store->create_key(revoked, test::audit("key.create", "acme"));
  Catalog c = catalog_from_config_document(config_document(*h.store, "receiver"));
  auto grant = c.authenticate("an-imported-ingest-key-42");
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->dataset, "nginx");
  EXPECT_FALSE(c.authenticate("a-revoked-ingest-key-4242"));
}

TEST_P(ConfigDoc, MalformedDocumentsAreRefusedNamingTheItem) {
  EXPECT_THROW(catalog_from_config_document("not json"), ConfigError);
  EXPECT_THROW(catalog_from_config_document(R"({"format":2,"accounts":[]})"), ConfigError);
  try {
    catalog_from_config_document(R"({"format":1,"accounts":[{"id":"ok","tenants":[{"id":"../etc"}]}]})");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("accounts[0].tenants[0].id"), std::string::npos) << e.what();
  }
}

TEST_P(ConfigDoc, TheEtagFollowsTheContentAndTheLongPollWakesOnAChange) {
  auto first = h.call("GET", "/api/v1/config", "", svc_piper);
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string etag = first.headers["ETag"];
  EXPECT_EQ(etag, config_etag(first.body));
  EXPECT_EQ(etag.front(), '"');
  // Unchanged, no wait: 304 at once.
  EXPECT_EQ(h.call("GET", "/api/v1/config", "", svc_piper, {{"If-None-Match", etag}}).status, 304);
  // A change that does not touch the piper's document (a user) keeps its ETag.
  h.add_user("x@example.com", "account_viewer", "acme");
  EXPECT_EQ(h.call("GET", "/api/v1/config", "", svc_piper, {{"If-None-Match", etag}}).status, 304);
  // A waiting request answers as soon as a dataset changes through the API.
  std::atomic<bool> answered{false};
  test::Reply waited;
  std::thread poll([&] {
    waited = h.call("GET", "/api/v1/config?wait=30", "", svc_piper, {{"If-None-Match", etag}});
    answered = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(answered);  // still waiting: nothing changed
  auto r = h.call("PATCH", "/api/v1/accounts/acme/tenants/web/datasets/nginx", R"({"settings":{"pipeline":[]}})", sys);
  ASSERT_EQ(r.status, 200) << r.body;
  poll.join();
  EXPECT_EQ(waited.status, 200);
  EXPECT_NE(waited.headers["ETag"], etag);
  EXPECT_NE(waited.body.find("\"pipeline\":[]"), std::string::npos) << waited.body;
  // shutdown() ends waits at once (control stopping).
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    h.api->shutdown();
  });
  auto ended = h.call("GET", "/api/v1/config?wait=30", "", svc_piper, {{"If-None-Match", waited.headers["ETag"]}});
  stopper.join();
  EXPECT_EQ(ended.status, 304);
}

TEST_P(ConfigDoc, BadWaitsAndServicesAreRefusedNamingTheParameter) {
  EXPECT_EQ(h.call("GET", "/api/v1/config?wait=abc", "", svc_piper).field(), "wait");
  EXPECT_EQ(h.call("GET", "/api/v1/config?wait=100000", "", svc_piper).field(), "wait");
  EXPECT_EQ(h.call("GET", "/api/v1/config?service=receiver", "", svc_piper).field(), "service");
  EXPECT_EQ(h.call("GET", "/api/v1/config", "", sys).field(), "service");
  EXPECT_EQ(h.call("GET", "/api/v1/config?service=nope", "", sys).field(), "service");
  EXPECT_EQ(h.call("GET", "/api/v1/config?service=receiver", "", sys).status, 200);
}

// The client side against the API in-process: first config, cache, applied changes,
// a refused change, and a start from the cache when control cannot be reached.
TEST_P(ConfigDoc, TheClientAppliesChangesCachesThemAndStartsFromTheCache) {
  auto dir = test::temp_dir("client");
  const std::string cache = (dir / "cache.json").string();
  std::atomic<bool> control_up{true};
  ControlApi* api = h.api.get();
  ConfigFetch fetch = [&, api](const std::string& etag, std::chrono::milliseconds wait) {
    if (!control_up) throw std::runtime_error("connection refused");
    ControlApi::ConfigReply r = api->config("receiver", etag, wait);
    return FetchedConfig{r.etag, std::move(r.document)};
  };
  std::shared_ptr<const Catalog> applied;
  std::mutex mu;
  // Deltas: both backends' runs may share one process.
  const int64_t rejected0 = metrics().value("bf_control_client_rejected_total", {{"service", "test-receiver"}});
  const int64_t cache0 = metrics().value("bf_control_client_cache_starts_total", {{"service", "test-receiver"}});
  {
    ConfigClient client(fetch, cache, std::chrono::seconds(30), "test-receiver");
    auto first = client.load(std::chrono::seconds(1));
    ASSERT_TRUE(first->authenticate(ingest_token));
    ASSERT_TRUE(std::filesystem::exists(cache));
    int calls = 0;
    client.on_change([&](std::shared_ptr<const Catalog> c) {
      std::lock_guard lock(mu);
      if (++calls == 2) throw std::runtime_error("refused by the component");
      applied = std::move(c);
    });
    client.start();
    h.add_dataset("acme", "web", "second");
    api->config_changed();
    auto seen = [&](const char* id) {
      for (int i = 0; i < 500; ++i) {
        {
          std::lock_guard lock(mu);
          if (applied && applied->find(DatasetRef{"acme", "web", id})) return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      return false;
    };
    const std::string initial_etag = client.etag();
    EXPECT_TRUE(seen("second"));
    // The ETag moves once the applied config is cached (just after the callback).
    for (int i = 0; i < 500 && client.etag() == initial_etag; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const std::string etag_after_second = client.etag();
    EXPECT_NE(etag_after_second, initial_etag);
    // The next one is refused: the client keeps the previous config and cache.
    h.add_dataset("acme", "web", "third");
    api->config_changed();
    for (int i = 0; i < 500 && metrics().value("bf_control_client_rejected_total", {{"service", "test-receiver"}}) == rejected0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(metrics().value("bf_control_client_rejected_total", {{"service", "test-receiver"}}), rejected0 + 1);
    EXPECT_EQ(client.etag(), etag_after_second);
    // And a fourth applies again.
    h.add_dataset("acme", "web", "fourth");
    api->config_changed();
    EXPECT_TRUE(seen("fourth"));
    api->shutdown();  // ends the client's wait so that stop() returns at once
    client.stop();
  }
  // Control down: a new client starts from the cache (the last applied config).
  control_up = false;
  ConfigClient offline(fetch, cache, std::chrono::seconds(30), "test-receiver");
  auto from_cache = offline.load(std::chrono::seconds(5));
  EXPECT_TRUE(from_cache->find(DatasetRef{"acme", "web", "fourth"}));
  EXPECT_TRUE(from_cache->authenticate(ingest_token));
  EXPECT_EQ(metrics().value("bf_control_client_cache_starts_total", {{"service", "test-receiver"}}), cache0 + 1);
  // No cache either: a clear error.
  std::filesystem::remove(cache);
  ConfigClient nothing(fetch, cache, std::chrono::seconds(30), "test-receiver");
  try {
    nothing.load(std::chrono::milliseconds(600));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no cached config"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(HealthBoard, SilentComponentsTurnUnhealthyAndHistoryIsBounded) {
  HealthBoard board(std::chrono::seconds(10), 3, 2);
  for (int i = 0; i < 5; ++i) {
    HealthReport r;
    r.service = "receiver";
    r.instance = "r1";
    r.status = "ok";
    r.errors = i;
    r.time_us = 1'000'000 * (i + 1);
    EXPECT_TRUE(board.report(r));
  }
  auto h = board.get("receiver-r1", 6'000'000);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, "ok");
  EXPECT_EQ(h->first_seen_us, 1'000'000);
  auto history = board.history("receiver-r1");
  ASSERT_EQ(history.size(), 3u);  // bounded: the oldest two are gone
  EXPECT_EQ(history.front().errors, 2);
  EXPECT_EQ(history.back().errors, 4);
  // Silent for longer than the timeout (last report at 5 s, timeout 10 s).
  EXPECT_EQ(board.get("receiver-r1", 15'000'000)->status, "ok");
  EXPECT_EQ(board.get("receiver-r1", 15'000'001)->status, "unhealthy");
  EXPECT_EQ(board.get("receiver-r1", 15'000'001)->last.status, "ok");  // what it last said
  // At most max_components: a new one beyond is refused, a known one still reports.
  HealthReport other{"piper", "p1", "degraded", "", 0, {}, {}, 0, 1};
  EXPECT_TRUE(board.report(other));
  other.instance = "p2";
  EXPECT_FALSE(board.report(other));
  EXPECT_EQ(board.list(0).size(), 2u);
}

TEST_P(ConfigDoc, HealthReportsAreValidatedAndListed) {
  auto r = h.call("POST", "/api/v1/health",
                  R"({"instance":"r1","status":"ok","version":"0.1.0","events_per_second":12.5,"spool_depth":3,"errors":1})",
                  svc_receiver);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("id"), "receiver-r1");
  // A service key reports only for itself; values are checked.
  EXPECT_EQ(h.call("POST", "/api/v1/health", R"({"service":"piper","instance":"r1","status":"ok"})", svc_receiver).field(),
            "report.service");
  EXPECT_EQ(h.call("POST", "/api/v1/health", R"({"instance":"r1","status":"fine"})", svc_receiver).field(), "report.status");
  EXPECT_EQ(h.call("POST", "/api/v1/health", R"({"instance":"../x","status":"ok"})", svc_receiver).field(), "report.instance");
  EXPECT_EQ(h.call("POST", "/api/v1/health", R"({"instance":"r1","status":"ok","errors":-1})", svc_receiver).field(),
            "report.errors");
  EXPECT_EQ(h.call("POST", "/api/v1/health", R"({"instance":"r1","status":"ok","extra":1})", svc_receiver).field(),
            "report.extra");
  auto list = h.call("GET", "/api/v1/health", "", sys);
  ASSERT_EQ(list.status, 200);
  auto items = list.json().at("items").as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].at("status"), "ok");
  EXPECT_EQ(items[0].at("spool_depth"), 3);
  EXPECT_EQ(items[0].at("events_per_second"), 12.5);
  EXPECT_TRUE(items[0].at("lag_seconds").is_null());
  auto one = h.call("GET", "/api/v1/health/receiver-r1", "", sys);
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(one.json().at("history").as_array().size(), 1u);
  EXPECT_EQ(h.call("GET", "/api/v1/health/receiver-r2", "", sys).status, 404);
}

// Through the API: a component that stops reporting shows unhealthy after
// control.health.timeout, with what it last said kept apart; a new report heals it.
TEST(HealthApi, ASilentComponentIsShownUnhealthyUntilItReportsAgain) {
  ControlOptions o = ApiHarness::generous();
  o.health_timeout = std::chrono::milliseconds(150);
  ApiHarness h(o);
  const std::string sys = h.add_key("system_admin"), piper = h.add_key("service", "", "", "piper");
  const std::string body = R"({"instance":"p1","status":"ok","lag_seconds":2})";
  ASSERT_EQ(h.call("POST", "/api/v1/health", body, piper).status, 200);
  auto status = [&] {
    auto one = h.call("GET", "/api/v1/health/piper-p1", "", sys).json();
    auto listed = h.call("GET", "/api/v1/health", "", sys).json().at("items").as_array().at(0);
    EXPECT_EQ(one.at("status"), listed.at("status"));
    EXPECT_EQ(listed.at("reported_status"), "ok");
    return std::string(listed.at("status").as_string());
  };
  EXPECT_EQ(status(), "ok");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(status(), "unhealthy");
  ASSERT_EQ(h.call("POST", "/api/v1/health", body, piper).status, 200);
  EXPECT_EQ(status(), "ok");
}

// lag_seconds as a component reports it, in the listing and the history; the history
// in cursor pages, oldest first, every report once.
TEST_P(ConfigDoc, HealthHistoryPagesWithACursorAndCarriesLag) {
  for (int i = 1; i <= 7; ++i) {
    auto r = h.call("POST", "/api/v1/health",
                    R"({"instance":"p1","status":"ok","lag_seconds":)" + std::to_string(i) + ".5,\"errors\":" + std::to_string(i) + "}",
                    svc_piper);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  auto list = h.call("GET", "/api/v1/health", "", sys).json().at("items").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("lag_seconds").as_double(), 7.5);
  // Without a limit: the whole (bounded) history in one page.
  auto all = h.call("GET", "/api/v1/health/piper-p1", "", sys).json().as_object();
  EXPECT_EQ(all.at("history").as_array().size(), 7u);
  EXPECT_TRUE(all.at("next_cursor").is_null());
  EXPECT_EQ(all.at("lag_seconds").as_double(), 7.5);
  std::vector<int64_t> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto r = h.call("GET", "/api/v1/health/piper-p1?limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor), "", sys);
    ASSERT_EQ(r.status, 200) << r.body;
    auto o = r.json().as_object();
    const auto& page = o.at("history").as_array();
    EXPECT_LE(page.size(), 3u);
    for (const auto& rep : page) {
      seen.push_back(rep.at("errors").as_int64());
      EXPECT_EQ(rep.at("lag_seconds").as_double(), static_cast<double>(rep.at("errors").as_int64()) + 0.5);
    }
    cursor = o.at("next_cursor").is_null() ? "" : std::string(o.at("next_cursor").as_string());
    ASSERT_LT(++pages, 10);
  } while (!cursor.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));  // oldest first, each once
  // A report arriving between pages shows on the next one.
  auto first = h.call("GET", "/api/v1/health/piper-p1?limit=6", "", sys).json().as_object();
  const std::string next(first.at("next_cursor").as_string());
  ASSERT_EQ(h.call("POST", "/api/v1/health", R"({"instance":"p1","status":"ok","errors":8})", svc_piper).status, 200);
  auto rest = h.call("GET", "/api/v1/health/piper-p1?limit=6&cursor=" + next, "", sys).json().as_object();
  ASSERT_EQ(rest.at("history").as_array().size(), 2u);
  EXPECT_EQ(rest.at("history").as_array()[1].at("errors"), 8);
  EXPECT_TRUE(rest.at("history").as_array()[1].at("lag_seconds").is_null());
  EXPECT_EQ(h.call("GET", "/api/v1/health/piper-p1?cursor=bm9wZQ", "", sys).field(), "cursor");
  EXPECT_EQ(h.call("GET", "/api/v1/health/piper-p1?limit=0", "", sys).field(), "limit");
  EXPECT_EQ(h.call("GET", "/api/v1/health/piper-p1?limit=501", "", sys).field(), "limit");
}

}  // namespace
}  // namespace bf::control

namespace bf::control {
namespace {

// ControlLeaseStore over real HTTP against a ControlServer: the LeaseStore contract
// (one holder, growing tokens, renew/validate fail after a takeover) and each
// service key kept to its own stage; on both store backends, selected as control.store does.
class ControlLeases : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Backends, ControlLeases, test::both_backends(), test::backend_name);

TEST_P(ControlLeases, TheLeaseStoreContractHoldsOverTheApi) {
  auto dir = test::temp_dir("leases");
  ControlOptions options = ApiHarness::generous();
  options.http.listen = "127.0.0.1:0";
  options.db = (dir / "control.db").string();
  std::optional<test::PgSchema> schema;
  if (GetParam() == "postgres") {
    schema.emplace();
    options.store_type = "postgres";
    options.store_url = schema->url();
  }
  std::shared_ptr<ControlStore> store = open_control_store(options);
  NewKey piper_key = generate_api_key(), packer_key = generate_api_key();
  for (auto [nk, service] : {std::pair{&piper_key, "piper"}, std::pair{&packer_key, "packer"}}) {
    ApiKey k;
    k.id = nk->id;
    k.secret_hash = nk->secret_hash;
    k.role = "service";
    k.service = service;
    store->create_key(k, test::audit("key.create"));
  }
  ControlServer server(store, options);
  server.start();
  ControlClientOptions client;
  client.url = "http://127.0.0.1:" + std::to_string(server.port());
  client.key = piper_key.token;
  ControlLeaseStore a(client), b(client);
  const std::string name = "piper/acme/web/nginx";
  auto la = a.acquire(name, "holder-a", std::chrono::seconds(30));
  ASSERT_TRUE(la);
  EXPECT_GE(la->token, 1u);
  EXPECT_GT(la->expires, std::chrono::system_clock::now() + std::chrono::seconds(20));
  EXPECT_FALSE(b.acquire(name, "holder-b", std::chrono::seconds(30)));  // held
  EXPECT_TRUE(a.validate(*la));
  EXPECT_TRUE(a.renew(*la, std::chrono::seconds(30)));
  // Released: b takes it with a larger token; a's token is fenced off.
  a.release(*la);
  auto lb = b.acquire(name, "holder-b", std::chrono::seconds(30));
  ASSERT_TRUE(lb);
  EXPECT_GT(lb->token, la->token);
  EXPECT_FALSE(a.validate(*la));
  EXPECT_FALSE(a.renew(*la, std::chrono::seconds(30)));
  EXPECT_TRUE(b.validate(*lb));
  // A short lease expires; the next holder gets a new token.
  auto short_lease = a.acquire("piper/acme/web/other", "holder-a", std::chrono::seconds(1));
  ASSERT_TRUE(short_lease);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_FALSE(a.validate(*short_lease));
  auto taken = b.acquire("piper/acme/web/other", "holder-b", std::chrono::seconds(30));
  ASSERT_TRUE(taken);
  EXPECT_GT(taken->token, short_lease->token);
  // The piper's key holds only piper leases; the packer's its own.
  EXPECT_THROW(a.acquire("packer/acme/web/nginx", "holder-a", std::chrono::seconds(30)), LeaseStoreError);
  client.key = packer_key.token;
  ControlLeaseStore packer(client);
  EXPECT_TRUE(packer.acquire("packer/acme/web/nginx", "holder-p", std::chrono::seconds(30)));
  // The leases are in control's database: a second server on the same database sees them.
  server.stop();
  ControlServer again(store, options);
  again.start();
  client.key = piper_key.token;
  client.url = "http://127.0.0.1:" + std::to_string(again.port());
  ControlLeaseStore c(client);
  EXPECT_FALSE(c.acquire(name, "holder-c", std::chrono::seconds(30)));  // b still holds it
  EXPECT_TRUE(c.validate(*lb));
  again.stop();
  // Control unreachable: a clear LeaseStoreError, never a silent "not held".
  EXPECT_THROW(c.validate(*lb), LeaseStoreError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bf::control
