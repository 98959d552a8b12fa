// The MCP endpoint (POST /api/v1/mcp, docs/mcp.md) with the official TypeScript SDK
// client (tests/servers/mcp_client.mjs) against a query service on a real lake:
// every tool, a refused hostile query, a wrong key, another tenant's dataset; and
// the transport rules (Origin, protocol version header, JSON-RPC errors, GET 405)
// with plain HTTP requests.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>

#include "common/catalog.h"
#include "common/metrics.h"
#include "common/ulid.h"
#include "fixtures/fake_llm_server.h"
#include "fixtures/lake.h"
#include "fixtures/process.h"
#include "net/http_client.h"
#include "query/mcp/mcp_server.h"
#include "query/query_service.h"
#include "storage/local_store.h"

namespace fs = std::filesystem;
using namespace bf;
namespace json = boost::json;

namespace {

const std::string kKey = "mcp-test-query-key-0123456789";
const std::string kOtherKey = "mcp-test-other-tenant-key-42";
const std::string kSecretValue = "db-tenant-secret-value-5521";

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class QueryMcpTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-mcp-" + new_ulid());
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(dir / "lake");
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  test::FakeLlmServer llm;
  std::unique_ptr<QueryService> service;
  HttpClient http{[] {
    HttpClientOptions o;
    o.max_retries = 0;
    return o;
  }()};

  void SetUp() override {
    const DatasetRef web{"acme", "web", "logs"}, db{"acme", "db", "secrets"}, empty{"acme", "web", "empty"};
    for (const auto& r : {web, db, empty}) catalog->add_dataset(DatasetInfo{r, {}});
    catalog->add_query_key(kKey, KeyGrant{"acme", "web"});
    catalog->add_query_key(kOtherKey, KeyGrant{"acme", "db"});
    test::write_part(store, web,
                     "SELECT range AS n, CASE WHEN range % 3 = 0 THEN 'error' ELSE 'info' END AS level, "
                     "TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (range) MINUTE AS _time FROM range(30)",
                     30);
    test::write_part(store, db, "SELECT '" + kSecretValue + "' AS secret FROM range(3)", 3);
    AiConfig ai;
    ai.provider = "openai";
    ai.endpoint = llm.openai_endpoint();
    ai.model = "mcp-model";
    ai.timeout = std::chrono::milliseconds(5000);
    catalog->set_ai_config("acme", ai);
    QueryOptions o;
    o.http.listen = "127.0.0.1:0";
    o.max_rows = 20;
    o.temp_dir = (dir / "tmp").string();
    o.mcp_allowed_origins = {"https://agents.example.com"};
    service = std::make_unique<QueryService>(o, catalog, store);
    service->start();
  }
  void TearDown() override {
    service.reset();
    fs::remove_all(dir);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/mcp"; }

  // Runs the SDK client; returns its JSON output (or fails the test).
  json::object sdk(const std::string& key, const json::array& calls, int expect_exit = 0) {
    const std::string script = std::string(BF_SOURCE_DIR) + "/tests/servers/mcp_client.mjs";
    auto [code, out] = test::run_command("node " + shell_quote(script) + " " + shell_quote(url()) + " " +
                                         shell_quote(key) + " " + shell_quote(json::serialize(calls)));
    EXPECT_EQ(code, expect_exit) << out;
    const size_t line = out.rfind("\n{", out.size() >= 2 ? out.size() - 2 : 0);
    const std::string last = out.substr(line == std::string::npos ? 0 : line + 1);
    boost::system::error_code ec;
    auto doc = json::parse(last, ec);
    if (ec || !doc.is_object()) {
      ADD_FAILURE() << "client output is not JSON: " << out;
      return {};
    }
    return doc.as_object();
  }

  static std::string text_of(const json::value& result) {
    const auto& content = result.at("content").as_array();
    if (content.empty()) return "";
    return std::string(content.at(0).at("text").as_string());
  }
  static bool is_error(const json::value& result) {
    auto* e = result.as_object().if_contains("isError");
    return e && e->is_bool() && e->get_bool();
  }

  HttpResult post(const std::string& body, Headers extra = {}) {
    Headers h{{"Authorization", "Bearer " + kKey},
              {"Content-Type", "application/json"},
              {"Accept", "application/json, text/event-stream"}};
    for (auto& [k, v] : extra) h[k] = v;
    return http.send("POST", url(), h, body);
  }
};

TEST_F(QueryMcpTest, SdkClientListsToolsAndCallsEachAgainstTheLake) {
  llm.script({{R"({"sql": "SELECT count(*) AS errors FROM events WHERE level = 'error'", "explanation": "Counts error events."})"}});
  json::array calls{
      json::object{{"name", "list_datasets"}},
      json::object{{"name", "describe_dataset"}, {"arguments", {{"dataset", "logs"}}}},
      json::object{{"name", "query"},
                   {"arguments", {{"dataset", "logs"}, {"sql", "SELECT level, count(*) AS n FROM events GROUP BY level ORDER BY level"}}}},
      json::object{{"name", "query"}, {"arguments", {{"dataset", "web/logs"}, {"sql", "SELECT n FROM logs ORDER BY n"}}}},
      json::object{{"name", "query"},
                   {"arguments",
                    {{"dataset", "logs"},
                     {"sql", "SELECT count(*) AS c FROM events"},
                     {"from", "2026-01-01T00:10:00Z"},
                     {"to", "2026-01-01T00:20:00Z"}}}},
      json::object{{"name", "ask"}, {"arguments", {{"dataset", "logs"}, {"question", "how many errors?"}}}},
  };
  json::object out = sdk(kKey, calls);
  ASSERT_FALSE(out.empty());
  // The SDK negotiated its newest revision, which we speak; no session is issued.
  EXPECT_EQ(out.at("protocolVersion"), json::value(mcp::supported_protocol_versions().front()));
  EXPECT_TRUE(out.at("sessionId").is_null());
  EXPECT_EQ(out.at("server").at("name"), "bytefreezer-query");
  EXPECT_TRUE(out.at("capabilities").as_object().contains("tools"));
  EXPECT_EQ(json::serialize(out.at("tools")), R"(["list_datasets","describe_dataset","query","ask"])");
  const auto& results = out.at("results").as_array();
  ASSERT_EQ(results.size(), calls.size());
  for (const auto& r : results) EXPECT_FALSE(is_error(r)) << json::serialize(r);

  // list_datasets: the key's tenant only, with parts and rows.
  auto datasets = json::parse(text_of(results[0])).as_array();
  ASSERT_EQ(datasets.size(), 2u) << text_of(results[0]);
  EXPECT_EQ(datasets[0].at("dataset"), "logs");
  EXPECT_EQ(datasets[0].at("parts").to_number<int64_t>(), 1);
  EXPECT_EQ(datasets[0].at("rows").to_number<int64_t>(), 30);
  EXPECT_EQ(datasets[1].at("dataset"), "empty");
  EXPECT_EQ(datasets[1].at("parts").to_number<int64_t>(), 0);
  EXPECT_EQ(text_of(results[0]).find("secrets"), std::string::npos);

  // describe_dataset: the columns of the committed parts, partition columns apart.
  auto described = json::parse(text_of(results[1])).as_object();
  EXPECT_EQ(json::serialize(described.at("columns")),
            R"([{"name":"n","type":"BIGINT"},{"name":"level","type":"VARCHAR"},{"name":"_time","type":"TIMESTAMP"}])");
  EXPECT_NE(json::serialize(described.at("partition_columns")).find(R"("name":"hour")"), std::string::npos);
  EXPECT_EQ(json::serialize(described.at("views")), R"(["events","logs"])");

  auto grouped = json::parse(text_of(results[2])).as_object();
  EXPECT_EQ(json::serialize(grouped.at("rows")), R"([{"level":"error","n":10},{"level":"info","n":20}])");
  EXPECT_EQ(grouped.at("truncated"), false);

  // query.max_rows (20) applies and the result says it was cut.
  auto cut = json::parse(text_of(results[3])).as_object();
  EXPECT_EQ(cut.at("row_count").to_number<int64_t>(), 20);
  EXPECT_EQ(cut.at("truncated"), true);
  EXPECT_EQ(cut.at("truncated_reason"), "max_rows");

  auto ranged = json::parse(text_of(results[4])).as_object();
  EXPECT_EQ(json::serialize(ranged.at("rows")), R"([{"c":10}])");

  auto asked = json::parse(text_of(results[5])).as_object();
  EXPECT_EQ(asked.at("sql"), "SELECT count(*) AS errors FROM events WHERE level = 'error'");
  EXPECT_EQ(asked.at("explanation"), "Counts error events.");
  EXPECT_EQ(json::serialize(asked.at("rows")), R"([{"errors":10}])");
}

TEST_F(QueryMcpTest, HostileSqlAndOtherTenantsAreToolErrors) {
  json::array calls{
      json::object{{"name", "query"}, {"arguments", {{"dataset", "logs"}, {"sql", "SELECT * FROM read_text('/etc/passwd')"}}}},
      json::object{{"name", "query"}, {"arguments", {{"dataset", "logs"}, {"sql", "SELECT 1; DROP TABLE x"}}}},
      json::object{{"name", "query"}, {"arguments", {{"dataset", "logs"}, {"sql", "SELECT * FROM duckdb_settings()"}}}},
      json::object{{"name", "query"}, {"arguments", {{"dataset", "db/secrets"}, {"sql", "SELECT * FROM events"}}}},
      json::object{{"name", "describe_dataset"}, {"arguments", {{"dataset", "acme/db/secrets"}}}},
      json::object{{"name", "describe_dataset"}, {"arguments", {{"dataset", "nosuch"}}}},
      json::object{{"name", "query"}, {"arguments", {{"dataset", "logs"}}}},
      json::object{{"name", "no_such_tool"}},
  };
  json::object out = sdk(kKey, calls);
  ASSERT_FALSE(out.empty());
  const auto& r = out.at("results").as_array();
  ASSERT_EQ(r.size(), calls.size());
  for (size_t i = 0; i < 7; ++i) EXPECT_TRUE(is_error(r[i])) << i << ": " << json::serialize(r[i]);
  EXPECT_NE(text_of(r[0]).find("rejected SQL"), std::string::npos) << text_of(r[0]);
  EXPECT_EQ(text_of(r[0]).find("root:"), std::string::npos);
  EXPECT_NE(text_of(r[1]).find("rejected SQL"), std::string::npos) << text_of(r[1]);
  EXPECT_NE(text_of(r[2]).find("rejected SQL"), std::string::npos) << text_of(r[2]);
  // Another tenant's dataset reads exactly like one that does not exist.
  EXPECT_NE(text_of(r[3]).find("no dataset 'db/secrets' visible to this key"), std::string::npos) << text_of(r[3]);
  EXPECT_NE(text_of(r[4]).find("no dataset 'acme/db/secrets' visible to this key"), std::string::npos);
  EXPECT_NE(text_of(r[5]).find("no dataset 'nosuch' visible to this key"), std::string::npos);
  for (const auto& x : r) EXPECT_EQ(json::serialize(x).find(kSecretValue), std::string::npos);
  EXPECT_NE(text_of(r[6]).find("'sql'"), std::string::npos);
  // An unknown tool is a protocol error (invalid params).
  EXPECT_EQ(r[7].at("rpcError").at("code").to_number<int64_t>(), -32602) << json::serialize(r[7]);

  // The other tenant's key sees its own dataset, and not ours.
  json::object other = sdk(kOtherKey, {json::object{{"name", "list_datasets"}},
                                       json::object{{"name", "query"}, {"arguments", {{"dataset", "secrets"}, {"sql", "SELECT count(*) AS c FROM events"}}}},
                                       json::object{{"name", "describe_dataset"}, {"arguments", {{"dataset", "web/logs"}}}}});
  ASSERT_FALSE(other.empty());
  const auto& o = other.at("results").as_array();
  EXPECT_EQ(json::serialize(json::parse(text_of(o[0])).as_array()[0].at("dataset")), R"("secrets")");
  EXPECT_EQ(json::serialize(json::parse(text_of(o[1])).at("rows")), R"([{"c":3}])");
  EXPECT_TRUE(is_error(o[2]));
}

TEST_F(QueryMcpTest, WrongKeyCannotConnect) {
  json::object out = sdk("not-a-valid-key", {}, 2);
  ASSERT_TRUE(out.contains("connectError")) << json::serialize(out);
  EXPECT_EQ(out.at("code"), 401) << json::serialize(out);
  EXPECT_NE(std::string(out.at("connectError").as_string()).find("invalid query key"), std::string::npos);
  auto r = post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", {{"Authorization", "Bearer " + std::string("nope")}});
  EXPECT_EQ(r.status, 401);
  r = post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", {{"Authorization", ""}});
  EXPECT_EQ(r.status, 401);
}

TEST_F(QueryMcpTest, TransportRules) {
  // initialize negotiates: a revision we speak is echoed, an unknown one gets our newest.
  auto r = post(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.count("Mcp-Session-Id"), 0u);
  EXPECT_EQ(json::parse(r.body).at("result").at("protocolVersion"), "2025-06-18");
  r = post(R"({"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"1999-01-01","capabilities":{}}})");
  EXPECT_EQ(json::parse(r.body).at("result").at("protocolVersion"), json::value(mcp::supported_protocol_versions().front()));
  EXPECT_EQ(json::parse(r.body).at("id"), "a");
  // Notifications and client responses: 202, no body.
  r = post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_EQ(r.status, 202);
  EXPECT_TRUE(r.body.empty());
  // Origin: loopback and configured origins pass, others are refused (DNS rebinding).
  r = post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", {{"Origin", "http://localhost:3000"}});
  EXPECT_EQ(r.status, 200) << r.body;
  r = post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", {{"Origin", "https://agents.example.com"}});
  EXPECT_EQ(r.status, 200) << r.body;
  r = post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("not allowed"), std::string::npos);
  EXPECT_FALSE(mcp::origin_allowed("http://localhost.evil.example", {}));
  EXPECT_FALSE(mcp::origin_allowed("http://127.0.0.1.nip.io:8082", {}));
  EXPECT_TRUE(mcp::origin_allowed("http://[::1]:8082", {}));
  // MCP-Protocol-Version: a known one passes, an unknown one is 400.
  r = post(R"({"jsonrpc":"2.0","id":3,"method":"ping"})", {{"MCP-Protocol-Version", "2025-06-18"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"jsonrpc":"2.0","id":3,"result":{}})");
  r = post(R"({"jsonrpc":"2.0","id":3,"method":"ping"})", {{"MCP-Protocol-Version", "1900-01-01"}});
  EXPECT_EQ(r.status, 400);
  // JSON-RPC errors with their codes.
  auto code = [](const HttpResult& res) { return json::parse(res.body).at("error").at("code").to_number<int64_t>(); };
  r = post("{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), -32700);
  r = post(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])");
  EXPECT_EQ(code(r), -32600);
  r = post(R"({"jsonrpc":"1.0","id":1,"method":"ping"})");
  EXPECT_EQ(code(r), -32600);
  r = post(R"({"jsonrpc":"2.0","id":4,"method":"resources/list"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(code(r), -32601);
  r = post(R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"arguments":{}}})");
  EXPECT_EQ(code(r), -32602);
  r = post(R"({"jsonrpc":"2.0","id":6,"method":"tools/list"})", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 415);
  // No SSE stream, no sessions.
  Headers auth{{"Authorization", "Bearer " + kKey}, {"Accept", "text/event-stream"}};
  r = http.send("GET", url(), auth, "");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["Allow"], "POST");
  r = http.send("DELETE", url(), auth, "");
  EXPECT_EQ(r.status, 405);
  EXPECT_GE(metrics().counter("bf_query_mcp_refused_total", "", {{"reason", "origin"}}).value(), 1u);
}

}  // namespace
