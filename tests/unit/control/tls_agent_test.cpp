// A data-plane component's side of control over HTTPS (docs/control.md, "Runs managed
// or self-hosted"): a ControlServer serving TLS with a self-signed certificate made
// here by openssl; the config client (control/agent.h) with a service key and the
// certificate as its CA fetches its config, follows a change through the ETag
// long-poll, reports health, and keeps working — and starts — from its cached config
// once control is stopped.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
#include "control/agent.h"
#include "control_test_util.h"
#include "net/http_client.h"

namespace bf::control {
namespace {

class TlsAgent : public ::testing::Test {
 protected:
  std::filesystem::path dir = test::temp_dir("tls");
  std::shared_ptr<ControlStore> store;
  std::unique_ptr<ControlServer> server;
  std::string cert, sys_key, receiver_key, url;

  void SetUp() override {
    cert = (dir / "cert.pem").string();
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                            "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
                            (dir / "key.pem").string() + " -out " + cert + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a certificate";
    ControlOptions o = test::ApiHarness::generous();
    o.db = (dir / "control.db").string();
    o.http.listen = "127.0.0.1:0";
    o.http.threads = 4;
    o.config_max_waiters = 2;
    o.http.tls.cert_file = cert;
    o.http.tls.key_file = (dir / "key.pem").string();
    store = std::shared_ptr<ControlStore>(open_control_store(o));
    store->create_account(Account{"acme", "", 1, 1}, test::audit("a", "acme"));
    store->create_tenant(Tenant{"acme", "web", "", 1, 1}, test::audit("t", "acme"));
    add_dataset("nginx");
    sys_key = add_key("system_admin", "");
    receiver_key = add_key("service", "receiver");
    server = std::make_unique<ControlServer>(store, o);
    server->start();
    url = "https://127.0.0.1:" + std::to_string(server->port());
  }
  void TearDown() override {
    if (server) server->stop();
    server.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  void add_dataset(const std::string& id) {
    store->create_dataset(Dataset{"acme", "web", id, "", "{}", false, 1, 1}, test::audit("d", "acme"));
  }
  std::string add_key(const std::string& role, const std::string& service) {
    return test::create_store_key(*store, role, "", "", service).token;
  }
  ControlClientOptions client_options() const {
    ControlClientOptions c;
    c.url = url;
    c.key = receiver_key;
    c.cache_file = (dir / "receiver-config.json").string();
    c.wait = std::chrono::seconds(20);  // a change inside it arrives by the long-poll, not a new poll
    c.health_interval = std::chrono::milliseconds(200);
    c.instance = "edge-1";
    c.ca_file = cert;
    return c;
  }
};

TEST_F(TlsAgent, FetchesOverHttpsWithAServiceKeyFollowsTheLongPollAndRunsOnFromItsCache) {
  const ControlClientOptions co = client_options();
  // The certificate is checked: without it as the CA, and over plain HTTP, nothing is fetched.
  {
    ControlClientOptions no_ca = co;
    no_ca.ca_file.clear();
    EXPECT_ANY_THROW(http_config_fetch(no_ca, std::make_shared<std::atomic<bool>>(false))("", std::chrono::seconds(0)));
    ControlClientOptions plain = co;
    plain.url = "http://127.0.0.1:" + std::to_string(server->port());
    EXPECT_ANY_THROW(http_config_fetch(plain, std::make_shared<std::atomic<bool>>(false))("", std::chrono::seconds(0)));
    ControlClientOptions wrong_key = co;
    wrong_key.key = "bfk_" + std::string(16, '0') + "_" + std::string(64, '0');
    try {
      http_config_fetch(wrong_key, std::make_shared<std::atomic<bool>>(false))("", std::chrono::seconds(0));
      ADD_FAILURE() << "fetched with a bad key";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("401"), std::string::npos) << e.what();
    }
  }

  const Labels svc{{"service", "tls-receiver"}};
  const int64_t errors0 = metrics().value("bf_control_client_errors_total", {{"service", "tls-receiver"}, {"kind", "config"}});
  const int64_t cache0 = metrics().value("bf_control_client_cache_starts_total", svc);
  std::mutex mu;
  std::shared_ptr<const Catalog> applied;
  {
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    ConfigClient client(http_config_fetch(co, cancel), co.cache_file, co.wait, "tls-receiver");
    client.set_cancel(cancel);
    auto first = client.load(std::chrono::seconds(10));
    ASSERT_TRUE(first->find(DatasetRef{"acme", "web", "nginx"}));
    const std::string etag0 = client.etag();
    EXPECT_FALSE(etag0.empty());
    client.on_change([&](std::shared_ptr<const Catalog> c) {
      std::lock_guard lock(mu);
      applied = std::move(c);
    });
    client.start();
    HealthReporter reporter(co, "receiver", "test", [] {
      HealthSample s;
      s.lag_seconds = 0.25;
      return s;
    });
    reporter.start();

    // A change reaches the waiting request at once (its wait is 20 s).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the long-poll is waiting
    const auto changed = std::chrono::steady_clock::now();
    add_dataset("second");
    server->api().config_changed();
    auto has = [&](const char* id) {
      std::lock_guard lock(mu);
      return applied && applied->find(DatasetRef{"acme", "web", id});
    };
    while (!has("second") && std::chrono::steady_clock::now() - changed < std::chrono::seconds(10))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(has("second"));
    EXPECT_LT(std::chrono::steady_clock::now() - changed, std::chrono::seconds(2)) << "pushed, not polled";
    for (int i = 0; i < 200 && client.etag() == etag0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_NE(client.etag(), etag0);

    // Its health reports arrived over the same HTTPS, as the receiver.
    HttpClientOptions ho;
    ho.ca_file = cert;
    HttpClient http(ho);
    std::optional<boost::json::value> component;
    for (int i = 0; i < 100 && !component; ++i) {
      HttpResult r = http.send("GET", url + "/api/v1/health/receiver-edge-1", {{"Authorization", "Bearer " + sys_key}}, "");
      if (r.status == 200) component = boost::json::parse(r.body);
      else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(component);
    EXPECT_EQ(component->at("service"), "receiver");
    EXPECT_EQ(component->at("lag_seconds").as_double(), 0.25);

    // Control stops: the client keeps the config it has, and says so in its errors.
    server->stop();
    server.reset();
    for (int i = 0; i < 300 && metrics().value("bf_control_client_errors_total",
                                               {{"service", "tls-receiver"}, {"kind", "config"}}) == errors0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_GT(metrics().value("bf_control_client_errors_total", {{"service", "tls-receiver"}, {"kind", "config"}}), errors0);
    EXPECT_TRUE(has("second")) << "still running on the last config";
    reporter.stop();
    client.stop();
  }
  // A restart while control is down starts from the cache: the last config, with its key hashes only.
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  ConfigClient restarted(http_config_fetch(co, cancel), co.cache_file, co.wait, "tls-receiver");
  restarted.set_cancel(cancel);
  auto cached = restarted.load(std::chrono::milliseconds(500));
  EXPECT_TRUE(cached->find(DatasetRef{"acme", "web", "second"}));
  EXPECT_EQ(metrics().value("bf_control_client_cache_starts_total", svc), cache0 + 1);
  std::ifstream in(co.cache_file);
  const std::string cache((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(cache.find(parse_api_key(receiver_key)->secret), std::string::npos);
}

}  // namespace
}  // namespace bf::control
