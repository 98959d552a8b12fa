#include <re2/re2.h>

#include <algorithm>
#include <optional>

#include <boost/json/serialize.hpp>

#include "piper/expr/expr.h"
#include "piper/prefetch.h"
#include "piper/transform.h"
#include "piper/transforms/transforms.h"

namespace bf {

StepOptions::StepOptions(const boost::json::object& options, std::string where, const PipelineContext* context,
                         const OptionSpecs* specs)
    : options_(options), where_(std::move(where)), context_(context), specs_(specs) {}

const OptionSpecs& step_common_options() {
  static const OptionSpecs common{
      Option("if", OptionType::string,
             "a condition (docs/pipelines.md, Expressions): events for which it is false pass the step unchanged")
          .note("every event"),
  };
  return common;
}

namespace {

std::string preview_json(const boost::json::value& v) { return preview(boost::json::serialize(v)); }

const OptionSpec* find_spec(const OptionSpecs* specs, const std::string& key) {
  for (const OptionSpecs* list : {specs, &step_common_options()}) {
    if (!list) continue;
    for (const auto& s : *list)
      if (s.name == key) return &s;
  }
  return nullptr;
}

const char* type_phrase(OptionType t) {
  switch (t) {
    case OptionType::string: return "a string";
    case OptionType::integer: return "an integer";
    case OptionType::number: return "a number";
    case OptionType::boolean: return "true or false";
    case OptionType::size: return "a size (a count of bytes or text like 64KiB)";
    case OptionType::duration: return "a duration (text like 500ms, 5s, 2m)";
    case OptionType::string_list: return "a string or a list of strings";
    case OptionType::string_map: return "an object (a map) of strings";
    case OptionType::any: return "any value";
  }
  return "?";
}

bool is_int(const boost::json::value& v) {
  return v.is_int64() || (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX));
}

bool fits(const boost::json::value& v, OptionType t) {
  switch (t) {
    case OptionType::string: return v.is_string();
    case OptionType::integer: return is_int(v);
    case OptionType::number: return v.is_number();
    case OptionType::boolean: return v.is_bool();
    case OptionType::size: return is_int(v) || v.is_string();
    case OptionType::duration: return v.is_string();
    case OptionType::string_list:
      if (v.is_string()) return true;
      if (!v.is_array()) return false;
      for (const auto& e : v.get_array())
        if (!e.is_string()) return false;
      return true;
    case OptionType::string_map:
      if (!v.is_object()) return false;
      for (const auto& kv : v.get_object())
        if (!kv.value().is_string()) return false;
      return true;
    case OptionType::any: return true;
  }
  return false;
}

std::string known_keys(const OptionSpecs& specs) {
  std::string known;
  for (const auto& s : specs) known += (known.empty() ? "" : ", ") + s.name;
  for (const auto& s : step_common_options()) known += (known.empty() ? "" : ", ") + s.name;
  return known;
}

}  // namespace

void StepOptions::check() const {
  if (!specs_) return;
  for (const auto& kv : options_) {
    const std::string key(kv.key());
    const OptionSpec* spec = find_spec(specs_, key);
    if (!spec) fail("unknown option '" + key + "' (known: " + known_keys(*specs_) + ")");
    if (!fits(kv.value(), spec->type))
      fail(key, std::string("must be ") + type_phrase(spec->type) + ", got " +
                    preview_json(kv.value()));
  }
  for (const auto& spec : *specs_)
    if (spec.required && !options_.contains(spec.name)) fail("missing option '" + spec.name + "'");
  for (const auto& constraint : specs_->constraints) {
    // A key given with null is set (set's `value: null` is a constant), as has() says.
    const std::string err =
        constraint_error(constraint, [&](const std::string& key) { return options_.contains(key); });
    if (!err.empty()) fail(err);
  }
}

const OptionSpec* StepOptions::declared(const std::string& key, OptionType type) const {
  if (!specs_) return nullptr;
  const OptionSpec* spec = find_spec(specs_, key);
  if (!spec) throw std::logic_error(where_ + ": the step reads option '" + key + "', which it does not declare");
  if (type != OptionType::any && spec->type != type)
    throw std::logic_error(where_ + ": option '" + key + "' is declared " + type_phrase(spec->type) +
                           " but read as " + type_phrase(type));
  return spec;
}

const boost::json::value* StepOptions::present(const std::string& key) const {
  used_.push_back(key);
  auto it = options_.find(key);
  return it == options_.end() ? nullptr : &it->value();
}

const std::string& StepOptions::fixed_default(const std::string& key, const OptionSpec* spec) const {
  if (!spec || !spec->default_value || spec->required) fail("missing option '" + key + "'");
  return *spec->default_value;
}

void StepOptions::computed_default(const std::string& key, const OptionSpec* spec) const {
  if (spec && spec->default_value)
    throw std::logic_error(where_ + ": option '" + key + "' has a declared default; the step must not give another");
}

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
const char* const kFileNotOpenedHere =
    "not run here: the control plane does not read enrichment files (they are on the pipers' hosts; try "
    "`bytefreezer pipeline test` there)";

void StepOptions::fail_missing_file(const std::string& key, const std::string& message) const {
  throw PipelineFileError(where_ + ": option '" + key + "': " + message);
}

StepResult Transform::expand(Event&, std::vector<Event>&, std::string& error) const {
  error = "internal: step does not expand";
  return StepResult::fail;
}

void Transform::apply_batch(const std::vector<Event*>& events, std::vector<StepResult>& results,
                            std::vector<std::string>& errors) const {
  for (size_t i = 0; i < events.size(); ++i) results[i] = apply(*events[i], errors[i]);
}

void Transform::apply_slice(const std::vector<Event*>& events, std::vector<StepResult>& results,
                            std::vector<std::string>& errors, BatchState*) const {
  apply_batch(events, results, errors);
}

bool StepOptions::has(const std::string& key) const {
  declared(key, OptionType::any);
  return present(key) != nullptr;
}

const boost::json::value& StepOptions::value(const std::string& key) const {
  declared(key, OptionType::any);
  const boost::json::value* v = present(key);
  if (!v) fail("missing option '" + key + "'");
  return *v;
}

std::string StepOptions::str(const std::string& key) const {
  const OptionSpec* spec = declared(key, OptionType::string);
  const boost::json::value* v = present(key);
  if (!v) return fixed_default(key, spec);
  if (!v->is_string()) fail(key, "must be a string, got " + preview_json(*v));
  return std::string(v->get_string());
}

std::string StepOptions::str(const std::string& key, const std::string& def) const {
  computed_default(key, declared(key, OptionType::string));
  return has(key) ? str(key) : def;
}

std::string StepOptions::nonempty(const std::string& key) const {
  std::string v = str(key);
  if (v.empty()) fail(key, "must not be empty");
  return v;
}

std::string StepOptions::nonempty(const std::string& key, const std::string& def) const {
  std::string v = str(key, def);
  if (v.empty()) fail(key, "must not be empty");
  return v;
}

bool StepOptions::boolean(const std::string& key) const {
  const OptionSpec* spec = declared(key, OptionType::boolean);
  const boost::json::value* v = present(key);
  if (!v) return fixed_default(key, spec) == "true";
  if (!v->is_bool()) fail(key, "must be true or false, got " + preview_json(*v));
  return v->get_bool();
}

int64_t StepOptions::integer(const std::string& key) const {
  const OptionSpec* spec = declared(key, OptionType::integer);
  const boost::json::value* v = present(key);
  int64_t n;
  if (!v) {
    n = std::stoll(fixed_default(key, spec));
  } else if (v->is_int64()) {
    n = v->get_int64();
  } else if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    n = static_cast<int64_t>(v->get_uint64());
  } else {
    fail(key, "must be an integer, got " + preview_json(*v));
  }
  if (spec) {
    const int64_t min = spec->minimum ? option_bound(*spec->minimum) : INT64_MIN;
    const int64_t max = spec->maximum ? option_bound(*spec->maximum) : INT64_MAX;
    if (n < min || n > max) fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return n;
}

namespace {
std::string listed(const std::vector<std::string>& allowed) {
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  return list;
}
}  // namespace

std::string StepOptions::choice(const std::string& key) const {
  const OptionSpec* spec = declared(key, OptionType::string);
  std::string v = str(key);
  if (!spec || std::find(spec->allowed.begin(), spec->allowed.end(), v) != spec->allowed.end()) return v;
  fail(key, "'" + v + "' is not one of " + listed(spec->allowed));
}

std::string StepOptions::choice(const std::string& key, const std::string& def) const {
  computed_default(key, declared(key, OptionType::string));
  return has(key) ? choice(key) : def;
}

std::vector<std::string> StepOptions::str_list(const std::string& key) const {
  const OptionSpec* spec = declared(key, OptionType::string_list);
  const boost::json::value* v = present(key);
  std::vector<std::string> out;
  if (!v) {
    const std::string& d = fixed_default(key, spec);
    for (size_t pos = 0; !d.empty() && pos <= d.size();) {
      const size_t comma = d.find(',', pos);
      out.push_back(d.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    return out;
  }
  if (v->is_string()) {
    out.emplace_back(v->get_string());
  } else if (v->is_array()) {
    for (const auto& item : v->get_array()) {
      if (!item.is_string()) fail(key, "must be a string or a list of strings, got " + preview_json(item) + " in the list");
      out.emplace_back(item.get_string());
    }
  } else {
    fail(key, "must be a string or a list of strings, got " + preview_json(*v));
  }
  if (spec && !spec->allowed.empty())
    for (const auto& item : out)
      if (std::find(spec->allowed.begin(), spec->allowed.end(), item) == spec->allowed.end())
        fail(key, "'" + item + "' is not one of " + listed(spec->allowed));
  return out;
}

std::vector<std::string> StepOptions::str_list(const std::string& key, std::vector<std::string> def) const {
  computed_default(key, declared(key, OptionType::string_list));
  return has(key) ? str_list(key) : def;
}

void StepOptions::check_unknown() const {
  for (const auto& kv : options_) {
    std::string key(kv.key());
    if (std::find(used_.begin(), used_.end(), key) != used_.end()) continue;
    // Declared, but not taken with the other options given (`type` beside `fields`).
    if (specs_ && find_spec(specs_, key)) fail(key, "does not apply with the other options given");
    fail("unknown option '" + key + "'");
  }
}

const boost::json::object& StepOptions::object(const std::string& key) const {
  declared(key, OptionType::string_map);
  const boost::json::value* v = present(key);
  if (!v) fail("missing option '" + key + "'");
  if (!v->is_object()) fail(key, "must be an object (a map), got " + preview_json(*v));
  return v->get_object();
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
  computed_default(key, declared(key, OptionType::string));
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

boost::json::value& member(boost::json::object& obj, std::string_view key) {
  if (obj.size() == obj.capacity())  // else emplace's reserve is free, and one lookup is enough
    if (auto it = obj.find(key); it != obj.end()) return it->value();
  return obj[key];
}

void set_field(Event& event, const FieldPath& path, boost::json::value value) {
  boost::json::object* obj = &event;
  for (size_t i = 0; i + 1 < path.parts.size(); ++i) {
    boost::json::value& next = member(*obj, path.parts[i]);
    if (!next.is_object()) next.emplace_object();
    obj = &next.get_object();
  }
  member(*obj, path.parts.back()) = std::move(value);
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
    const TransformFactory* factory = find_transform_factory(kind);
    if (!factory) {
      std::string known;
      for (const auto& f : transform_factories()) known += (known.empty() ? "" : ", ") + f.type;
      throw PipelineError(step_where + ": unknown step kind '" + kind + "' (known: " + known + ")");
    }
    static const boost::json::object kEmpty;
    if (!kv.value().is_object() && !kv.value().is_null())
      throw PipelineError(step_where + " (" + kind + "): options must be an object");
    StepOptions options(kv.value().is_object() ? kv.value().get_object() : kEmpty, step_where + " (" + kind + ")", context,
                        &factory->options);
    options.check();
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
                           StepObserver* observer, BatchScratch& scratch, Transform::BatchState* state) const {
  const Step& s = steps_[i];
  auto& selected = scratch.selected;
  auto& index = scratch.index;
  selected.clear();
  index.clear();
  for (size_t k = 0; k < events.size(); ++k) {
    if (s.condition && k + 1 < events.size()) prefetch_event(events[k + 1]);
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
    if (state) {
      s.transform->apply_slice(selected, results, errors, state);
    } else {
      s.transform->apply_batch(selected, results, errors);
    }
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

// Events per slice when a run of steps goes over the batch in slices (see run_all):
// at 2–3 KB an event, a slice stays in a core's L2 cache from one step to the next.
constexpr size_t kSliceEvents = 128;

void Pipeline::run_steps(size_t first, size_t end, std::vector<Event>& events, std::vector<Event>& spare,
                         PipelineOutput& out, std::vector<Counts>& counts, StepObserver* observer, BatchScratch& scratch,
                         const std::vector<std::unique_ptr<Transform::BatchState>>* states) const {
  // Event by event through runs of ordinary steps; a batched step sees all the events
  // as the steps before it left them. Event order is kept either way. The runs take
  // turns with two arrays (`spare` keeps its capacity from one run to the next).
  while (first < end) {
    if (steps_[first].transform->batched()) {
      run_batched(first, events, out, counts, observer, scratch, states ? (*states)[first].get() : nullptr);
      ++first;
      continue;
    }
    size_t stop = first;
    while (stop < end && !steps_[stop].transform->batched()) ++stop;
    spare.clear();
    spare.reserve(events.size());
    for (size_t k = 0; k < events.size(); ++k) {
      if (k + 1 < events.size()) prefetch_event(events[k + 1]);
      run_event(first, stop, events[k], spare, out, counts, observer);
    }
    events.swap(spare);
    first = stop;
  }
}

PipelineOutput Pipeline::run_all(std::vector<Event> events, StepObserver* observer) const {
  PipelineOutput out;
  if (steps_.empty()) {
    out.events = std::move(events);
    return out;
  }
  std::vector<Counts> counts(steps_.size());
  std::vector<Event> spare;
  thread_local BatchScratch kept_per_thread;
  BatchScratch own;
  BatchScratch& scratch = kept_per_thread.busy ? own : kept_per_thread;
  struct Release {
    BatchScratch& s;
    ~Release() { s.busy = false; }
  } release{scratch};
  scratch.busy = true;
  // A batch is far larger than the cache: each pass of a batched step over all of it
  // would find every event cold. A run of steps whose batched steps are all sliceable
  // (Transform::sliceable: they take their snapshot once, in begin_batch) goes over
  // the batch a slice at a time instead, every step of the run on one slice before
  // the next. The preview (an observer) runs the plain way.
  std::vector<std::unique_ptr<Transform::BatchState>> states;
  std::vector<Event> slice, done;
  for (size_t first = 0; first < steps_.size();) {
    size_t end = first;
    bool batched = false;
    while (end < steps_.size() && (!steps_[end].transform->batched() || steps_[end].transform->sliceable())) {
      batched |= steps_[end].transform->batched();
      ++end;
    }
    bool sliced = !observer && batched && events.size() > kSliceEvents;
    if (sliced) {
      states.clear();
      states.resize(steps_.size());
      try {
        for (size_t i = first; i < end; ++i)
          if (steps_[i].transform->batched()) states[i] = steps_[i].transform->begin_batch();
      } catch (const std::exception&) {  // run whole: apply_batch's failure fails the events, as in run_batched
        sliced = false;
      }
    }
    if (!sliced) {
      end = std::max(end, first + 1);
      run_steps(first, end, events, spare, out, counts, observer, scratch, nullptr);
      first = end;
      continue;
    }
    done.clear();
    done.reserve(events.size());
    for (size_t at = 0; at < events.size(); at += kSliceEvents) {
      slice.clear();
      const size_t stop = std::min(events.size(), at + kSliceEvents);
      for (size_t k = at; k < stop; ++k) slice.push_back(std::move(events[k]));
      run_steps(first, end, slice, spare, out, counts, nullptr, scratch, &states);
      for (Event& e : slice) done.push_back(std::move(e));
    }
    events.swap(done);
    states.clear();
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
