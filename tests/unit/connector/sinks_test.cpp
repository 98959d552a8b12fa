// The connector sinks' option tables: what control accepts for a connector's settings
// (and refuses, naming the key), the schema the UI builds its form from, and the
// tables in docs/connectors.md.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <iterator>

#include "common/config.h"
#include "common/options.h"
#include "connector/sinks.h"

namespace bf {
namespace {

namespace json = boost::json;

// "" when the settings (JSON) are accepted, else the error's message.
std::string check(const std::string& sink, const std::string& settings) {
  const SinkFactory* f = find_sink(sink);
  if (!f) return "no sink " + sink;
  try {
    f->validate(ConfigNode::parse(settings, "test"), "sink " + sink);
    return "";
  } catch (const ConfigError& e) {
    return e.what();
  }
}

TEST(Sinks, EveryBuiltInSinkIsRegisteredOnceWithATable) {
  ASSERT_EQ(sink_factories().size(), 3u);
  for (const char* type : {"elasticsearch", "splunk_hec", "webhook"}) {
    const SinkFactory* f = find_sink(type);
    ASSERT_NE(f, nullptr) << type;
    EXPECT_FALSE(f->description.empty());
    EXPECT_NE(f->validate, nullptr);
    bool url_required = false;
    for (const auto& o : f->options) url_required = url_required || (o.name == "url" && o.required);
    EXPECT_TRUE(url_required) << type;
  }
  EXPECT_EQ(find_sink("kafka"), nullptr);
}

TEST(Sinks, MinimalSettingsAreAcceptedAndEachSinksRulesHold) {
  EXPECT_EQ(check("webhook", R"({"url":"https://hooks.example.com/in"})"), "");
  EXPECT_EQ(check("webhook", R"({"url":"http://10.0.0.5:8080/x","method":"PUT","format":"json_array",)"
                             R"("auth_header":"X-Token","auth_env":"HOOK_TOKEN","batch_events":100,"timeout":"5s"})"),
            "");
  EXPECT_EQ(check("splunk_hec", R"({"url":"https://splunk:8088","token_env":"HEC_TOKEN","ack":true})"), "");
  EXPECT_EQ(check("elasticsearch", R"({"url":"https://es:9200","index":"logs-bf","api_key_env":"ES_KEY"})"), "");
  EXPECT_EQ(check("elasticsearch",
                  R"({"url":"https://es:9200","index":"logs","username":"bf","password_env":"ES_PASSWORD"})"),
            "");

  struct Bad {
    std::string sink, settings, says;
  };
  for (const Bad& b : std::vector<Bad>{
           {"webhook", "{}", "url"},
           {"webhook", R"({"url":"hooks.example.com"})", "http://"},
           {"webhook", R"({"url":"https://"})", "host"},
           {"webhook", R"({"url":"https://a b/"})", "spaces"},
           {"webhook", R"({"url":"https://u:p@h/"})", "credentials"},
           {"webhook", R"({"url":"https://h/x?key=1"})", "query"},
           {"webhook", R"({"url":"https://h/","method":"GET"})", "method"},
           {"webhook", R"({"url":"https://h/","auth_env":"Bearer abc.def"})", "environment variable"},
           {"webhook", R"({"url":"https://h/","auth_header":"X Token"})", "header"},
           {"webhook", R"({"url":"https://h/","batch_events":0})", "batch_events"},
           {"webhook", R"({"url":"https://h/","timeout":"2h"})", "timeout"},
           {"webhook", R"({"url":"https://h/","tls":{"ca_file":"/ca.pem","verify":false}})", "verify"},
           {"webhook", R"({"url":"https://h/","headers":{"a":"b"}})", "headers"},
           {"splunk_hec", R"({"url":"https://splunk:8088"})", "token_env"},
           {"splunk_hec", R"({"url":"https://splunk:8088","token_env":"11111111-2222-3333-4444-555555555555"})",
            "environment variable"},
           {"elasticsearch", R"({"url":"https://es:9200"})", "index"},
           {"elasticsearch", R"({"url":"https://es:9200","index":"_system"})", "index"},
           {"elasticsearch", R"({"url":"https://es:9200","index":"a,b"})", "lowercase"},
           {"elasticsearch", R"({"url":"https://es:9200","index":"i","password_env":"P"})", "username"},
           {"elasticsearch", R"({"url":"https://es:9200","index":"i","api_key_env":"K","username":"u","password_env":"P"})",
            "not both"},
       }) {
    const std::string err = check(b.sink, b.settings);
    EXPECT_NE(err.find(b.says), std::string::npos) << b.sink << " " << b.settings << ": '" << err << "'";
    EXPECT_NE(err.find("sink " + b.sink), std::string::npos) << err;  // the error names the sink
  }
}

TEST(Sinks, SchemaDocumentListsTheSinksForTheUisForms) {
  std::vector<PluginSchema> sinks;
  for (const auto& f : sink_factories()) sinks.push_back({f.type, f.description, &f.options});
  const json::value doc = json::parse(plugins_schema_document({}, {}, sinks));
  const json::object& hec = doc.at("sinks").at("splunk_hec").as_object();
  EXPECT_EQ(hec.at("additionalProperties"), false);
  const json::array& required = hec.at("required").as_array();
  EXPECT_NE(std::find(required.begin(), required.end(), json::value("token_env")), required.end());
  EXPECT_EQ(doc.at("sinks").at("webhook").at("properties").at("format").at("enum"),
            json::parse(R"(["ndjson","json_array"])"));
  EXPECT_TRUE(doc.at("sinks").at("elasticsearch").at("properties").at("tls").is_object());
}

// docs/connectors.md's tables are what scripts/update-option-docs.sh makes of the code.
TEST(Sinks, DocsTablesMatchTheCode) {
  std::ifstream in(std::string(BF_SOURCE_DIR) + "/docs/connectors.md", std::ios::binary);
  ASSERT_TRUE(in.good());
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t blocks = 0;
  const std::string updated = update_option_tables(doc, [&](const std::string& kind) -> const OptionSpecs* {
    ++blocks;
    const SinkFactory* f = find_sink(kind);
    return f ? &f->options : nullptr;
  });
  EXPECT_EQ(blocks, sink_factories().size()) << "every sink has one generated table";
  EXPECT_TRUE(updated == doc) << "docs/connectors.md's option tables differ from the code: run scripts/update-option-docs.sh";
}

}  // namespace
}  // namespace bf
