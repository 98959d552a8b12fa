#include <gtest/gtest.h>

#include <cstdlib>

#include "common/catalog.h"
#include "common/config.h"

using namespace bf;

TEST(Config, TypedValuesAndDefaults) {
  auto root = ConfigNode::parse(R"(
receiver:
  listen: 0.0.0.0:8080
  max_body: 16MiB
  timeout: 250ms
  retries: 3
  tls: {enabled: yes}
  tags: [a, b]
)", "test.yaml");
  auto r = root.child("receiver");
  EXPECT_EQ(r.str("listen"), "0.0.0.0:8080");
  EXPECT_EQ(r.bytes("max_body"), 16u << 20);
  EXPECT_EQ(r.duration("timeout").count(), 250);
  EXPECT_EQ(r.integer("retries"), 3);
  EXPECT_TRUE(r.child("tls").boolean("enabled"));
  EXPECT_EQ(r.str_list("tags"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.integer("missing", 42), 42);
  EXPECT_NO_THROW(root.check_unknown());
}

TEST(Config, UnknownKeyNamesKeyAndFile) {
  auto root = ConfigNode::parse("receiver:\n  listen: x\n  spol_dir: /tmp\n", "receiver.yaml");
  root.child("receiver").str("listen");
  try {
    root.check_unknown();
    FAIL();
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("receiver.spol_dir"), std::string::npos) << msg;
    EXPECT_NE(msg.find("receiver.yaml"), std::string::npos) << msg;
  }
}

TEST(Config, UnknownKeyInsideListItem) {
  auto root = ConfigNode::parse("sources:\n  - type: a\n  - type: b\n    lisen: x\n", "p.yaml");
  for (auto& s : root.list("sources")) s.str("type");
  try {
    root.check_unknown();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sources[1].lisen"), std::string::npos) << e.what();
  }
}

TEST(Config, BadValuesAreNamedErrors) {
  auto root = ConfigNode::parse("a: {n: ten, d: 5, s: 12XB, b: maybe}\n", "x.yaml");
  auto a = root.child("a");
  EXPECT_THROW(a.integer("n"), ConfigError);
  EXPECT_THROW(a.duration("d"), ConfigError);  // no unit
  EXPECT_THROW(a.bytes("s"), ConfigError);
  EXPECT_THROW(a.boolean("b"), ConfigError);
  try {
    a.str("required_key");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("a.required_key"), std::string::npos);
  }
}

TEST(Config, EnvironmentOverrides) {
  setenv("BYTEFREEZER_RECEIVER__LISTEN", "127.0.0.1:9999", 1);
  setenv("BYTEFREEZER_RECEIVER__SPOOL__DIR", "/var/spool/bf", 1);
  auto root = ConfigNode::parse("receiver:\n  listen: 0.0.0.0:8080\n", "x.yaml");
  unsetenv("BYTEFREEZER_RECEIVER__LISTEN");
  unsetenv("BYTEFREEZER_RECEIVER__SPOOL__DIR");
  EXPECT_EQ(root.child("receiver").str("listen"), "127.0.0.1:9999");
  EXPECT_EQ(root.child("receiver").child("spool").str("dir"), "/var/spool/bf");
}

TEST(Config, JsonOfSubtreeKeepsQuotedStrings) {
  auto root = ConfigNode::parse("p: [{add: {field: x, value: \"007\", n: 7, f: 1.5, b: true, s: hello}}]\n", "x.yaml");
  EXPECT_EQ(root.json("p"), R"([{"add":{"field":"x","value":"007","n":7,"f":1.5,"b":true,"s":"hello"}}])");
  EXPECT_NO_THROW(root.check_unknown());
}

TEST(Catalog, ParsesAndAuthenticates) {
  auto root = ConfigNode::parse(R"(
accounts:
  - id: acme
    tenants:
      - id: web
        ingest_keys: ["0123456789abcdef-web"]
        query_keys: ["0123456789abcdef-query"]
        datasets:
          - id: logs
            pipeline: [{remove: {field: secret}}]
)", "c.yaml");
  Catalog c = Catalog::parse(root);
  root.check_unknown();
  ASSERT_EQ(c.datasets().size(), 1u);
  EXPECT_EQ(c.datasets()[0].pipeline.size(), 1u);
  auto g = c.authenticate("0123456789abcdef-web");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->account, "acme");
  EXPECT_EQ(g->tenant, "web");
  EXPECT_FALSE(c.authenticate("0123456789abcdef-wex"));
  EXPECT_FALSE(c.authenticate("0123456789abcdef-query"));  // a query key cannot ingest
  EXPECT_TRUE(c.authenticate_query("0123456789abcdef-query"));
  EXPECT_EQ(c.resolve("web/logs").ref.str(), "acme/web/logs");
  EXPECT_EQ(c.resolve("acme/web/logs").ref.dataset, "logs");
  EXPECT_THROW(c.resolve("web/nope"), std::invalid_argument);
}

TEST(Catalog, RejectsBadIdsAndShortKeys) {
  auto bad_id = ConfigNode::parse("accounts: [{id: Acme}]\n", "c.yaml");
  EXPECT_THROW(Catalog::parse(bad_id), ConfigError);
  auto short_key = ConfigNode::parse("accounts: [{id: a, tenants: [{id: t, ingest_keys: [short]}]}]\n", "c.yaml");
  EXPECT_THROW(Catalog::parse(short_key), ConfigError);
}
