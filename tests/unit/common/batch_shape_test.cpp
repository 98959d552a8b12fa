#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/batch.h"
#include "common/batch_shape.h"

using namespace bf;

namespace {
boost::json::object ev(const char* json) { return boost::json::parse(json).as_object(); }
}  // namespace

TEST(BatchShapeTest, RecordsKindsCountsAndNestingAndRoundTrips) {
  BatchShape s;
  s.add(ev(R"({"a": 1, "b": "x", "o": {"k": true}, "l": [1, 2.5], "_time": "2026-03-01T10:00:00Z"})"));
  s.add(ev(R"({"b": null, "a": 18446744073709551615, "o": {"k": 1, "j": [ ]}, "_time": -5})"));
  s.add(ev(R"({"_time": "2026-03-01T10:00:00Z", "_received": "later"})"));
  EXPECT_EQ(s.events, 3u);
  EXPECT_EQ(s.root.member("a")->kinds, kKindInt | kKindUint);
  EXPECT_EQ(s.root.member("b")->kinds, kKindString | kKindNull);
  EXPECT_EQ(s.root.member("b")->count, 2u);
  EXPECT_EQ(s.root.member("o")->member("k")->kinds, kKindBool | kKindInt);
  EXPECT_EQ(s.root.member("l")->items.at(0).kinds, kKindInt | kKindFloat);
  EXPECT_EQ(s.root.member("_time")->count, 3u);
  EXPECT_EQ(s.root.member("_time")->bad_time, 1u);
  EXPECT_EQ(s.root.member("_received")->bad_time, 1u);
  EXPECT_EQ(s.root.names, (std::vector<std::string>{"a", "b", "o", "l", "_time", "_received"}));

  auto back = BatchShape::from_json(boost::json::parse(boost::json::serialize(s.to_json())));
  ASSERT_TRUE(back);
  EXPECT_EQ(boost::json::serialize(back->to_json()), boost::json::serialize(s.to_json()));
  auto kinds_only = BatchShape::from_json(s.to_json(false));
  ASSERT_TRUE(kinds_only);
  EXPECT_EQ(kinds_only->root.member("a")->kinds, kKindInt | kKindUint);
  EXPECT_EQ(kinds_only->root.member("a")->count, 0u);
}

TEST(BatchShapeTest, MergeIsTheUnion) {
  BatchShape a, b;
  a.add(ev(R"({"x": 1, "o": {"p": 1}})"));
  b.add(ev(R"({"x": "s", "y": 2, "o": {"q": 1}})"));
  a.merge(b);
  EXPECT_EQ(a.events, 2u);
  EXPECT_EQ(a.root.member("x")->kinds, kKindInt | kKindString);
  EXPECT_EQ(a.root.member("y")->count, 1u);
  EXPECT_EQ(a.root.member("o")->names, (std::vector<std::string>{"p", "q"}));
}

TEST(BatchShapeTest, ObjectsWithTooManyKeysStopBeingTrackedTopLevelFieldsNever) {
  boost::json::object wide, top;
  for (size_t k = 0; k < BatchShape::kMaxObjectKeys + 1; ++k) wide["k" + std::to_string(k)] = 1;
  for (size_t k = 0; k < 2 * BatchShape::kMaxObjectKeys; ++k) top["f" + std::to_string(k)] = 1;
  BatchShape s;
  s.add(boost::json::object{{"w", wide}});
  s.add(top);
  EXPECT_TRUE(s.root.member("w")->many);
  EXPECT_TRUE(s.root.member("w")->names.empty());
  EXPECT_EQ(s.root.names.size(), 1 + 2 * BatchShape::kMaxObjectKeys);
  auto back = BatchShape::from_json(s.to_json());
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->root.member("w")->many);
}

TEST(BatchShapeTest, MalformedShapesAreRefused) {
  for (const char* bad : {R"([])", R"({"events": 1})", R"({"fields": {"a": {"kinds": ["bogus"]}}})",
                          R"({"fields": {"a": {"kinds": "int"}}})", R"({"events": -1, "fields": {}})",
                          R"({"fields": {"a": {"count": "x"}}})"}) {
    EXPECT_FALSE(BatchShape::from_json(boost::json::parse(bad))) << bad;
  }
}

// The piper's pass-through path reads shapes straight from NDJSON text: the same shape
// as from the parsed events, and the same errors as parse_ndjson.
TEST(BatchShapeTest, ShapeOfNdjsonTextEqualsShapeOfItsEvents) {
  std::string text = "{\"a\": 1, \"o\": {\"k\": [1, \"x\"]}, \"_time\": \"bad\"}\n\n  \r\n";
  text += "{\"a\": 2.5, \"big\": \"" + std::string(200000, 'z') + "\"}\r\n{\"o\": null}";  // past the first arena block
  BatchShape from_text;
  EXPECT_EQ(from_text.add_ndjson(text), 3u);
  BatchShape from_events;
  for (const auto& e : parse_ndjson(text)) from_events.add(e);
  EXPECT_EQ(boost::json::serialize(from_text.to_json()), boost::json::serialize(from_events.to_json()));
  EXPECT_EQ(from_text.root.member("_time")->bad_time, 1u);

  BatchShape bad;
  try {
    bad.add_ndjson("{\"a\": 1}\n[1]\n");
    FAIL() << "an array line was accepted";
  } catch (const BatchFormatError& e) {
    EXPECT_STREQ(e.what(), "line 2: not a JSON object");
  }
  EXPECT_THROW(bad.add_ndjson("{\"a\": 1}\n{\"a\": \n"), BatchFormatError);
}
