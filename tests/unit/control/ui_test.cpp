// The web UI as control serves it (control/ui.h): the built files with their content
// types and cache headers, index.html for app paths, no API route shadowed; and the
// API pieces the UI needs (GET /api/v1/plugins, events_total in health, in-process
// health reports).
#include <gtest/gtest.h>

#include "control/health.h"
#include "control/ui.h"
#include "control_test_util.h"

namespace bf::control {
namespace {

using test::ApiHarness;

class UiServing : public ::testing::Test {
 protected:
  UiServing() {
    h.router.set_fallback(serve_ui);  // as ControlServer does
    sys = h.add_key("system_admin");
  }
  // The built index.html, and one hashed asset (the build names them by content).
  std::string asset_path() const {
    for (const UiFile& f : ui_files())
      if (f.path.starts_with("/assets/") && f.path.ends_with(".js")) return std::string(f.path);
    return "";
  }
  ApiHarness h;
  std::string sys;
};

TEST_F(UiServing, TheRootAndAppPathsAnswerIndexHtmlRevalidated) {
  auto root = h.call("GET", "/");
  ASSERT_EQ(root.status, 200);
  EXPECT_EQ(root.headers["Content-Type"], "text/html; charset=utf-8");
  EXPECT_EQ(root.headers["Cache-Control"], "no-cache");
  EXPECT_NE(root.headers["Content-Security-Policy"].find("default-src 'self'"), std::string::npos);
  EXPECT_NE(root.body.find("<html"), std::string::npos);
  // Every page path of the app gets the same document (the app routes it).
  for (const char* page : {"/login", "/welcome", "/accounts/acme/tenants/web", "/query"}) {
    auto r = h.call("GET", page);
    EXPECT_EQ(r.status, 200) << page;
    EXPECT_EQ(r.body, root.body) << page;
  }
  // Revalidation: the ETag answers 304 without a body.
  auto again = h.call("GET", "/", "", "", {{"If-None-Match", root.headers["ETag"]}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
}

TEST_F(UiServing, HashedAssetsHaveTheirTypeAndAreCachedForever) {
  const std::string js = asset_path();
  if (js.empty()) GTEST_SKIP() << "built without the UI (ui/node_modules missing): only the placeholder page is embedded";
  auto r = h.call("GET", js);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Content-Type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(r.headers["Cache-Control"], "public, max-age=31536000, immutable");
  EXPECT_EQ(r.headers["X-Content-Type-Options"], "nosniff");
  EXPECT_FALSE(r.body.empty());
  // The index names it: what the browser loads is what is served.
  EXPECT_NE(h.call("GET", "/").body.find(js), std::string::npos);
}

TEST_F(UiServing, NoApiRouteIsShadowedAndMissingFilesAre404) {
  // API routes still answer as before; unknown API paths stay JSON 404s.
  EXPECT_EQ(h.call("GET", "/api/v1/openapi.json").headers["Content-Type"], "application/json");
  auto unknown = h.call("GET", "/api/v1/nope", "", sys);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(unknown.json().as_object().contains("error"));
  EXPECT_EQ(h.call("GET", "/api", "", sys).status, 404);
  for (const char* reserved : {"/healthz", "/readyz", "/metrics"}) EXPECT_EQ(h.call("GET", reserved).status, 404) << reserved;
  // A file that is not there is not answered with the app.
  EXPECT_EQ(h.call("GET", "/assets/missing-abc.js").status, 404);
  EXPECT_EQ(h.call("GET", "/favicon.ico").status, 404);
  // Only reads: other methods on app paths are 404s as before.
  EXPECT_EQ(h.call("POST", "/login", "{}").status, 404);
  // A path with a route for another method stays a 405.
  EXPECT_EQ(h.call("PUT", "/api/v1/accounts", "{}", sys).status, 405);
}

TEST(ControlPlugins, ThePluginsDocumentIsServedToAccountUsers) {
  ApiHarness h;
  const std::string sys = h.add_key("system_admin");
  const std::string doc = R"({"sources":{"syslog_udp":{"type":"object","properties":{"listen":{"type":"string"}}}},"steps":{}})";
  set_plugins_document(doc);
  auto r = h.call("GET", "/api/v1/plugins", "", sys);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("sources").at("syslog_udp").at("properties").at("listen").at("type"), "string");
  EXPECT_EQ(h.call("GET", "/api/v1/plugins").status, 401);
  set_plugins_document(R"({"sources":{},"steps":{}})");
}

TEST(ControlHealth, EventsTotalIsKeptAndInProcessReportsAreListed) {
  ApiHarness h;
  const std::string sys = h.add_key("system_admin");
  const std::string svc = h.add_key("service", "", "", "receiver");
  ASSERT_EQ(h.call("POST", "/api/v1/health", R"({"instance":"r1","status":"ok","events_total":42})", svc).status, 200);
  EXPECT_EQ(h.call("POST", "/api/v1/health", R"({"instance":"r1","status":"ok","events_total":-1})", svc).field(),
            "report.events_total");
  HealthReport local;
  local.service = "piper";
  local.instance = "box";
  local.status = "ok";
  local.events_total = 7;
  ASSERT_TRUE(h.api->record_health(local));
  auto list = h.call("GET", "/api/v1/health", "", sys).json().at("items").as_array();
  ASSERT_EQ(list.size(), 2u);
  for (const auto& c : list) {
    if (c.at("id") == "receiver-r1") EXPECT_EQ(c.at("events_total"), 42);
    else {
      EXPECT_EQ(c.at("id"), "piper-box");
      EXPECT_EQ(c.at("events_total"), 7);
      EXPECT_GT(c.at("last_seen").as_string().size(), 0u);  // stamped by control
    }
  }
  auto history = h.call("GET", "/api/v1/health/receiver-r1", "", sys).json().at("history").as_array();
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].at("events_total"), 42);
}

}  // namespace
}  // namespace bf::control
