// `bytefreezer ask`: locally with --config (accounts[].ai from the file) and
// remotely with --url/--key, against a scripted local LLM server.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>

#include "common/catalog.h"
#include "common/ulid.h"
#include "fixtures/fake_llm_server.h"
#include "fixtures/lake.h"
#include "fixtures/process.h"
#include "query/query_service.h"
#include "storage/local_store.h"

namespace fs = std::filesystem;
using bf::test::run_command;

namespace {

const std::string kQueryKey = "ask-cli-query-key-0123456789";

class AskCli : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-ask-cli-" + bf::new_ulid());
  std::shared_ptr<bf::LocalStore> store;
  bf::test::FakeLlmServer llm;
  std::string cfg;

  void SetUp() override {
    fs::create_directories(dir);
    store = std::make_shared<bf::LocalStore>(dir / "s");
    bf::test::write_part(store, bf::DatasetRef{"acme", "web", "logs"},
                         "SELECT range AS n, 'cli-unique-value-881' AS tag FROM range(7)", 7);
    cfg = (dir / "bf.yaml").string();
    std::ofstream(cfg) << "storage: {type: local, path: " << (dir / "s").string() << "}\n"
                       << "accounts:\n"
                       << "  - id: acme\n"
                       << "    ai: {provider: openai, endpoint: " << llm.openai_endpoint()
                       << ", model: cli-model, api_key: sk-cli-secret-key-77, timeout: 5s}\n"
                       << "    tenants: [{id: web, query_keys: [" << kQueryKey << "], datasets: [{id: logs}]}]\n"
                       << "  - id: other\n"
                       << "    tenants: [{id: ops, datasets: [{id: logs}]}]\n";
    llm.script({{R"({"sql": "SELECT count(*) AS total FROM events", "explanation": "Counts every event."})"}});
  }
  void TearDown() override { fs::remove_all(dir); }
  std::pair<int, std::string> bf(const std::string& args) { return run_command(std::string(BF_BINARY) + " " + args); }
};

TEST_F(AskCli, LocalPrintsTheSqlTheExplanationAndTheTable) {
  auto [code, out] = bf("ask --config " + cfg + " -d web/logs 'how many events are there?'");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("SELECT count(*) AS total FROM events"), std::string::npos) << out;
  EXPECT_NE(out.find("Counts every event."), std::string::npos) << out;
  EXPECT_NE(out.find("total"), std::string::npos) << out;
  EXPECT_NE(out.find("7"), std::string::npos) << out;
  auto reqs = llm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].header("Authorization"), "Bearer sk-cli-secret-key-77");
  EXPECT_NE(reqs[0].body.find("how many events are there?"), std::string::npos);
  EXPECT_EQ(reqs[0].body.find("cli-unique-value-881"), std::string::npos);
  EXPECT_EQ(out.find("sk-cli-secret-key-77"), std::string::npos);
}

TEST_F(AskCli, LocalWithoutAnAiSectionNamesTheAccount) {
  auto [code, out] = bf("ask --config " + cfg + " -d ops/logs 'how many?'");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("no AI provider configured for account 'other'"), std::string::npos) << out;
  EXPECT_TRUE(llm.requests().empty());
}

TEST_F(AskCli, RemoteAsksARunningQueryServer) {
  auto catalog = std::make_shared<bf::Catalog>();
  catalog->add_dataset(bf::DatasetInfo{bf::DatasetRef{"acme", "web", "logs"}, {}});
  catalog->add_query_key(kQueryKey, bf::KeyGrant{"acme", "web"});
  bf::AiConfig ai;
  ai.provider = "anthropic";
  ai.endpoint = llm.anthropic_endpoint();
  ai.model = "claude-cli";
  catalog->set_ai_config("acme", ai);
  bf::QueryOptions o;
  o.http.listen = "127.0.0.1:0";
  o.temp_dir = (dir / "qtmp").string();
  bf::QueryService service(o, catalog, store);
  service.start();
  const std::string url = "http://127.0.0.1:" + std::to_string(service.port());
  auto [code, out] = bf("ask --url " + url + " --key " + kQueryKey + " -d web/logs 'how many events?'");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("SELECT count(*) AS total FROM events"), std::string::npos) << out;
  EXPECT_NE(out.find("Counts every event."), std::string::npos) << out;
  EXPECT_NE(out.find("7"), std::string::npos) << out;
  auto [jcode, json] = bf("ask --url " + url + " --key " + kQueryKey + " --format json -d web/logs 'how many events?'");
  EXPECT_EQ(jcode, 0) << json;
  auto doc = boost::json::parse(json).as_object();
  EXPECT_EQ(doc.at("rows").at(0).at("total").to_number<int64_t>(), 7);
  EXPECT_EQ(doc.at("model").as_string(), "claude-cli");
  auto [bad, err] = bf("ask --url " + url + " --key wrong-key-wrong-key-x -d web/logs 'how many events?'");
  EXPECT_EQ(bad, 1);
  EXPECT_NE(err.find("401"), std::string::npos) << err;
  EXPECT_EQ(llm.requests().size(), 2u);
  EXPECT_EQ(llm.requests()[0].target, "/v1/messages");
}

}  // namespace
