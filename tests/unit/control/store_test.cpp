// The control store: migrations (fresh, re-run, upgrade, newer schema), rows,
// constraints, pagination, and the audit entry written with every change.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "control_test_util.h"

namespace bf::control {
namespace {

using test::audit;

class StoreTest : public ::testing::Test {
 protected:
  std::filesystem::path dir = test::temp_dir("store");
  std::string path = (dir / "control.db").string();
  void TearDown() override { std::filesystem::remove_all(dir); }

  // Reads one integer with plain SQLite, beside the store.
  int64_t scalar(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  }
  void exec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
};

TEST_F(StoreTest, FreshStoreAppliesEveryMigrationOnceInOrder) {
  auto store = open_sqlite_store(path);
  EXPECT_EQ(store->schema_version(), sqlite_schema_latest());
  EXPECT_GE(sqlite_schema_latest(), 2);
  EXPECT_EQ(scalar("SELECT count(*) FROM schema_migrations"), sqlite_schema_latest());
  EXPECT_EQ(scalar("SELECT min(version) FROM schema_migrations"), 1);
  // WAL and foreign keys are on.
  store.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_F(StoreTest, ReopeningAppliesNothingAgainAndKeepsData) {
  {
    auto store = open_sqlite_store(path);
    store->create_account(Account{"acme", "Acme", 1, 1}, audit("account.create", "acme"));
  }
  auto store = open_sqlite_store(path);
  EXPECT_EQ(scalar("SELECT count(*) FROM schema_migrations"), sqlite_schema_latest());
  ASSERT_TRUE(store->get_account("acme"));
  EXPECT_EQ(store->get_account("acme")->name, "Acme");
}

TEST_F(StoreTest, UpgradesAnOlderSchemaKeepingItsRows) {
  {
    SqliteStoreOptions old;
    old.migrate_to = 1;
    auto store = open_sqlite_store(path, old);
    EXPECT_EQ(store->schema_version(), 1);
  }
  // A dataset written by a version-1 binary (no paused column yet).
  exec("INSERT INTO accounts VALUES ('a', '', 1, 1); INSERT INTO tenants VALUES ('a', 't', '', 1, 1);"
       "INSERT INTO datasets (account, tenant, id, name, settings, created_us, updated_us) "
       "VALUES ('a', 't', 'd', '', '{\"pipeline\":[]}', 1, 1)");
  auto store = open_sqlite_store(path);
  EXPECT_EQ(store->schema_version(), sqlite_schema_latest());
  auto d = store->get_dataset("a", "t", "d");
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->paused);
  EXPECT_EQ(d->settings_json, "{\"pipeline\":[]}");
  d->paused = true;
  EXPECT_TRUE(store->update_dataset(*d, audit("dataset.update", "a")));
  EXPECT_TRUE(store->get_dataset("a", "t", "d")->paused);
}

TEST_F(StoreTest, RefusesASchemaNewerThanItKnows) {
  { open_sqlite_store(path); }
  exec("INSERT INTO schema_migrations VALUES (" + std::to_string(sqlite_schema_latest() + 1) + ", 0)");
  try {
    open_sqlite_store(path);
    FAIL() << "opened a newer schema";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this binary"), std::string::npos) << e.what();
  }
}

TEST_F(StoreTest, EveryChangeWritesItsAuditEntryAndFailedChangesWriteNone) {
  auto store = open_sqlite_store(path);
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

TEST_F(StoreTest, ReferencesAreEnforced) {
  auto store = open_sqlite_store(path);
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

TEST_F(StoreTest, UserEmailsAreUniqueAndDeletingAUserEndsItsSessions) {
  auto store = open_sqlite_store(path);
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

TEST_F(StoreTest, KeysetPagesCoverEveryRowOnce) {
  auto store = open_sqlite_store(path);
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

TEST_F(StoreTest, HostileTextIsStoredAsData) {
  auto store = open_sqlite_store(path);
  store->create_account(Account{"a", "x'); DROP TABLE accounts; --", 1, 1}, audit("a"));
  EXPECT_EQ(store->get_account("a")->name, "x'); DROP TABLE accounts; --");
  EXPECT_FALSE(store->get_account("a' OR '1'='1"));
  EXPECT_EQ(store->list_accounts(PageQuery{}).size(), 1u);
}

}  // namespace
}  // namespace bf::control
