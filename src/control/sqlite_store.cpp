// SQLite implementation of ControlStore: one connection guarded by a mutex, WAL,
// a busy timeout, foreign keys on, and versioned migrations applied at open.
#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "common/time.h"
#include "control/store.h"

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
};
constexpr int kLatest = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);

// A bound value: text, integer, or NULL (an empty scope column).
struct Value {
  enum Kind { text, integer, null } kind;
  std::string s;
  int64_t i = 0;
  Value(const std::string& v) : kind(text), s(v) {}
  Value(const char* v) : kind(text), s(v) {}
  Value(int64_t v) : kind(integer), i(v) {}
  Value(bool v) : kind(integer), i(v ? 1 : 0) {}
  static Value or_null(const std::string& v) {
    Value x(v);
    if (v.empty()) x.kind = null;
    return x;
  }
};

class Row {
 public:
  explicit Row(sqlite3_stmt* s) : s_(s) {}
  std::string str(int col) const {
    const unsigned char* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s_, col))) : "";
  }
  int64_t num(int col) const { return sqlite3_column_int64(s_, col); }

 private:
  sqlite3_stmt* s_;
};

class SqliteStore final : public ControlStore {
 public:
  SqliteStore(const std::string& path, SqliteStoreOptions options) : path_(path) {
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
    exec_retrying("PRAGMA journal_mode=WAL", options.busy_timeout_ms);
    exec("PRAGMA foreign_keys=ON");
    exec("PRAGMA synchronous=NORMAL");
    migrate(options.migrate_to > 0 ? std::min(options.migrate_to, kLatest) : kLatest);
  }
  ~SqliteStore() override {
    if (db_) sqlite3_close_v2(db_);
  }

  std::string describe() const override { return path_; }

  int schema_version() override {
    std::lock_guard lock(mu_);
    return current_version();
  }

  // ----- accounts
  std::optional<Account> get_account(const std::string& id) override {
    return one<Account>("SELECT id, name, created_us, updated_us FROM accounts WHERE id = ?", {id}, account_row);
  }
  std::vector<Account> list_accounts(const PageQuery& page) override {
    return many<Account>("SELECT id, name, created_us, updated_us FROM accounts WHERE id > ? ORDER BY id LIMIT ?",
                         {page.after, lim(page)}, account_row);
  }
  void create_account(const Account& a, const AuditEntry& audit) override {
    change(audit, [&] {
      run("INSERT INTO accounts (id, name, created_us, updated_us) VALUES (?, ?, ?, ?)",
          {a.id, a.name, a.created_us, a.updated_us});
      return true;
    });
  }
  bool update_account(const Account& a, const AuditEntry& audit) override {
    return change(audit, [&] {
      return run("UPDATE accounts SET name = ?, updated_us = ? WHERE id = ?", {a.name, a.updated_us, a.id}) > 0;
    });
  }
  bool delete_account(const std::string& id, const AuditEntry& audit) override {
    return change(audit, [&] { return run("DELETE FROM accounts WHERE id = ?", {id}) > 0; });
  }

  // ----- tenants
  std::optional<Tenant> get_tenant(const std::string& account, const std::string& id) override {
    return one<Tenant>("SELECT account, id, name, created_us, updated_us FROM tenants WHERE account = ? AND id = ?",
                       {account, id}, tenant_row);
  }
  std::vector<Tenant> list_tenants(const std::string& account, const PageQuery& page) override {
    return many<Tenant>(
        "SELECT account, id, name, created_us, updated_us FROM tenants WHERE account = ? AND id > ? ORDER BY id LIMIT ?",
        {account, page.after, lim(page)}, tenant_row);
  }
  void create_tenant(const Tenant& t, const AuditEntry& audit) override {
    change(audit, [&] {
      run("INSERT INTO tenants (account, id, name, created_us, updated_us) VALUES (?, ?, ?, ?, ?)",
          {t.account, t.id, t.name, t.created_us, t.updated_us});
      return true;
    });
  }
  bool update_tenant(const Tenant& t, const AuditEntry& audit) override {
    return change(audit, [&] {
      return run("UPDATE tenants SET name = ?, updated_us = ? WHERE account = ? AND id = ?",
                 {t.name, t.updated_us, t.account, t.id}) > 0;
    });
  }
  bool delete_tenant(const std::string& account, const std::string& id, const AuditEntry& audit) override {
    return change(audit, [&] { return run("DELETE FROM tenants WHERE account = ? AND id = ?", {account, id}) > 0; });
  }

  // ----- datasets
  static constexpr const char* kDatasetCols = "account, tenant, id, name, settings, paused, created_us, updated_us";
  std::optional<Dataset> get_dataset(const std::string& account, const std::string& tenant,
                                     const std::string& id) override {
    return one<Dataset>(std::string("SELECT ") + kDatasetCols +
                            " FROM datasets WHERE account = ? AND tenant = ? AND id = ?",
                        {account, tenant, id}, dataset_row);
  }
  std::vector<Dataset> list_datasets(const std::string& account, const std::string& tenant,
                                     const PageQuery& page) override {
    return many<Dataset>(std::string("SELECT ") + kDatasetCols +
                             " FROM datasets WHERE account = ? AND tenant = ? AND id > ? ORDER BY id LIMIT ?",
                         {account, tenant, page.after, lim(page)}, dataset_row);
  }
  void create_dataset(const Dataset& d, const AuditEntry& audit) override {
    change(audit, [&] {
      run("INSERT INTO datasets (account, tenant, id, name, settings, paused, created_us, updated_us) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          {d.account, d.tenant, d.id, d.name, d.settings_json, d.paused, d.created_us, d.updated_us});
      return true;
    });
  }
  bool update_dataset(const Dataset& d, const AuditEntry& audit) override {
    return change(audit, [&] {
      return run("UPDATE datasets SET name = ?, settings = ?, paused = ?, updated_us = ? "
                 "WHERE account = ? AND tenant = ? AND id = ?",
                 {d.name, d.settings_json, d.paused, d.updated_us, d.account, d.tenant, d.id}) > 0;
    });
  }
  bool delete_dataset(const std::string& account, const std::string& tenant, const std::string& id,
                      const AuditEntry& audit) override {
    return change(audit, [&] {
      return run("DELETE FROM datasets WHERE account = ? AND tenant = ? AND id = ?", {account, tenant, id}) > 0;
    });
  }

  // ----- users
  static constexpr const char* kUserCols =
      "id, email, name, role, coalesce(account, ''), password_hash, disabled, created_us, updated_us";
  std::optional<User> get_user(const std::string& id) override {
    return one<User>(std::string("SELECT ") + kUserCols + " FROM users WHERE id = ?", {id}, user_row);
  }
  std::optional<User> find_user_by_email(const std::string& email) override {
    return one<User>(std::string("SELECT ") + kUserCols + " FROM users WHERE email = ?", {email}, user_row);
  }
  std::vector<User> list_users(const PageQuery& page) override {
    if (page.account.empty())
      return many<User>(std::string("SELECT ") + kUserCols + " FROM users WHERE id > ? ORDER BY id LIMIT ?",
                        {page.after, lim(page)}, user_row);
    return many<User>(std::string("SELECT ") + kUserCols +
                          " FROM users WHERE account = ? AND id > ? ORDER BY id LIMIT ?",
                      {page.account, page.after, lim(page)}, user_row);
  }
  size_t count_users() override {
    auto n = one<int64_t>("SELECT count(*) FROM users", {}, [](const Row& r) { return r.num(0); });
    return n ? static_cast<size_t>(*n) : 0;
  }
  void create_user(const User& u, const AuditEntry& audit) override {
    change(audit, [&] {
      run("INSERT INTO users (id, email, name, role, account, password_hash, disabled, created_us, updated_us) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
          {u.id, u.email, u.name, u.role, Value::or_null(u.account), u.password_hash, u.disabled, u.created_us,
           u.updated_us});
      return true;
    });
  }
  bool update_user(const User& u, const AuditEntry& audit) override {
    return change(audit, [&] {
      bool found = run("UPDATE users SET email = ?, name = ?, role = ?, account = ?, password_hash = ?, "
                       "disabled = ?, updated_us = ? WHERE id = ?",
                       {u.email, u.name, u.role, Value::or_null(u.account), u.password_hash, u.disabled,
                        u.updated_us, u.id}) > 0;
      // A disabled user, or one whose role changed, logs in again.
      if (found && u.disabled) run("DELETE FROM sessions WHERE user_id = ?", {u.id});
      return found;
    });
  }
  bool delete_user(const std::string& id, const AuditEntry& audit) override {
    return change(audit, [&] { return run("DELETE FROM users WHERE id = ?", {id}) > 0; });
  }

  // ----- API keys
  static constexpr const char* kKeyCols =
      "id, secret_hash, name, role, coalesce(account, ''), coalesce(tenant, ''), coalesce(dataset, ''), "
      "coalesce(service, ''), created_by, created_us, last_used_us, revoked_us";
  std::optional<ApiKey> get_key(const std::string& id) override {
    return one<ApiKey>(std::string("SELECT ") + kKeyCols + " FROM api_keys WHERE id = ?", {id}, key_row);
  }
  std::vector<ApiKey> list_keys(const PageQuery& page) override {
    if (page.account.empty())
      return many<ApiKey>(std::string("SELECT ") + kKeyCols + " FROM api_keys WHERE id > ? ORDER BY id LIMIT ?",
                          {page.after, lim(page)}, key_row);
    return many<ApiKey>(std::string("SELECT ") + kKeyCols +
                            " FROM api_keys WHERE account = ? AND id > ? ORDER BY id LIMIT ?",
                        {page.account, page.after, lim(page)}, key_row);
  }
  void create_key(const ApiKey& k, const AuditEntry& audit) override {
    change(audit, [&] {
      run("INSERT INTO api_keys (id, secret_hash, name, role, account, tenant, dataset, service, created_by, "
          "created_us, last_used_us, revoked_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          {k.id, k.secret_hash, k.name, k.role, Value::or_null(k.account), Value::or_null(k.tenant),
           Value::or_null(k.dataset), Value::or_null(k.service), k.created_by, k.created_us, k.last_used_us,
           k.revoked_us});
      return true;
    });
  }
  bool update_key(const ApiKey& k, const AuditEntry& audit) override {
    return change(audit, [&] {
      return run("UPDATE api_keys SET name = ?, revoked_us = ? WHERE id = ?", {k.name, k.revoked_us, k.id}) > 0;
    });
  }
  void touch_key(const std::string& id, int64_t used_us) override {
    std::lock_guard lock(mu_);
    run("UPDATE api_keys SET last_used_us = ? WHERE id = ?", {used_us, id});
  }

  // ----- sessions
  void create_session(const Session& s) override {
    std::lock_guard lock(mu_);
    run("INSERT INTO sessions (token_hash, user_id, created_us, expires_us) VALUES (?, ?, ?, ?)",
        {s.token_hash, s.user_id, s.created_us, s.expires_us});
  }
  std::optional<Session> get_session(const std::string& token_hash) override {
    return one<Session>("SELECT token_hash, user_id, created_us, expires_us FROM sessions WHERE token_hash = ?",
                        {token_hash}, [](const Row& r) { return Session{r.str(0), r.str(1), r.num(2), r.num(3)}; });
  }
  void delete_session(const std::string& token_hash) override {
    std::lock_guard lock(mu_);
    run("DELETE FROM sessions WHERE token_hash = ?", {token_hash});
  }
  size_t delete_expired_sessions(int64_t now_us) override {
    std::lock_guard lock(mu_);
    return static_cast<size_t>(run("DELETE FROM sessions WHERE expires_us <= ?", {now_us}));
  }

  // ----- audit
  std::vector<AuditEntry> list_audit(const PageQuery& page) override {
    const int64_t before = page.after.empty() ? INT64_MAX : std::stoll(page.after);
    const char* cols = "SELECT seq, time_us, actor, action, target, account, before_json, after_json FROM audit_log ";
    auto row = [](const Row& r) {
      return AuditEntry{r.num(0), r.num(1), r.str(2), r.str(3), r.str(4), r.str(5), r.str(6), r.str(7)};
    };
    if (page.account.empty())
      return many<AuditEntry>(std::string(cols) + "WHERE seq < ? ORDER BY seq DESC LIMIT ?", {before, lim(page)}, row);
    return many<AuditEntry>(std::string(cols) + "WHERE account = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                            {page.account, before, lim(page)}, row);
  }

 private:
  static int64_t lim(const PageQuery& p) { return static_cast<int64_t>(p.limit); }

  static Account account_row(const Row& r) { return Account{r.str(0), r.str(1), r.num(2), r.num(3)}; }
  static Tenant tenant_row(const Row& r) { return Tenant{r.str(0), r.str(1), r.str(2), r.num(3), r.num(4)}; }
  static Dataset dataset_row(const Row& r) {
    return Dataset{r.str(0), r.str(1), r.str(2), r.str(3), r.str(4), r.num(5) != 0, r.num(6), r.num(7)};
  }
  static User user_row(const Row& r) {
    return User{r.str(0), r.str(1), r.str(2), r.str(3), r.str(4), r.str(5), r.num(6) != 0, r.num(7), r.num(8)};
  }
  static ApiKey key_row(const Row& r) {
    return ApiKey{r.str(0), r.str(1), r.str(2), r.str(3), r.str(4), r.str(5),
                  r.str(6), r.str(7), r.str(8), r.num(9), r.num(10), r.num(11)};
  }

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

  // Prepares, binds and steps `sql`, calling on_row per row; returns the rows changed.
  int64_t query(const std::string& sql, const std::vector<Value>& args, const std::function<void(const Row&)>& on_row) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &st, nullptr) != SQLITE_OK) fail("prepare");
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(st, sqlite3_finalize);
    for (size_t i = 0; i < args.size(); ++i) {
      const int idx = static_cast<int>(i + 1);
      const Value& v = args[i];
      int rc = v.kind == Value::text      ? sqlite3_bind_text(st, idx, v.s.data(), static_cast<int>(v.s.size()), SQLITE_TRANSIENT)
               : v.kind == Value::integer ? sqlite3_bind_int64(st, idx, v.i)
                                          : sqlite3_bind_null(st, idx);
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
  int64_t run(const std::string& sql, const std::vector<Value>& args) { return query(sql, args, {}); }

  template <class T, class F>
  std::optional<T> one(const std::string& sql, const std::vector<Value>& args, F map) {
    std::lock_guard lock(mu_);
    std::optional<T> out;
    query(sql, args, [&](const Row& r) {
      if (!out) out = map(r);
    });
    return out;
  }
  template <class T, class F>
  std::vector<T> many(const std::string& sql, const std::vector<Value>& args, F map) {
    std::lock_guard lock(mu_);
    std::vector<T> out;
    query(sql, args, [&](const Row& r) { out.push_back(map(r)); });
    return out;
  }

  // Runs `body` and writes `audit` in one transaction; nothing is written (and no
  // audit entry) when body returns false or throws.
  bool change(const AuditEntry& audit, const std::function<bool()>& body) {
    std::lock_guard lock(mu_);
    exec("BEGIN IMMEDIATE");
    try {
      if (!body()) {
        exec("ROLLBACK");
        return false;
      }
      run("INSERT INTO audit_log (time_us, actor, action, target, account, before_json, after_json) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)",
          {audit.time_us ? audit.time_us : now_us(), audit.actor, audit.action, audit.target, audit.account,
           audit.before_json.empty() ? "null" : audit.before_json,
           audit.after_json.empty() ? "null" : audit.after_json});
      exec("COMMIT");
      return true;
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  int current_version() {
    int64_t v = 0;
    query("SELECT coalesce(max(version), 0) FROM schema_migrations", {}, [&](const Row& r) { v = r.num(0); });
    return static_cast<int>(v);
  }

  // Each pending migration once, in order, each in its own transaction; the
  // version is read again under the write lock, so two processes opening the same
  // file never both apply one.
  void migrate(int target) {
    std::lock_guard lock(mu_);
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
        run("INSERT INTO schema_migrations (version, applied_us) VALUES (?, ?)", {int64_t{v + 1}, now_us()});
        exec("COMMIT");
      } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    }
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  std::recursive_mutex mu_;  // change() holds it while body() runs statements
};

}  // namespace

AuditEntry make_audit(std::string actor, std::string action, std::string target, std::string account,
                      std::string before_json, std::string after_json) {
  return AuditEntry{0,
                    now_us(),
                    std::move(actor),
                    std::move(action),
                    std::move(target),
                    std::move(account),
                    std::move(before_json),
                    std::move(after_json)};
}

std::unique_ptr<ControlStore> open_sqlite_store(const std::string& path, SqliteStoreOptions options) {
  return std::make_unique<SqliteStore>(path, options);
}

int sqlite_schema_latest() { return kLatest; }

}  // namespace bf::control
