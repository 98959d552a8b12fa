#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

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
