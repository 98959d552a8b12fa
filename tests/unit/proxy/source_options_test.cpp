// The sources' option tables: config validation, settings filled from them, the JSON
// Schema of `bytefreezer plugins --schema` and the generated tables in docs/proxy.md.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <fstream>
#include <iterator>
#include <mutex>


#include "common/config.h"
#include "common/options.h"
#include "proxy/source.h"
#include "fixtures/net_helpers.h"
#include "unit/proxy/capturing_sink.h"
#include "unit/proxy/test_util.h"

namespace bf {
namespace {

namespace json = boost::json;

using test::CapturingSink;
using test::make_source;

std::string config_error(const std::string& yaml) {
  CapturingSink sink;
  try {
    make_source(yaml, sink);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(SourceOptions, UnknownKeyNamesSourceKeyAndKnownKeys) {
  const std::string err = config_error("    - type: syslog_tcp\n      name: edge\n      max_mesage: 1KiB\n");
  EXPECT_NE(err.find("test.yaml: proxy.sources[0].max_mesage: unknown key in source syslog_tcp 'edge'"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("max_message"), std::string::npos) << err;  // the known keys are listed
}

TEST(SourceOptions, UnknownKeyInsideNestedGroup) {
  const std::string err = config_error("    - type: http\n      tls:\n        cert: x.pem\n");
  EXPECT_NE(err.find("proxy.sources[0].tls.cert: unknown key in source http"), std::string::npos) << err;
  EXPECT_NE(err.find("cert_file"), std::string::npos) << err;
}

TEST(SourceOptions, WrongTypesAndBoundsNameSourceAndKey) {
  std::string err = config_error("    - type: tcp\n      max_message: lots\n");
  EXPECT_NE(err.find("proxy.sources[0].max_message: expected a size like 64MiB, got 'lots' (source tcp)"),
            std::string::npos)
      << err;
  err = config_error("    - type: sflow\n      name: core\n      workers: 65\n");
  EXPECT_NE(err.find("proxy.sources[0].workers: must be between 1 and 64, got 65 (source sflow 'core')"),
            std::string::npos)
      << err;
  err = config_error("    - type: syslog_udp\n      keep_raw: sometimes\n");
  EXPECT_NE(err.find("keep_raw: expected true or false, got 'sometimes'"), std::string::npos) << err;
  err = config_error("    - type: syslog_tcp\n      framing: octets\n");
  EXPECT_NE(err.find("framing: must be one of 'auto' or 'newline', got 'octets'"), std::string::npos) << err;
  err = config_error("    - type: udp\n      format: xml\n");
  EXPECT_NE(err.find("format: must be one of 'auto', 'json' or 'text', got 'xml'"), std::string::npos) << err;
  err = config_error("    - type: netflow\n      template_wait: 2h\n");
  EXPECT_NE(err.find("template_wait: must be between 0 and 1h, got 2h"), std::string::npos) << err;
  err = config_error("    - type: syslog_udp\n      timezone: Mars/Olympus\n");
  EXPECT_NE(err.find("timezone:"), std::string::npos) << err;
  EXPECT_NE(err.find("Mars/Olympus"), std::string::npos) << err;
  err = config_error("    - type: http\n      tls:\n        cert_file: a.pem\n");
  EXPECT_NE(err.find("proxy.sources[0].tls: set 'tls.cert_file' and 'tls.key_file' together ('tls.cert_file' is "
                     "set, 'tls.key_file' is not) (source http)"),
            std::string::npos)
      << err;
  err = config_error("    - type: http\n      path: events\n");
  EXPECT_NE(err.find("path: must start with '/'"), std::string::npos) << err;
  err = config_error("    - type: tcp\n      tenant: Bad!\n");
  EXPECT_NE(err.find("tenant:"), std::string::npos) << err;
  // A receive ring must hold two of the largest datagrams (or be 0: none).
  err = config_error("    - type: syslog_udp\n      receive_ring: 100KiB\n");
  EXPECT_NE(err.find("receive_ring: must be 0 or at least"), std::string::npos) << err;
  EXPECT_NE(err.find("max_datagram 65535"), std::string::npos) << err;
  EXPECT_EQ(config_error("    - type: syslog_udp\n      receive_ring: 100KiB\n      max_datagram: 2048\n"), "");
  EXPECT_EQ(config_error("    - type: sflow\n      receive_ring: 0\n"), "");
}

TEST(SourceOptions, EverySourceAcceptsItsDefaults) {
  CapturingSink sink;
  for (const auto& f : source_factories()) {
    SCOPED_TRACE(f.type);
    auto source = make_source("    - type: " + f.type + "\n      listen: 127.0.0.1:0\n", sink);
    EXPECT_EQ(source->name(), f.type + ":0");  // the computed default name
  }
}

// The table fills the settings the source runs with: a raw tcp source with
// format: text keeps a JSON line as text, and one with the default (auto) reads it.
TEST(SourceOptions, TableFillsTheSettingsTheSourceUses) {
  for (const std::string format : {"text", "auto"}) {
    SCOPED_TRACE(format);
    CapturingSink sink;
    std::string yaml = "    - type: udp\n      listen: 127.0.0.1:" + std::to_string(test::free_port(SOCK_DGRAM)) + "\n      name: raw\n";
    if (format == "text") yaml += "      format: text\n";
    auto source = make_source(yaml, sink);
    EXPECT_EQ(source->name(), "raw");
    source->start();
    const std::string line = "{\"k\":\"v\"}";
    test::send_udp(source->port(), line);
    const bool seen = sink.wait_events(1);
    source->stop();
    ASSERT_TRUE(seen);
    const json::object ev = json::parse(sink.lines.substr(0, sink.lines.find('\n'))).as_object();
    if (format == "text") {
      EXPECT_EQ(ev.at("message").as_string(), line);
      EXPECT_FALSE(ev.contains("k"));
    } else {
      EXPECT_EQ(ev.at("k").as_string(), "v");
      EXPECT_FALSE(ev.contains("message"));
    }
  }
}

json::object schema_document() {
  std::vector<PluginSchema> sources;
  for (const auto& f : source_factories()) sources.push_back({f.type, f.description, &f.options});
  return json::parse(plugins_schema_document(sources, {})).as_object();
}

TEST(SourceOptions, SchemaHasEverySourceWithTypedProperties) {
  const json::object doc = schema_document();
  const json::object& sources = doc.at("sources").as_object();
  EXPECT_TRUE(doc.at("steps").as_object().empty());
  ASSERT_EQ(sources.size(), source_factories().size());
  for (const auto& f : source_factories()) {
    SCOPED_TRACE(f.type);
    const json::object& s = sources.at(f.type).as_object();
    EXPECT_EQ(s.at("$schema").as_string(), "https://json-schema.org/draft/2020-12/schema");
    EXPECT_EQ(s.at("type").as_string(), "object");
    EXPECT_EQ(s.at("additionalProperties").as_bool(), false);
    EXPECT_EQ(s.at("required").as_array(), json::array{"type"});
    const json::object& props = s.at("properties").as_object();
    EXPECT_EQ(props.at("type").at("enum").as_array(), json::array{json::value(f.type)});
    for (const auto& [key, p] : props) {
      SCOPED_TRACE(std::string(key));
      EXPECT_TRUE(p.as_object().contains("type"));
      EXPECT_FALSE(p.at("description").as_string().empty());
    }
  }
  const json::object& tcp = sources.at("syslog_tcp").at("properties").as_object();
  EXPECT_EQ(tcp.at("framing").at("enum").as_array(), (json::array{"auto", "newline"}));
  EXPECT_EQ(tcp.at("framing").at("default").as_string(), "auto");
  EXPECT_EQ(tcp.at("max_connections").at("type").as_string(), "integer");
  EXPECT_EQ(tcp.at("max_connections").at("default").as_int64(), 1024);
  EXPECT_EQ(tcp.at("max_connections").at("minimum").as_int64(), 1);
  EXPECT_EQ(tcp.at("max_connections").at("maximum").as_int64(), 1000000);
  EXPECT_EQ(tcp.at("max_message").at("default").as_string(), "64KiB");
  EXPECT_EQ(tcp.at("max_message").at("type").as_array(), (json::array{"integer", "string"}));
  EXPECT_EQ(tcp.at("idle_timeout").at("default").as_string(), "10m");
  EXPECT_EQ(tcp.at("keep_raw").at("default").as_bool(), true);
  EXPECT_FALSE(tcp.at("name").as_object().contains("default"));  // computed per source
  const json::object& sflow = sources.at("sflow").at("properties").as_object();
  EXPECT_EQ(sflow.at("max_datagram").at("default").as_int64(), 65535);
  EXPECT_EQ(sflow.at("listen").at("default").as_string(), "0.0.0.0:6343");
  // Nested mappings are nested object schemas.
  const json::object& tls = sources.at("http").at("properties").at("tls").as_object();
  EXPECT_EQ(tls.at("type").as_string(), "object");
  EXPECT_EQ(tls.at("additionalProperties").as_bool(), false);
  EXPECT_TRUE(tls.at("properties").as_object().contains("cert_file"));
  // Every source with TLS: certificate and key together or not at all.
  for (const char* type : {"http", "tcp", "syslog_tcp"}) {
    SCOPED_TRACE(type);
    EXPECT_EQ(sources.at(type).at("properties").at("tls").at("dependentRequired"),
              json::parse(R"({"cert_file": ["key_file"], "key_file": ["cert_file"]})"));
  }
}

// docs/proxy.md's option tables are what scripts/update-option-docs.sh makes of the
// tables in the code; run it after changing an option.
TEST(SourceOptions, DocsTablesMatchTheCode) {
  std::ifstream in(std::string(BF_SOURCE_DIR) + "/docs/proxy.md", std::ios::binary);
  ASSERT_TRUE(in.good());
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t blocks = 0;
  const std::string updated = update_option_tables(doc, [&](const std::string& kind) -> const OptionSpecs* {
    ++blocks;
    const SourceFactory* f = find_source_factory(kind);
    return f ? &f->options : nullptr;
  });
  EXPECT_EQ(blocks, source_factories().size()) << "every source has one generated table";
  EXPECT_TRUE(updated == doc) << "docs/proxy.md's option tables differ from the code: run scripts/update-option-docs.sh";
}

}  // namespace
}  // namespace bf
