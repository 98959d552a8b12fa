#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/batch_shape.h"
#include "packer/schema_types.h"
#include "storage/sql_engine.h"

using namespace bf;

namespace {

FieldShape shape_of(std::initializer_list<boost::json::value> values) {
  BatchShape s;
  for (const auto& v : values) s.add(boost::json::object{{"f", v}});
  return *s.root.member("f");
}

SchemaType type_of(std::initializer_list<boost::json::value> values, SchemaLimits limits = {}) {
  auto t = type_from_shape(shape_of(values), limits);
  EXPECT_TRUE(t.has_value());
  return t.value_or(SchemaType{});
}

// Evaluates `expr` over a JSON literal in a real DuckDB.
std::optional<std::string> eval(const std::string& expr_of_j, const std::string& json) {
  SqlEngine engine(nullptr, {});
  auto r = engine.query("SELECT CAST((" + expr_of_j + ") AS VARCHAR) FROM (SELECT json(" + sql_quote(json) + ") AS j)");
  return r.rows.at(0).at(0);
}

}  // namespace

TEST(SchemaTypes, NestedObjectsAreStructsAndArraysAreLists) {
  auto t = type_of({boost::json::parse(R"({"a": 1, "n": {"q": [1, 2]}, "s": "x", "z": null})")});
  EXPECT_EQ(t.duckdb(), R"(STRUCT("a" BIGINT, "n" STRUCT("q" BIGINT[]), "s" VARCHAR))");  // null-only z waits
  EXPECT_EQ(type_of({boost::json::parse(R"([{"x": 1}, {"x": 2.5, "y": true}])")}).duckdb(),
            R"(STRUCT("x" DOUBLE, "y" BOOLEAN)[])");
  EXPECT_EQ(type_of({boost::json::parse(R"([1, "a"])")}).duckdb(), "VARCHAR[]");
  EXPECT_EQ(type_of({boost::json::parse("[]")}).duckdb(), "VARCHAR[]");
  EXPECT_EQ(type_of({1, "x"}).duckdb(), "VARCHAR");
  EXPECT_TRUE(type_of({1, boost::json::object{{"a", 1}}}).json_text);
  EXPECT_FALSE(type_from_shape(shape_of({nullptr}), {}).has_value());
  // The type tree survives schema.json.
  auto back = SchemaType::from_json(t.to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->duckdb(), t.duckdb());
}

TEST(SchemaTypes, WideAndDeepObjectsAreBounded) {
  SchemaLimits limits;
  limits.max_struct_fields = 3;
  limits.max_depth = 2;
  boost::json::object wide{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}};
  EXPECT_EQ(type_of({wide}, limits).duckdb(), "MAP(VARCHAR, VARCHAR)");
  limits.wide_as_map = false;
  EXPECT_EQ(type_of({wide}, limits).duckdb(), "VARCHAR");
  EXPECT_EQ(type_of({boost::json::parse(R"({"a": {"b": {"c": 1}}})")}, limits).duckdb(), R"(STRUCT("a" STRUCT("b" VARCHAR)))");
  // More keys than a batch shape tracks: MAP as well.
  boost::json::object huge;
  for (int i = 0; i < 5000; ++i) huge["k" + std::to_string(i)] = i;
  EXPECT_EQ(type_of({huge}).duckdb(), "MAP(VARCHAR, VARCHAR)");
}

TEST(SchemaTypes, EvolutionWidensOrAddsAndNeverNarrows) {
  std::vector<SchemaChange> changes;
  SchemaType n = type_of({1});
  EXPECT_FALSE(evolve_type(n, shape_of({2.5}), {}, "n", changes));
  EXPECT_EQ(n.duckdb(), "DOUBLE");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].change, "widened");
  EXPECT_EQ(changes[0].from, "BIGINT");
  EXPECT_FALSE(evolve_type(n, shape_of({1}), {}, "n", changes));  // an int still fits a DOUBLE
  EXPECT_EQ(n.duckdb(), "DOUBLE");
  EXPECT_FALSE(evolve_type(n, shape_of({"x"}), {}, "n", changes));
  EXPECT_EQ(n.duckdb(), "VARCHAR");

  changes.clear();
  SchemaType s = type_of({boost::json::parse(R"({"a": 1})")});
  EXPECT_FALSE(evolve_type(s, shape_of({boost::json::parse(R"({"a": 2, "b": [true], "A": 3})")}), {}, "s", changes));
  EXPECT_EQ(s.duckdb(), R"(STRUCT("a" BIGINT, "b" BOOLEAN[], "A__2" BIGINT))");
  EXPECT_EQ(changes.at(0).change, "member_added");
  EXPECT_EQ(changes.at(0).path, "s.b");
  EXPECT_EQ(changes.back().change, "renamed");
  EXPECT_EQ(changes.back().source, "A");
  // A value the STRUCT cannot hold: the type stays, the caller is told to overflow.
  EXPECT_TRUE(evolve_type(s, shape_of({"plain"}), {}, "s", changes));
  EXPECT_TRUE(evolve_type(s, shape_of({boost::json::parse(R"({"b": "not a list"})")}), {}, "s", changes));
  EXPECT_EQ(s.duckdb(), R"(STRUCT("a" BIGINT, "b" BOOLEAN[], "A__2" BIGINT))");
  // A member inside the STRUCT widens like a column.
  EXPECT_FALSE(evolve_type(s, shape_of({boost::json::parse(R"({"a": "text"})")}), {}, "s", changes));
  EXPECT_EQ(s.duckdb(), R"(STRUCT("a" VARCHAR, "b" BOOLEAN[], "A__2" BIGINT))");
}

TEST(SchemaTypes, NativeReadsOnlyWhenNothingIsLostOrRenamed) {
  SchemaType s = type_of({boost::json::parse(R"({"a": 1, "l": [1]})")});
  EXPECT_TRUE(reads_natively(s, shape_of({boost::json::parse(R"({"a": 5, "z": null})")})));
  EXPECT_FALSE(reads_natively(s, shape_of({"str"})));
  EXPECT_FALSE(reads_natively(s, shape_of({boost::json::parse(R"({"new": 1})")})));  // the STRUCT would drop it
  EXPECT_FALSE(reads_natively(s, shape_of({boost::json::parse(R"({"l": 7})")})));
  EXPECT_TRUE(reads_natively(type_of({"x"}), shape_of({boost::json::parse(R"({"any": [1]})")})));
}

TEST(SchemaTypes, ConversionSqlKeepsValuesAndRoutesWhatDoesNotFit) {
  SchemaType s = type_of({boost::json::parse(R"({"a": 1, "Host": "h", "l": [{"x": 1}]})")});
  std::vector<SchemaChange> changes;
  const FieldShape later = shape_of({boost::json::parse(R"({"host": "lower", "l": [{"x": 2}, 5]})"), "plain"});
  EXPECT_TRUE(evolve_type(s, later, {}, "s", changes));
  EXPECT_EQ(s.duckdb(), R"(STRUCT("a" BIGINT, "Host" VARCHAR, "l" STRUCT("x" BIGINT)[], "host__2" VARCHAR))");
  const std::string fits = fits_sql("j", s, later);
  ASSERT_FALSE(fits.empty());
  EXPECT_EQ(eval(fits, R"({"a": 1, "Host": "H", "host": "h", "l": [{"x": 3}]})"), "true");
  EXPECT_EQ(eval(fits, R"("plain")"), "false");
  EXPECT_EQ(eval(fits, R"({"l": [{"x": 2}, 5]})"), "false");  // a list element that is no object
  EXPECT_EQ(eval(fits, "null"), "true");
  const std::string conv = convert_sql("j", s);
  EXPECT_EQ(eval(conv, R"({"a": 1, "Host": "H", "host": "h", "l": [{"x": 3}]})"),
            "{'a': 1, 'Host': H, 'l': [{'x': 3}], 'host__2': h}");
  EXPECT_EQ(eval(conv, R"({"a": 2})"), "{'a': 2, 'Host': NULL, 'l': NULL, 'host__2': NULL}");
  // Text columns: strings as such, anything else as its JSON text.
  SchemaType text = type_of({"x", boost::json::object{{"k", 1}}});
  EXPECT_EQ(eval(convert_sql("j", text), R"("abc")"), "abc");
  EXPECT_EQ(eval(convert_sql("j", text), R"({"k": [1, "two"]})"), R"({"k":[1,"two"]})");
  EXPECT_EQ(eval(convert_sql("j", text), "null"), std::nullopt);
  SchemaType map = type_of({boost::json::parse(R"({"k1": "v", "k2": 2})")}, SchemaLimits{1, 8, true});
  EXPECT_EQ(eval(convert_sql("j", map), R"({"k1": "v", "k2": {"n": 1}})"), R"({k1=v, k2='{"n":1}'})");
}

TEST(SchemaTypes, NamesThatDifferOnlyInCaseGetADeterministicSuffix) {
  EXPECT_EQ(unique_name("host", {"Host"}), "host__2");
  EXPECT_EQ(unique_name("host", {"Host", "HOST__2"}), "host__3");
  EXPECT_EQ(unique_name("host", {"other"}), "host");
  EXPECT_EQ(json_key_path(R"(a."b\)"), R"($."a.\"b\\")");
}
