// What only the PostgreSQL backend has: the LeaseStore contract
// (fixtures/lease_store_conformance.h) on its lease store, the database's clock,
// connection errors, and the control.store section that selects it. (The store
// suites that run on both backends are in store_test.cpp, api_test.cpp, ...)
#include <gtest/gtest.h>

#include <thread>

#include "common/config.h"
#include "control/api.h"
#include "control/store.h"
#include "fixtures/lease_store_conformance.h"
#include "fixtures/postgres.h"

namespace bf::control {
namespace {

using bf::test::LeaseStoreConformance;

// A schema of its own on the test cluster, dropped with the last opener.
test::LeaseOpener postgres_leases() {
  auto schema = std::make_shared<test::PgSchema>();
  return [schema](test::LeaseClock clock) {
    return std::shared_ptr<LeaseStore>(open_postgres_lease_store(schema->url(), {}, std::move(clock)));
  };
}

INSTANTIATE_TEST_SUITE_P(Postgres, LeaseStoreConformance,
                         ::testing::Values(test::LeaseBackend{"postgres", postgres_leases}),
                         test::LeaseBackendName());

TEST(PostgresLeases, WithoutATestClockTheDatabasesClockDecides) {
  test::PgSchema schema;
  auto store = open_postgres_lease_store(schema.url());
  const auto before = std::chrono::system_clock::now();
  auto a = store->acquire("piper/a/t/d", "a", std::chrono::seconds(1));
  const auto after = std::chrono::system_clock::now();
  ASSERT_TRUE(a);
  // Same host: the database's clock is this one (a small margin for rounding).
  EXPECT_GE(a->expires, before + std::chrono::milliseconds(990));
  EXPECT_LE(a->expires, after + std::chrono::milliseconds(1010));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_FALSE(store->validate(*a));
  auto b = store->acquire("piper/a/t/d", "b", std::chrono::seconds(30));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->token, a->token + 1);
}

TEST(PostgresStore, AnUnreachableServerIsAClearError) {
  const std::string url = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2";
  try {
    open_postgres_store(url);
    FAIL() << "connected to nothing";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
  }
  EXPECT_THROW(open_postgres_lease_store(url), LeaseStoreError);
}

// Ends the server side of every connection opened with application_name `app`.
void drop_connections(const std::string& app, int64_t expected) {
  EXPECT_EQ(test::PostgresCluster::shared().scalar("SELECT count(pg_terminate_backend(pid, 10000)) FROM "
                                                   "pg_stat_activity WHERE application_name = '" + app + "'"),
            expected);
}

// A server restart or failover drops the connection; the next request reconnects
// (a read is sent again at once, a transaction begins on the new connection).
TEST(PostgresStore, ADroppedConnectionIsReestablished) {
  test::PgSchema schema;
  const std::string app = "bf_" + schema.name();
  auto store = open_postgres_store(schema.url() + "&application_name=" + app);
  store->create_account(Account{"a", "", 1, 1}, AuditEntry{0, 0, "test", "a", "a", "a", "null", "null"});
  auto drop = [&] { drop_connections(app, 1); };
  drop();
  ASSERT_TRUE(store->get_account("a"));
  drop();
  store->create_tenant(Tenant{"a", "t", "", 1, 1}, AuditEntry{0, 0, "test", "t", "a/t", "a", "null", "null"});
  EXPECT_TRUE(store->get_tenant("a", "t"));
  EXPECT_EQ(store->list_audit(PageQuery{}).size(), 2u);
}

TEST(PostgresLeases, ADroppedConnectionIsReestablished) {
  test::PgSchema schema;
  const std::string app = "bf_" + schema.name();
  auto store = open_postgres_lease_store(schema.url() + "&application_name=" + app);
  auto a = store->acquire("packer/a/t/d", "a", std::chrono::seconds(30));
  ASSERT_TRUE(a);
  drop_connections(app, 1);
  EXPECT_TRUE(store->validate(*a));
  drop_connections(app, 1);
  EXPECT_TRUE(store->renew(*a, std::chrono::seconds(30)));
  drop_connections(app, 1);
  EXPECT_FALSE(store->acquire("packer/a/t/d", "b", std::chrono::seconds(30)));
}

TEST(ControlStoreConfig, TheStoreSectionSelectsTheBackendAndNamesItsErrors) {
  auto parse = [](const std::string& yaml) {
    ConfigNode root = ConfigNode::parse(yaml, "test.yaml");
    return parse_control_options(root.child("control"));
  };
  EXPECT_EQ(parse("{}").store_type, "sqlite");
  ControlOptions pg = parse("control: {store: {type: postgres, url: 'postgresql://bf@db:5432/bf'}}");
  EXPECT_EQ(pg.store_type, "postgres");
  EXPECT_EQ(pg.store_url, "postgresql://bf@db:5432/bf");
  EXPECT_EQ(pg.store_password, "");
  auto error = [&](const std::string& yaml) {
    try {
      parse(yaml);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error("control: {store: {type: postgres}}").find("control.store.url"), std::string::npos);
  EXPECT_NE(error("control: {store: {type: mysql}}").find("control.store.type"), std::string::npos);
  EXPECT_NE(error("control: {store: {url: 'postgresql://x'}}").find("control.store.url"), std::string::npos);
  ::unsetenv("BF_TEST_PG_PASSWORD");
  const std::string with_env = "control: {store: {type: postgres, url: 'postgresql://bf@db/bf', password_env: BF_TEST_PG_PASSWORD}}";
  EXPECT_NE(error(with_env).find("control.store.password_env"), std::string::npos);
  ::setenv("BF_TEST_PG_PASSWORD", "s3cret", 1);
  EXPECT_EQ(parse(with_env).store_password, "s3cret");
  ::unsetenv("BF_TEST_PG_PASSWORD");
}

// The test cluster checks passwords on TCP (scram-sha-256): the password given
// beside the URL (control.store.password_env) is the one libpq logs in with.
TEST(ControlStoreConfig, ThePasswordBesideTheUrlLogsIn) {
  test::PgSchema schema;
  const std::string role = "bf_" + schema.name();
  auto& cluster = test::PostgresCluster::shared();
  cluster.exec("CREATE ROLE " + role + " LOGIN PASSWORD 'pw-from-env'; GRANT ALL ON SCHEMA " + schema.name() +
               " TO " + role);
  const std::string& admin = cluster.url();  // postgresql://postgres:...@host:port/postgres
  const size_t at = admin.find('@');
  ControlOptions o;
  o.store_type = "postgres";
  o.store_url = "postgresql://" + role + admin.substr(at) + "?options=-csearch_path%3D" + schema.name();
  o.store_password = "wrong";
  try {
    open_control_store(o);
    ADD_FAILURE() << "logged in with a wrong password";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("password authentication failed"), std::string::npos) << e.what();
  }
  o.store_password = "pw-from-env";
  {
    auto store = open_control_store(o);
    EXPECT_EQ(store->schema_version(), postgres_schema_latest());
    EXPECT_NE(store->describe().find(role), std::string::npos) << store->describe();
    EXPECT_EQ(store->describe().find("pw-from-env"), std::string::npos) << store->describe();
    EXPECT_TRUE(open_control_leases(o)->acquire("piper/a/t/d", "h", std::chrono::seconds(5)));
  }
  cluster.exec("DROP OWNED BY " + role + "; DROP ROLE " + role);
}

}  // namespace
}  // namespace bf::control
