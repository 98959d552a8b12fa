#include "piper/preview.h"

#include <boost/json/parse.hpp>

namespace bf {
namespace json = boost::json;

std::vector<Event> parse_preview_input(std::string_view text, const PreviewLimits& limits, json::array& errors) {
  if (text.size() > limits.max_input_bytes)
    throw PreviewInputError("the sample events are " + std::to_string(text.size()) + " bytes, more than the preview's limit of " +
                            std::to_string(limits.max_input_bytes));
  std::vector<Event> events;
  size_t line = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ' || l.back() == '\t')) l.remove_suffix(1);
    if (l.empty()) continue;
    json::error_code ec;
    json::value v = json::parse(l, ec);
    if (ec || !v.is_object()) {
      errors.push_back(json::object{{"line", line}, {"error", ec ? "invalid JSON: " + ec.message() : "not a JSON object"}});
      continue;
    }
    if (events.size() == limits.max_events)
      throw PreviewInputError("more than " + std::to_string(limits.max_events) + " sample events (the preview's limit)");
    events.push_back(std::move(v.get_object()));
  }
  return events;
}

namespace {

std::string join_path(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

// Dotted paths of what differs between two objects, descending into objects present in both.
void diff(const json::object& before, const json::object& after, const std::string& prefix, json::array& added,
          json::array& removed, json::array& changed) {
  for (const auto& kv : before) {
    const std::string path = join_path(prefix, kv.key());
    auto it = after.find(kv.key());
    if (it == after.end()) {
      removed.push_back(json::string(path));
    } else if (kv.value().is_object() && it->value().is_object()) {
      diff(kv.value().get_object(), it->value().get_object(), path, added, removed, changed);
    } else if (kv.value() != it->value()) {
      changed.push_back(json::string(path));
    }
  }
  for (const auto& kv : after) {
    if (!before.contains(kv.key())) added.push_back(json::string(join_path(prefix, kv.key())));
  }
}

class Tracer final : public StepObserver {
 public:
  explicit Tracer(const Pipeline& p) : pipeline_(p) {}
  json::array steps;
  void step(size_t index, const Event& before, StepResult result, const Event* after, size_t outputs,
            const std::string& error) override {
    json::object s{{"step", index + 1}, {"kind", pipeline_.kind(index)}};
    const bool route = pipeline_.kind(index) == "route";
    if (result == StepResult::fail) {
      s["result"] = "failed";
      s["error"] = error;
    } else if (result == StepResult::drop) {
      s["result"] = "dropped";
    } else if (route) {
      s["result"] = after ? "copied" : "moved";
    } else {
      json::array added, removed, changed;
      diff(before, *after, "", added, removed, changed);
      const bool expanded = outputs != 1 || pipeline_.kind(index) == "explode";
      s["result"] = expanded ? "expanded" : added.empty() && removed.empty() && changed.empty() ? "unchanged" : "changed";
      if (expanded) s["events"] = outputs;
      if (!added.empty()) s["added"] = std::move(added);
      if (!removed.empty()) s["removed"] = std::move(removed);
      if (!changed.empty()) s["changed"] = std::move(changed);
    }
    steps.push_back(std::move(s));
  }

 private:
  const Pipeline& pipeline_;
};


}  // namespace

json::object preview_pipeline(const json::array& steps, std::vector<Event> events, const std::string& where,
                              const PipelineContext* context) {
  const Pipeline pipeline = Pipeline::compile(steps, where, context);
  json::array output, dead, trace;
  json::object routed;
  size_t dropped = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    // One event at a time, so each trace belongs to one input event (explode's children
    // report their later steps in the same trace).
    Tracer tracer(pipeline);
    PipelineOutput out = pipeline.run({std::move(events[i])}, tracer);
    for (auto& e : out.events) output.push_back(std::move(e));
    for (auto& e : out.dead_letters) dead.push_back(std::move(e));
    for (auto& [target, evs] : out.routed) {
      json::value& slot = routed[target];
      if (!slot.is_array()) slot = json::array();
      for (auto& e : evs) slot.get_array().push_back(std::move(e));
    }
    dropped += out.dropped;
    trace.push_back(json::object{{"input", i + 1}, {"steps", std::move(tracer.steps)}});
  }
  return json::object{{"output", std::move(output)}, {"routed", std::move(routed)}, {"dead_letters", std::move(dead)},
                      {"dropped", dropped}, {"trace", std::move(trace)}};
}

}  // namespace bf
