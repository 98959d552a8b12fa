// `bytefreezer pipeline test`: the preview (piper/preview.h) on the command line.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "common/catalog.h"
#include "common/config.h"
#include "piper/piper.h"
#include "piper/preview.h"

namespace bf {
namespace json = boost::json;

namespace {

std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }

// The steps of a file that holds a list of steps or a mapping with `pipeline:`.
json::array steps_of_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw ConfigError("cannot read " + path);
  std::string text = read_all(f);
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '-') {  // a bare list: nest it under pipeline:
    std::string nested = "pipeline:\n";
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) nested += "  " + line + "\n";
    text = std::move(nested);
  }
  ConfigNode root = ConfigNode::parse(text, path);
  if (root.has("accounts")) throw ConfigError(path + ": a full config: name the dataset to try with --dataset tenant/dataset");
  json::value v = json::parse(root.json("pipeline"));
  if (!v.is_array()) throw ConfigError(path + ": expected a list of steps, or `pipeline:` with one");
  return std::move(v.get_array());
}

std::string list(const json::value* v) {
  std::string out;
  if (!v) return out;
  for (const auto& p : v->get_array()) out += (out.empty() ? "" : ", ") + std::string(p.get_string());
  return out;
}

void print_events(std::ostream& out, const std::string& title, const json::array& events) {
  out << title << " (" << events.size() << (events.size() == 1 ? " event" : " events") << "):\n";
  for (const auto& e : events) out << json::serialize(e) << "\n";
}

void print_text(std::ostream& out, const json::object& r, const json::array& input_errors) {
  for (const auto& t : r.at("trace").get_array()) {
    out << "event " << t.at("input").to_number<int64_t>() << ":\n";
    const auto& steps = t.at("steps").get_array();
    if (steps.empty()) out << "  (no step ran)\n";
    for (const auto& sv : steps) {
      const auto& s = sv.get_object();
      out << "  step " << s.at("step").to_number<int64_t>() << " (" << std::string_view(s.at("kind").get_string()) << "): " << std::string_view(s.at("result").get_string());
      if (const auto* n = s.if_contains("events")) out << " into " << n->as_int64();
      std::string detail;
      for (const char* k : {"added", "removed", "changed"}) {
        std::string names = list(s.if_contains(k));
        if (!names.empty()) detail += (detail.empty() ? "" : "; ") + std::string(k) + " " + names;
      }
      if (!detail.empty()) out << " — " << detail;
      if (const auto* e = s.if_contains("error")) out << " — " << std::string_view(e->get_string());
      out << "\n";
    }
  }
  print_events(out, "output", r.at("output").get_array());
  for (const auto& kv : r.at("routed").get_object()) print_events(out, "routed to " + std::string(kv.key()), kv.value().get_array());
  const auto& dead = r.at("dead_letters").get_array();
  if (!dead.empty()) print_events(out, "dead letters", dead);
  if (r.at("dropped").to_number<int64_t>()) out << "dropped: " << r.at("dropped").to_number<int64_t>() << "\n";
  if (!input_errors.empty()) {
    out << "input errors:\n";
    for (const auto& e : input_errors)
      out << "  line " << e.at("line").to_number<int64_t>() << ": " << std::string_view(e.at("error").get_string()) << "\n";
  }
}

}  // namespace

int pipeline_test_command(const std::string& config_path, const std::string& dataset, bool as_json, std::istream& in,
                          std::ostream& out, std::ostream& err) {
  try {
    json::array steps;
    std::optional<PipelineContext> context;
    std::string where = "pipeline";
    if (!dataset.empty()) {
      ConfigNode root = ConfigNode::load_file(config_path);
      Catalog catalog = Catalog::parse(root);
      const DatasetInfo& d = catalog.resolve(dataset);
      steps = d.pipeline;
      context = pipeline_context(catalog, d.ref);
      where = "dataset " + d.ref.str();
    } else {
      steps = steps_of_file(config_path);
    }
    json::array input_errors;
    std::vector<Event> events = parse_preview_input(read_all(in), PreviewLimits{}, input_errors);
    json::object result = preview_pipeline(steps, std::move(events), where, context ? &*context : nullptr);
    if (as_json) {
      result["input_errors"] = std::move(input_errors);
      out << json::serialize(result) << "\n";
    } else {
      print_text(out, result, input_errors);
    }
    return 0;
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace bf
