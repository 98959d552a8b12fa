#pragma once
// The control plane's store (docs/control.md): accounts, tenants, datasets, users,
// API keys, sessions and the audit log. ControlStore is the interface; SQLite is
// the embedded database (sqlite_store.cpp), PostgreSQL the one for several control
// instances (postgres_store.cpp), both drivers of one SQL store (sql_store.h):
// nothing here names SQL or a database library.
//
// Every change takes the audit entry that records it and writes both in one
// transaction, so there is no change without its audit entry.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bf {
class LeaseStore;
}

namespace bf::control {

struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A unique key exists already, or a row still referenced by others was to be deleted.
struct StoreConflict : StoreError {
  using StoreError::StoreError;
};

// Times are unix microseconds, UTC.
struct Account {
  std::string id;
  std::string name;
  int64_t created_us = 0, updated_us = 0;
};

struct Tenant {
  std::string account, id;
  std::string name;
  int64_t created_us = 0, updated_us = 0;
};

struct Dataset {
  std::string account, tenant, id;
  std::string name;
  std::string settings_json = "{}";  // {"sources":[],"pipeline":[],"packer":{},"retention":{}}
  bool paused = false;
  int64_t created_us = 0, updated_us = 0;
};

// An export of a tenant's events (docs/control.md, "Connectors"): what to select,
// where to send it, how often. Destination credentials are not here: settings name
// the environment variables that hold them on the connector's host.
struct Connector {
  std::string account, tenant, id;
  std::string name;
  std::string sink;                 // elasticsearch | splunk_hec | webhook
  std::string query;                // one SELECT over the tenant's datasets
  int64_t schedule_ms = 60000;      // how often it runs
  std::string settings_json = "{}"; // the sink's options (connector/sinks.h)
  bool paused = false;
  int64_t created_us = 0, updated_us = 0;
};

struct User {
  std::string id;        // generated
  std::string email;     // unique, lower-cased
  std::string name;
  std::string role;      // system_admin | account_admin | account_viewer
  std::string account;   // empty for system_admin
  std::string password_hash;  // argon2id string (crypto_pwhash_str); never leaves the store's callers
  bool disabled = false;
  int64_t created_us = 0, updated_us = 0;
};

struct ApiKey {
  std::string id;          // the <id> of bfk_<id>_<secret>
  std::string secret_hash; // hex SHA-256 of the secret; the secret itself is never stored
  std::string name;
  std::string role;        // system_admin | account_admin | account_viewer | ingest | query | service
  std::string account, tenant, dataset;  // scope: empty = wider
  std::string service;     // for role service: proxy | receiver | piper | packer | query | connector
  std::string created_by;
  int64_t created_us = 0;
  int64_t last_used_us = 0;  // 0: never
  int64_t revoked_us = 0;    // 0: active
};

struct Session {
  std::string token_hash;  // hex SHA-256 of the cookie's token
  std::string user_id;
  int64_t created_us = 0, expires_us = 0;
};

struct AuditEntry {
  int64_t seq = 0;           // assigned by the store, grows
  int64_t time_us = 0;
  std::string actor;         // "user:<id>", "key:<id>", "cli", "import:<file>"
  std::string action;        // e.g. "tenant.create"
  std::string target;        // e.g. "acme/web"
  std::string account;       // the account the change belongs to ("" for system-wide)
  std::string before_json;   // "null" when created
  std::string after_json;    // "null" when deleted
};

// An entry stamped now; before/after are JSON ("null" for none).
AuditEntry make_audit(std::string actor, std::string action, std::string target, std::string account,
                      std::string before_json, std::string after_json);

// Keyset pagination: rows with a key greater than `after` (audit: a seq smaller
// than `after`, newest first), at most `limit` of them.
struct PageQuery {
  std::string after;
  size_t limit = 50;
  std::string account;  // filter: only this account's rows (users, keys, audit); empty: all
};

class ControlStore {
 public:
  virtual ~ControlStore() = default;

  // For logs: the file, or the database as user@host:port/db (never a password).
  virtual std::string describe() const = 0;

  // The schema version the store is at (the number of the last migration applied).
  virtual int schema_version() = 0;

  virtual std::optional<Account> get_account(const std::string& id) = 0;
  virtual std::vector<Account> list_accounts(const PageQuery& page) = 0;
  virtual void create_account(const Account& a, const AuditEntry& audit) = 0;   // StoreConflict if it exists
  virtual bool update_account(const Account& a, const AuditEntry& audit) = 0;   // false: absent
  virtual bool delete_account(const std::string& id, const AuditEntry& audit) = 0;  // StoreConflict: has tenants

  virtual std::optional<Tenant> get_tenant(const std::string& account, const std::string& id) = 0;
  virtual std::vector<Tenant> list_tenants(const std::string& account, const PageQuery& page) = 0;
  virtual void create_tenant(const Tenant& t, const AuditEntry& audit) = 0;
  virtual bool update_tenant(const Tenant& t, const AuditEntry& audit) = 0;
  virtual bool delete_tenant(const std::string& account, const std::string& id, const AuditEntry& audit) = 0;

  virtual std::optional<Dataset> get_dataset(const std::string& account, const std::string& tenant,
                                             const std::string& id) = 0;
  virtual std::vector<Dataset> list_datasets(const std::string& account, const std::string& tenant,
                                             const PageQuery& page) = 0;
  virtual void create_dataset(const Dataset& d, const AuditEntry& audit) = 0;
  virtual bool update_dataset(const Dataset& d, const AuditEntry& audit) = 0;
  virtual bool delete_dataset(const std::string& account, const std::string& tenant, const std::string& id,
                              const AuditEntry& audit) = 0;

  virtual std::optional<Connector> get_connector(const std::string& account, const std::string& tenant,
                                                 const std::string& id) = 0;
  virtual std::vector<Connector> list_connectors(const std::string& account, const std::string& tenant,
                                                 const PageQuery& page) = 0;
  virtual void create_connector(const Connector& c, const AuditEntry& audit) = 0;
  virtual bool update_connector(const Connector& c, const AuditEntry& audit) = 0;
  virtual bool delete_connector(const std::string& account, const std::string& tenant, const std::string& id,
                                const AuditEntry& audit) = 0;

  virtual std::optional<User> get_user(const std::string& id) = 0;
  virtual std::optional<User> find_user_by_email(const std::string& email) = 0;
  virtual std::vector<User> list_users(const PageQuery& page) = 0;
  virtual size_t count_users() = 0;
  virtual void create_user(const User& u, const AuditEntry& audit) = 0;  // StoreConflict: email taken
  virtual bool update_user(const User& u, const AuditEntry& audit) = 0;
  virtual bool delete_user(const std::string& id, const AuditEntry& audit) = 0;  // also ends its sessions

  virtual std::optional<ApiKey> get_key(const std::string& id) = 0;
  virtual std::vector<ApiKey> list_keys(const PageQuery& page) = 0;
  virtual void create_key(const ApiKey& k, const AuditEntry& audit) = 0;
  virtual bool update_key(const ApiKey& k, const AuditEntry& audit) = 0;  // name and revoked_us
  virtual void touch_key(const std::string& id, int64_t used_us) = 0;    // last_used; not audited

  virtual void create_session(const Session& s) = 0;
  virtual std::optional<Session> get_session(const std::string& token_hash) = 0;
  virtual void delete_session(const std::string& token_hash) = 0;
  virtual size_t delete_expired_sessions(int64_t now_us) = 0;

  virtual std::vector<AuditEntry> list_audit(const PageQuery& page) = 0;
};

struct SqliteStoreOptions {
  int busy_timeout_ms = 10000;
  // Tests: stop migrating at this version (0 = every migration), to build an older schema.
  int migrate_to = 0;
};

// Opens (creating the file and its directory if missing) and migrates. Throws
// StoreError, e.g. when the file's schema is newer than this binary knows.
std::unique_ptr<ControlStore> open_sqlite_store(const std::string& path, SqliteStoreOptions options = {});

// The number of migrations this binary carries for SQLite (the latest schema version).
int sqlite_schema_latest();

struct PostgresStoreOptions {
  // Used when not empty; else the URL's, PGPASSWORD's or ~/.pgpass's (libpq's rules).
  std::string password;
  // Tests: stop migrating at this version (0 = every migration), to build an older schema.
  int migrate_to = 0;
};

// Connects to `url` (a libpq URI "postgresql://user@host:port/db?..." or a
// "key=value ..." string) and migrates, one transaction per migration under an
// advisory lock, so control instances starting together apply each once. Throws
// StoreError: unreachable server, failed login, or a schema newer than this binary.
std::unique_ptr<ControlStore> open_postgres_store(const std::string& url, PostgresStoreOptions options = {});

// Worker leases (storage/lease_store.h) in the same database, on a connection of
// their own. Times come from the database's clock (one clock for every control
// instance), or from `clock` (unix microseconds) when given: tests move it by hand.
// Throws LeaseStoreError.
std::unique_ptr<LeaseStore> open_postgres_lease_store(const std::string& url, PostgresStoreOptions options = {},
                                                      std::function<int64_t()> clock = {});

// The number of migrations this binary carries for PostgreSQL.
int postgres_schema_latest();

}  // namespace bf::control
