// The control store on both backends: migrations (fresh, re-run, upgrade, newer
// schema, concurrent starts), rows, constraints, pagination, and the audit entry
// written with every change.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <thread>

#include "control_test_util.h"

namespace bf::control {
namespace {

using test::audit;

// The same suite on SQLite and on PostgreSQL (a schema of its own on the test cluster).
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<test::StoreBackend> backend = test::make_backend(GetParam());
  std::unique_ptr<ControlStore> open(int migrate_to = 0) { return backend->open(migrate_to); }
  int64_t scalar(const std::string& sql) { return backend->scalar(sql); }
  void exec(const std::string& sql) { backend->exec(sql); }
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, test::both_backends(), test::backend_name);

TEST_P(StoreTest, FreshStoreAppliesEveryMigrationOnceInOrder) {
  auto store = open();
  EXPECT_EQ(store->schema_version(), backend->latest());
  EXPECT_GE(backend->latest(), 2);
  EXPECT_EQ(scalar("SELECT count(*) FROM schema_migrations"), backend->latest());
  EXPECT_EQ(scalar("SELECT min(version) FROM schema_migrations"), 1);
  if (GetParam() != "sqlite") return;
  // WAL and foreign keys are on.
  store.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(static_cast<test::SqliteBackend&>(*backend).path().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_P(StoreTest, ReopeningAppliesNothingAgainAndKeepsData) {
  {
    auto store = open();
    store->create_account(Account{"acme", "Acme", 1, 1}, audit("account.create", "acme"));
  }
  auto store = open();
  EXPECT_EQ(scalar("SELECT count(*) FROM schema_migrations"), backend->latest());
  ASSERT_TRUE(store->get_account("acme"));
  EXPECT_EQ(store->get_account("acme")->name, "Acme");
}

TEST_P(StoreTest, UpgradesAnOlderSchemaKeepingItsRows) {
  {
    auto store = open(/*migrate_to=*/1);
    EXPECT_EQ(store->schema_version(), 1);
  }
  // A dataset written by a version-1 binary (no paused column yet).
  exec("INSERT INTO accounts VALUES ('a', '', 1, 1); INSERT INTO tenants VALUES ('a', 't', '', 1, 1);"
       "INSERT INTO datasets (account, tenant, id, name, settings, created_us, updated_us) "
       "VALUES ('a', 't', 'd', '', '{\"pipeline\":[]}', 1, 1)");
  auto store = open();
  EXPECT_EQ(store->schema_version(), backend->latest());
  auto d = store->get_dataset("a", "t", "d");
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->paused);
  EXPECT_EQ(d->settings_json, "{\"pipeline\":[]}");
  d->paused = true;
  EXPECT_TRUE(store->update_dataset(*d, audit("dataset.update", "a")));
  EXPECT_TRUE(store->get_dataset("a", "t", "d")->paused);
}

TEST_P(StoreTest, RefusesASchemaNewerThanItKnows) {
  { open(); }
  exec("INSERT INTO schema_migrations VALUES (" + std::to_string(backend->latest() + 1) + ", 0)");
  try {
    open();
    FAIL() << "opened a newer schema";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this binary"), std::string::npos) << e.what();
  }
}

TEST_P(StoreTest, EveryChangeWritesItsAuditEntryAndFailedChangesWriteNone) {
  auto store = open();
  AuditEntry e = audit("account.create", "acme");
  e.after_json = "{\"id\":\"acme\"}";
  store->create_account(Account{"acme", "", 1, 1}, e);
  EXPECT_THROW(store->create_account(Account{"acme", "", 1, 1}, audit("account.create", "acme")), StoreConflict);
  EXPECT_FALSE(store->update_account(Account{"nope", "", 1, 1}, audit("account.update", "nope")));
  auto log = store->list_audit(PageQuery{});
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].action, "account.create");
  EXPECT_EQ(log[0].after_json, "{\"id\":\"acme\"}");
  EXPECT_EQ(log[0].before_json, "null");
  EXPECT_GT(log[0].time_us, 0);
}

TEST_P(StoreTest, ReferencesAreEnforced) {
  auto store = open();
  // A tenant of an account that does not exist.
  EXPECT_THROW(store->create_tenant(Tenant{"ghost", "t", "", 1, 1}, audit("t")), StoreConflict);
  store->create_account(Account{"a", "", 1, 1}, audit("a"));
  store->create_tenant(Tenant{"a", "t", "", 1, 1}, audit("t"));
  store->create_dataset(Dataset{"a", "t", "d", "", "{}", false, 1, 1}, audit("d"));
  // An account or tenant with children is not deleted, and no audit entry appears.
  const size_t before = store->list_audit(PageQuery{}).size();
  EXPECT_THROW(store->delete_account("a", audit("account.delete")), StoreConflict);
  EXPECT_THROW(store->delete_tenant("a", "t", audit("tenant.delete")), StoreConflict);
  EXPECT_EQ(store->list_audit(PageQuery{}).size(), before);
  // A dataset-scoped key goes with its dataset.
  ApiKey k;
  k.id = "0123456789abcdef";
  k.secret_hash = hash_secret("s");
  k.role = "ingest";
  k.account = "a";
  k.tenant = "t";
  k.dataset = "d";
  store->create_key(k, audit("key.create"));
  EXPECT_TRUE(store->get_key(k.id));
  EXPECT_TRUE(store->delete_dataset("a", "t", "d", audit("dataset.delete")));
  EXPECT_FALSE(store->get_key(k.id));
}

TEST_P(StoreTest, UserEmailsAreUniqueAndDeletingAUserEndsItsSessions) {
  auto store = open();
  User u{"u1", "a@example.com", "", "system_admin", "", "h", false, 1, 1};
  store->create_user(u, audit("user.create"));
  User twin = u;
  twin.id = "u2";
  EXPECT_THROW(store->create_user(twin, audit("user.create")), StoreConflict);
  store->create_session(Session{"tok", "u1", 1, now_us() + 1000000});
  EXPECT_TRUE(store->get_session("tok"));
  EXPECT_TRUE(store->delete_user("u1", audit("user.delete")));
  EXPECT_FALSE(store->get_session("tok"));
  EXPECT_EQ(store->count_users(), 0u);
}

TEST_P(StoreTest, KeysetPagesCoverEveryRowOnce) {
  auto store = open();
  for (int i = 0; i < 7; ++i) store->create_account(Account{"acc" + std::to_string(i), "", 1, 1}, audit("a"));
  std::vector<std::string> seen;
  PageQuery p;
  p.limit = 3;
  while (true) {
    auto rows = store->list_accounts(p);
    for (auto& r : rows) seen.push_back(r.id);
    if (rows.size() < p.limit) break;
    p.after = rows.back().id;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"acc0", "acc1", "acc2", "acc3", "acc4", "acc5", "acc6"}));
  // The audit log pages newest first.
  auto newest = store->list_audit(PageQuery{"", 2, ""});
  ASSERT_EQ(newest.size(), 2u);
  EXPECT_GT(newest[0].seq, newest[1].seq);
  auto next = store->list_audit(PageQuery{std::to_string(newest[1].seq), 2, ""});
  ASSERT_FALSE(next.empty());
  EXPECT_LT(next[0].seq, newest[1].seq);
}

TEST_P(StoreTest, HostileTextIsStoredAsData) {
  auto store = open();
  store->create_account(Account{"a", "x'); DROP TABLE accounts; --", 1, 1}, audit("a"));
  EXPECT_EQ(store->get_account("a")->name, "x'); DROP TABLE accounts; --");
  EXPECT_FALSE(store->get_account("a' OR '1'='1"));
  EXPECT_EQ(store->list_accounts(PageQuery{}).size(), 1u);
}

TEST_P(StoreTest, ConcurrentStartsApplyEachMigrationOnce) {
  constexpr int kStarts = 4;
  std::vector<std::thread> starts;
  std::vector<int> versions(kStarts, -1);
  std::vector<std::string> errors(kStarts);
  for (int i = 0; i < kStarts; ++i) {
    starts.emplace_back([&, i] {
      try {
        versions[i] = open()->schema_version();
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : starts) t.join();
  for (int i = 0; i < kStarts; ++i) {
    EXPECT_EQ(errors[i], "") << "start " << i;
    EXPECT_EQ(versions[i], backend->latest()) << "start " << i;
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM schema_migrations"), backend->latest());
}

TEST_P(StoreTest, AFailedChangeLeavesTheStoreUsable) {
  auto store = open();
  store->create_account(Account{"a", "", 1, 1}, audit("a"));
  EXPECT_THROW(store->create_account(Account{"a", "", 1, 1}, audit("a")), StoreConflict);
  // The aborted transaction is gone: the next change and its audit entry land.
  store->create_tenant(Tenant{"a", "t", "", 1, 1}, audit("tenant.create"));
  EXPECT_TRUE(store->get_tenant("a", "t"));
  EXPECT_EQ(store->list_audit(PageQuery{}).size(), 2u);
}

TEST_P(StoreTest, ControlLeasesLiveInTheSameDatabase) {
  auto store = open();
  auto leases = backend->leases();
  auto a = leases->acquire("packer/a/t/d", "worker-1", std::chrono::seconds(30));
  ASSERT_TRUE(a);
  EXPECT_FALSE(leases->acquire("packer/a/t/d", "worker-2", std::chrono::seconds(30)));
  EXPECT_EQ(scalar("SELECT token FROM leases WHERE name = 'packer/a/t/d'"), static_cast<int64_t>(a->token));
}

}  // namespace
}  // namespace bf::control
