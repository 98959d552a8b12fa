// Config distribution and health with real processes (docs/control.md): a receiver
// and a piper fetch their catalog from `bytefreezer control` with a service key,
// apply each change pushed through the long-poll, report their health, and keep
// running — and restart — from their cached config while control is down.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/batch.h"
#include "common/ulid.h"
#include "fixtures/net_helpers.h"
#include "fixtures/process.h"
#include "net/http_client.h"

namespace fs = std::filesystem;
using bf::test::ChildOptions;
using bf::test::ChildProcess;

namespace {

constexpr const char* kIngestKey = "config-test-ingest-key-0123";

std::string token_of(const std::string& out) {
  const size_t at = out.find("bfk_");
  if (at == std::string::npos) return "";
  return out.substr(at, out.find('\n', at) - at);
}

class ControlConfig : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-control-config-" + bf::new_ulid());
  uint16_t control_port = bf::test::free_port();
  uint16_t receiver_port = bf::test::free_port();
  std::string base, admin_key, receiver_key, piper_key;
  bf::HttpClient http;
  std::unique_ptr<ChildProcess> control, receiver, piper;

  void SetUp() override {
    fs::create_directories(dir);
    base = "http://127.0.0.1:" + std::to_string(control_port);
    std::ofstream(dir / "control.yaml") << "control:\n  listen: 127.0.0.1:" << control_port
                                        << "\n  db: " << (dir / "control.db").string() << "\n";
    const std::string cli = std::string(BF_BINARY) + " control --config " + (dir / "control.yaml").string();
    admin_key = token_of(bf::test::run_command(cli + " create-key --role system_admin").second);
    receiver_key = token_of(bf::test::run_command(cli + " create-key --role service --service receiver").second);
    piper_key = token_of(bf::test::run_command(cli + " create-key --role service --service piper").second);
    ASSERT_EQ(admin_key.size(), 85u);
    ASSERT_EQ(receiver_key.size(), 85u);
    ASSERT_EQ(piper_key.size(), 85u);
    std::ofstream(dir / "accounts.yaml") << "accounts:\n  - id: acme\n    tenants:\n      - id: web\n        ingest_keys: [\""
                                         << kIngestKey
                                         << "\"]\n        datasets:\n          - id: nginx\n            pipeline: "
                                            "[{add: {field: v, value: one}}]\n";
    auto [code, out] = bf::test::run_command(cli + " import " + (dir / "accounts.yaml").string());
    ASSERT_EQ(code, 0) << out;
    for (auto [name, key, extra] : {std::tuple{"receiver", receiver_key, std::string("receiver:\n  listen: 127.0.0.1:") +
                                                                             std::to_string(receiver_port) +
                                                                             "\n  spool: {dir: ./receiver-spool}\n"},
                                    std::tuple{"piper", piper_key,
                                               // its dataset leases held in control
                                               std::string("piper: {interval: 200ms}\nleases: {type: control, ttl: 5s}\n")}}) {
      std::ofstream(dir / (std::string(name) + ".yaml"))
          << "log: {level: info}\nadmin: {enabled: false}\nstorage: {type: local, path: " << (dir / "store").string()
          << "}\ncontrol_client:\n  url: " << base << "\n  key: " << key << "\n  cache_file: ./" << name
          << "-config.json\n  wait: 30s\n  startup_timeout: 10s\n  health_interval: 1s\n  instance: " << name
          << "-1\n"
          << extra;
    }
    start_control();
  }
  void TearDown() override {
    piper.reset();
    receiver.reset();
    control.reset();
    if (!HasFailure()) fs::remove_all(dir);
  }

  void start_control() {
    control = std::make_unique<ChildProcess>(
        std::vector<std::string>{BF_BINARY, "control", "--config", (dir / "control.yaml").string()},
        ChildOptions{dir.string(), (dir / "control.log").string(), {}});
    ASSERT_TRUE(bf::test::wait_for_port(control_port, std::chrono::seconds(20))) << control->log();
  }
  std::unique_ptr<ChildProcess> start(const std::string& name) {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{BF_BINARY, name, "--config", (dir / (name + ".yaml")).string()},
        ChildOptions{dir.string(), (dir / (name + ".log")).string(), {}});
  }
  bf::HttpResult api(const std::string& method, const std::string& path, const std::string& body = "") {
    return http.send(method, base + path, {{"Authorization", "Bearer " + admin_key}, {"Content-Type", "application/json"}},
                     body);
  }
  long ingest(const std::string& dataset, const std::string& key = kIngestKey, const std::string& line = "{\"n\":1}") {
    try {
      return http
          .send("POST", "http://127.0.0.1:" + std::to_string(receiver_port) + "/api/v1/ingest/web/" + dataset,
                {{"Authorization", "Bearer " + key}, {"Content-Type", "application/x-ndjson"}}, line + "\n")
          .status;
    } catch (const bf::HttpTransportError&) {
      return 0;
    }
  }
  // The events in processed/ for acme/web/nginx.
  std::vector<bf::Event> processed() {
    std::vector<bf::Event> out;
    const fs::path root = dir / "store" / "processed" / "acme" / "web" / "nginx";
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator(); ++it) {
      if (!it->is_regular_file() || it->path().string().find(".ndjson.zst") == std::string::npos) continue;
      std::ifstream in(it->path(), std::ios::binary);
      std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      try {
        for (auto& e : bf::decode_batch(data)) out.push_back(std::move(e));
      } catch (const std::exception&) {
        // a file being written: read again next time
      }
    }
    return out;
  }
  bool processed_has(const std::string& field, const std::string& value, int n) {
    for (const auto& e : processed()) {
      auto* f = e.if_contains(field);
      auto* nn = e.if_contains("n");
      if (f && f->is_string() && f->get_string() == value && nn && nn->is_int64() && nn->get_int64() == n) return true;
    }
    return false;
  }
  // Until `done` holds; returns the milliseconds it took (or -1 past the deadline).
  static long long wait_ms(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(10)) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < limit) {
      if (done()) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
};

// A change in control reaches the running receiver and piper through the long-poll
// (their wait is 30 s, so anything within the 10 s limit was pushed, not polled).
TEST_F(ControlConfig, ChangesReachRunningComponentsThroughTheLongPoll) {
  receiver = start("receiver");
  piper = start("piper");
  ASSERT_TRUE(bf::test::wait_for_port(receiver_port, std::chrono::seconds(20))) << receiver->log();
  EXPECT_EQ(ingest("nginx"), 200);
  EXPECT_EQ(ingest("fresh"), 404);  // not in control yet
  EXPECT_EQ(ingest("nginx", "not-a-key-of-this-tenant"), 401);

  // A new dataset: accepted by the receiver as soon as control has it.
  auto r = api("POST", "/api/v1/accounts/acme/tenants/web/datasets", R"({"id":"fresh"})");
  ASSERT_EQ(r.status, 201) << r.body;
  const long long dataset_ms = wait_ms([&] { return ingest("fresh") == 200; });
  EXPECT_GE(dataset_ms, 0) << receiver->log();
  std::cout << "new dataset applied by the receiver after " << dataset_ms << " ms\n";

  // The pipeline as imported, then changed: the next batch carries the change.
  ASSERT_EQ(ingest("nginx", kIngestKey, R"({"n":10})"), 200);
  EXPECT_GE(wait_ms([&] { return processed_has("v", "one", 10); }), 0) << piper->log();
  // The piper worked under a lease control handed out.
  EXPECT_NE(piper->log().find("leases: held in control"), std::string::npos) << piper->log();
  EXPECT_NE(piper->log().find("dataset acme/web/nginx: acquired lease"), std::string::npos) << piper->log();
  auto applied = [&] {
    const std::string log = piper->log();
    size_t n = 0;
    for (size_t at = log.find("applied config"); at != std::string::npos; at = log.find("applied config", at + 1)) ++n;
    return n;
  };
  // The new dataset may still be reaching the piper: count from when it has.
  wait_ms([&] { return applied() >= 1; });
  const size_t applied_before = applied();
  r = api("PATCH", "/api/v1/accounts/acme/tenants/web/datasets/nginx",
          R"({"settings":{"pipeline":[{"add":{"field":"v","value":"two"}}]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  const long long pipeline_ms = wait_ms([&] { return applied() > applied_before; });
  EXPECT_GE(pipeline_ms, 0) << piper->log();
  std::cout << "changed pipeline applied by the piper after " << pipeline_ms << " ms\n";
  ASSERT_EQ(ingest("nginx", kIngestKey, R"({"n":11})"), 200);
  EXPECT_GE(wait_ms([&] { return processed_has("v", "two", 11); }), 0) << piper->log();
  EXPECT_FALSE(processed_has("v", "one", 11));

  // A key made in control, scoped to one dataset, works at once and only there;
  // revoked, it stops working.
  r = api("POST", "/api/v1/keys", R"({"role":"ingest","account":"acme","tenant":"web","dataset":"nginx"})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto created = boost::json::parse(r.body).as_object();
  const std::string key(created.at("key").as_string()), key_id(created.at("id").as_string());
  EXPECT_GE(wait_ms([&] { return ingest("nginx", key) == 200; }), 0);
  EXPECT_EQ(ingest("fresh", key), 403);
  ASSERT_EQ(api("DELETE", "/api/v1/keys/" + key_id).status, 200);
  EXPECT_GE(wait_ms([&] { return ingest("nginx", key) == 401; }), 0);

  // A pipeline step this piper cannot compile never reaches it: control refuses it.
  r = api("PATCH", "/api/v1/accounts/acme/tenants/web/datasets/nginx", R"({"settings":{"pipeline":[{"nope":{}}]}})");
  EXPECT_EQ(r.status, 400) << r.body;

  // Health: both components registered and report.
  EXPECT_GE(wait_ms([&] {
              auto h = api("GET", "/api/v1/health");
              return h.status == 200 && h.body.find("\"receiver-receiver-1\"") != std::string::npos &&
                     h.body.find("\"piper-piper-1\"") != std::string::npos;
            }),
            0);
  boost::json::object h;
  EXPECT_GE(wait_ms([&] {
              h = boost::json::parse(api("GET", "/api/v1/health/receiver-receiver-1").body).as_object();
              return h.at("status") == "ok";
            }),
            0)
      << boost::json::serialize(h);
  EXPECT_EQ(h.at("service"), "receiver");
  EXPECT_TRUE(h.at("spool_depth").is_int64());
  EXPECT_FALSE(h.at("history").as_array().empty());
  EXPECT_EQ(h.at("version"), "0.1.0");
}

// Control down: the components keep running on their config, restart from the
// cache, and pick up changes once control is back.
TEST_F(ControlConfig, ComponentsRunAndRestartFromTheirCacheWhileControlIsDown) {
  receiver = start("receiver");
  ASSERT_TRUE(bf::test::wait_for_port(receiver_port, std::chrono::seconds(20))) << receiver->log();
  EXPECT_EQ(ingest("nginx"), 200);
  EXPECT_TRUE(fs::exists(dir / "receiver-config.json"));
  const std::string cache = [&] {
    std::ifstream in(dir / "receiver-config.json");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }();
  // The cache holds the key's hash, never the key.
  EXPECT_EQ(cache.find(kIngestKey), std::string::npos);
  EXPECT_NE(cache.find("secret_sha256"), std::string::npos);

  control->kill();
  EXPECT_EQ(ingest("nginx"), 200);  // still running on what it had
  receiver->stop();
  receiver = start("receiver");
  ASSERT_TRUE(bf::test::wait_for_port(receiver_port, std::chrono::seconds(20))) << receiver->log();
  EXPECT_EQ(ingest("nginx"), 200) << receiver->log();
  EXPECT_NE(receiver->log().find("starting from the cached config"), std::string::npos) << receiver->log();

  // Without a cache and without control, a component refuses to start, saying why.
  fs::remove(dir / "piper-config.json");
  auto p = start("piper");
  EXPECT_GE(wait_ms([&] { return !p->running(); }, std::chrono::seconds(30)), 0);
  EXPECT_NE(p->log().find("no cached config"), std::string::npos) << p->log();

  // Control back: the receiver reconnects and applies what changed.
  start_control();
  ASSERT_EQ(api("POST", "/api/v1/accounts/acme/tenants/web/datasets", R"({"id":"later"})").status, 201);
  EXPECT_GE(wait_ms([&] { return ingest("later") == 200; }, std::chrono::seconds(30)), 0) << receiver->log();
}

// The long-poll over HTTP: 304 while unchanged (after waiting), 200 with a new ETag
// at once on a change; a service key gets only its own service's document.
TEST_F(ControlConfig, LongPollAnswersAChangeAtOnceAndUnchangedAfterTheWait) {
  bf::Headers svc{{"Authorization", "Bearer " + receiver_key}};
  auto first = http.send("GET", base + "/api/v1/config", svc, "");
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string etag = first.headers["ETag"];
  ASSERT_FALSE(etag.empty());
  EXPECT_NE(first.body.find("secret_sha256"), std::string::npos);  // the receiver checks ingest keys
  auto piper_doc = http.send("GET", base + "/api/v1/config", {{"Authorization", "Bearer " + piper_key}}, "");
  EXPECT_EQ(piper_doc.body.find("secret_sha256"), std::string::npos);  // the piper does not
  EXPECT_EQ(http.send("GET", base + "/api/v1/config?service=piper", svc, "").status, 400);

  svc["If-None-Match"] = etag;
  const auto t0 = std::chrono::steady_clock::now();
  auto same = http.send("GET", base + "/api/v1/config?wait=1", svc, "");
  EXPECT_EQ(same.status, 304);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900));  // it did wait

  std::thread change([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    bf::HttpClient c;
    c.send("POST", base + "/api/v1/accounts/acme/tenants/web/datasets",
           {{"Authorization", "Bearer " + admin_key}, {"Content-Type", "application/json"}}, R"({"id":"pushed"})");
  });
  auto changed = http.send("GET", base + "/api/v1/config?wait=30", svc, "");
  change.join();
  EXPECT_EQ(changed.status, 200);
  EXPECT_NE(changed.headers["ETag"], etag);
  EXPECT_NE(changed.body.find("\"pushed\""), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));  // answered on the change, not at 30 s
}

}  // namespace
