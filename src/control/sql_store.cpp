// The control store's logic, once for every database (control/sql_store.h): the
// statements, the row mapping, and the audit entry written in the change's
// transaction. A statement is standard SQL with `?` placeholders.
#include "control/sql_store.h"

#include <mutex>
#include <optional>

#include "common/time.h"

namespace bf::control {

namespace {

class SqlStore final : public ControlStore {
 public:
  explicit SqlStore(std::unique_ptr<SqlDriver> db) : db_(std::move(db)) {}

  std::string describe() const override { return db_->describe(); }

  int schema_version() override {
    std::lock_guard lock(mu_);
    return db_->schema_version();
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

  // ----- connectors
  static constexpr const char* kConnectorCols =
      "account, tenant, id, name, sink, query, schedule_ms, settings, paused, created_us, updated_us";
  std::optional<Connector> get_connector(const std::string& account, const std::string& tenant,
                                         const std::string& id) override {
    return one<Connector>(std::string("SELECT ") + kConnectorCols +
                              " FROM connectors WHERE account = ? AND tenant = ? AND id = ?",
                          {account, tenant, id}, connector_row);
  }
  std::vector<Connector> list_connectors(const std::string& account, const std::string& tenant,
                                         const PageQuery& page) override {
    return many<Connector>(std::string("SELECT ") + kConnectorCols +
                               " FROM connectors WHERE account = ? AND tenant = ? AND id > ? ORDER BY id LIMIT ?",
                           {account, tenant, page.after, lim(page)}, connector_row);
  }
  void create_connector(const Connector& c, const AuditEntry& audit) override {
    change(audit, [&] {
      run("INSERT INTO connectors (account, tenant, id, name, sink, query, schedule_ms, settings, paused, created_us, "
          "updated_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          {c.account, c.tenant, c.id, c.name, c.sink, c.query, c.schedule_ms, c.settings_json, c.paused, c.created_us,
           c.updated_us});
      return true;
    });
  }
  bool update_connector(const Connector& c, const AuditEntry& audit) override {
    return change(audit, [&] {
      return run("UPDATE connectors SET name = ?, sink = ?, query = ?, schedule_ms = ?, settings = ?, paused = ?, "
                 "updated_us = ? WHERE account = ? AND tenant = ? AND id = ?",
                 {c.name, c.sink, c.query, c.schedule_ms, c.settings_json, c.paused, c.updated_us, c.account, c.tenant,
                  c.id}) > 0;
    });
  }
  bool delete_connector(const std::string& account, const std::string& tenant, const std::string& id,
                        const AuditEntry& audit) override {
    return change(audit, [&] {
      return run("DELETE FROM connectors WHERE account = ? AND tenant = ? AND id = ?", {account, tenant, id}) > 0;
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
    auto n = one<int64_t>("SELECT count(*) FROM users", {}, [](const SqlRow& r) { return r.num(0); });
    return n ? static_cast<size_t>(*n) : 0;
  }
  void create_user(const User& u, const AuditEntry& audit) override {
    change(audit, [&] {
      run("INSERT INTO users (id, email, name, role, account, password_hash, disabled, created_us, updated_us) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
          {u.id, u.email, u.name, u.role, SqlValue::or_null(u.account), u.password_hash, u.disabled, u.created_us,
           u.updated_us});
      return true;
    });
  }
  bool update_user(const User& u, const AuditEntry& audit) override {
    return change(audit, [&] {
      bool found = run("UPDATE users SET email = ?, name = ?, role = ?, account = ?, password_hash = ?, "
                       "disabled = ?, updated_us = ? WHERE id = ?",
                       {u.email, u.name, u.role, SqlValue::or_null(u.account), u.password_hash, u.disabled,
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
          {k.id, k.secret_hash, k.name, k.role, SqlValue::or_null(k.account), SqlValue::or_null(k.tenant),
           SqlValue::or_null(k.dataset), SqlValue::or_null(k.service), k.created_by, k.created_us, k.last_used_us,
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
                        {token_hash}, [](const SqlRow& r) { return Session{r.str(0), r.str(1), r.num(2), r.num(3)}; });
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
    auto row = [](const SqlRow& r) {
      return AuditEntry{r.num(0), r.num(1), r.str(2), r.str(3), r.str(4), r.str(5), r.str(6), r.str(7)};
    };
    if (page.account.empty())
      return many<AuditEntry>(std::string(cols) + "WHERE seq < ? ORDER BY seq DESC LIMIT ?", {before, lim(page)}, row);
    return many<AuditEntry>(std::string(cols) + "WHERE account = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                            {page.account, before, lim(page)}, row);
  }

 private:
  static int64_t lim(const PageQuery& p) { return static_cast<int64_t>(p.limit); }

  static Account account_row(const SqlRow& r) { return Account{r.str(0), r.str(1), r.num(2), r.num(3)}; }
  static Tenant tenant_row(const SqlRow& r) { return Tenant{r.str(0), r.str(1), r.str(2), r.num(3), r.num(4)}; }
  static Dataset dataset_row(const SqlRow& r) {
    return Dataset{r.str(0), r.str(1), r.str(2), r.str(3), r.str(4), r.flag(5), r.num(6), r.num(7)};
  }
  static Connector connector_row(const SqlRow& r) {
    return Connector{r.str(0), r.str(1), r.str(2),  r.str(3),  r.str(4), r.str(5),
                     r.num(6), r.str(7), r.flag(8), r.num(9), r.num(10)};
  }
  static User user_row(const SqlRow& r) {
    return User{r.str(0), r.str(1), r.str(2), r.str(3), r.str(4), r.str(5), r.flag(6), r.num(7), r.num(8)};
  }
  static ApiKey key_row(const SqlRow& r) {
    return ApiKey{r.str(0), r.str(1), r.str(2), r.str(3), r.str(4), r.str(5),
                  r.str(6), r.str(7), r.str(8), r.num(9), r.num(10), r.num(11)};
  }

  // Runs `sql`; returns the rows changed.
  int64_t run(const std::string& sql, const std::vector<SqlValue>& args) { return db_->query(sql, args, {}); }

  template <class T, class F>
  std::optional<T> one(const std::string& sql, const std::vector<SqlValue>& args, F map) {
    std::lock_guard lock(mu_);
    std::optional<T> out;
    db_->query(sql, args, [&](const SqlRow& r) {
      if (!out) out = map(r);
    });
    return out;
  }
  template <class T, class F>
  std::vector<T> many(const std::string& sql, const std::vector<SqlValue>& args, F map) {
    std::lock_guard lock(mu_);
    std::vector<T> out;
    db_->query(sql, args, [&](const SqlRow& r) { out.push_back(map(r)); });
    return out;
  }

  // Runs `body` and writes `audit` in one transaction; nothing is written (and no
  // audit entry) when body returns false or throws.
  bool change(const AuditEntry& audit, const std::function<bool()>& body) {
    std::lock_guard lock(mu_);
    db_->begin();
    try {
      if (!body()) {
        db_->rollback();
        return false;
      }
      run("INSERT INTO audit_log (time_us, actor, action, target, account, before_json, after_json) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)",
          {audit.time_us ? audit.time_us : now_us(), audit.actor, audit.action, audit.target, audit.account,
           audit.before_json.empty() ? "null" : audit.before_json,
           audit.after_json.empty() ? "null" : audit.after_json});
      db_->commit();
      return true;
    } catch (...) {
      db_->rollback();
      throw;
    }
  }

  std::unique_ptr<SqlDriver> db_;
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

std::unique_ptr<ControlStore> make_sql_store(std::unique_ptr<SqlDriver> driver) {
  return std::make_unique<SqlStore>(std::move(driver));
}

}  // namespace bf::control
