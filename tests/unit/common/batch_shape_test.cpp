#include <gtest/gtest.h>

#include <boost/json.hpp>

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
