#include <gtest/gtest.h>

#include <cstdio>

#include <boost/json/parse.hpp>

#include "common/batch.h"
#include "piper/transform.h"

using namespace bf;

namespace {
Pipeline compile(const std::string& json) {
  return Pipeline::compile(boost::json::parse(json).as_array(), "dataset a/t/d");
}
}  // namespace

TEST(Pipeline, AddRemoveRename) {
  auto p = compile(R"([
    {"add": {"field": "env", "value": "prod"}},
    {"add": {"field": "geo.country", "value": "NL"}},
    {"add": {"field": "keep", "value": 1, "overwrite": false}},
    {"remove": {"fields": ["password", "nested.secret"]}},
    {"rename": {"from": "msg", "to": "message"}}
  ])");
  std::vector<Event> events{
      Event{{"msg", "hi"}, {"password", "x"}, {"keep", 0}, {"nested", boost::json::object{{"secret", 1}, {"ok", 2}}}},
      Event{{"other", true}}};
  events = p.run(std::move(events)).events;
  EXPECT_EQ(events[0].at("env").as_string(), "prod");
  EXPECT_EQ(events[0].at("geo").at("country").as_string(), "NL");
  EXPECT_EQ(events[0].at("keep").as_int64(), 0);  // not overwritten
  EXPECT_EQ(events[1].at("keep").as_int64(), 1);
  EXPECT_FALSE(events[0].contains("password"));
  EXPECT_FALSE(events[0].at("nested").as_object().contains("secret"));
  EXPECT_EQ(events[0].at("nested").at("ok").as_int64(), 2);
  EXPECT_EQ(events[0].at("message").as_string(), "hi");
  EXPECT_FALSE(events[0].contains("msg"));
  EXPECT_FALSE(events[1].contains("message"));  // nothing to rename
}

// Replacing a field of a full event (every event after grok's captures) changes it in
// place: Boost.JSON's operator[] would first grow and rehash the member table.
TEST(Pipeline, SetFieldReplacesInPlaceAndAddsWhenAbsent) {
  for (size_t fields : {size_t(3), size_t(25)}) {  // a small table (linear) and a hashed one
    Event e;
    e.reserve(fields);
    for (size_t i = 0; i < fields; ++i) e["f" + std::to_string(i)] = static_cast<int64_t>(i);
    ASSERT_EQ(e.size(), e.capacity());
    const size_t capacity = e.capacity();
    set_field(e, FieldPath::parse("f1"), "replaced");
    EXPECT_EQ(e.capacity(), capacity) << fields;
    EXPECT_EQ(e.at("f1").as_string(), "replaced");
    EXPECT_EQ(e.size(), fields);
    set_field(e, FieldPath::parse("f0.inner"), 7);  // a non-object on the way is replaced by one
    EXPECT_EQ(e.at("f0").at("inner").as_int64(), 7);
    set_field(e, FieldPath::parse("added"), true);  // absent: added (the table grows)
    EXPECT_TRUE(e.at("added").as_bool());
    EXPECT_EQ(e.size(), fields + 1);
    for (size_t i = 2; i < fields; ++i) EXPECT_EQ(e.at("f" + std::to_string(i)).as_int64(), static_cast<int64_t>(i));
  }
}

TEST(Pipeline, ErrorsNameDatasetStepAndKey) {
  auto expect_error = [](const std::string& json, const std::string& needle) {
    try {
      compile(json);
      FAIL() << "no error for " << json;
    } catch (const PipelineError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("dataset a/t/d"), std::string::npos) << e.what();
    }
  };
  expect_error(R"([{"frobnicate": {}}])", "unknown step kind 'frobnicate'");
  expect_error(R"([{"add": {"field": "x", "value": 1, "vaule": 2}}])", "unknown option 'vaule'");
  expect_error(R"([{"add": {"field": "x"}}, {"remove": {}}])", "step 1");
  expect_error(R"([{"add": {"field": "x", "value": 1}}, {"remove": {}}])", "step 2");
  expect_error(R"([{"rename": {"from": "a"}}])", "missing option 'to'");
  expect_error(R"([{"add": {}, "remove": {}}])", "one key");
}

TEST(Pipeline, EmptyPipelineIsPassthrough) {
  auto p = compile("[]");
  std::vector<Event> events{Event{{"a", 1}}};
  events = p.run(std::move(events)).events;
  EXPECT_EQ(events[0], (Event{{"a", 1}}));
}

TEST(Pipeline, EmptyFieldPathSegmentsAreRejected) {
  EXPECT_THROW(compile(R"([{"add": {"field": "a..b", "value": 1}}])"), PipelineError);
  EXPECT_THROW(compile(R"([{"remove": {"field": ""}}])"), PipelineError);
  EXPECT_THROW(compile(R"([{"rename": {"from": "a.", "to": "b"}}])"), PipelineError);
}

// The piper decodes each batch into one BatchArena (DESIGN.md §3); every step must
// give the same events there as on the heap, including values written from what a
// step keeps (the set constant, the lookup row) and intermediate objects. Two batches
// in turn reuse the blocks the first gave back; an arena opened inside another's life
// takes blocks of its own.
TEST(Pipeline, BatchArenaGivesTheSameEventsAsTheHeap) {
  const std::string csv_path = ::testing::TempDir() + "/arena_hosts.csv";
  {
    FILE* f = std::fopen(csv_path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("host,owner,site\nweb-1,ops,ams\nweb-2,dev,\n", f);
    std::fclose(f);
  }
  auto p = compile(R"j([
    {"grok": {"field": "_raw", "patterns": "^%{NOTSPACE:host} %{INT:n:int} from %{IP:ip} %{GREEDYDATA:msg}$"}},
    {"grok": {"field": "msg", "patterns": "%{WORD:first}", "target": "parsed.words"}},
    {"date_parse": {"field": "ts", "formats": "epoch_s"}},
    {"set": {"field": "net.zone", "value": {"name": "internal", "tags": ["a", "b"]}, "if": "cidr_match(ip, \"10.0.0.0/8\")"}},
    {"lookup": {"field": "host", "file": ")j" + csv_path + R"j("}},
    {"lookup": {"field": "host", "file": ")j" + csv_path + R"j(", "target": "asset"}},
    {"copy": {"from": "asset", "to": "asset_copy"}},
    {"remove": {"fields": ["_raw", "ts"]}},
    {"rename": {"from": "msg", "to": "message"}},
    {"drop": {"if": "n == 3"}}
  ])j");
  std::vector<Event> events;
  for (int i = 0; i < 50; ++i)
    events.push_back(Event{{"_raw", "web-" + std::to_string(i % 3) + " " + std::to_string(i % 5) + " from " +
                                        (i % 2 ? "10.1.2." : "192.0.2.") + std::to_string(i) + " hello world " +
                                        std::string(static_cast<size_t>(i), 'x')},
                           {"ts", 1700000000 + i}});
  const std::string raw = encode_batch(events);
  auto on_heap = p.run(decode_batch(raw));
  ASSERT_EQ(on_heap.events.size(), 40u);
  ASSERT_TRUE(on_heap.dead_letters.empty());
  for (int round = 0; round < 2; ++round) {
    BatchArena arena;
    auto in_arena = p.run(decode_batch(raw, size_t(1) << 30, arena.storage()));
    {
      BatchArena inner;  // beside the outer one, on the same thread
      auto again = p.run(decode_batch(raw, size_t(1) << 30, inner.storage()));
      EXPECT_EQ(to_ndjson(again.events), to_ndjson(on_heap.events));
    }
    ASSERT_EQ(in_arena.events.size(), on_heap.events.size());
    for (size_t i = 0; i < in_arena.events.size(); ++i) {
      EXPECT_EQ(in_arena.events[i], on_heap.events[i]) << i;
      EXPECT_EQ(*in_arena.events[i].storage(), *arena.storage());
    }
    EXPECT_EQ(in_arena.events[1].at("owner").as_string(), "ops");
    EXPECT_FALSE(in_arena.events[2].contains("site"));  // an empty value is not written
    EXPECT_EQ(in_arena.events[1].at("net").at("zone").at("tags").as_array().size(), 2u);
  }
}
