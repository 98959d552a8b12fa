// `bytefreezer control` as a process: bootstrap key from the CLI, the API over
// real HTTP on loopback (oversized bodies, sessions), and `control import`.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>

#include "common/ulid.h"
#include "fixtures/net_helpers.h"
#include "fixtures/process.h"
#include "net/http_client.h"

namespace fs = std::filesystem;

namespace {

TEST(ControlCli, ServesTheApiWithACliMadeKeyAndImportsYamlIdempotently) {
  fs::path dir = fs::temp_directory_path() / ("bf-control-cli-" + bf::new_ulid());
  fs::create_directories(dir);
  const uint16_t port = bf::test::free_port();
  const fs::path config = dir / "control.yaml";
  std::ofstream(config) << "control:\n  listen: 127.0.0.1:" << port << "\n  db: " << (dir / "control.db").string()
                        << "\n  max_body: 64KiB\n";
  const std::string bf = std::string(BF_BINARY) + " control --config " + config.string();

  auto [code, token] = bf::test::run_command(bf + " create-key --role system_admin --name bootstrap 2>/dev/null");
  ASSERT_EQ(code, 0) << token;
  // stdout carries the key alone on its line (the note goes to stderr).
  const size_t at = token.find("bfk_");
  ASSERT_NE(at, std::string::npos) << token;
  token = token.substr(at, token.find('\n', at) - at);
  ASSERT_EQ(token.size(), 85u) << token;

  const fs::path accounts = dir / "accounts.yaml";
  std::ofstream(accounts) << "accounts:\n  - id: acme\n    tenants:\n      - id: web\n        ingest_keys: "
                             "[\"an-ingest-key-of-16+\"]\n        datasets: [{id: nginx}]\n";
  auto [c1, out1] = bf::test::run_command(bf + " import " + accounts.string() + " 2>&1");
  ASSERT_EQ(c1, 0) << out1;
  EXPECT_NE(out1.find("4 created"), std::string::npos) << out1;
  auto [c2, out2] = bf::test::run_command(bf + " import " + accounts.string() + " 2>&1");
  ASSERT_EQ(c2, 0) << out2;
  EXPECT_NE(out2.find("0 created, 0 updated, 4 unchanged"), std::string::npos) << out2;

  bf::test::ChildProcess server({BF_BINARY, "control", "--config", config.string()},
                                {"", (dir / "control.log").string(), {}});
  ASSERT_TRUE(bf::test::wait_for_port(port, std::chrono::seconds(20)));
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  bf::HttpClient client;
  bf::Headers auth{{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};

  auto r = client.send("GET", base + "/api/v1/accounts/acme/tenants/web/datasets/nginx", auth, "");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(client.send("GET", base + "/api/v1/accounts", {}, "").status, 401);
  // An oversized body is refused by the server's limit; nothing is created.
  std::string big = "{\"id\":\"big\",\"name\":\"" + std::string(100 * 1024, 'x') + "\"}";
  EXPECT_EQ(client.send("POST", base + "/api/v1/accounts", auth, big).status, 413);
  EXPECT_EQ(client.send("GET", base + "/api/v1/accounts/big", auth, "").status, 404);
  // A user made through the API logs in; the session cookie works over HTTP.
  r = client.send("POST", base + "/api/v1/users", auth,
                  R"({"email":"ops@example.com","role":"account_admin","account":"acme","password":"a-long-enough-password"})");
  ASSERT_EQ(r.status, 201) << r.body;
  r = client.send("POST", base + "/api/v1/auth/login", {{"Content-Type", "application/json"}},
                  R"({"email":"ops@example.com","password":"a-long-enough-password"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string cookie = r.headers["Set-Cookie"].substr(0, r.headers["Set-Cookie"].find(';'));
  r = client.send("GET", base + "/api/v1/auth/me", {{"Cookie", cookie}}, "");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("account_admin"), std::string::npos);
  r = client.send("GET", base + "/api/v1/openapi.json", {}, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_NO_THROW(boost::json::parse(r.body));
  EXPECT_NE(client.send("GET", base + "/metrics", {}, "").body.find("bf_control_denied_total"), std::string::npos);
  server.stop();
  fs::remove_all(dir);
}

}  // namespace
