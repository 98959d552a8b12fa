#include <re2/re2.h>

#include <algorithm>
#include <optional>

#include "piper/expr/expr.h"
#include "piper/transform.h"

namespace bf {

StepOptions::StepOptions(const boost::json::object& options, std::string where, const PipelineContext* context)
    : options_(options), where_(std::move(where)), context_(context) {}

std::vector<Event>& PipelineOutput::routed_to(const std::string& dataset) {
  for (auto& [target, events] : routed) {
    if (target == dataset) return events;
  }
  return routed.emplace_back(dataset, std::vector<Event>{}).second;
}

size_t PipelineOutput::routed_count() const {
  size_t n = 0;
  for (const auto& r : routed) n += r.second.size();
  return n;
}

void StepOptions::fail(const std::string& message) const { throw PipelineError(where_ + ": " + message); }
void StepOptions::fail(const std::string& key, const std::string& message) const {
  fail("option '" + key + "': " + message);
}

StepResult Transform::expand(Event&, std::vector<Event>&, std::string& error) const {
  error = "internal: step does not expand";
  return StepResult::fail;
}

void Transform::apply_batch(const std::vector<Event*>& events, std::vector<StepResult>& results,
                            std::vector<std::string>& errors) const {
  for (size_t i = 0; i < events.size(); ++i) results[i] = apply(*events[i], errors[i]);
}

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
  if (!v.is_string()) fail(key, "must be a string");
  return std::string(v.get_string());
}

std::string StepOptions::str(const std::string& key, const std::string& def) const {
  return has(key) ? str(key) : def;
}

bool StepOptions::boolean(const std::string& key, bool def) const {
  if (!has(key)) return def;
  const auto& v = value(key);
  if (!v.is_bool()) fail(key, "must be true or false");
  return v.get_bool();
}

std::vector<std::string> StepOptions::str_list(const std::string& key) const {
  const auto& v = value(key);
  if (v.is_string()) return {std::string(v.get_string())};
  std::vector<std::string> out;
  if (v.is_array()) {
    for (const auto& item : v.get_array()) {
      if (!item.is_string()) fail(key, "must be a string or a list of strings");
      out.emplace_back(item.get_string());
    }
    return out;
  }
  fail(key, "must be a string or a list of strings");
}

void StepOptions::check_unknown() const {
  for (const auto& kv : options_) {
    std::string key(kv.key());
    if (std::find(used_.begin(), used_.end(), key) == used_.end()) fail("unknown option '" + key + "'");
  }
}

std::string StepOptions::nonempty(const std::string& key, const std::string& def) const {
  std::string v = str(key, def);
  if (v.empty()) fail(key, "must not be empty");
  return v;
}

int64_t StepOptions::integer(const std::string& key, int64_t def, int64_t min, int64_t max) const {
  if (!has(key)) return def;
  const auto& v = value(key);
  std::optional<int64_t> n;
  if (v.is_int64()) n = v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) n = static_cast<int64_t>(v.get_uint64());
  if (!n) fail(key, "must be an integer");
  if (*n < min || *n > max) fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  return *n;
}

std::string StepOptions::choice(const std::string& key, const std::string& def,
                                const std::vector<std::string>& allowed) const {
  std::string v = str(key, def);
  if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return v;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  fail(key, "'" + v + "' is not one of " + list);
}

const boost::json::object& StepOptions::object(const std::string& key) const {
  const auto& v = value(key);
  if (!v.is_object()) fail(key, "must be an object (a map)");
  return v.get_object();
}

std::vector<std::string> StepOptions::str_list(const std::string& key, std::vector<std::string> def) const {
  return has(key) ? str_list(key) : def;
}

std::vector<FieldPath> StepOptions::fields(const std::string& key) const {
  std::vector<FieldPath> out;
  for (const auto& name : str_list(key)) {
    try {
      out.push_back(FieldPath::parse(name));
    } catch (const PipelineError& e) {
      fail(key, e.what());
    }
  }
  if (out.empty()) fail(key, "no fields given");
  return out;
}

FieldPath StepOptions::field(const std::string& key, const std::string& def) const {
  if (!has(key)) return FieldPath::parse(def);
  return field(key);
}

std::shared_ptr<const re2::RE2> StepOptions::regex(const std::string& key) const {
  std::string pattern = str(key);
  RE2::Options opts;
  opts.set_log_errors(false);
  auto re = std::make_shared<const RE2>(pattern, opts);
  if (!re->ok()) fail(key, "invalid regex: " + re->error());
  return re;
}

std::shared_ptr<const Expr> StepOptions::expr(const std::string& key) const {
  std::string source = str(key);
  try {
    return std::make_shared<const Expr>(Expr::compile(source));
  } catch (const PipelineError& e) {
    fail(key, e.what());
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

Pipeline Pipeline::compile(const boost::json::array& steps, const std::string& where, const PipelineContext* context) {
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
    StepOptions options(kv.value().is_object() ? kv.value().get_object() : kEmpty, step_where + " (" + kind + ")", context);
    Step s;
    s.kind = kind;
    if (options.has("if")) s.condition = options.expr("if");
    s.transform = factory->create(options);
    options.check_unknown();
    p.steps_.push_back(std::move(s));
  }
  return p;
}

void Pipeline::count_as(const Labels& labels) {
  for (size_t i = 0; i < steps_.size(); ++i) {
    Labels l = labels;
    l.emplace_back("step", std::to_string(i + 1));
    l.emplace_back("kind", steps_[i].kind);
    steps_[i].dropped = &metrics().counter("bf_piper_step_dropped_events_total",
                                           "Events a pipeline step removed on purpose (drop, empty explode)", l);
    steps_[i].failed = &metrics().counter("bf_piper_step_failed_events_total",
                                          "Events a pipeline step could not transform (sent to the dead-letter output)", l);
    steps_[i].transform->count_as(l);
  }
}

void Pipeline::fail_event(size_t i, Event& e, const std::string& error, PipelineOutput& out,
                          std::vector<Counts>& counts) const {
  e["_error"] = "step " + std::to_string(i + 1) + " (" + steps_[i].kind + "): " + error;
  ++counts[i].failed;
  out.dead_letters.push_back(std::move(e));
}

void Pipeline::run_event(size_t first, size_t end, Event& e, std::vector<Event>& kept, PipelineOutput& out,
                         std::vector<Counts>& counts, StepObserver* observer) const {
  std::string error;
  for (size_t i = first; i < end; ++i) {
    const Step& s = steps_[i];
    if (s.condition && !s.condition->test(e)) continue;
    std::optional<Event> before;
    if (observer) before = e;
    if (const RouteSpec* route = s.transform->route()) {
      const auto& targets = route->targets;
      for (size_t t = 0; t < targets.size(); ++t) {
        std::vector<Event>& dest = out.routed_to(targets[t]);
        if (route->move && t + 1 == targets.size()) {
          dest.push_back(std::move(e));
        } else {
          dest.push_back(e);
        }
      }
      if (route->move) {
        if (observer) observer->step(i, *before, StepResult::keep, nullptr, 0, error);
        return;
      }
      if (observer) observer->step(i, *before, StepResult::keep, &e, 1, error);
      continue;
    }
    StepResult r;
    std::vector<Event> children;
    try {
      r = s.transform->expands() ? s.transform->expand(e, children, error) : s.transform->apply(e, error);
    } catch (const std::exception& ex) {  // a bug or an exhausted resource, not the event's fault alone
      r = StepResult::fail;
      error = std::string("internal error: ") + ex.what();
    }
    if (r == StepResult::fail) {
      if (observer) observer->step(i, *before, r, nullptr, 0, error);
      return fail_event(i, e, error, out, counts);
    }
    if (r == StepResult::drop || (s.transform->expands() && children.empty())) {
      if (observer) observer->step(i, *before, StepResult::drop, nullptr, 0, error);
      ++counts[i].dropped;
      ++out.dropped;
      return;
    }
    if (s.transform->expands()) {
      if (observer) observer->step(i, *before, r, &children.front(), children.size(), error);
      for (Event& child : children) run_event(i + 1, end, child, kept, out, counts, observer);
      return;
    }
    if (observer) observer->step(i, *before, r, &e, 1, error);
  }
  kept.push_back(std::move(e));
}

// Reused from batch to batch on a thread: ten thousand empty error strings made and
// freed per batched step cost more than most steps' own work.
struct Pipeline::BatchScratch {
  std::vector<Event*> selected;
  std::vector<size_t> index;  // position in `events` of each selected event
  std::vector<StepResult> results;
  std::vector<std::string> errors;
  bool busy = false;  // a pipeline run from inside a step gets arrays of its own
};

void Pipeline::run_batched(size_t i, std::vector<Event>& events, PipelineOutput& out, std::vector<Counts>& counts,
                           StepObserver* observer, BatchScratch& scratch) const {
  const Step& s = steps_[i];
  auto& selected = scratch.selected;
  auto& index = scratch.index;
  selected.clear();
  index.clear();
  for (size_t k = 0; k < events.size(); ++k) {
    if (s.condition && !s.condition->test(events[k])) continue;
    selected.push_back(&events[k]);
    index.push_back(k);
  }
  if (selected.empty()) return;
  auto& results = scratch.results;
  auto& errors = scratch.errors;
  results.assign(selected.size(), StepResult::keep);
  errors.resize(selected.size());
  for (auto& e : errors) e.clear();
  std::vector<Event> before;
  if (observer)
    for (const Event* e : selected) before.push_back(*e);
  try {
    s.transform->apply_batch(selected, results, errors);
  } catch (const std::exception& ex) {  // as in run_event: every selected event fails
    std::fill(results.begin(), results.end(), StepResult::fail);
    std::fill(errors.begin(), errors.end(), std::string("internal error: ") + ex.what());
  }
  // The kept events move up in place: no second array per batched step (freeing a
  // batch-sized block makes malloc consolidate every small chunk freed before it).
  size_t next = 0;  // into selected/results
  size_t kept = 0;
  for (size_t k = 0; k < events.size(); ++k) {
    StepResult r = StepResult::keep;
    if (next < index.size() && index[next] == k) {
      r = results[next];
      if (observer) observer->step(i, before[next], r, r == StepResult::keep ? &events[k] : nullptr, 1, errors[next]);
      ++next;
    }
    if (r == StepResult::fail) {
      fail_event(i, events[k], errors[next - 1], out, counts);
    } else if (r == StepResult::drop) {
      ++counts[i].dropped;
      ++out.dropped;
    } else {
      if (kept != k) events[kept] = std::move(events[k]);
      ++kept;
    }
  }
  events.erase(events.begin() + static_cast<std::ptrdiff_t>(kept), events.end());
}

PipelineOutput Pipeline::run(std::vector<Event> events) const { return run_all(std::move(events), nullptr); }

PipelineOutput Pipeline::run(std::vector<Event> events, StepObserver& observer) const {
  return run_all(std::move(events), &observer);
}

PipelineOutput Pipeline::run_all(std::vector<Event> events, StepObserver* observer) const {
  PipelineOutput out;
  if (steps_.empty()) {
    out.events = std::move(events);
    return out;
  }
  std::vector<Counts> counts(steps_.size());
  // Event by event through runs of ordinary steps; a batched step sees the whole
  // batch as the steps before it left it. Event order is kept either way. The runs
  // take turns with two arrays (`spare` keeps its capacity from one run to the next).
  std::vector<Event> spare;
  thread_local BatchScratch kept_per_thread;
  BatchScratch own;
  BatchScratch& scratch = kept_per_thread.busy ? own : kept_per_thread;
  struct Release {
    BatchScratch& s;
    ~Release() { s.busy = false; }
  } release{scratch};
  scratch.busy = true;
  for (size_t first = 0; first < steps_.size();) {
    if (steps_[first].transform->batched()) {
      run_batched(first, events, out, counts, observer, scratch);
      ++first;
      continue;
    }
    size_t end = first;
    while (end < steps_.size() && !steps_[end].transform->batched()) ++end;
    spare.clear();
    spare.reserve(events.size());
    for (Event& e : events) run_event(first, end, e, spare, out, counts, observer);
    events.swap(spare);
    first = end;
  }
  out.events = std::move(events);
  // Once per batch: the counters are shared atomics.
  out.dropped_by_step.resize(steps_.size());
  for (size_t i = 0; i < steps_.size(); ++i) {
    out.dropped_by_step[i] = counts[i].dropped;
    if (steps_[i].dropped && counts[i].dropped) steps_[i].dropped->inc(counts[i].dropped);
    if (steps_[i].failed && counts[i].failed) steps_[i].failed->inc(counts[i].failed);
  }
  return out;
}

}  // namespace bf
