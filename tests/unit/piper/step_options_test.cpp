// The pipeline steps' option declarations (TransformFactory::options): the same
// declaration validates a step's options, gives `bytefreezer plugins --schema` its
// JSON Schema and docs/pipelines.md its tables; every example there compiles.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/config.h"
#include "common/options.h"
#include "fixtures/enrich_files.h"
#include "unit/piper/compile_error.h"
#include "piper/transform.h"

using namespace bf;
namespace json = boost::json;

namespace {

using bf::test::compile_error;

std::string read_doc(const std::string& name) {
  std::ifstream in(std::string(BF_SOURCE_DIR) + "/docs/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A value of another type than `t`, and the words the error uses for `t`.
std::pair<std::string, std::string> wrong_value(OptionType t) {
  switch (t) {
    case OptionType::string: return {"5", "a string"};
    case OptionType::integer: return {"\"ten\"", "an integer"};
    case OptionType::boolean: return {"\"yes\"", "true or false"};
    case OptionType::string_list: return {"[\"a\", 7]", "a string or a list of strings"};
    case OptionType::string_map: return {"{\"a\": 1}", "an object (a map) of strings"};
    case OptionType::number: return {"\"x\"", "a number"};
    default: return {"", ""};
  }
}

TEST(StepOptions, EveryStepRefusesAnUnknownKeyNamingDatasetStepKindAndKey) {
  for (const auto& f : transform_factories()) {
    SCOPED_TRACE(f.type);
    const std::string err = compile_error(R"([{"drop": {"if": "false"}}, {")" + f.type + R"(": {"no_such_key": 1}}])");
    const std::string want = "dataset a/t/d: pipeline step 2 (" + f.type + "): unknown option 'no_such_key' (known: ";
    EXPECT_EQ(err.substr(0, want.size()), want) << err;
    for (const auto& o : f.options) EXPECT_NE(err.find(o.name), std::string::npos) << o.name;
    EXPECT_EQ(err.substr(err.size() - 3), "if)") << err;  // the common option is known too
  }
}

TEST(StepOptions, EveryOptionOfTheWrongTypeNamesTheKeyAndTheExpectedType) {
  size_t checked = 0;
  for (const auto& f : transform_factories()) {
    OptionSpecs all = f.options;
    all.insert(all.end(), step_common_options().begin(), step_common_options().end());
    for (const auto& o : all) {
      const auto [bad, words] = wrong_value(o.type);
      if (bad.empty()) continue;  // `any` takes every value
      SCOPED_TRACE(f.type + "." + o.name);
      const std::string err = compile_error(R"([{")" + f.type + R"(": {")" + o.name + "\": " + bad + "}}]");
      EXPECT_EQ(err.substr(0, err.find(", got ")),
                "dataset a/t/d: pipeline step 1 (" + f.type + "): option '" + o.name + "': must be " + words)
          << err;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100u);
}

TEST(StepOptions, DeclarationsAreCompleteAndTheirDefaultsFit) {
  for (const auto& f : transform_factories()) {
    SCOPED_TRACE(f.type);
    EXPECT_FALSE(f.description.empty());
    for (const auto& o : f.options) {
      SCOPED_TRACE(o.name);
      EXPECT_FALSE(o.description.empty());
      EXPECT_FALSE(o.required && o.default_value) << "a required option has no default";
      EXPECT_NE(o.name, "if") << "`if` is declared once, in step_common_options()";
      if (o.default_value && !o.allowed.empty() && o.type == OptionType::string)
        EXPECT_NE(std::find(o.allowed.begin(), o.allowed.end(), *o.default_value), o.allowed.end());
      if (o.default_value && o.type == OptionType::integer) {
        const double d = std::stod(*o.default_value);
        EXPECT_TRUE((!o.minimum || d >= *o.minimum) && (!o.maximum || d <= *o.maximum)) << d;
      }
    }
    EXPECT_NO_THROW(plugin_json_schema({f.type, f.description, &f.options, &step_common_options()}));
  }
}

// Giving an option its documented default changes nothing: the default in the
// declaration is the one the step uses.
TEST(StepOptions, WritingTheDeclaredDefaultsChangesNothing) {
  const std::string event = R"({"message": "user=ann, action=\"log in\" a.b=1", "m": " x;y ", "n": "{\"a\": {\"b\": [1]}}",
                                "src": "10.1.2.3", "dst": "10.9.8.7", "sp": 1234, "dp": 80, "proto": "tcp", "t": 1700000000})";
  const std::map<std::string, std::string> minimal{
      {"set", R"("field": "x", "value": 1)"}, {"add", R"("field": "x", "value": 1)"},
      {"copy", R"("from": "m", "to": "x")"}, {"rename", R"("from": "m", "to": "x")"},
      {"regex_replace", R"("field": "m", "pattern": "x")"}, {"split", R"("field": "m")"},
      {"json_parse", R"("field": "n")"}, {"json_flatten", ""}, {"kv", ""}, {"csv", R"("header": ["a", "b"])"},
      {"date_parse", R"("field": "t")"}, {"hash", R"("fields": ["m"])"}, {"truncate", R"("field": "m", "max_bytes": 2)"},
      {"include", R"("fields": ["m"])"}, {"grok", R"("patterns": "%{WORD:w}")"},
      {"community_id", R"("source_ip": "src", "destination_ip": "dst", "source_port": "sp", "destination_port": "dp", "protocol": "proto")"}};
  size_t compared = 0;
  for (const auto& [kind, opts] : minimal) {
    const TransformFactory* f = find_transform_factory(kind);
    ASSERT_NE(f, nullptr) << kind;
    std::string with_defaults = opts;
    for (const auto& o : f->options) {
      if (!o.default_value || opts.find("\"" + o.name + "\"") != std::string::npos) continue;
      json::object one{{"v", json::parse(plugin_json_schema({kind, "", &f->options}))
                                 .at("properties").at(o.name).at("default")}};
      with_defaults += std::string(with_defaults.empty() ? "" : ", ") + "\"" + o.name + "\": " + json::serialize(one.at("v"));
      ++compared;
    }
    SCOPED_TRACE(kind + ": " + with_defaults);
    auto plain = Pipeline::compile(json::parse("[{\"" + kind + "\": {" + opts + "}}]").as_array(), "d");
    auto spelled = Pipeline::compile(json::parse("[{\"" + kind + "\": {" + with_defaults + "}}]").as_array(), "d");
    auto a = plain.run({json::parse(event).as_object()});
    auto b = spelled.run({json::parse(event).as_object()});
    ASSERT_EQ(a.events.size(), 1u);
    ASSERT_EQ(b.events.size(), 1u);
    if (kind == "hash" || kind == "community_id" || kind == "set" || kind == "add" || kind == "date_parse" ||
        kind == "grok" || kind == "csv")
      EXPECT_NE(a.events[0], json::parse(event).as_object()) << "the step did something";
    EXPECT_EQ(json::serialize(a.events[0]), json::serialize(b.events[0]));
  }
  EXPECT_GT(compared, 30u);
}

TEST(StepOptions, ReadingAnUndeclaredOptionOrWithTheWrongTypeIsAProgrammingError) {
  const OptionSpecs specs{Option("name", OptionType::string, "a name").def("x"),
                          Option("count", OptionType::integer, "a count").def("3").range(1, 5)};
  const json::object given = json::parse(R"({"count": 9})").as_object();
  StepOptions o(given, "dataset d: pipeline step 1 (t)", nullptr, &specs);
  EXPECT_THROW(o.str("nmae"), std::logic_error);
  EXPECT_THROW(o.has("nmae"), std::logic_error);
  EXPECT_THROW(o.boolean("name"), std::logic_error);  // declared a string
  EXPECT_THROW(o.str("name", "y"), std::logic_error);  // a second default beside the declared one
  EXPECT_EQ(o.str("name"), "x");                       // the declared default
  try {
    o.integer("count");
    ADD_FAILURE() << "out of the declared range";
  } catch (const PipelineError& e) {
    EXPECT_STREQ(e.what(), "dataset d: pipeline step 1 (t): option 'count': must be between 1 and 5");
  }
  const json::object typo = json::parse(R"({"nmae": "a", "count": 2})").as_object();
  StepOptions t(typo, "dataset d: pipeline step 1 (t)", nullptr, &specs);
  try {
    t.check();
    ADD_FAILURE() << "unknown key accepted";
  } catch (const PipelineError& e) {
    EXPECT_STREQ(e.what(), "dataset d: pipeline step 1 (t): unknown option 'nmae' (known: name, count, if)");
  }
}

TEST(StepOptions, AnOptionThatDoesNotApplyWithTheOthersIsRefused) {
  EXPECT_EQ(compile_error(R"([{"coerce": {"fields": {"a": "int"}, "type": "int"}}])"),
            "dataset a/t/d: pipeline step 1 (coerce): option 'type': does not apply with the other options given");
}

// exactly_one_of in a step's declaration (the field/fields steps, set's value/expr)
// is checked when the pipeline is compiled, and the error names step, kind and keys.
TEST(StepOptions, ExactlyOneOfIsCheckedAtCompileNamingStepKindAndKeys) {
  EXPECT_EQ(compile_error(R"([{"drop": {"if": "false"}}, {"set": {"field": "f", "value": 1, "expr": "1"}}])"),
            "dataset a/t/d: pipeline step 2 (set): give exactly one of 'value' or 'expr' ('value' and 'expr' are set)");
  EXPECT_EQ(compile_error(R"([{"set": {"field": "f"}}])"),
            "dataset a/t/d: pipeline step 1 (set): give exactly one of 'value' or 'expr' (none is set)");
  // null is a value (set's constant null), so it counts as given.
  EXPECT_EQ(compile_error(R"([{"set": {"field": "f", "value": null}}])"), "");
  EXPECT_EQ(compile_error(R"([{"set": {"field": "f", "value": null, "expr": "1"}}])"),
            "dataset a/t/d: pipeline step 1 (set): give exactly one of 'value' or 'expr' ('value' and 'expr' are set)");
  const std::vector<std::pair<std::string, std::string>> steps = {
      {"trim", R"("fields": ["b"])"},      {"lowercase", R"("fields": ["b"])"},
      {"uppercase", R"("fields": ["b"])"}, {"remove", R"("fields": ["b"])"},
      {"truncate", R"("fields": ["b"], "max_bytes": 4)"}, {"coerce", R"("fields": {"b": "int"}, "type": "int")"}};
  for (const auto& [kind, more] : steps) {
    SCOPED_TRACE(kind);
    const std::string err = compile_error(R"([{")" + kind + R"(": {"field": "a", )" + more + "}}]");
    EXPECT_NE(err.find("pipeline step 1 (" + kind + "): give exactly one of 'field' or 'fields'"),
              std::string::npos)
        << err;
  }
}

json::object step_schemas() {
  std::vector<PluginSchema> steps;
  for (const auto& f : transform_factories()) steps.push_back({f.type, f.description, &f.options, &step_common_options()});
  return json::parse(plugins_schema_document({}, steps)).at("steps").as_object();
}

TEST(StepOptions, SchemaHasEveryStepWithItsOptionsAndIf) {
  const json::object steps = step_schemas();
  ASSERT_EQ(steps.size(), transform_factories().size());
  for (const auto& f : transform_factories()) {
    SCOPED_TRACE(f.type);
    const json::object& s = steps.at(f.type).as_object();
    EXPECT_EQ(s.at("type"), "object");
    EXPECT_EQ(s.at("additionalProperties"), false);
    const json::object& props = s.at("properties").as_object();
    EXPECT_EQ(props.size(), f.options.size() + 1);
    EXPECT_EQ(props.at("if").at("type"), "string");
    for (const auto& o : f.options) EXPECT_TRUE(props.contains(o.name)) << o.name;
  }
  EXPECT_EQ(steps.at("drop").at("properties").as_object().size(), 1u);  // only `if`
  EXPECT_EQ(steps.at("set").at("oneOf"), json::parse(R"([{"required": ["value"]}, {"required": ["expr"]}])"));
  EXPECT_EQ(steps.at("trim").at("oneOf"), json::parse(R"([{"required": ["field"]}, {"required": ["fields"]}])"));
  EXPECT_FALSE(steps.at("set").at("properties").at("value").as_object().contains("type"));  // any JSON value
}

TEST(StepOptions, SchemaOfGrokKvSampleAndGeoipFieldByField) {
  const json::object steps = step_schemas();
  const json::object& grok = steps.at("grok").as_object();
  EXPECT_EQ(grok.at("required"), (json::array{"patterns"}));
  const json::object& gp = grok.at("properties").as_object();
  EXPECT_EQ(gp.at("patterns").at("type"), (json::array{"array", "string"}));
  EXPECT_EQ(gp.at("patterns").at("items"), (json::object{{"type", "string"}}));
  EXPECT_FALSE(gp.at("patterns").as_object().contains("default"));
  EXPECT_EQ(gp.at("field").at("type"), "string");
  EXPECT_EQ(gp.at("field").at("default"), "message");
  EXPECT_EQ(gp.at("pattern_definitions").at("type"), "object");
  EXPECT_EQ(gp.at("pattern_definitions").at("additionalProperties"), (json::object{{"type", "string"}}));
  EXPECT_EQ(gp.at("pattern_definitions").at("default"), json::object{});
  EXPECT_FALSE(gp.at("target").as_object().contains("default"));
  EXPECT_EQ(gp.at("target").at("description"), "an object field for the captures (default: into the event)");
  EXPECT_EQ(gp.at("on_mismatch").at("enum"), (json::array{"fail", "keep"}));
  EXPECT_EQ(gp.at("on_mismatch").at("default"), "fail");

  const json::object& kv = steps.at("kv").as_object();
  EXPECT_FALSE(kv.contains("required"));
  const json::object& kp = kv.at("properties").as_object();
  EXPECT_EQ(kp.at("field_split").at("default"), " ");
  EXPECT_EQ(kp.at("value_split").at("default"), "=");
  EXPECT_EQ(kp.at("quotes").at("default"), "\"'");
  EXPECT_EQ(kp.at("overwrite").at("type"), "boolean");
  EXPECT_EQ(kp.at("overwrite").at("default"), true);
  EXPECT_EQ(kp.at("exclude").at("default"), json::array{});
  EXPECT_EQ(kp.at("include").at("type"), (json::array{"array", "string"}));
  EXPECT_EQ(kp.at("prefix").at("default"), "");

  const json::object& sample = steps.at("sample").as_object();
  EXPECT_EQ(sample.at("required"), (json::array{"rate"}));
  const json::object& sp = sample.at("properties").as_object();
  EXPECT_EQ(sp.at("rate").at("type"), "integer");
  EXPECT_EQ(sp.at("rate").at("minimum"), 1);
  EXPECT_EQ(sp.at("rate").at("maximum"), int64_t{1} << 40);
  EXPECT_EQ(sp.at("mode").at("enum"), (json::array{"random", "hash", "dynamic"}));
  EXPECT_FALSE(sp.at("mode").as_object().contains("default"));  // computed from `key`
  EXPECT_EQ(sp.at("seed").at("maximum"), INT64_MAX);
  EXPECT_EQ(sp.at("window_events").at("minimum"), 10);
  EXPECT_EQ(sp.at("max_keys").at("default"), 10000);
  EXPECT_EQ(sp.at("rate_field").at("default"), "_sample_rate");

  const json::object& geoip = steps.at("geoip").as_object();
  EXPECT_EQ(geoip.at("required"), (json::array{"database", "field"}));
  const json::object& gi = geoip.at("properties").as_object();
  EXPECT_EQ(gi.at("target").at("default"), "geo");
  EXPECT_EQ(gi.at("language").at("default"), "en");
  EXPECT_EQ(gi.at("paths").at("type"), "object");
  const json::array& names = gi.at("fields").at("items").at("enum").as_array();
  EXPECT_EQ(names.size(), 16u);
  EXPECT_EQ(names.front(), "continent_code");
  EXPECT_NE(std::find(names.begin(), names.end(), json::value("as_org")), names.end());
  EXPECT_FALSE(gi.at("fields").as_object().contains("default"));  // by the database's type
}

// docs/pipelines.md's option tables are what scripts/update-option-docs.sh makes of
// the declarations; run it after changing an option.
TEST(StepOptions, DocsTablesMatchTheDeclarations) {
  const std::string doc = read_doc("pipelines.md");
  std::map<std::string, int> blocks;
  const std::string updated = update_option_tables(doc, [&](const std::string& kind) -> const OptionSpecs* {
    ++blocks[kind];
    const TransformFactory* f = find_transform_factory(kind);
    return f ? &f->options : nullptr;
  });
  for (const auto& f : transform_factories()) EXPECT_EQ(blocks[f.type], 1) << "one generated table for " << f.type;
  EXPECT_TRUE(updated == doc) << "docs/pipelines.md's option tables differ from the code: run scripts/update-option-docs.sh";
}

// Every ```yaml block of docs/pipelines.md compiles (a list of steps, a mapping with
// pipeline:, or a config whose datasets have pipelines), with the files the
// enrichment examples name made here; together they use every step kind.
TEST(StepOptions, EveryDocumentedExamplePipelineCompiles) {
  bf::test::TempDir dir;
  bf::test::write_mmdb(dir.file("city.mmdb"), R"({"database_type": "GeoLite2-City", "networks": [
      {"network": "81.2.69.0/24", "data": {"country": {"iso_code": "GB"}, "location": {"time_zone": "Europe/London"}}}]})");
  bf::test::write_mmdb(dir.file("asn.mmdb"), R"({"database_type": "GeoLite2-ASN", "networks": [
      {"network": "81.2.64.0/18", "data": {"autonomous_system_number": 20712}}]})");
  bf::test::replace_file(dir.file("assets.csv"), "network,owner,site\n10.0.0.0/8,ops,hq\n");
  bf::test::replace_file(dir.file("services.csv"), "port,service\n80,http\n");
  const std::map<std::string, std::string> files{{"/var/lib/GeoIP/GeoLite2-City.mmdb", dir.file("city.mmdb")},
                                                 {"/var/lib/GeoIP/GeoLite2-ASN.mmdb", dir.file("asn.mmdb")},
                                                 {"/etc/bf/assets.csv", dir.file("assets.csv")},
                                                 {"/etc/bf/services.csv", dir.file("services.csv")}};
  std::string doc = read_doc("pipelines.md");
  for (const auto& [path, made] : files)
    for (size_t at; (at = doc.find(path)) != std::string::npos;) doc.replace(at, path.size(), made);

  std::set<std::string> kinds;
  size_t pipelines = 0;
  // The steps of every `pipeline` in a YAML document turned into JSON.
  std::function<void(const json::value&, bool)> collect = [&](const json::value& v, bool is_pipeline) {
    if (is_pipeline) {
      ASSERT_TRUE(v.is_array()) << json::serialize(v);
      SCOPED_TRACE(json::serialize(v));
      try {
        Pipeline::compile(v.as_array(), "docs/pipelines.md");
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
      for (const auto& step : v.as_array()) kinds.insert(std::string(step.as_object().begin()->key()));
      ++pipelines;
      return;
    }
    if (v.is_object())
      for (const auto& kv : v.as_object()) collect(kv.value(), kv.key() == "pipeline");
    if (v.is_array())
      for (const auto& e : v.as_array()) collect(e, false);
  };
  static const std::string kOpen = "```yaml\n";
  for (size_t at = doc.find(kOpen); at != std::string::npos; at = doc.find(kOpen, at)) {
    at += kOpen.size();
    const size_t end = doc.find("```", at);
    ASSERT_NE(end, std::string::npos);
    const std::string block = doc.substr(at, end - at);
    SCOPED_TRACE(block);
    std::string nested = "doc:\n";  // a bare list of steps is a pipeline
    const bool list = block.find_first_not_of(" \n") != std::string::npos && block[block.find_first_not_of(" \n")] == '-';
    if (list) nested = "doc:\n  pipeline:\n";
    for (size_t pos = 0; pos < block.size();) {
      const size_t nl = block.find('\n', pos);
      nested += (list ? "    " : "  ") + block.substr(pos, nl - pos) + "\n";
      pos = nl == std::string::npos ? block.size() : nl + 1;
    }
    collect(json::parse(ConfigNode::parse(nested, "docs/pipelines.md").json("doc")), false);
  }
  EXPECT_GT(pipelines, 30u);
  for (const auto& f : transform_factories()) EXPECT_TRUE(kinds.count(f.type)) << "no documented example uses " << f.type;
}

}  // namespace
