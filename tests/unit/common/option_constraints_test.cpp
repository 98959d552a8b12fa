// Option-table constraints (common/options.h OptionConstraint): exactly_one_of and
// together, checked when a config is read, named in the error with the plugin and the
// keys, and expressed in the JSON Schema (oneOf of required, dependentRequired) and
// the docs' tables.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/config.h"
#include "common/option_table.h"
#include "common/options.h"

namespace bf {
namespace {

namespace json = boost::json;

struct Settings {
  std::string field;
  std::string fields;
  std::string a, b;
  std::string cert, key;
};

const OptionTable<Settings>& table() {
  static const OptionTable<Settings> t = [] {
    OptionTable<Settings> t;
    t.string("field", &Settings::field, "", "one field");
    t.string("fields", &Settings::fields, "", "several fields");
    t.string("a", &Settings::a, "", "a");
    t.string("b", &Settings::b, "", "b");
    t.string("tls.cert_file", &Settings::cert, "", "certificate");
    t.string("tls.key_file", &Settings::key, "", "key");
    t.exactly_one_of({"field", "fields"});
    t.exactly_one_of({"a", "b"});
    t.together({"tls.cert_file", "tls.key_file"});
    return t;
  }();
  return t;
}

std::string read_error(const std::string& yaml) {
  try {
    table().read(ConfigNode::parse(yaml, "test.yaml").child("plugin"), "source demo 'edge'");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(OptionConstraints, ExactlyOneOfRefusesNoneAndBothNamingPluginAndKeys) {
  EXPECT_EQ(read_error("plugin:\n  field: x\n  a: 1\n"), "");
  EXPECT_EQ(read_error("plugin:\n  fields: x\n  b: 1\n"), "");
  std::string err = read_error("plugin:\n  a: 1\n");
  EXPECT_EQ(err, "test.yaml: plugin: give exactly one of 'field' or 'fields' (none is set) (source demo 'edge')");
  err = read_error("plugin:\n  field: x\n  fields: y\n  b: 1\n");
  EXPECT_EQ(err,
            "test.yaml: plugin: give exactly one of 'field' or 'fields' ('field' and 'fields' are set) "
            "(source demo 'edge')");
  err = read_error("plugin:\n  field: x\n  a: 1\n  b: 2\n");
  EXPECT_NE(err.find("give exactly one of 'a' or 'b'"), std::string::npos) << err;
  // A null value is not set.
  EXPECT_EQ(read_error("plugin:\n  field: x\n  fields: ~\n  a: 1\n"), "");
}

TEST(OptionConstraints, TogetherRefusesOneWithoutTheOtherInANestedMapping) {
  EXPECT_EQ(read_error("plugin:\n  field: x\n  a: 1\n  tls:\n    cert_file: c\n    key_file: k\n"), "");
  EXPECT_EQ(read_error("plugin:\n  field: x\n  a: 1\n"), "");  // neither: fine
  const std::string err = read_error("plugin:\n  field: x\n  a: 1\n  tls:\n    cert_file: c\n");
  EXPECT_EQ(err,
            "test.yaml: plugin.tls: set 'tls.cert_file' and 'tls.key_file' together ('tls.cert_file' is set, "
            "'tls.key_file' is not) (source demo 'edge')");
}

TEST(OptionConstraints, ErrorTextForEveryCase) {
  const OptionConstraint one{OptionConstraint::Kind::exactly_one_of, {"x", "y", "z"}};
  const OptionConstraint all{OptionConstraint::Kind::together, {"x", "y", "z"}};
  auto set = [](std::initializer_list<const char*> keys) {
    return [keys](const std::string& k) {
      for (const char* s : keys)
        if (k == s) return true;
      return false;
    };
  };
  EXPECT_EQ(constraint_error(one, set({"y"})), "");
  EXPECT_EQ(constraint_error(one, set({"x", "z"})), "give exactly one of 'x', 'y' or 'z' ('x' and 'z' are set)");
  EXPECT_EQ(constraint_error(all, set({})), "");
  EXPECT_EQ(constraint_error(all, set({"x", "y", "z"})), "");
  EXPECT_EQ(constraint_error(all, set({"x", "y"})), "set 'x', 'y' and 'z' together ('x' and 'y' are set, 'z' is not)");
  EXPECT_EQ(constraint_text(one), "Exactly one of `x`, `y`, `z`.");
  EXPECT_EQ(constraint_text(all), "Set together or not at all: `x`, `y`, `z`.");
}

TEST(OptionConstraints, DeclaringAConstraintOnUnknownOrScatteredKeysIsAProgrammingError) {
  OptionSpecs specs{Option("a", OptionType::string, "a"), Option("t.b", OptionType::string, "b"),
                    Option("t.c", OptionType::string, "c")};
  EXPECT_THROW(specs.exactly_one_of({"a", "nope"}), std::logic_error);
  EXPECT_THROW(specs.together({"a", "t.b"}), std::logic_error);  // different mappings
  EXPECT_THROW(specs.together({"a"}), std::logic_error);
  EXPECT_NO_THROW(specs.together({"t.b", "t.c"}));
}

TEST(OptionConstraints, SchemaHasOneOfRequiredAndDependentRequired) {
  const PluginSchema plugin{"demo", "a demo", &table().specs()};
  const json::object s = json::parse(plugin_json_schema(plugin)).as_object();
  // The first exactly_one_of as oneOf, the second inside allOf (both must hold).
  EXPECT_EQ(s.at("oneOf"), json::parse(R"([{"required": ["field"]}, {"required": ["fields"]}])"));
  EXPECT_EQ(s.at("allOf"), json::parse(R"([{"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}])"));
  // together on tls.* sits in the nested tls schema.
  const json::object& tls = s.at("properties").at("tls").as_object();
  EXPECT_EQ(tls.at("dependentRequired"), json::parse(R"({"cert_file": ["key_file"], "key_file": ["cert_file"]})"));
  EXPECT_FALSE(s.contains("dependentRequired"));
}

TEST(OptionConstraints, DocsTableEndsWithTheConstraints) {
  const std::string md = options_markdown_table(table().specs());
  EXPECT_NE(md.find("| `tls.key_file` | string | — | key |\n\nExactly one of `field`, `fields`.\n"
                    "Exactly one of `a`, `b`.\nSet together or not at all: `tls.cert_file`, `tls.key_file`.\n"),
            std::string::npos)
      << md;
}

}  // namespace
}  // namespace bf
