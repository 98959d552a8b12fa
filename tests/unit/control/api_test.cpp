// The control API's behaviour beyond access: validation naming the field,
// hostile input, pagination, the audit log, sessions, revocation, rate limits,
// the OpenAPI document and the YAML import.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include "common/config.h"
#include "common/metrics.h"
#include "control/commands.h"
#include "control/config_document.h"
#include "control_test_util.h"

namespace bf::control {
namespace {

using test::ApiHarness;

// On both store backends.
class Api : public ::testing::TestWithParam<std::string> {
 protected:
  ApiHarness h{ApiHarness::generous(), GetParam()};
  std::string sys = h.add_key("system_admin");
  void SetUp() override {
    h.add_account("a");
    h.add_tenant("a", "t");
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, Api, test::both_backends(), test::backend_name);

TEST_P(Api, CreateGetUpdateDeleteADatasetWithSettings) {
  auto r = h.call("POST", "/api/v1/accounts/a/tenants/t/datasets",
                  R"({"id":"web","name":"Web","settings":{"pipeline":[{"add":{"field":"env","value":"prod"}}],)"
                  R"("sources":[{"type":"syslog_udp"}],"retention":{"days":30},"packer":{}}})",
                  sys);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json().at("settings").at("retention").at("days"), 30);
  r = h.call("GET", "/api/v1/accounts/a/tenants/t/datasets/web", "", sys);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("name"), "Web");
  EXPECT_EQ(r.json().at("settings").at("pipeline").as_array().size(), 1u);
  r = h.call("PATCH", "/api/v1/accounts/a/tenants/t/datasets/web", R"({"paused":true,"settings":{"pipeline":[]}})", sys);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("paused"), true);
  EXPECT_TRUE(r.json().at("settings").at("pipeline").as_array().empty());
  EXPECT_EQ(h.call("DELETE", "/api/v1/accounts/a/tenants/t/datasets/web", "", sys).status, 204);
  EXPECT_EQ(h.call("GET", "/api/v1/accounts/a/tenants/t/datasets/web", "", sys).status, 404);
}

// Connectors: settings through the sink's own option table, the query through the
// query service's SQL guard over the tenant's datasets, credentials only as the names
// of environment variables.
TEST_P(Api, ConnectorsAreValidatedAsAConnectorWouldRunThemAndHoldNoSecrets) {
  const std::string cs = "/api/v1/accounts/a/tenants/t/connectors";
  ASSERT_EQ(h.call("POST", "/api/v1/accounts/a/tenants/t/datasets", R"({"id":"web"})", sys).status, 201);
  h.add_tenant("a", "other");
  ASSERT_EQ(h.call("POST", "/api/v1/accounts/a/tenants/other/datasets", R"({"id":"secret"})", sys).status, 201);

  auto r = h.call("POST", cs,
                  R"({"id":"to-es","name":"Errors to ES","sink":"elasticsearch","schedule":"5m",)"
                  R"("query":"SELECT _time, message\nFROM web\nWHERE severity <= 3",)"
                  R"("settings":{"url":"https://es.example.com:9200","index":"bf-errors","api_key_env":"ES_API_KEY"}})",
                  sys);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json().at("schedule"), "5m");
  EXPECT_EQ(r.json().at("settings").at("index"), "bf-errors");
  EXPECT_EQ(r.json().at("paused"), false);
  r = h.call("PATCH", cs + "/to-es", R"({"paused":true,"schedule":"30s"})", sys);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("paused"), true);
  EXPECT_EQ(r.json().at("schedule"), "30s");
  EXPECT_EQ(r.json().at("settings").at("api_key_env"), "ES_API_KEY");  // kept
  // Changing only the sink checks the stored settings against the new sink's table.
  r = h.call("PATCH", cs + "/to-es", R"({"sink":"splunk_hec"})", sys);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.field(), "connector.settings");

  struct Case {
    std::string body, field, says;
  };
  const std::string ok_settings = R"("settings":{"url":"https://hooks.example.com/in"})";
  for (const Case& c : std::vector<Case>{
           {R"({"id":"x","sink":"kafka","query":"SELECT 1",)" + ok_settings + "}", "connector.sink", "webhook"},
           {R"({"id":"x","query":"SELECT 1",)" + ok_settings + "}", "connector.sink", "required"},
           {R"({"id":"x","sink":"webhook",)" + ok_settings + "}", "connector.query", "required"},
           {R"j({"id":"x","sink":"webhook","query":"SELECT * FROM read_csv('/etc/passwd')",)j" + ok_settings + "}",
            "connector.query", "read_csv"},
           {R"({"id":"x","sink":"webhook","query":"SELECT * FROM secret",)" + ok_settings + "}", "connector.query",
            "secret"},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1; DROP TABLE web",)" + ok_settings + "}",
            "connector.query", ""},
           {R"({"id":"x","sink":"webhook","query":"DELETE FROM web",)" + ok_settings + "}", "connector.query", ""},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1","schedule":"1s",)" + ok_settings + "}",
            "connector.schedule", "10s"},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1","schedule":"often",)" + ok_settings + "}",
            "connector.schedule", "duration"},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1","settings":{}})", "connector.settings", "url"},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1","settings":{"url":"ftp://h/x"}})", "connector.settings",
            "http"},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1","settings":{"url":"https://user:pw@h/x"}})",
            "connector.settings", "credentials"},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1","settings":{"url":"https://h/x?token=abc"}})",
            "connector.settings", "query"},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1","settings":{"url":"https://h/x","colour":1}})",
            "connector.settings", "colour"},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1","settings":{"url":"https://h/x","auth_env":"s3cr3t-t0ken"}})",
            "connector.settings", "environment variable"},
           {R"({"id":"x","sink":"splunk_hec","query":"SELECT 1","settings":{"url":"https://splunk:8088"}})",
            "connector.settings", "token_env"},
           {R"({"id":"x","sink":"elasticsearch","query":"SELECT 1","settings":{"url":"https://es:9200","index":"Bad Index"}})",
            "connector.settings", "lowercase"},
           {R"({"id":"x","sink":"elasticsearch","query":"SELECT 1","settings":{"url":"https://es:9200","index":"i","username":"u"}})",
            "connector.settings", "password_env"},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1","settings":[1]})", "connector.settings", "object"},
           {R"({"id":"x","sink":"webhook","query":"SELECT ')" + std::string(70000, 'x') + R"('",)" + ok_settings + "}",
            "connector.query", "longer than"},
           {R"({"id":"x","sink":"webhook","query":"SELECT 1\u0000",)" + ok_settings + "}", "connector.query",
            "control characters"},
       }) {
    r = h.call("POST", cs, c.body, sys);
    EXPECT_EQ(r.status, 400) << c.body << ": " << r.body;
    if (r.status != 400) continue;
    EXPECT_EQ(r.field(), c.field) << c.body << ": " << r.body;
    EXPECT_NE(r.json().at("message").as_string().find(c.says), std::string::npos) << c.body << ": " << r.body;
  }
  EXPECT_EQ(h.call("GET", cs, "", sys).json().at("items").as_array().size(), 1u);  // nothing else was created

  // The connector service's config document carries the connector; other services' do not.
  const std::string doc = config_document(*h.store, "connector");
  EXPECT_NE(doc.find("\"to-es\""), std::string::npos) << doc;
  EXPECT_NE(doc.find("bf-errors"), std::string::npos) << doc;
  EXPECT_EQ(config_document(*h.store, "piper").find("to-es"), std::string::npos);

  // A tenant with connectors is not deleted under them; the audit log has each change.
  ASSERT_EQ(h.call("DELETE", "/api/v1/accounts/a/tenants/t/datasets/web", "", sys).status, 204);
  r = h.call("DELETE", "/api/v1/accounts/a/tenants/t", "", sys);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("connectors"), std::string::npos) << r.body;
  EXPECT_EQ(h.call("DELETE", cs + "/to-es", "", sys).status, 204);
  EXPECT_EQ(h.call("GET", cs + "/to-es", "", sys).status, 404);
  EXPECT_EQ(h.call("DELETE", "/api/v1/accounts/a/tenants/t", "", sys).status, 204);
  std::set<std::string> actions;
  for (const auto& e : h.store->list_audit(PageQuery{"", 1000, ""})) actions.insert(e.action);
  for (const char* a : {"connector.create", "connector.update", "connector.delete"}) EXPECT_TRUE(actions.count(a)) << a;
}

TEST_P(Api, ValidationErrorsNameTheField) {
  struct Case {
    std::string method, path, body, field;
  };
  const std::string ds = "/api/v1/accounts/a/tenants/t/datasets";
  for (const Case& c : std::vector<Case>{
           {"POST", "/api/v1/accounts/a/tenants", R"({"id":"Bad Id"})", "tenant.id"},
           {"POST", "/api/v1/accounts/a/tenants", R"({})", "tenant.id"},
           {"POST", "/api/v1/accounts/a/tenants", R"({"id":"x","colour":"red"})", "tenant.colour"},
           {"POST", "/api/v1/accounts/a/tenants", R"({"id":7})", "tenant.id"},
           {"POST", "/api/v1/accounts/a/tenants", R"({"id":"x","name":"a\u0001b"})", "tenant.name"},
           {"PATCH", "/api/v1/accounts/a/tenants/t", R"({"id":"other"})", "tenant.id"},
           {"POST", "/api/v1/accounts", R"({"id":"new","name":")" + std::string(300, 'n') + "\"}", "account.name"},
           {"POST", ds, R"({"id":"d","settings":{"pipeline":[{"ad":{}}]}})", "dataset.settings.pipeline"},
           {"POST", ds, R"({"id":"d","settings":{"pipeline":{}}})", "dataset.settings.pipeline"},
           {"POST", ds, R"({"id":"d","settings":{"retention":{"days":0}}})", "dataset.settings.retention.days"},
           {"POST", ds, R"({"id":"d","settings":{"sources":[{}]}})", "dataset.settings.sources[0].type"},
           {"POST", ds, R"({"id":"d","settings":{"colour":1}})", "dataset.settings.colour"},
           {"POST", ds, R"({"id":"d","paused":"yes"})", "dataset.paused"},
           {"POST", "/api/v1/users", R"({"email":"x","role":"account_admin","account":"a","password":"long-enough-pw"})", "user.email"},
           {"POST", "/api/v1/users", R"({"email":"x@y.z","role":"root","account":"a","password":"long-enough-pw"})", "user.role"},
           {"POST", "/api/v1/users", R"({"email":"x@y.z","role":"account_admin","password":"long-enough-pw"})", "user.account"},
           {"POST", "/api/v1/users", R"({"email":"x@y.z","role":"account_admin","account":"a","password":"short"})", "user.password"},
           {"POST", "/api/v1/keys", R"({"role":"ingest","account":"a"})", "key.tenant"},
           {"POST", "/api/v1/keys", R"({"role":"ingest","account":"a","tenant":"nope"})", "key.tenant"},
           {"POST", "/api/v1/keys", R"({"role":"service","service":"db"})", "key.service"},
           {"POST", "/api/v1/keys", R"({"role":"service","service":"piper","account":"a"})", "key.account"},
           {"POST", "/api/v1/keys", R"({"role":"wizard"})", "key.role"},
           {"GET", "/api/v1/accounts?limit=0", "", "limit"},
           {"GET", "/api/v1/accounts?limit=abc", "", "limit"},
           {"GET", "/api/v1/accounts?cursor=!!", "", "cursor"},
           {"GET", "/api/v1/audit?cursor=" + base64url("c1:x"), "", "cursor"},
       }) {
    auto r = h.call(c.method, c.path, c.body, sys);
    EXPECT_EQ(r.status, 400) << c.method << " " << c.path << " " << c.body << ": " << r.body;
    if (r.status != 400) continue;
    EXPECT_EQ(r.json().at("error"), "invalid") << r.body;
    EXPECT_EQ(r.field(), c.field) << c.body << ": " << r.body;
    EXPECT_FALSE(r.json().at("message").as_string().empty());
  }
  // Nothing was created on the way.
  EXPECT_EQ(h.call("GET", "/api/v1/accounts/a/tenants", "", sys).json().at("items").as_array().size(), 1u);
  EXPECT_EQ(h.call("GET", ds, "", sys).json().at("items").as_array().size(), 0u);
}

TEST_P(Api, HostileInputIsAClear400AndChangesNothing) {
  const size_t audit_before = h.store->list_audit(PageQuery{"", 1000, ""}).size();
  const std::string tenants = "/api/v1/accounts/a/tenants";
  // Invalid JSON, invalid UTF-8, not an object, too deep, and wrong content type.
  for (const std::string& body : {std::string("{\"id\":"), std::string("{\"id\":\"\xff\xfe\"}"), std::string("[1,2]"),
                                  std::string(40, '[') + std::string(40, ']'), std::string("null")}) {
    auto r = h.call("POST", tenants, body, sys);
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_EQ(r.field(), "tenant") << r.body;
  }
  EXPECT_EQ(h.call("POST", tenants, "id=x", sys, {{"Content-Type", "application/x-www-form-urlencoded"}}).status, 415);
  // SQL-looking and path-traversal ids in paths and bodies.
  for (const std::string& id : {std::string("a'%20OR%20'1'='1"), std::string("..%2F..%2Fetc%2Fpasswd"),
                                std::string("%2e%2e"), std::string("a;DROP%20TABLE%20tenants")}) {
    auto r = h.call("GET", "/api/v1/accounts/" + id + "/tenants", "", sys);
    EXPECT_EQ(r.status, 400) << id << ": " << r.body;
    EXPECT_EQ(r.field(), "account") << r.body;
  }
  for (const std::string& id : {std::string("x'); DROP TABLE tenants; --"), std::string("../../etc/passwd")}) {
    auto r = h.call("POST", tenants, "{\"id\":" + boost::json::serialize(boost::json::value(id)) + "}", sys);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.field(), "tenant.id");
  }
  // Oversized settings.
  std::string big = R"({"id":"d","settings":{"packer":{"x":")" + std::string(300 * 1024, 'x') + "\"}}}";
  auto r = h.call("POST", "/api/v1/accounts/a/tenants/t/datasets", big, sys);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.field(), "dataset.settings");
  EXPECT_EQ(h.store->list_audit(PageQuery{"", 1000, ""}).size(), audit_before);
  EXPECT_TRUE(h.store->get_tenant("a", "t"));
  EXPECT_GT(metrics().value("bf_control_denied_total", {{"reason", "invalid"}}), 0);
}

TEST_P(Api, PaginationWalksEveryItemOnceWithAnOpaqueCursor) {
  for (int i = 0; i < 12; ++i) h.add_tenant("a", "x" + std::to_string(100 + i));
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  while (true) {
    auto r = h.call("GET", "/api/v1/accounts/a/tenants?limit=5" + (cursor.empty() ? "" : "&cursor=" + cursor), "", sys);
    ASSERT_EQ(r.status, 200) << r.body;
    auto doc = r.json().as_object();
    for (auto& it : doc.at("items").as_array()) seen.push_back(std::string(it.at("id").as_string()));
    ++pages;
    if (doc.at("next_cursor").is_null()) break;
    cursor = std::string(doc.at("next_cursor").as_string());
    EXPECT_EQ(cursor.find("x1"), std::string::npos) << "cursor shows the id: " << cursor;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 13u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 13u);
}

TEST_P(Api, EveryChangeIsAuditedWithBeforeAndAfter) {
  ASSERT_EQ(h.call("POST", "/api/v1/accounts/a/tenants", R"({"id":"web","name":"one"})", sys).status, 201);
  ASSERT_EQ(h.call("PATCH", "/api/v1/accounts/a/tenants/web", R"({"name":"two"})", sys).status, 200);
  ASSERT_EQ(h.call("DELETE", "/api/v1/accounts/a/tenants/web", "", sys).status, 204);
  auto r = h.call("GET", "/api/v1/audit?account=a&limit=3", "", sys);
  ASSERT_EQ(r.status, 200);
  auto items = r.json().at("items").as_array();
  ASSERT_EQ(items.size(), 3u);
  // Newest first.
  EXPECT_EQ(items[0].at("action"), "tenant.delete");
  EXPECT_EQ(items[0].at("before").at("name"), "two");
  EXPECT_TRUE(items[0].at("after").is_null());
  EXPECT_EQ(items[1].at("action"), "tenant.update");
  EXPECT_EQ(items[1].at("before").at("name"), "one");
  EXPECT_EQ(items[1].at("after").at("name"), "two");
  EXPECT_EQ(items[2].at("action"), "tenant.create");
  EXPECT_EQ(std::string(items[2].at("actor").as_string()), "key:" + parse_api_key(sys)->id);
  EXPECT_EQ(items[2].at("target"), "a/web");
}

// Every resource's create, update and delete (a key's revoke) through the API: one
// entry each, with the caller, the action, the target and the object before and after;
// and no password, password hash, key secret or key hash anywhere in the audit log.
TEST_P(Api, EveryResourcesChangesAreAuditedWithBeforeAndAfterAndNoSecrets) {
  const std::string actor = "key:" + parse_api_key(sys)->id;
  const std::string ds = "/api/v1/accounts/a/tenants/t/datasets/web";
  struct Step {
    std::string method, path, body;
    int status;
  };
  std::vector<Step> steps{
      {"POST", "/api/v1/accounts", R"({"id":"b","name":"first"})", 201},
      {"PATCH", "/api/v1/accounts/b", R"({"name":"second"})", 200},
      {"DELETE", "/api/v1/accounts/b", "", 204},
      {"POST", "/api/v1/accounts/a/tenants/t/datasets", R"({"id":"web","settings":{"retention":{"days":7}}})", 201},
      {"PATCH", ds, R"({"paused":true,"settings":{"retention":{"days":30}}})", 200},
      {"DELETE", ds, "", 204},
  };
  for (const auto& st : steps) ASSERT_EQ(h.call(st.method, st.path, st.body, sys).status, st.status) << st.method << " " << st.path;
  const std::string password = "first-password-1234", password2 = "second-password-5678";
  auto u = h.call("POST", "/api/v1/users",
                  R"({"email":"audit@example.com","role":"account_viewer","account":"a","password":")" + password + "\"}", sys);
  ASSERT_EQ(u.status, 201) << u.body;
  const std::string uid(u.json().at("id").as_string());
  const std::string hash1 = h.store->get_user(uid)->password_hash;
  ASSERT_EQ(h.call("PATCH", "/api/v1/users/" + uid, R"({"name":"Ann","password":")" + password2 + "\"}", sys).status, 200);
  const std::string hash2 = h.store->get_user(uid)->password_hash;
  ASSERT_EQ(h.call("DELETE", "/api/v1/users/" + uid, "", sys).status, 204);
  auto k = h.call("POST", "/api/v1/keys", R"({"role":"ingest","account":"a","tenant":"t","name":"k1"})", sys);
  ASSERT_EQ(k.status, 201) << k.body;
  const std::string kid(k.json().at("id").as_string()), token(k.json().at("key").as_string());
  const std::string key_hash = h.store->get_key(kid)->secret_hash;
  ASSERT_EQ(h.call("PATCH", "/api/v1/keys/" + kid, R"({"name":"k2"})", sys).status, 200);
  ASSERT_EQ(h.call("DELETE", "/api/v1/keys/" + kid, "", sys).status, 200);

  auto r = h.call("GET", "/api/v1/audit?limit=500", "", sys);
  ASSERT_EQ(r.status, 200);
  std::map<std::string, boost::json::object> by_action;  // the newest entry of each action
  const boost::json::value listed = r.json();
  for (const auto& e : listed.at("items").as_array()) {
    const auto& o = e.as_object();
    if (o.at("actor") != boost::json::value(actor)) continue;  // the fixture's own entries
    by_action.try_emplace(std::string(o.at("action").as_string()), o);
  }
  for (const char* action : {"account.create", "account.update", "account.delete", "dataset.create", "dataset.update",
                             "dataset.delete", "user.create", "user.update", "user.delete", "key.create", "key.update",
                             "key.revoke"})
    EXPECT_TRUE(by_action.count(action)) << "no audit entry for " << action;
  // Creates: nothing before; deletes: nothing after.
  for (const char* action : {"account.create", "dataset.create", "user.create", "key.create"})
    EXPECT_TRUE(by_action[action].at("before").is_null()) << action;
  for (const char* action : {"account.delete", "dataset.delete", "user.delete"})
    EXPECT_TRUE(by_action[action].at("after").is_null()) << action;
  // An update: the object before and after, and what changed between them.
  const auto& upd = by_action["dataset.update"];
  EXPECT_EQ(upd.at("target"), "a/t/web");
  EXPECT_EQ(upd.at("account"), "a");
  EXPECT_EQ(upd.at("before").at("paused"), false);
  EXPECT_EQ(upd.at("before").at("settings").at("retention").at("days"), 7);
  EXPECT_EQ(upd.at("after").at("paused"), true);
  EXPECT_EQ(upd.at("after").at("settings").at("retention").at("days"), 30);
  EXPECT_EQ(by_action["account.update"].at("before").at("name"), "first");
  EXPECT_EQ(by_action["account.update"].at("after").at("name"), "second");
  // A delete: the whole object as it was.
  const auto& del = by_action["dataset.delete"];
  EXPECT_EQ(del.at("before").at("id"), "web");
  EXPECT_EQ(del.at("before").at("paused"), true);
  EXPECT_EQ(del.at("before").at("settings").at("retention").at("days"), 30);
  EXPECT_EQ(by_action["account.delete"].at("before").at("name"), "second");
  EXPECT_EQ(by_action["user.delete"].at("before").at("name"), "Ann");
  // A password change shows as such, never as a value.
  EXPECT_EQ(by_action["user.update"].at("after").at("password_changed"), true);
  EXPECT_FALSE(by_action["user.update"].at("before").as_object().contains("password_changed"));
  EXPECT_EQ(by_action["key.update"].at("before").at("name"), "k1");
  EXPECT_EQ(by_action["key.update"].at("after").at("name"), "k2");
  EXPECT_TRUE(by_action["key.revoke"].at("before").at("revoked").is_null());
  EXPECT_FALSE(by_action["key.revoke"].at("after").at("revoked").is_null());
  // No secret in the API's answer nor in any stored entry.
  const std::string secret = parse_api_key(token)->secret;
  std::string stored;
  for (const AuditEntry& e : h.store->list_audit(PageQuery{"", 1000, ""}))
    stored += e.actor + e.action + e.target + e.before_json + e.after_json + "\n";
  ASSERT_NE(stored.find("key.revoke"), std::string::npos);
  for (const std::string& s : {password, password2, hash1, hash2, secret, key_hash, std::string("$argon2id")}) {
    EXPECT_EQ(r.body.find(s), std::string::npos) << "in the audit API: " << s;
    EXPECT_EQ(stored.find(s), std::string::npos) << "in the stored audit log: " << s;
  }
}

// Control compiles a stored pipeline to validate it only: a bad step is a 400 naming
// its index, kind and option; the files enrichment steps name are the pipers' (on
// their hosts) and are never opened here — a missing one and one that is no CSV at
// all are both accepted.
TEST_P(Api, StoredPipelinesAreCompiledToValidateOnlyAndErrorsNameStepKindAndKey) {
  const std::string base = "/api/v1/accounts/a/tenants/t/datasets";
  auto create = [&](const std::string& id, const std::string& pipeline) {
    return h.call("POST", base, R"({"id":")" + id + R"(","settings":{"pipeline":)" + pipeline + "}}", sys);
  };
  auto bad = create("d1", R"([{"add":{"field":"x","value":1}},{"lookup":{"file":"/t.csv","field":"ip","colour":"red"}}])");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.field(), "dataset.settings.pipeline");
  const std::string msg(bad.json().at("message").as_string());
  EXPECT_NE(msg.find("pipeline step 2 (lookup)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'colour'"), std::string::npos) << msg;
  EXPECT_FALSE(h.store->get_dataset("a", "t", "d1")) << "a refused pipeline stores nothing";
  auto geo = create("d1", R"([{"geoip":{"database":"/g.mmdb","field":"ip","fields":["shoe_size"]}}])");
  EXPECT_EQ(geo.status, 400);
  EXPECT_NE(geo.body.find("pipeline step 1 (geoip): option 'fields'"), std::string::npos) << geo.body;
  auto missing_option = create("d1", R"([{"lookup":{"field":"ip"}}])");
  EXPECT_EQ(missing_option.status, 400);
  EXPECT_NE(missing_option.body.find("pipeline step 1 (lookup)"), std::string::npos) << missing_option.body;
  EXPECT_NE(missing_option.body.find("'file'"), std::string::npos) << missing_option.body;

  // Files: not on this host, or on it but not a table — neither is opened.
  auto dir = test::temp_dir("not-a-table");
  { std::ofstream(dir / "garbage.csv") << "one,two\nonly-one\n"; }
  const std::string lookup_missing = R"([{"lookup":{"file":"/on/the/piper/host.csv","field":"ip","target":"asset"}}])";
  const std::string lookup_garbage = R"([{"lookup":{"file":")" + (dir / "garbage.csv").string() + R"(","field":"ip"}}])";
  const std::string geoip_missing = R"([{"geoip":{"database":"/on/the/piper/city.mmdb","field":"ip","fields":["city_name"]}}])";
  EXPECT_EQ(create("d1", lookup_missing).status, 201);
  EXPECT_EQ(create("d2", lookup_garbage).status, 201);
  EXPECT_EQ(create("d3", geoip_missing).status, 201);
  std::filesystem::remove_all(dir);
  // An update is checked the same way and a refused one changes nothing.
  auto patch = h.call("PATCH", base + "/d1", R"({"settings":{"pipeline":[{"drop":{"if":"("}}]}})", sys);
  EXPECT_EQ(patch.status, 400);
  EXPECT_NE(patch.body.find("pipeline step 1 (drop)"), std::string::npos) << patch.body;
  EXPECT_NE(h.store->get_dataset("a", "t", "d1")->settings_json.find("/on/the/piper/host.csv"), std::string::npos);
}

// The preview runs in control too, so it reads no file either: a lookup on a table
// that is on control's host (here, readable) enriches nothing and fails each sample
// saying why — an API caller cannot read control's files through it.
TEST_P(Api, ThePreviewReadsNoEnrichmentFileOnControlsHost) {
  h.add_dataset("a", "t", "d");
  auto dir = test::temp_dir("preview-table");
  const std::string table = (dir / "owners.csv").string();
  { std::ofstream(table) << "ip,owner\n10.0.0.1,corp\n"; }
  for (const std::string ids : {std::string(R"(,"account":"a","tenant":"t","dataset":"d")"), std::string()}) {
    auto r = h.call("POST", "/api/v1/pipelines/preview",
                    R"({"pipeline":[{"lookup":{"file":")" + table + R"(","field":"ip","target":"asset"}}],"events":[{"ip":"10.0.0.1"}])" +
                        ids + "}",
                    sys);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body.find("corp"), std::string::npos) << r.body;
    auto o = r.json().as_object();
    EXPECT_TRUE(o.at("output").as_array().empty()) << r.body;
    ASSERT_EQ(o.at("dead_letters").as_array().size(), 1u) << r.body;
    EXPECT_NE(boost::json::serialize(o.at("dead_letters")).find("does not read enrichment files"), std::string::npos) << r.body;
    EXPECT_EQ(o.at("trace").as_array()[0].at("steps").as_array()[0].at("result"), "failed") << r.body;
  }
  std::filesystem::remove_all(dir);
}

TEST_P(Api, KeysAreShownOnceWorkUntilRevokedAndNeverStoredInClear) {
  auto r = h.call("POST", "/api/v1/keys", R"({"role":"account_viewer","account":"a","name":"ci"})", sys);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string token(r.json().at("key").as_string());
  const std::string id(r.json().at("id").as_string());
  ASSERT_TRUE(parse_api_key(token));
  EXPECT_EQ(h.call("GET", "/api/v1/accounts/a", "", token).status, 200);
  // Never again: not in GET, not in a listing, not in the audit log, not in the store.
  auto got = h.call("GET", "/api/v1/keys/" + id, "", sys);
  EXPECT_EQ(got.body.find(parse_api_key(token)->secret), std::string::npos);
  EXPECT_FALSE(got.json().as_object().contains("key"));
  EXPECT_EQ(h.call("GET", "/api/v1/audit?limit=500", "", sys).body.find(parse_api_key(token)->secret), std::string::npos);
  EXPECT_NE(h.store->get_key(id)->secret_hash, parse_api_key(token)->secret);
  // A wrong secret for a real id.
  std::string wrong = token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_EQ(h.call("GET", "/api/v1/accounts/a", "", wrong).status, 401);
  // Revoked.
  auto rev = h.call("DELETE", "/api/v1/keys/" + id, "", sys);
  ASSERT_EQ(rev.status, 200);
  EXPECT_FALSE(rev.json().at("revoked").is_null());
  EXPECT_EQ(h.call("GET", "/api/v1/accounts/a", "", token).status, 401);
  EXPECT_EQ(h.call("PATCH", "/api/v1/keys/" + id, R"({"revoked":false})", sys).status, 400);
  // Malformed Authorization headers.
  EXPECT_EQ(h.call("GET", "/api/v1/accounts", "", "", {{"Authorization", "Basic abc"}}).status, 401);
  EXPECT_EQ(h.call("GET", "/api/v1/accounts", "", "bfk_short").status, 401);
}

TEST_P(Api, AccountAdminsCannotMintSystemWidePowers) {
  const std::string admin = h.add_key("account_admin", "a");
  EXPECT_EQ(h.call("POST", "/api/v1/keys", R"({"role":"system_admin"})", admin).status, 403);
  EXPECT_EQ(h.call("POST", "/api/v1/keys", R"({"role":"service","service":"piper"})", admin).status, 403);
  EXPECT_EQ(h.call("POST", "/api/v1/users",
                   R"({"email":"root@example.com","role":"system_admin","password":"long-enough-password"})", admin)
                .status,
            403);
  const std::string uid = h.add_user("v@example.com", "account_viewer", "a");
  EXPECT_EQ(h.call("PATCH", "/api/v1/users/" + uid, R"({"role":"system_admin","account":null})", admin).status, 403);
  EXPECT_EQ(h.store->get_user(uid)->role, "account_viewer");
}

TEST_P(Api, LoginSetsAStrictHttpOnlyCookieThatAuthenticatesUntilLogout) {
  h.add_user("ops@example.com", "account_admin", "a", hash_password("a-long-enough-password"));
  auto bad = h.call("POST", "/api/v1/auth/login", R"({"email":"ops@example.com","password":"nope-nope-nope"})");
  EXPECT_EQ(bad.status, 401);
  auto unknown = h.call("POST", "/api/v1/auth/login", R"({"email":"who@example.com","password":"nope-nope-nope"})");
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(unknown.body, bad.body);  // an unknown email reads like a wrong password
  auto ok = h.call("POST", "/api/v1/auth/login", R"({"email":"OPS@example.com","password":"a-long-enough-password"})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  const std::string set_cookie = ok.headers["Set-Cookie"];
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(set_cookie.find("SameSite=Strict"), std::string::npos);
  EXPECT_NE(set_cookie.find("Max-Age="), std::string::npos);
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  auto me = h.call("GET", "/api/v1/auth/me", "", "", {{"Cookie", "theme=dark; " + cookie}});
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.json().at("kind"), "user");
  EXPECT_EQ(me.json().at("account"), "a");
  EXPECT_EQ(me.json().at("email"), "ops@example.com");
  EXPECT_EQ(h.call("POST", "/api/v1/accounts/a/tenants", R"({"id":"s"})", "", {{"Cookie", cookie}}).status, 201);
  // The token is kept only as a hash.
  const std::string token = cookie.substr(cookie.find('=') + 1);
  EXPECT_FALSE(h.store->get_session(token));
  EXPECT_TRUE(h.store->get_session(hash_secret(token)));
  EXPECT_EQ(h.call("POST", "/api/v1/auth/logout", "", "", {{"Cookie", cookie}}).status, 204);
  EXPECT_EQ(h.call("GET", "/api/v1/auth/me", "", "", {{"Cookie", cookie}}).status, 401);
  // A stale cookie does not stand in the way of logging in again.
  EXPECT_EQ(h.call("POST", "/api/v1/auth/login", R"({"email":"ops@example.com","password":"a-long-enough-password"})",
                   "", {{"Cookie", cookie}})
                .status,
            200);
}

TEST(ApiLimits, LoginAttemptsAndRequestsAreRateLimitedWith429AndRetryAfter) {
  ControlOptions o = ApiHarness::generous();
  o.login_attempts_per_minute = 3;
  o.requests_per_second = 1;
  o.request_burst = 5;
  ApiHarness h(o);
  const std::string body = R"({"email":"x@example.com","password":"wrong-password-1"})";
  int refused = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = h.call("POST", "/api/v1/auth/login", body);
    if (r.status == 429) {
      ++refused;
      EXPECT_GE(std::stoi(r.headers["Retry-After"]), 1);
    }
  }
  EXPECT_GE(refused, 1);
  // Per key: one key's burst spent does not stop another key.
  const std::string k1 = h.add_key("system_admin"), k2 = h.add_key("system_admin");
  int limited = 0;
  for (int i = 0; i < 8; ++i) limited += h.call("GET", "/api/v1/accounts", "", k1).status == 429;
  EXPECT_GE(limited, 2);
  EXPECT_EQ(h.call("GET", "/api/v1/accounts", "", k2).status, 200);
  EXPECT_GT(metrics().value("bf_control_denied_total", {{"reason", "rate_limited"}}), 0);
}

TEST(OpenApi, DocumentsExactlyTheRegisteredRoutes) {
  auto doc = boost::json::parse(openapi_document()).as_object();
  EXPECT_EQ(std::string(doc.at("openapi").as_string()).substr(0, 2), "3.");
  std::set<std::pair<std::string, std::string>> documented, registered;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      if (method == "parameters") continue;
      std::string m(method);
      for (char& ch : m) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      documented.insert({m, std::string(path)});
      EXPECT_TRUE(op.as_object().contains("responses")) << m << " " << path;
    }
  }
  for (const auto& r : ControlApi::routes()) registered.insert({r.method, r.pattern});
  for (const auto& r : registered) EXPECT_TRUE(documented.count(r)) << "undocumented: " << r.first << " " << r.second;
  for (const auto& r : documented) EXPECT_TRUE(registered.count(r)) << "documented, not served: " << r.first << " " << r.second;
  // Every $ref resolves.
  std::function<void(const boost::json::value&)> walk = [&](const boost::json::value& v) {
    if (v.is_object()) {
      for (const auto& [k, x] : v.as_object()) {
        if (k == "$ref") {
          std::string ref(x.as_string());
          ASSERT_EQ(ref.rfind("#/components/", 0), 0u) << ref;
          const boost::json::value* at = &doc.at("components");
          std::string rest = ref.substr(13);
          size_t pos = 0;
          while (pos < rest.size()) {
            size_t slash = rest.find('/', pos);
            std::string part = rest.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
            ASSERT_TRUE(at->is_object() && at->as_object().contains(part)) << "dangling " << ref;
            at = &at->as_object().at(part);
            if (slash == std::string::npos) break;
            pos = slash + 1;
          }
        } else {
          walk(x);
        }
      }
    } else if (v.is_array()) {
      for (const auto& x : v.as_array()) walk(x);
    }
  };
  walk(doc);
  ApiHarness h;
  auto served = h.call("GET", "/api/v1/openapi.json");
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(served.body, openapi_document());
}

// The YAML import on both store backends.
class Import : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Backends, Import, test::both_backends(), test::backend_name);

TEST_P(Import, RetentionTravelsFromTheYamlThroughControlToThePackersCatalog) {
  auto dir = test::temp_dir("import-retention");
  const std::string file = (dir / "accounts.yaml").string();
  std::ofstream(file) << "accounts: [{id: acme, tenants: [{id: web, datasets: [{id: nginx, retention: {days: 30}}, {id: raw}]}]}]\n";
  ApiHarness h{ApiHarness::generous(), GetParam()};
  import_accounts_yaml(*h.store, file);
  Catalog c = catalog_from_config_document(config_document(*h.store, "packer"));
  ASSERT_TRUE(c.find(DatasetRef{"acme", "web", "nginx"}) && c.find(DatasetRef{"acme", "web", "raw"}));
  EXPECT_EQ(c.find(DatasetRef{"acme", "web", "nginx"})->retention_days, 30);
  EXPECT_EQ(c.find(DatasetRef{"acme", "web", "raw"})->retention_days, 0);
  // A changed retention is an update; a file without one keeps what control has.
  std::ofstream(file) << "accounts: [{id: acme, tenants: [{id: web, datasets: [{id: nginx, retention: {days: 7}}]}]}]\n";
  EXPECT_EQ(import_accounts_yaml(*h.store, file).updated, 1u);
  std::ofstream(file) << "accounts: [{id: acme, tenants: [{id: web, datasets: [{id: nginx}]}]}]\n";
  EXPECT_EQ(import_accounts_yaml(*h.store, file).updated, 0u);
  c = catalog_from_config_document(config_document(*h.store, "packer"));
  EXPECT_EQ(c.find(DatasetRef{"acme", "web", "nginx"})->retention_days, 7);
  std::ofstream(file) << "accounts: [{id: acme, tenants: [{id: web, datasets: [{id: nginx, retention: {days: -1}}]}]}]\n";
  EXPECT_THROW(import_accounts_yaml(*h.store, file), ConfigError);
  std::filesystem::remove_all(dir);
}

TEST_P(Import, StaticAccountsYamlImportsOnceAndTheKeysWork) {
  auto dir = test::temp_dir("import");
  const std::string file = (dir / "accounts.yaml").string();
  std::ofstream(file) << R"(
storage: {type: local, path: /nowhere}
accounts:
  - id: acme
    tenants:
      - id: web
        ingest_keys: ["secret-ingest-key-0001"]
        query_keys: ["secret-query-key-0001"]
        datasets:
          - id: nginx
            pipeline: [{add: {field: env, value: prod}}]
          - id: raw
)";
  ApiHarness h{ApiHarness::generous(), GetParam()};
  ImportReport first = import_accounts_yaml(*h.store, file);
  EXPECT_EQ(first.created, 6u);  // account, tenant, 2 datasets, 2 keys
  const size_t audited = h.store->list_audit(PageQuery{"", 1000, ""}).size();
  ImportReport second = import_accounts_yaml(*h.store, file);
  EXPECT_EQ(second.created, 0u);
  EXPECT_EQ(second.updated, 0u);
  EXPECT_EQ(second.unchanged, 6u);
  EXPECT_EQ(h.store->list_audit(PageQuery{"", 1000, ""}).size(), audited);
  auto d = h.store->get_dataset("acme", "web", "nginx");
  ASSERT_TRUE(d);
  EXPECT_NE(d->settings_json.find("\"env\""), std::string::npos);
  // The imported keys authenticate as their tenant's ingest/query keys (and may not manage control).
  auto me = h.call("GET", "/api/v1/auth/me", "", "secret-ingest-key-0001");
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.json().at("role"), "ingest");
  EXPECT_EQ(me.json().at("tenant"), "web");
  EXPECT_TRUE(me.json().at("email").is_null());  // keys have none
  EXPECT_EQ(h.call("GET", "/api/v1/auth/me", "", "secret-query-key-0001").json().at("role"), "query");
  EXPECT_EQ(h.call("GET", "/api/v1/accounts", "", "secret-ingest-key-0001").status, 403);
  // A changed pipeline is an update; a revoked key stays revoked.
  std::ofstream(file) << R"(
accounts:
  - id: acme
    tenants:
      - id: web
        ingest_keys: ["secret-ingest-key-0001"]
        datasets:
          - id: nginx
            pipeline: []
)";
  ApiKey k = *h.store->get_key(imported_key_id("secret-ingest-key-0001"));
  k.revoked_us = now_us();
  h.store->update_key(k, test::audit("key.revoke", "acme"));
  ImportReport third = import_accounts_yaml(*h.store, file);
  EXPECT_EQ(third.updated, 1u);
  EXPECT_EQ(h.store->get_key(k.id)->revoked_us, k.revoked_us);
  EXPECT_EQ(h.call("GET", "/api/v1/auth/me", "", "secret-ingest-key-0001").status, 401);
  // A bad file changes nothing and names the item.
  std::ofstream(file) << "accounts:\n  - id: ok\n  - id: Bad\n";
  try {
    import_accounts_yaml(*h.store, file);
    FAIL() << "imported an invalid id";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("Bad"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(h.store->get_account("ok"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bf::control

namespace bf::control {
namespace {

// Tenant a/t with datasets web and alerts.
class ApiRouting : public Api {
 protected:
  void SetUp() override {
    Api::SetUp();
    h.add_dataset("a", "t", "web");
    h.add_dataset("a", "t", "alerts");
  }
};
INSTANTIATE_TEST_SUITE_P(Backends, ApiRouting, test::both_backends(), test::backend_name);

TEST_P(ApiRouting, PreviewRunsSampleEventsThroughAPipelineAndChecksRouteTargetsAgainstTheTenant) {
  const std::string steps =
      R"([{"kv":{}},{"route":{"to":"alerts","mode":"move","if":"level == \"error\""}},{"coerce":{"field":"n","type":"int"}}])";
  auto r = h.call("POST", "/api/v1/pipelines/preview",
                  R"({"pipeline":)" + steps +
                      R"(,"events":[{"message":"level=info n=1"},{"message":"level=error n=2"},{"message":"level=info n=x"}],)"
                      R"("account":"a","tenant":"t","dataset":"web"})",
                  sys);
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  ASSERT_EQ(j.at("output").as_array().size(), 1u);
  EXPECT_EQ(j.at("output").at(0).at("n"), 1);
  EXPECT_EQ(j.at("routed").at("alerts").as_array().size(), 1u);
  EXPECT_EQ(j.at("dead_letters").as_array().size(), 1u);
  EXPECT_EQ(j.at("trace").at(1).at("steps").at(1).at("result"), "moved");
  // An unknown target of the tenant does not compile: 400 naming the field and the dataset.
  r = h.call("POST", "/api/v1/pipelines/preview",
             R"({"pipeline":[{"route":{"to":"nope"}}],"events":[],"account":"a","tenant":"t","dataset":"web"})", sys);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.field(), "preview.pipeline") << r.body;
  EXPECT_NE(r.body.find("unknown dataset 'nope'"), std::string::npos) << r.body;
  // Without a dataset any valid id is a target; the input is bounded.
  EXPECT_EQ(h.call("POST", "/api/v1/pipelines/preview", R"({"pipeline":[{"route":{"to":"nope"}}],"events":[{}]})", sys).status, 200);
  std::string many = R"({"pipeline":[],"events":[)";
  for (int i = 0; i < 1001; ++i) many += (i ? ",{}" : "{}");
  many += "]}";
  EXPECT_EQ(h.call("POST", "/api/v1/pipelines/preview", many, sys).status, 413);
  EXPECT_EQ(h.call("POST", "/api/v1/pipelines/preview", R"({"pipeline":[],"events":[1]})", sys).status, 400);
  EXPECT_EQ(h.call("POST", "/api/v1/pipelines/preview", R"({"pipeline":[],"events":[],"dataset":"web"})", sys).status, 400);
  EXPECT_EQ(h.call("POST", "/api/v1/pipelines/preview", R"({"pipeline":[],"events":[],"colour":1})", sys).status, 400);
}

TEST_P(ApiRouting, StoredPipelinesMayRouteOnlyToTheTenantsDatasetsAndATargetStaysWhileRoutedTo) {
  const std::string web = "/api/v1/accounts/a/tenants/t/datasets/web";
  auto r = h.call("PATCH", web, R"({"settings":{"pipeline":[{"route":{"to":"nope"}}]}})", sys);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.field(), "dataset.settings.pipeline") << r.body;
  EXPECT_NE(r.body.find("unknown dataset 'nope'"), std::string::npos) << r.body;
  ASSERT_EQ(h.call("PATCH", web, R"({"settings":{"pipeline":[{"route":{"to":["alerts"],"mode":"move"}}]}})", sys).status, 200);
  r = h.call("DELETE", "/api/v1/accounts/a/tenants/t/datasets/alerts", "", sys);
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(r.body.find("dataset 'web' routes events to 'alerts'"), std::string::npos) << r.body;
  ASSERT_EQ(h.call("PATCH", web, R"({"settings":{"pipeline":[]}})", sys).status, 200);
  EXPECT_EQ(h.call("DELETE", "/api/v1/accounts/a/tenants/t/datasets/alerts", "", sys).status, 204);
}

}  // namespace
}  // namespace bf::control

namespace bf::control {
namespace {

TEST_P(Import, RouteTargetsAreCheckedAgainstTheTenantsDatasetsInTheFile) {
  auto dir = test::temp_dir("import-route");
  const std::string file = (dir / "accounts.yaml").string();
  auto write = [&](const std::string& target) {
    std::ofstream(file) << "accounts:\n  - id: acme\n    tenants:\n      - id: web\n        datasets:\n"
                           "          - id: nginx\n            pipeline: [{route: {to: " + target + "}}]\n"
                           "          - id: alerts\n";  // declared after the dataset that routes to it
  };
  ApiHarness h{ApiHarness::generous(), GetParam()};
  write("nope");
  try {
    import_accounts_yaml(*h.store, file);
    ADD_FAILURE() << "imported";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("acme/web/nginx: pipeline step 1 (route): option 'to': unknown dataset 'nope'"),
              std::string::npos) << e.what();
  }
  EXPECT_FALSE(h.store->get_dataset("acme", "web", "nginx").has_value());
  write("alerts");
  EXPECT_EQ(import_accounts_yaml(*h.store, file).created, 4u);  // account, tenant, 2 datasets
}

}  // namespace
}  // namespace bf::control
