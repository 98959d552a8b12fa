#pragma once
// Control-plane test helpers: a fresh store of either backend (a SQLite file in a
// temp directory, or a schema of its own on the test PostgreSQL cluster) and the
// API's routes dispatched in-process (the same router the HTTP server uses).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/json.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "common/time.h"
#include "common/ulid.h"
#include "control/api.h"
#include "control/auth.h"
#include "control/store.h"
#include "fixtures/postgres.h"
#include "net/http_server.h"
#include "storage/lease_store.h"

namespace bf::control::test {

using bf::test::PgSchema;
using bf::test::PostgresCluster;

inline std::filesystem::path temp_dir(const std::string& what) {
  auto p = std::filesystem::temp_directory_path() / ("bf-control-" + what + "-" + new_ulid());
  std::filesystem::create_directories(p);
  return p;
}

inline AuditEntry audit(const std::string& action, const std::string& account = "") {
  AuditEntry e;
  e.actor = "test";
  e.action = action;
  e.target = action;
  e.account = account;
  return e;
}

// One store backend for one test: a fresh, empty database, opened as often as the
// test likes (each open is one more connection), plus raw SQL beside the store.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  virtual std::unique_ptr<ControlStore> open(int migrate_to = 0) = 0;
  // Worker leases in the same database, as control serves them.
  virtual std::shared_ptr<LeaseStore> leases(std::function<int64_t()> clock = {}) = 0;
  virtual int latest() const = 0;
  virtual void exec(const std::string& sql) = 0;
  virtual int64_t scalar(const std::string& sql) = 0;  // -1: no row
};

class SqliteBackend final : public StoreBackend {
 public:
  ~SqliteBackend() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<ControlStore> open(int migrate_to) override {
    SqliteStoreOptions o;
    o.migrate_to = migrate_to;
    return open_sqlite_store(path(), o);
  }
  std::shared_ptr<LeaseStore> leases(std::function<int64_t()> clock) override {
    return std::make_shared<SqliteLeaseStore>(path(), std::move(clock));
  }
  int latest() const override { return sqlite_schema_latest(); }
  void exec(const std::string& sql) override {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  int64_t scalar(const std::string& sql) override {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  }
  std::string path() const { return (dir_ / "control.db").string(); }

 private:
  std::filesystem::path dir_ = temp_dir("store");
};

class PostgresBackend final : public StoreBackend {
 public:
  std::unique_ptr<ControlStore> open(int migrate_to) override {
    PostgresStoreOptions o;
    o.migrate_to = migrate_to;
    return open_postgres_store(schema_.url(), o);
  }
  std::shared_ptr<LeaseStore> leases(std::function<int64_t()> clock) override {
    return open_postgres_lease_store(schema_.url(), {}, std::move(clock));
  }
  int latest() const override { return postgres_schema_latest(); }
  void exec(const std::string& sql) override { schema_.exec(sql); }
  int64_t scalar(const std::string& sql) override { return schema_.scalar(sql); }

 private:
  PgSchema schema_;
};

// "sqlite" or "postgres": the parameter of the suites that run on both.
inline std::unique_ptr<StoreBackend> make_backend(const std::string& kind) {
  if (kind == "postgres") return std::make_unique<PostgresBackend>();
  return std::make_unique<SqliteBackend>();
}
inline auto both_backends() { return ::testing::Values(std::string("sqlite"), std::string("postgres")); }
inline std::string backend_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

struct Reply {
  int status = 0;
  Headers headers;
  std::string body;
  boost::json::value json() const { return boost::json::parse(body); }
  std::string field() const {
    auto v = boost::json::parse(body);
    auto* f = v.as_object().if_contains("field");
    return f && f->is_string() ? std::string(f->get_string()) : "";
  }
};

// A store (of either backend) and the API over it, with a key for every role the tests need.
// A key written straight into the store (no API call); its token is the bfk_ string.
inline NewKey create_store_key(ControlStore& store, const std::string& role, const std::string& account = "",
                               const std::string& tenant = "", const std::string& service = "") {
  NewKey nk = generate_api_key();
  ApiKey k;
  k.id = nk.id;
  k.secret_hash = nk.secret_hash;
  k.role = role;
  k.account = account;
  k.tenant = tenant;
  k.service = service;
  k.created_us = now_us();
  store.create_key(k, audit("key.create", account));
  return nk;
}

class ApiHarness {
 public:
  explicit ApiHarness(ControlOptions options = generous(), const std::string& backend = "sqlite")
      : backend_(make_backend(backend)) {
    store = std::shared_ptr<ControlStore>(backend_->open());
    api = std::make_unique<ControlApi>(store, options);
    api->set_lease_store(backend_->leases());
    api->add_routes(router);
  }
  ~ApiHarness() {
    api.reset();
    store.reset();
  }
  static ControlOptions generous() {
    ControlOptions o;
    o.requests_per_second = 1e6;
    o.request_burst = 1e6;
    o.login_attempts_per_minute = 1e6;
    return o;
  }

  // A key straight in the store (no API call), returning the bfk_ token.
  std::string add_key(const std::string& role, const std::string& account = "", const std::string& tenant = "",
                      const std::string& service = "") {
    const NewKey nk = create_store_key(*store, role, account, tenant, service);
    last_key_id = nk.id;
    return nk.token;
  }
  void add_account(const std::string& id) { store->create_account(Account{id, "", now_us(), now_us()}, audit("a", id)); }
  void add_tenant(const std::string& a, const std::string& t) {
    store->create_tenant(Tenant{a, t, "", now_us(), now_us()}, audit("t", a));
  }
  void add_dataset(const std::string& a, const std::string& t, const std::string& d) {
    store->create_dataset(Dataset{a, t, d, "", "{}", false, now_us(), now_us()}, audit("d", a));
  }
  // A user with an unusable password hash (no argon2 cost); returns the id.
  std::string add_user(const std::string& email, const std::string& role, const std::string& account,
                       const std::string& hash = "not-a-hash") {
    User u;
    u.id = "u" + std::to_string(++users_);
    u.email = email;
    u.role = role;
    u.account = account;
    u.password_hash = hash;
    u.created_us = u.updated_us = now_us();
    store->create_user(u, audit("user.create", account));
    return u.id;
  }

  Reply call(const std::string& method, const std::string& target, const std::string& body = "",
             const std::string& token = "", Headers extra = {}) {
    HttpRequest req;
    req.method = method;
    req.target = target;
    const size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string qs = target.substr(q + 1);
      size_t pos = 0;
      while (pos <= qs.size()) {
        size_t amp = qs.find('&', pos);
        std::string pair = qs.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        const size_t eq = pair.find('=');
        if (!pair.empty()) req.query[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
        if (amp == std::string::npos) break;
        pos = amp + 1;
      }
    }
    req.peer = "127.0.0.1:5555";
    req.body = body;
    if (!body.empty()) req.headers["Content-Type"] = "application/json";
    if (!token.empty()) req.headers["Authorization"] = "Bearer " + token;
    for (auto& [k, v] : extra) req.headers[k] = v;
    HttpResponse r = router.dispatch(req);
    return Reply{r.status, r.headers, r.body};
  }

  std::shared_ptr<ControlStore> store;
  std::unique_ptr<ControlApi> api;
  Router router;
  std::string last_key_id;

 private:
  std::unique_ptr<StoreBackend> backend_;
  int users_ = 0;
};

}  // namespace bf::control::test
