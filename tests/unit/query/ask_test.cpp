// POST /api/v1/query/ask against a scripted local LLM server speaking the
// OpenAI chat-completions and Anthropic Messages formats (fixtures/fake_llm_server.h).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/ulid.h"
#include "fixtures/fake_llm_server.h"
#include "fixtures/lake.h"
#include "net/http_client.h"
#include "query/nl/ask_service.h"
#include "query/nl/prompt.h"
#include "query/query_service.h"
#include "storage/layout.h"
#include "storage/local_store.h"

using namespace bf;
namespace fs = std::filesystem;

namespace {

const std::string kKey = "ask-test-query-key-0123456789";
const std::string kApiKey = "sk-test-SECRET-api-key-4242";
// Event values that must never reach the model unless share_sample_values is on.
const std::string kUniqueHost = "host-unique-93517";
const std::string kOtherTenantValue = "db-secret-value-5521";

// Records which keys are read, to show that refused SQL read nothing.
class RecordingStore final : public ObjectStore {
 public:
  explicit RecordingStore(std::shared_ptr<ObjectStore> inner) : inner_(std::move(inner)) {}
  void put(const std::string& k, std::string_view d) override { inner_->put(k, d); }
  void put_file(const std::string& k, const fs::path& f) override { inner_->put_file(k, f); }
  void create_if_absent(const std::string& k, std::string_view d) override { inner_->create_if_absent(k, d); }
  std::string get(const std::string& k, std::optional<ByteRange> r) override {
    note(k);
    return inner_->get(k, r);
  }
  std::optional<ObjectInfo> head(const std::string& k) override {
    note(k);
    return inner_->head(k);
  }
  ListPage list(const std::string& p, const std::string& t, int m) override {
    note(p);
    return inner_->list(p, t, m);
  }
  void remove(const std::string& k) override { inner_->remove(k); }
  std::string describe() const override { return "recording:" + inner_->describe(); }
  std::vector<std::string> touched() {
    std::lock_guard lock(mu_);
    return touched_;
  }
  void clear() {
    std::lock_guard lock(mu_);
    touched_.clear();
  }

 private:
  void note(const std::string& k) {
    std::lock_guard lock(mu_);
    touched_.push_back(k);
  }
  std::shared_ptr<ObjectStore> inner_;
  std::mutex mu_;
  std::vector<std::string> touched_;
};

std::string answer_json(const std::string& sql, const std::string& explanation = "Explained.") {
  return boost::json::serialize(boost::json::object{{"sql", sql}, {"explanation", explanation}});
}

class AskTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-ask-" + new_ulid());
  std::shared_ptr<LocalStore> local = std::make_shared<LocalStore>(dir);
  std::shared_ptr<RecordingStore> store = std::make_shared<RecordingStore>(local);
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  DatasetRef web{"acme", "web", "logs"};
  DatasetRef db{"acme", "db", "logs"};
  test::FakeLlmServer llm;
  std::unique_ptr<QueryService> service;
  HttpClient http;

  void SetUp() override {
    catalog->add_dataset(DatasetInfo{web, {}});
    catalog->add_dataset(DatasetInfo{db, {}});
    catalog->add_dataset(DatasetInfo{DatasetRef{"noai", "ops", "logs"}, {}});
    catalog->add_query_key(kKey, KeyGrant{"acme", "web"});
    catalog->add_query_key("ask-test-noai-key-0123456789", KeyGrant{"noai", "ops"});
    test::write_part(local, web,
                     "SELECT range AS n, CASE WHEN range % 2 = 0 THEN 'info' ELSE 'error' END AS level, '" + kUniqueHost +
                         "' AS host, TIMESTAMP '2026-01-01 00:00:00' + range * INTERVAL 1 MINUTE AS _time FROM range(25)",
                     25);
    test::write_part(local, db, "SELECT range AS n, '" + kOtherTenantValue + "' AS level FROM range(5)", 5);
    // The schema registry, as the packer writes it.
    local->put(schema_key(web), R"({"version":1,"columns":[
      {"name":"n","type":"BIGINT","added_in_version":1},{"name":"level","type":"VARCHAR","added_in_version":1},
      {"name":"host","type":"VARCHAR","added_in_version":1},{"name":"_time","type":"TIMESTAMP","added_in_version":1}]})");
    use_ai("openai");
    QueryOptions o;
    o.http.listen = "127.0.0.1:0";
    o.temp_dir = (dir / "query-tmp").string();
    service = std::make_unique<QueryService>(o, catalog, store);
    service->start();
  }
  void TearDown() override {
    service.reset();
    fs::remove_all(dir);
  }

  AiConfig& use_ai(const std::string& provider) {
    AiConfig c;
    c.provider = provider;
    c.endpoint = provider == "openai" ? llm.openai_endpoint() : llm.anthropic_endpoint();
    c.model = provider == "openai" ? "gpt-test" : "claude-test";
    c.api_key = kApiKey;
    c.timeout = std::chrono::milliseconds(5000);
    catalog->set_ai_config("acme", c);
    return const_cast<AiConfig&>(*catalog->ai_config("acme"));
  }

  HttpResult ask(const std::string& question, const std::string& dataset = "web/logs", const std::string& key = kKey) {
    boost::json::object body{{"question", question}, {"dataset", dataset}};
    Headers h{{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
    return http.send("POST", "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/query/ask", h,
                     boost::json::serialize(body));
  }
  static boost::json::object doc(const HttpResult& r) { return boost::json::parse(r.body).as_object(); }
  static std::string str(const boost::json::value& v) { return std::string(v.as_string()); }
  static bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }
};

TEST_F(AskTest, OpenAiGoodAnswerRunsTheQueryAndSendsOnlyTheSchema) {
  llm.script({{answer_json("SELECT level, count(*) AS n FROM events GROUP BY level ORDER BY level", "Counts by level.")}});
  auto r = ask("How many events per level?");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = doc(r);
  EXPECT_EQ(str(d.at("sql")), "SELECT level, count(*) AS n FROM events GROUP BY level ORDER BY level");
  EXPECT_EQ(str(d.at("explanation")), "Counts by level.");
  EXPECT_EQ(str(d.at("model")), "gpt-test");
  EXPECT_EQ(d.at("row_count").as_int64(), 2);
  EXPECT_EQ(str(d.at("rows").at(0).at("level")), "error");
  EXPECT_EQ(d.at("rows").at(0).at("n").to_number<int64_t>(), 12);
  EXPECT_EQ(d.at("rows").at(1).at("n").to_number<int64_t>(), 13);
  EXPECT_EQ(str(d.at("columns").at(1).at("name")), "n");
  EXPECT_EQ(d.at("truncated").as_bool(), false);
  EXPECT_EQ(d.at("attempts").as_int64(), 1);
  EXPECT_EQ(d.at("sample_values_shared").as_bool(), false);

  auto reqs = llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/v1/chat/completions");
  EXPECT_EQ(reqs[0].header("Authorization"), "Bearer " + kApiKey);
  EXPECT_EQ(reqs[0].header("x-api-key"), "");
  auto body = boost::json::parse(reqs[0].body).as_object();
  EXPECT_EQ(str(body.at("model")), "gpt-test");
  const auto& msgs = body.at("messages").as_array();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(str(msgs[0].at("role")), "system");
  const std::string system = str(msgs[0].at("content"));
  EXPECT_TRUE(has(system, "level VARCHAR")) << system;
  EXPECT_TRUE(has(system, "host VARCHAR"));
  EXPECT_TRUE(has(system, "_time TIMESTAMP"));
  EXPECT_TRUE(has(system, "hour VARCHAR"));  // partition columns
  EXPECT_TRUE(has(system, "`events`"));
  EXPECT_TRUE(has(system, "date_trunc('hour', _time)"));  // worked examples
  EXPECT_EQ(str(msgs[1].at("role")), "user");
  EXPECT_EQ(str(msgs[1].at("content")), "How many events per level?");
  // No event value left the system.
  EXPECT_FALSE(has(reqs[0].body, kUniqueHost));
  EXPECT_FALSE(has(reqs[0].body, kOtherTenantValue));
}

TEST_F(AskTest, AnthropicRequestCarriesKeyAndVersionAndAcceptsASqlFence) {
  use_ai("anthropic");
  llm.script({{"Here is the query:\n```sql\nSELECT count(*) AS c FROM events WHERE level = 'info';\n```\nIt counts info events."}});
  auto r = ask("How many info events?");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = doc(r);
  EXPECT_EQ(str(d.at("sql")), "SELECT count(*) AS c FROM events WHERE level = 'info'");
  EXPECT_TRUE(has(str(d.at("explanation")), "It counts info events.")) << d.at("explanation");
  EXPECT_EQ(d.at("rows").at(0).at("c").to_number<int64_t>(), 13);
  EXPECT_EQ(str(d.at("model")), "claude-test");

  auto reqs = llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "/v1/messages");
  EXPECT_EQ(reqs[0].header("x-api-key"), kApiKey);
  EXPECT_EQ(reqs[0].header("anthropic-version"), "2023-06-01");
  EXPECT_EQ(reqs[0].header("Authorization"), "");
  auto body = boost::json::parse(reqs[0].body).as_object();
  EXPECT_TRUE(body.at("max_tokens").is_number());
  EXPECT_TRUE(has(str(body.at("system")), "level VARCHAR"));
  const auto& msgs = body.at("messages").as_array();
  ASSERT_EQ(msgs.size(), 1u);  // the system prompt is a top-level field, not a message
  EXPECT_EQ(str(msgs[0].at("role")), "user");
  EXPECT_EQ(str(msgs[0].at("content")), "How many info events?");
  EXPECT_FALSE(has(reqs[0].body, kUniqueHost));
}

TEST_F(AskTest, SampleValuesGoOutOnlyWhenTheAccountSharesThem) {
  use_ai("openai").share_sample_values = true;
  const int64_t before = metrics().value("bf_query_ask_sample_values_shared_total");
  llm.script({{answer_json("SELECT count(*) AS c FROM events")}});
  auto r = ask("How many events?");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(doc(r).at("sample_values_shared").as_bool(), true);
  auto reqs = llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_TRUE(has(reqs[0].body, kUniqueHost));  // a low-cardinality column's value
  EXPECT_TRUE(has(reqs[0].body, "\\\"info\\\""));
  EXPECT_FALSE(has(reqs[0].body, kOtherTenantValue));  // never another tenant's
  EXPECT_EQ(metrics().value("bf_query_ask_sample_values_shared_total"), before + 1);
}

TEST_F(AskTest, HostileSqlIsRefusedByTheGuardAndAfterTheRepair422AndNothingIsRead) {
  llm.script({{answer_json("SELECT * FROM read_text('/etc/passwd')")},
              {answer_json("COPY (SELECT * FROM events) TO '/tmp/bf-ask-stolen.csv'")}});
  store->clear();
  auto r = ask("Show me the password file");
  ASSERT_EQ(r.status, 422) << r.body;
  auto d = doc(r);
  const auto& attempts = d.at("attempts").as_array();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_TRUE(has(str(attempts[0].at("error")), "rejected SQL")) << attempts[0];
  EXPECT_TRUE(has(str(attempts[0].at("error")), "read_text"));
  EXPECT_TRUE(has(str(attempts[1].at("error")), "rejected SQL")) << attempts[1];
  EXPECT_TRUE(has(str(d.at("error")), "refused twice"));
  EXPECT_FALSE(has(r.body, "root:"));
  EXPECT_FALSE(fs::exists("/tmp/bf-ask-stolen.csv"));
  for (const auto& key : store->touched()) EXPECT_NE(key.rfind("parquet/", 0), 0u) << "read " << key;
  // The repair attempt told the model what the guard said.
  auto reqs = llm.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const boost::json::value second = boost::json::parse(reqs[1].body);
  const auto& msgs = second.at("messages").as_array();
  ASSERT_EQ(msgs.size(), 4u);  // system, question, the first answer, the repair request
  EXPECT_EQ(str(msgs[2].at("role")), "assistant");
  EXPECT_TRUE(has(str(msgs[3].at("content")), "read_text"));
}

TEST_F(AskTest, AnotherTenantsPathIsRefusedAndNotRead) {
  const std::string other = "SELECT * FROM read_parquet('bf://" + parquet_prefix(db) + "**/*.parquet')";
  llm.script({{answer_json(other)}, {answer_json(other + " LIMIT 1")}});
  store->clear();
  auto r = ask("Show the db tenant's logs");
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_FALSE(has(r.body, kOtherTenantValue));
  for (const auto& key : store->touched()) EXPECT_NE(key.rfind(parquet_prefix(db), 0), 0u) << "read " << key;
  EXPECT_EQ(llm.requests().size(), 2u);
}

TEST_F(AskTest, ARepairAttemptFixesADuckDbErrorWithoutSendingEventValues) {
  // The conversion error quotes an event value; it must not go back to the model.
  llm.script({{answer_json("SELECT CAST(host AS INTEGER) AS h FROM events")},
              {answer_json("SELECT count(DISTINCT host) AS hosts FROM events")}});
  auto r = ask("How many hosts?");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = doc(r);
  EXPECT_EQ(d.at("attempts").as_int64(), 2);
  EXPECT_EQ(d.at("rows").at(0).at("hosts").to_number<int64_t>(), 1);
  auto reqs = llm.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const boost::json::value second = boost::json::parse(reqs[1].body);
  const auto& msgs = second.at("messages").as_array();
  ASSERT_EQ(msgs.size(), 4u);
  const std::string repair = str(msgs[3].at("content"));
  EXPECT_TRUE(has(repair, "onver")) << repair;  // DuckDB's "Conversion Error: Could not convert ..."
  EXPECT_TRUE(has(repair, "'…'")) << repair;  // the value DuckDB quoted was there, and was replaced
  EXPECT_FALSE(has(reqs[1].body, kUniqueHost)) << repair;
}

TEST_F(AskTest, MalformedAnswersAre502NamingTheProvider) {
  const std::vector<test::LlmReply> cases{
      {"I am sorry, I cannot help with that."},                    // not JSON, no sql block
      {""},                                                        // empty content
      {R"({"explanation": "forgot the sql"})"},                    // missing field
      {R"({"sql": 42, "explanation": "wrong type"})"},             // sql not a string
      {"", 200, "", std::string("this is not json")},              // provider body not JSON
      {"", 200, "", std::string(R"({"choices": []})")},            // no choices[0]
      {"", 200, "", std::string(R"({"choices": [{"message": {}}]})")},  // no content
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    llm.script({cases[i]});
    auto r = ask("count events");
    EXPECT_EQ(r.status, 502) << "case " << i << ": " << r.body;
    EXPECT_TRUE(has(r.body, "openai (" + llm.openai_endpoint())) << "case " << i << ": " << r.body;
  }
  use_ai("anthropic");
  llm.script({{"", 200, "", std::string(R"({"type":"message","content":[]})")}});
  auto r = ask("count events");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_TRUE(has(r.body, "anthropic (")) << r.body;
  EXPECT_TRUE(has(r.body, "empty")) << r.body;
}

TEST_F(AskTest, ASlowProviderIs504AtTheTimeout) {
  use_ai("openai").timeout = std::chrono::milliseconds(300);
  llm.script({{answer_json("SELECT 1"), 200, "", std::nullopt, 1500}});
  const auto start = std::chrono::steady_clock::now();
  auto r = ask("count events");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_TRUE(has(r.body, "300 ms")) << r.body;
  EXPECT_LT(took, std::chrono::milliseconds(1400));
}

TEST_F(AskTest, ProviderErrorsAre502AndNeverCarryTheKey) {
  for (int status : {401, 403}) {
    llm.script({{"", status, "Incorrect API key provided: " + kApiKey}});
    auto r = ask("count events");
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_TRUE(has(r.body, "the AI provider refused the key")) << r.body;
    EXPECT_FALSE(has(r.body, kApiKey)) << r.body;
  }
  llm.script({{"", 429, "Rate limit reached for key " + kApiKey}});
  auto r = ask("count events");
  EXPECT_EQ(r.status, 502);
  EXPECT_TRUE(has(r.body, "Rate limit reached")) << r.body;
  EXPECT_TRUE(has(r.body, "429")) << r.body;
  EXPECT_FALSE(has(r.body, kApiKey)) << r.body;
  use_ai("anthropic");
  llm.script({{"", 529, "Overloaded"}});
  r = ask("count events");
  EXPECT_EQ(r.status, 502);
  EXPECT_TRUE(has(r.body, "Overloaded")) << r.body;
}

TEST_F(AskTest, NoProviderAuthAndScope) {
  auto r = ask("count events", "ops/logs", "ask-test-noai-key-0123456789");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_TRUE(has(r.body, "no AI provider configured for account 'noai'")) << r.body;
  EXPECT_EQ(ask("count events", "web/logs", "wrong-key-wrong-key-wrong").status, 401);
  EXPECT_EQ(ask("count events", "db/logs").status, 403);
  EXPECT_EQ(ask("count events", "web/nope").status, 404);
  EXPECT_EQ(ask("   ").status, 400);
  EXPECT_TRUE(llm.requests().empty());  // none of these reached the model
}

// GET /api/v1/query/ask tells a browser whether to offer questions at all (the UI's
// tab), for the key's account only, with CORS as POST; the provider's key and
// endpoint never leave the server.
TEST_F(AskTest, StatusSaysWhetherTheKeysAccountHasAProvider) {
  const std::string url = "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/query/ask";
  auto r = http.send("GET", url, {{"Authorization", "Bearer " + kKey}, {"Origin", "http://127.0.0.1:8090"}}, "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(doc(r), (boost::json::object{{"configured", true}, {"provider", "openai"}, {"model", "gpt-test"}}));
  EXPECT_FALSE(has(r.body, kApiKey));
  EXPECT_FALSE(has(r.body, llm.openai_endpoint()));
  EXPECT_EQ(r.headers["Access-Control-Allow-Origin"], "http://127.0.0.1:8090");
  r = http.send("GET", url, {{"Authorization", "Bearer ask-test-noai-key-0123456789"}}, "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(doc(r), (boost::json::object{{"configured", false}}));
  EXPECT_EQ(http.send("GET", url, {{"Authorization", "Bearer wrong-key-wrong-key-wrong"}}, "").status, 401);
  EXPECT_EQ(http.send("GET", url, {}, "").status, 401);
  // The browser's preflight for the POST.
  r = http.send("OPTIONS", url, {{"Origin", "http://127.0.0.1:8090"}, {"Access-Control-Request-Method", "POST"}}, "");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.headers["Access-Control-Allow-Methods"], "GET, POST");
  // A POST from an allowed page carries the header too (here an error answer).
  r = http.send("POST", url, {{"Authorization", "Bearer " + kKey}, {"Origin", "http://127.0.0.1:8090"}, {"Content-Type", "application/json"}}, "{}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.headers["Access-Control-Allow-Origin"], "http://127.0.0.1:8090");
  EXPECT_TRUE(llm.requests().empty());
}

TEST_F(AskTest, AskServiceWorksWithoutHttpAndFallsBackToDescribe) {
  local->remove(schema_key(web));  // no registry: the columns come from DESCRIBE
  llm.script({{answer_json("SELECT max(n) AS m FROM logs")}});
  nl::AskService asker(*service, store, 1 << 20);
  auto out = asker.ask("acme/web/logs", "largest n?");
  ASSERT_EQ(out.outcome.result.rows.size(), 1u);
  EXPECT_EQ(out.outcome.result.rows[0][0], "24");
  auto reqs = llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_TRUE(has(reqs[0].body, "level VARCHAR")) << reqs[0].body;
  EXPECT_FALSE(has(reqs[0].body, kUniqueHost));
}

// The worked examples teach the model SQL that this service accepts and runs.
TEST_F(AskTest, ThePromptsExamplesPassTheGuardAndRun) {
  const std::string prompt =
      nl::build_system_prompt({web.str(), web.dataset, {{"level", "VARCHAR"}, {"_time", "TIMESTAMP"}}}, {});
  size_t examples = 0;
  for (size_t at = prompt.find("Answer: "); at != std::string::npos; at = prompt.find("Answer: ", at + 1)) {
    const std::string line = prompt.substr(at + 8, prompt.find('\n', at) - at - 8);
    std::string why;
    auto a = nl::parse_model_answer(line, &why);
    ASSERT_TRUE(a) << why << ": " << line;
    EXPECT_NO_THROW(service->run("web/logs", a->sql)) << a->sql;
    ++examples;
  }
  EXPECT_EQ(examples, 3u);
  EXPECT_NE(prompt.find("level, count(*)"), std::string::npos) << prompt;  // top-N uses a real column
}

TEST(AskConfig, AccountsAiSectionIsParsedStrictly) {
  ::setenv("BF_ASK_TEST_KEY", "key-from-env-123", 1);
  auto root = ConfigNode::parse(R"(
accounts:
  - id: acme
    ai: {provider: anthropic, endpoint: "https://api.example.test/", model: m1, api_key_env: BF_ASK_TEST_KEY,
         timeout: 5s, share_sample_values: true}
    tenants: [{id: web, datasets: [{id: logs}]}]
  - id: plain
    tenants: [{id: web2}]
)", "test.yaml");
  Catalog c = Catalog::parse(root);
  root.check_unknown();
  const AiConfig* ai = c.ai_config("acme");
  ASSERT_NE(ai, nullptr);
  EXPECT_EQ(ai->provider, "anthropic");
  EXPECT_EQ(ai->endpoint, "https://api.example.test");
  EXPECT_EQ(ai->model, "m1");
  EXPECT_EQ(ai->api_key, "key-from-env-123");
  EXPECT_EQ(ai->timeout, std::chrono::milliseconds(5000));
  EXPECT_TRUE(ai->share_sample_values);
  EXPECT_EQ(c.ai_config("plain"), nullptr);

  auto error_of = [](const std::string& ai_yaml) -> std::string {
    try {
      auto r = ConfigNode::parse("accounts:\n  - id: a\n    ai: " + ai_yaml + "\n", "test.yaml");
      Catalog::parse(r);
      r.check_unknown();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("{provider: openai, endpoint: http://x/v1, model: m, modle: typo}").find("modle"), std::string::npos);
  EXPECT_NE(error_of("{provider: gemini, endpoint: http://x, model: m}").find("gemini"), std::string::npos);
  EXPECT_NE(error_of("{provider: openai, endpoint: ftp://x, model: m}").find("endpoint"), std::string::npos);
  EXPECT_NE(error_of("{provider: openai, endpoint: http://x, model: m, api_key_env: BF_ASK_UNSET_VAR}").find("BF_ASK_UNSET_VAR"),
            std::string::npos);
  EXPECT_NE(error_of("{provider: openai, endpoint: http://x, model: m, api_key: k, api_key_env: BF_ASK_TEST_KEY}").find("not both"),
            std::string::npos);
  EXPECT_EQ(error_of("{provider: openai, endpoint: http://127.0.0.1:11434/v1, model: llama3}"), "");  // no key: local model
}

TEST(AskPrompt, ModelAnswersAreReadFromJsonOrASqlFence) {
  std::string why;
  auto a = nl::parse_model_answer("```json\n{\"sql\": \"SELECT 1;\", \"explanation\": \"one\"}\n```", &why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->sql, "SELECT 1");
  EXPECT_EQ(a->explanation, "one");
  a = nl::parse_model_answer("Sure!\n```sql\nSELECT 2\n```", &why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->sql, "SELECT 2");
  EXPECT_EQ(a->explanation, "Sure!");
  EXPECT_FALSE(nl::parse_model_answer("SELECT 3", &why));  // bare text is not accepted
  EXPECT_FALSE(nl::parse_model_answer("{\"sql\": \"\"}", &why));
  EXPECT_NE(why.find("sql"), std::string::npos);
  EXPECT_EQ(nl::strip_values("Could not convert string 'secret' to INT32 near 'abc'", "SELECT 'abc'"),
            "Could not convert string '…' to INT32 near 'abc'");
}

}  // namespace
