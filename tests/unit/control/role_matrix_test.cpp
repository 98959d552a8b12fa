// The role x endpoint matrix: every route, called by every kind of caller against
// a fresh store, answers the status in its row. A route without a row fails the
// test, so a new endpoint cannot skip its access rules.
#include <gtest/gtest.h>

#include <array>
#include <set>

#include "control_test_util.h"

namespace bf::control {
namespace {

// Callers, in the column order of the matrix.
enum Caller { kSys, kAdminA, kViewerA, kAdminB, kIngestA, kServicePiper, kNone, kBadKey, kCallers };
const char* const kCallerNames[] = {"system_admin",  "account_admin(a)", "account_viewer(a)", "account_admin(b)",
                                    "ingest(a/t)",   "service(piper)",   "no credentials",    "bad key"};

struct Row {
  std::string method, pattern;  // the route
  std::string path;             // a concrete path ({user}/{key} replaced by the fixture's ids)
  std::string body;
  std::array<int, kCallers> expect;
};

const std::string kUserBody =
    R"({"email":"new@example.com","role":"account_viewer","account":"a","password":"a-long-enough-password"})";

const std::vector<Row>& matrix() {
  const std::string A = "/api/v1/accounts/{account}", T = A + "/tenants/{tenant}", D = T + "/datasets/{dataset}";
  const std::string a = "/api/v1/accounts/a", t = a + "/tenants/t", d = t + "/datasets/d";
  //                                     sys  admA viewA admB ingst svc  none bad
  static const std::vector<Row> rows{
      {"GET", "/api/v1/openapi.json", "", "", {200, 200, 200, 200, 200, 200, 200, 200}},
      {"POST", "/api/v1/auth/login", "", R"({"email":"admin-a@example.com","password":"wrong-password-x"})",
       {401, 401, 401, 401, 401, 401, 401, 401}},
      {"POST", "/api/v1/auth/logout", "", "", {400, 400, 400, 400, 400, 400, 401, 401}},
      {"GET", "/api/v1/auth/me", "", "", {200, 200, 200, 200, 200, 200, 401, 401}},
      {"GET", "/api/v1/accounts", "", "", {200, 200, 200, 200, 403, 200, 401, 401}},
      {"POST", "/api/v1/accounts", "", R"({"id":"new"})", {201, 403, 403, 403, 403, 403, 401, 401}},
      {"GET", A, a, "", {200, 200, 200, 404, 403, 200, 401, 401}},
      {"PATCH", A, a, R"({"name":"A"})", {200, 200, 403, 404, 403, 403, 401, 401}},
      {"DELETE", A, a, "", {409, 403, 403, 404, 403, 403, 401, 401}},
      {"GET", A + "/tenants", a + "/tenants", "", {200, 200, 200, 404, 403, 200, 401, 401}},
      {"POST", A + "/tenants", a + "/tenants", R"({"id":"new"})", {201, 201, 403, 404, 403, 403, 401, 401}},
      {"GET", T, t, "", {200, 200, 200, 404, 403, 200, 401, 401}},
      {"PATCH", T, t, R"({"name":"T"})", {200, 200, 403, 404, 403, 403, 401, 401}},
      {"DELETE", T, a + "/tenants/empty", "", {204, 204, 403, 404, 403, 403, 401, 401}},
      {"GET", T + "/datasets", t + "/datasets", "", {200, 200, 200, 404, 403, 200, 401, 401}},
      {"POST", T + "/datasets", t + "/datasets", R"({"id":"new"})", {201, 201, 403, 404, 403, 403, 401, 401}},
      {"GET", D, d, "", {200, 200, 200, 404, 403, 200, 401, 401}},
      {"PATCH", D, d, R"({"paused":true})", {200, 200, 403, 404, 403, 403, 401, 401}},
      {"DELETE", D, d, "", {204, 204, 403, 404, 403, 403, 401, 401}},
      {"GET", "/api/v1/users", "", "", {200, 200, 200, 200, 403, 403, 401, 401}},
      {"POST", "/api/v1/users", "", kUserBody, {201, 201, 403, 404, 403, 403, 401, 401}},
      {"GET", "/api/v1/users/{user}", "", "", {200, 200, 200, 404, 403, 403, 401, 401}},
      {"PATCH", "/api/v1/users/{user}", "", R"({"name":"U"})", {200, 200, 403, 404, 403, 403, 401, 401}},
      {"DELETE", "/api/v1/users/{user}", "", "", {204, 204, 403, 404, 403, 403, 401, 401}},
      {"GET", "/api/v1/keys", "", "", {200, 200, 200, 200, 403, 403, 401, 401}},
      {"POST", "/api/v1/keys", "", R"({"role":"ingest","account":"a","tenant":"t"})",
       {201, 201, 403, 404, 403, 403, 401, 401}},
      {"GET", "/api/v1/keys/{key}", "", "", {200, 200, 200, 404, 403, 403, 401, 401}},
      {"PATCH", "/api/v1/keys/{key}", "", R"({"name":"K"})", {200, 200, 403, 404, 403, 403, 401, 401}},
      {"DELETE", "/api/v1/keys/{key}", "", "", {200, 200, 403, 404, 403, 403, 401, 401}},
      {"GET", "/api/v1/audit", "", "", {200, 200, 200, 200, 403, 403, 401, 401}},
      // Config documents are for services (their own) and system admins.
      {"GET", "/api/v1/config", "/api/v1/config?service=piper", "", {200, 403, 403, 403, 403, 200, 401, 401}},
      // Services report health; account users read it (it holds no account data).
      {"POST", "/api/v1/health", "", R"({"service":"piper","instance":"p1","status":"ok"})",
       {200, 403, 403, 403, 403, 200, 401, 401}},
      {"GET", "/api/v1/health", "", "", {200, 200, 200, 200, 403, 403, 401, 401}},
      {"GET", "/api/v1/health/{component}", "/api/v1/health/piper-p1", "", {404, 404, 404, 404, 403, 403, 401, 401}},
      // The plugins' option schemas (the UI's forms): every account user.
      {"GET", "/api/v1/plugins", "", "", {200, 200, 200, 200, 403, 403, 401, 401}},
      // Leases: pipers and packers (their own stage) and system admins.
      {"POST", "/api/v1/leases/acquire", "", R"({"name":"piper/a/t/d","holder":"h1","ttl_ms":5000})",
       {200, 403, 403, 403, 403, 200, 401, 401}},
      {"POST", "/api/v1/leases/renew", "", R"({"name":"piper/a/t/d","holder":"h1","token":1,"ttl_ms":5000})",
       {409, 403, 403, 403, 403, 409, 401, 401}},
      {"POST", "/api/v1/leases/release", "", R"({"name":"piper/a/t/d","holder":"h1","token":1})",
       {204, 403, 403, 403, 403, 204, 401, 401}},
      {"POST", "/api/v1/leases/validate", "", R"({"name":"piper/a/t/d","holder":"h1","token":1})",
       {200, 403, 403, 403, 403, 200, 401, 401}},
      // Preview: anyone who may read the dataset (nothing is stored).
      {"POST", "/api/v1/pipelines/preview", "",
       R"({"pipeline":[{"add":{"field":"x","value":1}}],"events":[{}],"account":"a","tenant":"t","dataset":"d"})",
       {200, 200, 200, 404, 403, 200, 401, 401}},
  };
  return rows;
}

// Accounts a and b, each with tenant t and dataset d; a also has an empty tenant;
// a user and a key of a to act on; a key for every caller.
struct World {
  test::ApiHarness h;
  std::array<std::string, kCallers> tokens;
  std::string user_a, key_a;
  explicit World(const std::string& backend = "sqlite") : h(test::ApiHarness::generous(), backend) {
    for (const char* acc : {"a", "b"}) {
      h.add_account(acc);
      h.add_tenant(acc, "t");
      h.add_dataset(acc, "t", "d");
    }
    h.add_tenant("a", "empty");
    user_a = h.add_user("admin-a@example.com", "account_admin", "a");
    h.add_key("account_viewer", "a");
    key_a = h.last_key_id;
    tokens[kSys] = h.add_key("system_admin");
    tokens[kAdminA] = h.add_key("account_admin", "a");
    tokens[kViewerA] = h.add_key("account_viewer", "a");
    tokens[kAdminB] = h.add_key("account_admin", "b");
    tokens[kIngestA] = h.add_key("ingest", "a", "t");
    tokens[kServicePiper] = h.add_key("service", "", "", "piper");
    tokens[kNone] = "";
    tokens[kBadKey] = "bfk_" + std::string(16, '0') + "_" + std::string(64, '0');
  }
  std::string path(const Row& r) const {
    if (!r.path.empty()) return r.path;
    std::string p = r.pattern;
    auto put = [&](const std::string& name, const std::string& v) {
      auto pos = p.find(name);
      if (pos != std::string::npos) p.replace(pos, name.size(), v);
    };
    put("{user}", user_a);
    put("{key}", key_a);
    return p;
  }
};

TEST(RoleMatrix, EveryRouteHasARowAndEveryRowARoute) {
  std::set<std::pair<std::string, std::string>> routes, rows;
  for (const auto& r : ControlApi::routes()) routes.insert({r.method, r.pattern});
  for (const auto& r : matrix()) EXPECT_TRUE(rows.insert({r.method, r.pattern}).second) << "duplicate row " << r.method << " " << r.pattern;
  for (const auto& r : routes) EXPECT_TRUE(rows.count(r)) << "route without a matrix row: " << r.first << " " << r.second;
  for (const auto& r : rows) EXPECT_TRUE(routes.count(r)) << "matrix row without a route: " << r.first << " " << r.second;
}

TEST(RoleMatrix, EveryCallerGetsTheExpectedStatusOnEveryRoute) {
  for (const Row& row : matrix()) {
    for (int c = 0; c < kCallers; ++c) {
      World w;  // fresh per cell: a change by one caller never decides another's answer
      const std::string path = w.path(row);
      test::Reply r = w.h.call(row.method, path, row.body, w.tokens[c]);
      EXPECT_EQ(r.status, row.expect[c]) << row.method << " " << path << " as " << kCallerNames[c] << ": " << r.body;
      if (r.status == 401 && row.expect[c] == 401) {
        EXPECT_EQ(r.headers["WWW-Authenticate"], "Bearer");
      }
    }
  }
}

// The scoping tests run on both store backends (the whole matrix, a fresh world per
// cell, on SQLite only: the scoping is the API's, the store only filters by account).
class RoleScope : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Backends, RoleScope, test::both_backends(), test::backend_name);

// Another account's resources answer exactly as missing ones do, so ids cannot be probed.
TEST_P(RoleScope, AnotherAccountsResourcesLookMissing) {
  World w(GetParam());
  const std::string& b_admin = w.tokens[kAdminB];
  auto hidden = w.h.call("GET", "/api/v1/accounts/a/tenants/t", "", b_admin);
  auto missing = w.h.call("GET", "/api/v1/accounts/zz/tenants/t", "", b_admin);
  auto missing_sys = w.h.call("GET", "/api/v1/accounts/zz/tenants/t", "", w.tokens[kSys]);
  EXPECT_EQ(hidden.status, 404);
  EXPECT_EQ(missing.status, 404);
  auto norm = [](std::string s, const std::string& id) {
    auto pos = s.find("'" + id + "'");
    if (pos != std::string::npos) s.replace(pos, id.size() + 2, "'?'");
    return s;
  };
  EXPECT_EQ(norm(hidden.body, "a"), norm(missing.body, "zz"));
  EXPECT_EQ(norm(missing_sys.body, "zz"), norm(missing.body, "zz"));
  // Users and keys by id: the same answer as an id that does not exist.
  auto hidden_user = w.h.call("GET", "/api/v1/users/" + w.user_a, "", b_admin);
  auto missing_user = w.h.call("GET", "/api/v1/users/u999", "", b_admin);
  EXPECT_EQ(norm(hidden_user.body, w.user_a), norm(missing_user.body, "u999"));
  auto hidden_key = w.h.call("GET", "/api/v1/keys/" + w.key_a, "", b_admin);
  auto missing_key = w.h.call("GET", "/api/v1/keys/0000000000000000", "", b_admin);
  EXPECT_EQ(norm(hidden_key.body, w.key_a), norm(missing_key.body, "0000000000000000"));
}

// Listings of an account-scoped caller hold only its own account's rows.
TEST_P(RoleScope, ListingsAreScopedToTheCallersAccount) {
  World w(GetParam());
  w.h.add_user("b@example.com", "account_viewer", "b");
  for (const std::string what : {"users", "keys", "audit"}) {
    auto r = w.h.call("GET", "/api/v1/" + what + "?limit=500", "", w.tokens[kAdminB]);
    ASSERT_EQ(r.status, 200) << r.body;
    auto items = r.json().at("items").as_array();
    EXPECT_FALSE(items.empty()) << what;
    for (const auto& it : items) EXPECT_EQ(it.at("account"), "b") << what << ": " << boost::json::serialize(it);
    // Asking for another account explicitly is a miss, not a leak.
    EXPECT_EQ(w.h.call("GET", "/api/v1/" + what + "?account=a", "", w.tokens[kAdminB]).status, 404) << what;
  }
  auto accounts = w.h.call("GET", "/api/v1/accounts", "", w.tokens[kAdminB]).json().at("items").as_array();
  ASSERT_EQ(accounts.size(), 1u);
  EXPECT_EQ(accounts[0].at("id"), "b");
}

}  // namespace
}  // namespace bf::control
