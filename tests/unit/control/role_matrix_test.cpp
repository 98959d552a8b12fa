// The role x endpoint matrix: every route, called by every kind of caller against
// a store no other caller changed, answers the status in its row. A route without a row fails the
// test, so a new endpoint cannot skip its access rules.
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <set>

#include "control_test_util.h"

namespace bf::control {
namespace {

// Callers, in the column order of the matrix: every role, every service key kind,
// both ingest scopes, no credentials, a key of another account, and a bad key.
enum Caller {
  kSys, kAdminA, kViewerA, kAdminB, kIngestA, kIngestAD, kQueryA,
  kSvcProxy, kSvcReceiver, kSvcPiper, kSvcPacker, kSvcQuery, kSvcConnector,
  kNone, kBadKey, kCallers
};
const char* const kCallerNames[] = {"system_admin",       "account_admin(a)",  "account_viewer(a)", "account_admin(b)",
                                    "ingest(a/t)",        "ingest(a/t/d)",     "query(a/t)",        "service(proxy)",
                                    "service(receiver)",  "service(piper)",    "service(packer)",   "service(query)",
                                    "service(connector)", "no credentials",    "bad key"};
const char* const kServices[] = {"proxy", "receiver", "piper", "packer", "query", "connector"};
constexpr int kFirstService = kSvcProxy;

// What a row expects of each kind of caller. Service keys share one column unless
// `service_override` names one (a service acting on another service's config,
// health or leases is refused for its body, not its role).
struct Expect {
  int sys, admin_a, viewer_a, admin_b, ingest, query, service, none, bad;
  std::map<int, int> service_override = {};
  int of(int c) const {
    switch (c) {
      case kSys: return sys;
      case kAdminA: return admin_a;
      case kViewerA: return viewer_a;
      case kAdminB: return admin_b;
      case kIngestA:
      case kIngestAD: return ingest;
      case kQueryA: return query;
      case kNone: return none;
      case kBadKey: return bad;
      default: {
        auto it = service_override.find(c);
        return it == service_override.end() ? service : it->second;
      }
    }
  }
};

struct Row {
  std::string method, pattern;  // the route
  std::string path;             // a concrete path ({user}/{key} replaced by the fixture's ids)
  std::string body;
  Expect expect;
};

const std::string kUserBody =
    R"({"email":"new@example.com","role":"account_viewer","account":"a","password":"a-long-enough-password"})";

// Every service but `own` answers `other` (and `own` answers the row's service status).
std::map<int, int> services_but(int own, int other) {
  std::map<int, int> m;
  for (int c = kFirstService; c < kFirstService + 6; ++c)
    if (c != own) m[c] = other;
  return m;
}

const std::vector<Row>& matrix() {
  const std::string A = "/api/v1/accounts/{account}", T = A + "/tenants/{tenant}", D = T + "/datasets/{dataset}";
  const std::string a = "/api/v1/accounts/a", t = a + "/tenants/t", d = t + "/datasets/d";
  // Leases: pipers and packers only, each for its own stage (a packer naming a piper lease: 400).
  auto leases = [](int ok) {
    std::map<int, int> m = services_but(kSvcPiper, 403);
    m[kSvcPacker] = 400;
    return Expect{ok, 403, 403, 403, 403, 403, ok, 401, 401, m};
  };
  //                                                    sys  admA viewA admB ingst query svc  none bad
  static const std::vector<Row> rows{
      {"GET", "/api/v1/openapi.json", "", "", {200, 200, 200, 200, 200, 200, 200, 200, 200}},
      {"POST", "/api/v1/auth/login", "", R"({"email":"admin-a@example.com","password":"wrong-password-x"})",
       {401, 401, 401, 401, 401, 401, 401, 401, 401}},
      {"POST", "/api/v1/auth/logout", "", "", {400, 400, 400, 400, 400, 400, 400, 401, 401}},
      {"GET", "/api/v1/auth/me", "", "", {200, 200, 200, 200, 200, 200, 200, 401, 401}},
      {"GET", "/api/v1/accounts", "", "", {200, 200, 200, 200, 403, 403, 200, 401, 401}},
      {"POST", "/api/v1/accounts", "", R"({"id":"new"})", {201, 403, 403, 403, 403, 403, 403, 401, 401}},
      {"GET", A, a, "", {200, 200, 200, 404, 403, 403, 200, 401, 401}},
      {"PATCH", A, a, R"({"name":"A"})", {200, 200, 403, 404, 403, 403, 403, 401, 401}},
      {"DELETE", A, a, "", {409, 403, 403, 404, 403, 403, 403, 401, 401}},
      {"GET", A + "/tenants", a + "/tenants", "", {200, 200, 200, 404, 403, 403, 200, 401, 401}},
      {"POST", A + "/tenants", a + "/tenants", R"({"id":"new"})", {201, 201, 403, 404, 403, 403, 403, 401, 401}},
      {"GET", T, t, "", {200, 200, 200, 404, 403, 403, 200, 401, 401}},
      {"PATCH", T, t, R"({"name":"T"})", {200, 200, 403, 404, 403, 403, 403, 401, 401}},
      {"DELETE", T, a + "/tenants/empty", "", {204, 204, 403, 404, 403, 403, 403, 401, 401}},
      {"GET", T + "/datasets", t + "/datasets", "", {200, 200, 200, 404, 403, 403, 200, 401, 401}},
      {"POST", T + "/datasets", t + "/datasets", R"({"id":"new"})", {201, 201, 403, 404, 403, 403, 403, 401, 401}},
      {"GET", D, d, "", {200, 200, 200, 404, 403, 403, 200, 401, 401}},
      {"PATCH", D, d, R"({"paused":true})", {200, 200, 403, 404, 403, 403, 403, 401, 401}},
      {"DELETE", D, d, "", {204, 204, 403, 404, 403, 403, 403, 401, 401}},
      // Connectors: the account's users, and the connector service reads them.
      {"GET", T + "/connectors", t + "/connectors", "",
       {200, 200, 200, 404, 403, 403, 403, 401, 401, {{kSvcConnector, 200}}}},
      {"POST", T + "/connectors", t + "/connectors",
       R"({"id":"new","sink":"webhook","query":"SELECT * FROM d","settings":{"url":"https://hooks.example.com/x"}})",
       {201, 201, 403, 404, 403, 403, 403, 401, 401}},
      {"GET", T + "/connectors/{connector}", t + "/connectors/c", "",
       {200, 200, 200, 404, 403, 403, 403, 401, 401, {{kSvcConnector, 200}}}},
      {"PATCH", T + "/connectors/{connector}", t + "/connectors/c", R"({"paused":true})",
       {200, 200, 403, 404, 403, 403, 403, 401, 401}},
      {"DELETE", T + "/connectors/{connector}", t + "/connectors/c", "", {204, 204, 403, 404, 403, 403, 403, 401, 401}},
      {"GET", "/api/v1/users", "", "", {200, 200, 200, 200, 403, 403, 403, 401, 401}},
      {"POST", "/api/v1/users", "", kUserBody, {201, 201, 403, 404, 403, 403, 403, 401, 401}},
      {"GET", "/api/v1/users/{user}", "", "", {200, 200, 200, 404, 403, 403, 403, 401, 401}},
      {"PATCH", "/api/v1/users/{user}", "", R"({"name":"U"})", {200, 200, 403, 404, 403, 403, 403, 401, 401}},
      {"DELETE", "/api/v1/users/{user}", "", "", {204, 204, 403, 404, 403, 403, 403, 401, 401}},
      {"GET", "/api/v1/keys", "", "", {200, 200, 200, 200, 403, 403, 403, 401, 401}},
      {"POST", "/api/v1/keys", "", R"({"role":"ingest","account":"a","tenant":"t"})",
       {201, 201, 403, 404, 403, 403, 403, 401, 401}},
      {"GET", "/api/v1/keys/{key}", "", "", {200, 200, 200, 404, 403, 403, 403, 401, 401}},
      {"PATCH", "/api/v1/keys/{key}", "", R"({"name":"K"})", {200, 200, 403, 404, 403, 403, 403, 401, 401}},
      {"DELETE", "/api/v1/keys/{key}", "", "", {200, 200, 403, 404, 403, 403, 403, 401, 401}},
      {"GET", "/api/v1/audit", "", "", {200, 200, 200, 200, 403, 403, 403, 401, 401}},
      // Config documents are for services (their own: another's is a 400 naming `service`) and system admins.
      {"GET", "/api/v1/config", "/api/v1/config?service=piper", "",
       {200, 403, 403, 403, 403, 403, 200, 401, 401, services_but(kSvcPiper, 400)}},
      // Services report health for themselves; account users read it (it holds no account data).
      {"POST", "/api/v1/health", "", R"({"service":"piper","instance":"p1","status":"ok"})",
       {200, 403, 403, 403, 403, 403, 200, 401, 401, services_but(kSvcPiper, 400)}},
      {"GET", "/api/v1/health", "", "", {200, 200, 200, 200, 403, 403, 403, 401, 401}},
      {"GET", "/api/v1/health/{component}", "/api/v1/health/piper-p1", "", {404, 404, 404, 404, 403, 403, 403, 401, 401}},
      // The plugins' option schemas (the UI's forms): every account user.
      {"GET", "/api/v1/plugins", "", "", {200, 200, 200, 200, 403, 403, 403, 401, 401}},
      // Leases: pipers and packers (their own stage) and system admins.
      {"POST", "/api/v1/leases/acquire", "", R"({"name":"piper/a/t/d","holder":"h1","ttl_ms":5000})", leases(200)},
      {"POST", "/api/v1/leases/renew", "", R"({"name":"piper/a/t/d","holder":"h1","token":1,"ttl_ms":5000})", leases(409)},
      {"POST", "/api/v1/leases/release", "", R"({"name":"piper/a/t/d","holder":"h1","token":1})", leases(204)},
      {"POST", "/api/v1/leases/validate", "", R"({"name":"piper/a/t/d","holder":"h1","token":1})", leases(200)},
      // Preview: anyone who may read the dataset (nothing is stored).
      {"POST", "/api/v1/pipelines/preview", "",
       R"({"pipeline":[{"add":{"field":"x","value":1}}],"events":[{}],"account":"a","tenant":"t","dataset":"d"})",
       {200, 200, 200, 404, 403, 403, 200, 401, 401}},
  };
  return rows;
}

// Text only account a's resources carry (names, the user's email) and only b's: an
// answer to an account-scoped caller must not hold the other's.
const std::string kMarkA = "only-in-account-a", kMarkB = "only-in-account-b";

// Accounts a and b, each with tenant t, dataset d and connector c (named after their
// account's marker); a also has an empty tenant; a user and a key of each account to act on
// and to leak; a key for every caller.
struct World {
  test::ApiHarness h;
  std::array<std::string, kCallers> tokens;
  std::string user_a, key_a;
  explicit World(const std::string& backend = "sqlite") : h(test::ApiHarness::generous(), backend) {
    for (const std::string acc : {"a", "b"}) {
      const std::string mark = acc == "a" ? kMarkA : kMarkB;
      h.store->create_account(Account{acc, mark, now_us(), now_us()}, test::audit("a", acc));
      h.store->create_tenant(Tenant{acc, "t", mark, now_us(), now_us()}, test::audit("t", acc));
      h.store->create_dataset(Dataset{acc, "t", "d", mark, "{}", false, now_us(), now_us()}, test::audit("d", acc));
      h.store->create_connector(Connector{acc, "t", "c", mark, "webhook", "SELECT * FROM d", 60000,
                                          R"({"url":"https://hooks.example.com/x"})", false, now_us(), now_us()},
                                test::audit("c", acc));
    }
    h.add_tenant("a", "empty");
    user_a = h.add_user("admin-a@example.com", "account_admin", "a");
    h.add_user(kMarkB + "@example.com", "account_viewer", "b");
    h.add_key("account_viewer", "a");
    key_a = h.last_key_id;
    tokens[kSys] = h.add_key("system_admin");
    tokens[kAdminA] = h.add_key("account_admin", "a");
    tokens[kViewerA] = h.add_key("account_viewer", "a");
    tokens[kAdminB] = h.add_key("account_admin", "b");
    tokens[kIngestA] = h.add_key("ingest", "a", "t");
    tokens[kIngestAD] = dataset_key();
    tokens[kQueryA] = h.add_key("query", "a", "t");
    for (int i = 0; i < 6; ++i) tokens[kFirstService + i] = h.add_key("service", "", "", kServices[i]);
    tokens[kNone] = "";
    tokens[kBadKey] = "bfk_" + std::string(16, '0') + "_" + std::string(64, '0');
  }
  std::string dataset_key() {  // ingest scoped to a/t/d
    NewKey nk = generate_api_key();
    ApiKey k;
    k.id = nk.id;
    k.secret_hash = nk.secret_hash;
    k.role = "ingest";
    k.account = "a";
    k.tenant = "t";
    k.dataset = "d";
    k.created_us = now_us();
    h.store->create_key(k, test::audit("key.create", "a"));
    return nk.token;
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

// The routes the served OpenAPI document lists, as (METHOD, pattern).
std::set<std::pair<std::string, std::string>> documented_routes() {
  test::ApiHarness h;
  auto served = h.call("GET", "/api/v1/openapi.json");
  EXPECT_EQ(served.status, 200);
  std::set<std::pair<std::string, std::string>> out;
  const boost::json::value doc = served.json();
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      if (method == "parameters") continue;
      std::string m(method);
      for (char& ch : m) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      out.insert({m, std::string(path)});
    }
  }
  return out;
}

// The router's routes and the served OpenAPI document's both: a route in either
// without a row fails, so a new endpoint cannot ship without its access proven.
TEST(RoleMatrix, EveryRouteHasARowAndEveryRowARoute) {
  std::set<std::pair<std::string, std::string>> routes, rows;
  for (const auto& r : ControlApi::routes()) routes.insert({r.method, r.pattern});
  const auto documented = documented_routes();
  EXPECT_GT(documented.size(), 30u);
  for (const auto& r : matrix()) EXPECT_TRUE(rows.insert({r.method, r.pattern}).second) << "duplicate row " << r.method << " " << r.pattern;
  for (const auto& r : routes) EXPECT_TRUE(rows.count(r)) << "route without a matrix row: " << r.first << " " << r.second;
  for (const auto& r : documented) EXPECT_TRUE(rows.count(r)) << "documented route without a matrix row: " << r.first << " " << r.second;
  for (const auto& r : rows) EXPECT_TRUE(routes.count(r)) << "matrix row without a route: " << r.first << " " << r.second;
}

// On both store backends: the scoping is the API's, but each backend's store must
// filter and refuse the same way.
class RoleMatrixOn : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Backends, RoleMatrixOn, test::both_backends(), test::backend_name);

TEST_P(RoleMatrixOn, EveryCallerGetsTheExpectedStatusOnEveryRoute) {
  size_t cells = 0, allowed = 0, worlds = 0;
  for (const Row& row : matrix()) {
    // A fresh world after every change (a write that succeeded), so a change by one
    // caller never decides another's answer; refusals and reads change nothing.
    std::unique_ptr<World> fresh;
    for (int c = 0; c < kCallers; ++c) {
      if (!fresh) {
        fresh = std::make_unique<World>(GetParam());
        ++worlds;
      }
      World& w = *fresh;
      const std::string path = w.path(row);
      test::Reply r = w.h.call(row.method, path, row.body, w.tokens[c]);
      if (row.method != "GET" && r.status < 300) fresh.reset();
      const int want = row.expect.of(c);
      ++cells;
      EXPECT_EQ(r.status, want) << row.method << " " << path << " as " << kCallerNames[c] << ": " << r.body;
      if (r.status == 401 && want == 401) {
        EXPECT_EQ(r.headers["WWW-Authenticate"], "Bearer");
      }
      // An account-scoped caller's answer holds nothing of the other account, allowed or not.
      const bool of_a = c == kAdminA || c == kViewerA || c == kIngestA || c == kIngestAD || c == kQueryA;
      if (of_a || c == kAdminB) {
        const std::string& foreign = of_a ? kMarkB : kMarkA;
        EXPECT_EQ(r.body.find(foreign), std::string::npos)
            << row.method << " " << path << " as " << kCallerNames[c] << " leaks the other account: " << r.body;
        if (r.status < 300) ++allowed;
      }
      // A refusal names nothing of any account.
      if (r.status == 403 || r.status == 401) {
        EXPECT_EQ(r.body.find(kMarkA), std::string::npos) << row.method << " " << path << " as " << kCallerNames[c];
        EXPECT_EQ(r.body.find(kMarkB), std::string::npos) << row.method << " " << path << " as " << kCallerNames[c];
      }
    }
  }
  EXPECT_EQ(cells, matrix().size() * kCallers);
  EXPECT_LT(worlds, cells);
  EXPECT_GT(allowed, 40u);  // the leak check looked at real answers, not only refusals
}

// The allowed cells that list or show account-wide data, as account b's admin: the
// answer holds b's resources (so the check above is not vacuous) and none of a's.
TEST(RoleMatrix, AnotherAccountsAllowedAnswersHoldOnlyItsOwnData) {
  World w;
  for (const std::string path : {"/api/v1/accounts", "/api/v1/accounts/b", "/api/v1/accounts/b/tenants",
                                 "/api/v1/accounts/b/tenants/t", "/api/v1/accounts/b/tenants/t/datasets",
                                 "/api/v1/accounts/b/tenants/t/datasets/d", "/api/v1/accounts/b/tenants/t/connectors",
                                 "/api/v1/accounts/b/tenants/t/connectors/c", "/api/v1/users?limit=500",
                                 "/api/v1/audit?limit=500"}) {
    auto r = w.h.call("GET", path, "", w.tokens[kAdminB]);
    ASSERT_EQ(r.status, 200) << path << ": " << r.body;
    if (path.find("audit") == std::string::npos)  // the fixture's audit entries carry no object
      EXPECT_NE(r.body.find(kMarkB), std::string::npos) << path << ": " << r.body;
    EXPECT_EQ(r.body.find(kMarkA), std::string::npos) << path << ": " << r.body;
    EXPECT_EQ(r.body.find("admin-a@example.com"), std::string::npos) << path << ": " << r.body;
  }
  auto keys = w.h.call("GET", "/api/v1/keys?limit=500", "", w.tokens[kAdminB]);
  ASSERT_EQ(keys.status, 200);
  const boost::json::value listed = keys.json();
  for (const auto& k : listed.at("items").as_array()) EXPECT_EQ(k.at("account"), "b") << boost::json::serialize(k);
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
