// `bytefreezer control` on PostgreSQL as processes: two control instances on one
// database (control.store with the password from password_env) share the catalog,
// sessions, keys, leases and the audit log.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>

#include "common/ulid.h"
#include "control/store.h"
#include "fixtures/net_helpers.h"
#include "fixtures/postgres.h"
#include "fixtures/process.h"
#include "net/http_client.h"

namespace fs = std::filesystem;

namespace {

TEST(ControlPostgres, TwoInstancesShareOneDatabase) {
  bf::test::PgSchema schema;
  // The superuser's URL without its password, which comes from the environment instead.
  const std::string admin = schema.url();  // postgresql://postgres:<pw>@host:port/postgres?options=...
  const size_t colon = admin.find(':', std::string("postgresql://").size());
  const size_t at = admin.find('@');
  ASSERT_NE(colon, std::string::npos);
  ASSERT_LT(colon, at);
  const std::string password = admin.substr(colon + 1, at - colon - 1);
  const std::string url = admin.substr(0, colon) + admin.substr(at);

  fs::path dir = fs::temp_directory_path() / ("bf-control-pg-" + bf::new_ulid());
  fs::create_directories(dir);
  const uint16_t ports[2] = {bf::test::free_port(), bf::test::free_port()};
  fs::path configs[2];
  for (int i = 0; i < 2; ++i) {
    configs[i] = dir / ("control-" + std::to_string(i) + ".yaml");
    std::ofstream(configs[i]) << "control:\n  listen: 127.0.0.1:" << ports[i] << "\n  store:\n    type: postgres\n"
                              << "    url: \"" << url << "\"\n    password_env: BF_TEST_CONTROL_DB_PASSWORD\n";
  }
  const std::string env = "BF_TEST_CONTROL_DB_PASSWORD='" + password + "' ";
  const std::string cli = env + BF_BINARY + " control --config " + configs[0].string();

  // Without the variable the start stops, naming the key.
  auto [bad, why] = bf::test::run_command(std::string(BF_BINARY) + " control --config " + configs[0].string() +
                                          " create-key --role system_admin 2>&1");
  EXPECT_NE(bad, 0);
  EXPECT_NE(why.find("control.store.password_env"), std::string::npos) << why;

  auto [code, out] = bf::test::run_command(cli + " create-key --role system_admin --name bootstrap 2>/dev/null");
  ASSERT_EQ(code, 0) << out;
  const size_t k = out.find("bfk_");
  ASSERT_NE(k, std::string::npos) << out;
  const std::string token = out.substr(k, out.find('\n', k) - k);
  auto [pcode, pout] = bf::test::run_command(cli + " create-key --role service --service piper 2>/dev/null");
  ASSERT_EQ(pcode, 0) << pout;
  const size_t pk = pout.find("bfk_");
  ASSERT_NE(pk, std::string::npos) << pout;
  const std::string piper = pout.substr(pk, pout.find('\n', pk) - pk);

  // Both instances start together on the one database: the migrations are applied once.
  std::unique_ptr<bf::test::ChildProcess> servers[2];
  for (int i = 0; i < 2; ++i) {
    servers[i] = std::make_unique<bf::test::ChildProcess>(
        std::vector<std::string>{BF_BINARY, "control", "--config", configs[i].string()},
        bf::test::ChildOptions{"", (dir / ("control-" + std::to_string(i) + ".log")).string(),
                               {{"BF_TEST_CONTROL_DB_PASSWORD", password}}});
  }
  for (uint16_t port : ports) ASSERT_TRUE(bf::test::wait_for_port(port, std::chrono::seconds(30)));
  EXPECT_EQ(schema.scalar("SELECT count(*) FROM schema_migrations"), bf::control::postgres_schema_latest());
  const std::string base[2] = {"http://127.0.0.1:" + std::to_string(ports[0]),
                               "http://127.0.0.1:" + std::to_string(ports[1])};
  bf::HttpClient client;
  bf::Headers auth{{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};

  // A change through one instance is seen by the other; a duplicate through it is a 409.
  auto r = client.send("POST", base[0] + "/api/v1/accounts", auth, R"({"id":"acme"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(client.send("GET", base[1] + "/api/v1/accounts/acme", auth, "").status, 200);
  EXPECT_EQ(client.send("POST", base[1] + "/api/v1/accounts", auth, R"({"id":"acme"})").status, 409);
  // A session made on one instance authenticates on the other.
  r = client.send("POST", base[1] + "/api/v1/users", auth,
                  R"({"email":"ops@example.com","role":"account_admin","account":"acme","password":"a-long-enough-password"})");
  ASSERT_EQ(r.status, 201) << r.body;
  r = client.send("POST", base[0] + "/api/v1/auth/login", {{"Content-Type", "application/json"}},
                  R"({"email":"ops@example.com","password":"a-long-enough-password"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string cookie = r.headers["Set-Cookie"].substr(0, r.headers["Set-Cookie"].find(';'));
  EXPECT_EQ(client.send("GET", base[1] + "/api/v1/auth/me", {{"Cookie", cookie}}, "").status, 200);
  // One lease for both: held through one, refused through the other, with one token sequence.
  bf::Headers svc{{"Authorization", "Bearer " + piper}, {"Content-Type", "application/json"}};
  r = client.send("POST", base[0] + "/api/v1/leases/acquire", svc, R"({"name":"piper/acme/web/nginx","holder":"h0","ttl_ms":30000})");
  ASSERT_EQ(r.status, 200) << r.body;
  const int64_t token0 = boost::json::parse(r.body).at("token").as_int64();
  EXPECT_EQ(client.send("POST", base[1] + "/api/v1/leases/acquire", svc,
                        R"({"name":"piper/acme/web/nginx","holder":"h1","ttl_ms":30000})").status, 409);
  EXPECT_EQ(client.send("POST", base[1] + "/api/v1/leases/release", svc,
                        R"({"name":"piper/acme/web/nginx","holder":"h0","token":)" + std::to_string(token0) + "}").status,
            204);
  r = client.send("POST", base[1] + "/api/v1/leases/acquire", svc, R"({"name":"piper/acme/web/nginx","holder":"h1","ttl_ms":30000})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GT(boost::json::parse(r.body).at("token").as_int64(), token0);
  // The audit log is one: both instances list the same entries.
  auto a0 = client.send("GET", base[0] + "/api/v1/audit?limit=50", auth, "");
  auto a1 = client.send("GET", base[1] + "/api/v1/audit?limit=50", auth, "");
  ASSERT_EQ(a0.status, 200);
  EXPECT_EQ(a0.body, a1.body);
  EXPECT_GE(boost::json::parse(a0.body).at("items").as_array().size(), 4u);  // 2 keys, account, user
  for (auto& s : servers) s->stop();
  fs::remove_all(dir);
}

}  // namespace
