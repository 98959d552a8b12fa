// SQLite driver of the control store (control/sql_store.h): one connection (the
// store's lock serialises it), WAL, a busy timeout, foreign keys on, and versioned
// migrations applied at open.
#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "common/time.h"
#include "control/sql_store.h"

namespace bf::control {

namespace {

// Migration N is kMigrations[N-1]. Append only: a released migration never changes.
const char* const kMigrations[] = {
    // 1: the catalog, users, keys, sessions and the audit log.
    R"sql(
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL);
CREATE TABLE tenants (
  account TEXT NOT NULL REFERENCES accounts(id),
  id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  PRIMARY KEY (account, id));
CREATE TABLE datasets (
  account TEXT NOT NULL,
  tenant TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  settings TEXT NOT NULL DEFAULT '{}',
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  PRIMARY KEY (account, tenant, id),
  FOREIGN KEY (account, tenant) REFERENCES tenants(account, id));
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL,
  account TEXT REFERENCES accounts(id) ON DELETE CASCADE,
  password_hash TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL,
  account TEXT REFERENCES accounts(id) ON DELETE CASCADE,
  tenant TEXT,
  dataset TEXT,
  service TEXT,
  created_by TEXT NOT NULL DEFAULT '',
  created_us INTEGER NOT NULL,
  last_used_us INTEGER NOT NULL DEFAULT 0,
  revoked_us INTEGER NOT NULL DEFAULT 0,
  FOREIGN KEY (account, tenant) REFERENCES tenants(account, id) ON DELETE CASCADE,
  FOREIGN KEY (account, tenant, dataset) REFERENCES datasets(account, tenant, id) ON DELETE CASCADE);
CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL);
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time_us INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  account TEXT NOT NULL DEFAULT '',
  before_json TEXT NOT NULL,
  after_json TEXT NOT NULL);
)sql",
    // 2: datasets can be paused; indexes for the scoped listings.
    R"sql(
ALTER TABLE datasets ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
CREATE INDEX audit_log_by_account ON audit_log(account, seq);
CREATE INDEX users_by_account ON users(account, id);
CREATE INDEX api_keys_by_account ON api_keys(account, id);
CREATE INDEX sessions_by_expiry ON sessions(expires_us);
)sql",
    // 3: connectors (exports of a tenant's events).
    R"sql(
CREATE TABLE connectors (
  account TEXT NOT NULL,
  tenant TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  sink TEXT NOT NULL,
  query TEXT NOT NULL,
  schedule_ms INTEGER NOT NULL,
  settings TEXT NOT NULL DEFAULT '{}',
  paused INTEGER NOT NULL DEFAULT 0,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  PRIMARY KEY (account, tenant, id),
  FOREIGN KEY (account, tenant) REFERENCES tenants(account, id));
)sql",
};
constexpr int kLatest = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);

class Row final : public SqlRow {
 public:
  explicit Row(sqlite3_stmt* s) : s_(s) {}
  std::string str(int col) const override {
    const unsigned char* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s_, col))) : "";
  }
  int64_t num(int col) const override { return sqlite3_column_int64(s_, col); }
  bool flag(int col) const override { return sqlite3_column_int64(s_, col) != 0; }

 private:
  sqlite3_stmt* s_;
};

class SqliteDriver final : public SqlDriver {
 public:
  SqliteDriver(const std::string& path, SqliteStoreOptions options) : path_(path) {
    std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close_v2(db_);
      db_ = nullptr;
      throw StoreError("control store " + path + ": cannot open: " + msg);
    }
    sqlite3_busy_timeout(db_, options.busy_timeout_ms);
    try {
      exec_retrying("PRAGMA journal_mode=WAL", options.busy_timeout_ms);
      exec("PRAGMA foreign_keys=ON");
      exec("PRAGMA synchronous=NORMAL");
      migrate(options.migrate_to > 0 ? std::min(options.migrate_to, kLatest) : kLatest);
    } catch (...) {
      sqlite3_close_v2(db_);  // the destructor does not run for a constructor that threw
      db_ = nullptr;
      throw;
    }
  }
  ~SqliteDriver() override {
    if (db_) sqlite3_close_v2(db_);
  }

  std::string describe() const override { return path_; }
  int schema_version() override { return current_version(); }

  int64_t query(const std::string& sql, const std::vector<SqlValue>& args,
                const std::function<void(const SqlRow&)>& on_row) override {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &st, nullptr) != SQLITE_OK) fail("prepare");
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(st, sqlite3_finalize);
    for (size_t i = 0; i < args.size(); ++i) {
      const int idx = static_cast<int>(i + 1);
      const SqlValue& v = args[i];
      int rc = v.kind == SqlValue::text   ? sqlite3_bind_text(st, idx, v.s.data(), static_cast<int>(v.s.size()), SQLITE_TRANSIENT)
               : v.kind == SqlValue::null ? sqlite3_bind_null(st, idx)
                                          : sqlite3_bind_int64(st, idx, v.i);
      if (rc != SQLITE_OK) fail("bind");
    }
    while (true) {
      int rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        if (on_row) on_row(Row(st));
        continue;
      }
      if (rc == SQLITE_DONE) break;
      fail("step");
    }
    return sqlite3_changes64(db_);
  }

  void begin() override { exec("BEGIN IMMEDIATE"); }
  void commit() override { exec("COMMIT"); }
  void rollback() noexcept override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    const int code = sqlite3_extended_errcode(db_);
    std::string msg = "control store " + path_ + ": " + what + ": " + sqlite3_errmsg(db_);
    if ((code & 0xff) == SQLITE_CONSTRAINT) throw StoreConflict(msg);
    throw StoreError(msg);
  }

  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql);
  }
  // Switching to WAL can report SQLITE_BUSY at once while another process opens the file.
  void exec_retrying(const char* sql, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return;
      if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || std::chrono::steady_clock::now() >= deadline) fail(sql);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  int current_version() {
    int64_t v = 0;
    query("SELECT coalesce(max(version), 0) FROM schema_migrations", {}, [&](const SqlRow& r) { v = r.num(0); });
    return static_cast<int>(v);
  }

  // Each pending migration once, in order, each in its own transaction; the
  // version is read again under the write lock, so two processes opening the same
  // file never both apply one.
  void migrate(int target) {
    exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_us INTEGER NOT NULL)");
    while (true) {
      exec("BEGIN IMMEDIATE");
      try {
        const int v = current_version();
        if (v > kLatest) {
          throw StoreError("control store " + path_ + ": schema version " + std::to_string(v) +
                           " is newer than this binary knows (" + std::to_string(kLatest) +
                           "); run a newer bytefreezer");
        }
        if (v >= target) {
          exec("COMMIT");
          return;
        }
        if (sqlite3_exec(db_, kMigrations[v], nullptr, nullptr, nullptr) != SQLITE_OK)
          fail("migration " + std::to_string(v + 1));
        query("INSERT INTO schema_migrations (version, applied_us) VALUES (?, ?)", {int64_t{v + 1}, now_us()}, {});
        exec("COMMIT");
      } catch (...) {
        rollback();
        throw;
      }
    }
  }

  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<ControlStore> open_sqlite_store(const std::string& path, SqliteStoreOptions options) {
  return make_sql_store(std::make_unique<SqliteDriver>(path, options));
}

int sqlite_schema_latest() { return kLatest; }

}  // namespace bf::control
