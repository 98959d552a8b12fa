#include <algorithm>

#include "piper/transform.h"

namespace bf {

StepOptions::StepOptions(const boost::json::object& options, std::string where)
    : options_(options), where_(std::move(where)) {}

void StepOptions::fail(const std::string& message) const { throw PipelineError(where_ + ": " + message); }

bool StepOptions::has(const std::string& key) const {
  used_.push_back(key);
  return options_.contains(key);
}

const boost::json::value& StepOptions::value(const std::string& key) const {
  used_.push_back(key);
  auto it = options_.find(key);
  if (it == options_.end()) fail("missing option '" + key + "'");
  return it->value();
}

std::string StepOptions::str(const std::string& key) const {
  const auto& v = value(key);
  if (!v.is_string()) fail("option '" + key + "' must be a string");
  return std::string(v.get_string());
}

std::string StepOptions::str(const std::string& key, const std::string& def) const {
  return has(key) ? str(key) : def;
}

bool StepOptions::boolean(const std::string& key, bool def) const {
  if (!has(key)) return def;
  const auto& v = value(key);
  if (!v.is_bool()) fail("option '" + key + "' must be true or false");
  return v.get_bool();
}

std::vector<std::string> StepOptions::str_list(const std::string& key) const {
  const auto& v = value(key);
  if (v.is_string()) return {std::string(v.get_string())};
  std::vector<std::string> out;
  if (v.is_array()) {
    for (const auto& item : v.get_array()) {
      if (!item.is_string()) fail("option '" + key + "' must be a string or a list of strings");
      out.emplace_back(item.get_string());
    }
    return out;
  }
  fail("option '" + key + "' must be a string or a list of strings");
}

void StepOptions::check_unknown() const {
  for (const auto& kv : options_) {
    std::string key(kv.key());
    if (std::find(used_.begin(), used_.end(), key) == used_.end()) fail("unknown option '" + key + "'");
  }
}

FieldPath FieldPath::parse(const std::string& dotted) {
  FieldPath path;
  size_t pos = 0;
  while (true) {
    size_t dot = dotted.find('.', pos);
    path.parts.push_back(dotted.substr(pos, dot - pos));
    if (path.parts.back().empty()) throw PipelineError("field path '" + dotted + "' has an empty segment");
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return path;
}

FieldPath StepOptions::field(const std::string& key) const {
  std::string dotted = str(key);
  try {
    return FieldPath::parse(dotted);
  } catch (const PipelineError& e) {
    fail("option '" + key + "': " + e.what());
  }
}

boost::json::value* find_field(Event& event, const FieldPath& path) {
  boost::json::object* obj = &event;
  for (size_t i = 0; i < path.parts.size(); ++i) {
    auto it = obj->find(path.parts[i]);
    if (it == obj->end()) return nullptr;
    if (i + 1 == path.parts.size()) return &it->value();
    if (!it->value().is_object()) return nullptr;
    obj = &it->value().get_object();
  }
  return nullptr;
}

void set_field(Event& event, const FieldPath& path, boost::json::value value) {
  boost::json::object* obj = &event;
  for (size_t i = 0; i + 1 < path.parts.size(); ++i) {
    boost::json::value& next = (*obj)[path.parts[i]];
    if (!next.is_object()) next = boost::json::object();
    obj = &next.get_object();
  }
  (*obj)[path.parts.back()] = std::move(value);
}

std::optional<boost::json::value> take_field(Event& event, const FieldPath& path) {
  boost::json::object* obj = &event;
  for (size_t i = 0; i + 1 < path.parts.size(); ++i) {
    auto it = obj->find(path.parts[i]);
    if (it == obj->end() || !it->value().is_object()) return std::nullopt;
    obj = &it->value().get_object();
  }
  auto it = obj->find(path.parts.back());
  if (it == obj->end()) return std::nullopt;
  boost::json::value v = std::move(it->value());
  obj->erase(it);
  return v;
}

Pipeline Pipeline::compile(const boost::json::array& steps, const std::string& where) {
  Pipeline p;
  for (size_t i = 0; i < steps.size(); ++i) {
    std::string step_where = where + ": pipeline step " + std::to_string(i + 1);
    const auto& step = steps[i];
    if (!step.is_object() || step.get_object().size() != 1)
      throw PipelineError(step_where + ": a step is an object with one key naming its kind, e.g. {\"add\": {...}}");
    const auto& kv = *step.get_object().begin();
    std::string kind(kv.key());
    const TransformFactory* factory = nullptr;
    for (const auto& f : transform_factories()) {
      if (f.type == kind) factory = &f;
    }
    if (!factory) {
      std::string known;
      for (const auto& f : transform_factories()) known += (known.empty() ? "" : ", ") + f.type;
      throw PipelineError(step_where + ": unknown step kind '" + kind + "' (known: " + known + ")");
    }
    static const boost::json::object kEmpty;
    if (!kv.value().is_object() && !kv.value().is_null())
      throw PipelineError(step_where + " (" + kind + "): options must be an object");
    StepOptions options(kv.value().is_object() ? kv.value().get_object() : kEmpty, step_where + " (" + kind + ")");
    p.steps_.push_back(factory->create(options));
    p.kinds_.push_back(kind);
    options.check_unknown();
  }
  return p;
}

void Pipeline::apply(std::vector<Event>& events) const {
  for (const auto& step : steps_) step->apply(events);
}

void Pipeline::apply(std::vector<Event>& events, std::vector<uint64_t>& removed) const {
  removed.resize(steps_.size());
  for (size_t i = 0; i < steps_.size(); ++i) {
    const size_t before = events.size();
    steps_[i]->apply(events);
    if (events.size() < before) removed[i] += before - events.size();
  }
}

}  // namespace bf
