// The pipeline preview behind `bytefreezer pipeline test` and POST /api/v1/pipelines/preview.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/ulid.h"
#include "piper/preview.h"

using namespace bf;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {
json::array steps(const std::string& text) { return json::parse(text).as_array(); }
std::vector<std::string> strings(const json::value& v) {
  std::vector<std::string> out;
  for (const auto& s : v.as_array()) out.emplace_back(s.as_string());
  return out;
}
}  // namespace

TEST(Preview, ReportsWhatEachStepDidToEachEvent) {
  auto r = preview_pipeline(steps(R"([
      {"kv": {}},
      {"rename": {"from": "user", "to": "account.name"}},
      {"coerce": {"field": "code", "type": "int"}},
      {"drop": {"if": "code == 204"}},
      {"route": {"to": "errors", "mode": "move", "if": "code >= 500"}},
      {"remove": {"field": "message", "if": "false"}}])"),
                            {json::parse(R"({"message": "user=ann code=200"})").as_object(),
                             json::parse(R"({"message": "user=bob code=204"})").as_object(),
                             json::parse(R"({"message": "user=cy code=503"})").as_object(),
                             json::parse(R"({"message": "user=dee code=x"})").as_object()},
                            "pipeline");
  ASSERT_EQ(r.at("output").as_array().size(), 1u);
  EXPECT_EQ(r.at("output").at(0).at("account").at("name"), "ann");
  EXPECT_EQ(r.at("output").at(0).at("code"), 200);
  EXPECT_EQ(r.at("routed").at("errors").as_array().size(), 1u);
  EXPECT_EQ(r.at("dropped"), 1);
  ASSERT_EQ(r.at("dead_letters").as_array().size(), 1u);
  EXPECT_EQ(std::string(r.at("dead_letters").at(0).at("_error").as_string()).rfind("step 3 (coerce): ", 0), 0u);
  const auto& trace = r.at("trace").as_array();
  ASSERT_EQ(trace.size(), 4u);
  // Steps whose if: was false are left out.
  const auto& first = trace[0].at("steps").as_array();
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].at("kind"), "kv");
  EXPECT_EQ(first[0].at("result"), "changed");
  EXPECT_EQ(strings(first[0].at("added")), (std::vector<std::string>{"user", "code"}));
  EXPECT_EQ(strings(first[1].at("added")), (std::vector<std::string>{"account"}));
  EXPECT_EQ(strings(first[1].at("removed")), (std::vector<std::string>{"user"}));
  EXPECT_EQ(strings(first[2].at("changed")), (std::vector<std::string>{"code"}));
  const auto& second = trace[1].at("steps").as_array();
  ASSERT_EQ(second.size(), 4u);
  EXPECT_EQ(second[3].at("result"), "dropped");
  const auto& third = trace[2].at("steps").as_array();
  ASSERT_EQ(third.size(), 4u);
  EXPECT_EQ(third[3].at("kind"), "route");
  EXPECT_EQ(third[3].at("result"), "moved");
  const auto& fourth = trace[3].at("steps").as_array();
  ASSERT_EQ(fourth.size(), 3u);
  EXPECT_EQ(fourth[2].at("result"), "failed");
  EXPECT_EQ(json::value(fourth[2].at("error")), json::value(std::string(r.at("dead_letters").at(0).at("_error").as_string()).substr(17)));
}

TEST(Preview, ExplodeAndNestedChangesAndCompileErrors) {
  auto r = preview_pipeline(steps(R"([{"explode": {"field": "to", "target": "rcpt"}}, {"set": {"field": "meta.n", "value": 1}}])"),
                            {json::parse(R"({"to": ["a", "b", "c"], "meta": {"n": 0, "k": 1}})").as_object()}, "pipeline");
  EXPECT_EQ(r.at("output").as_array().size(), 3u);
  const auto& s = r.at("trace").at(0).at("steps").as_array();
  ASSERT_EQ(s.size(), 4u);  // explode once, then set on each of its three events
  EXPECT_EQ(s[0].at("result"), "expanded");
  EXPECT_EQ(s[0].at("events"), 3);
  EXPECT_EQ(strings(s[1].at("changed")), (std::vector<std::string>{"meta.n"}));
  EXPECT_THROW(preview_pipeline(steps(R"([{"nope": {}}])"), {}, "pipeline"), PipelineError);
}

TEST(Preview, InputIsBoundedAndBadLinesAreReportedNotFatal) {
  json::array errors;
  auto events = parse_preview_input("{\"a\": 1}\nnot json\n\n[1]\n{\"b\": 2}\r\n", PreviewLimits{}, errors);
  EXPECT_EQ(events.size(), 2u);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].at("line"), 2);
  EXPECT_EQ(errors[1].at("line"), 4);
  EXPECT_EQ(errors[1].at("error"), "not a JSON object");
  PreviewLimits small{2, 100};
  EXPECT_THROW(parse_preview_input("{}\n{}\n{}\n", small, errors), PreviewInputError);
  EXPECT_THROW(parse_preview_input(std::string(101, ' '), small, errors), PreviewInputError);
}

TEST(Preview, CommandPrintsTraceOutputAndErrors) {
  const fs::path dir = fs::temp_directory_path() / ("bf-preview-" + new_ulid());
  fs::create_directories(dir);
  std::ofstream(dir / "pipeline.yaml") << "- kv: {}\n- sample: {rate: 1}\n- route: {to: alerts, if: 'level == \"error\"'}\n";
  std::istringstream in("{\"message\": \"level=error code=1\"}\n{oops\n");
  std::ostringstream out, err;
  EXPECT_EQ(pipeline_test_command((dir / "pipeline.yaml").string(), "", false, in, out, err), 0) << err.str();
  const std::string text = out.str();
  EXPECT_NE(text.find("step 1 (kv): changed — added level, code"), std::string::npos) << text;
  EXPECT_NE(text.find("step 2 (sample): changed — added _sample_rate"), std::string::npos) << text;
  EXPECT_NE(text.find("step 3 (route): copied"), std::string::npos) << text;
  EXPECT_NE(text.find("routed to alerts (1 event):"), std::string::npos) << text;
  EXPECT_NE(text.find("output (1 event):"), std::string::npos) << text;
  EXPECT_NE(text.find("line 2: invalid JSON"), std::string::npos) << text;
  // A full config needs --dataset; with it, route targets are checked against the tenant.
  std::ofstream(dir / "full.yaml") << "accounts:\n  - id: acme\n    tenants:\n      - id: web\n        datasets:\n"
                                      "          - id: logs\n            pipeline:\n              - route: {to: alerts}\n";
  std::istringstream none("");
  std::ostringstream out2, err2;
  EXPECT_EQ(pipeline_test_command((dir / "full.yaml").string(), "", false, none, out2, err2), 1);
  EXPECT_NE(err2.str().find("--dataset"), std::string::npos) << err2.str();
  std::ostringstream out3, err3;
  EXPECT_EQ(pipeline_test_command((dir / "full.yaml").string(), "web/logs", true, none, out3, err3), 1);
  EXPECT_NE(err3.str().find("dataset acme/web/logs: pipeline step 1 (route): option 'to': unknown dataset 'alerts'"), std::string::npos)
      << err3.str();
  fs::remove_all(dir);
}
