#pragma once
// The piper's plugin interface for pipeline steps. One file per kind under
// piper/transforms/, each listed in transforms/registry.cpp.
//
// A dataset's pipeline is a JSON list of steps, each an object with exactly one
// key naming the kind: [{"add": {"field": "env", "value": "prod"}}, {"remove": {"field": "x"}}].
// Every step also takes `if:` (a condition, piper/expr/expr.h): events for which it
// is false pass the step unchanged. Reference: docs/pipelines.md.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/batch.h"
#include "common/metrics.h"
#include "common/options.h"

namespace re2 {
class RE2;
}

namespace bf {

class Expr;

// What a `route` step does with the events it selects (transforms/route.cpp): the
// pipeline hands a copy to each target dataset of the same tenant and, with `move`,
// takes the event out of its own output.
struct RouteSpec {
  std::vector<std::string> targets;  // dataset ids in the source's tenant
  bool move = false;
};

// What the pipeline knows about where it runs, for steps that name other datasets.
// Without one (a pipeline tried alone), a route target only has to be a valid id.
struct PipelineContext {
  std::string dataset;                // the pipeline's own dataset
  std::vector<std::string> siblings;  // the other datasets of its tenant
  // false: the control plane — steps that read a file check their options but open
  // nothing; run (the preview), they fail each event saying so.
  bool open_files = true;
  // false: the tenant's datasets are not known — any valid id is a route target.
  bool known_datasets = true;
};
// The error of a file step compiled with open_files false, for each event it is given.
extern const char* const kFileNotOpenedHere;

struct PipelineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A file a step reads (a lookup table, an MMDB database) does not exist on this
// host. The piper holds the dataset's objects until it appears (docs/pipelines.md).
struct PipelineFileError : PipelineError {
  using PipelineError::PipelineError;
};

// What a step did to one event.
enum class StepResult {
  keep,  // (possibly changed) on to the next step
  drop,  // removed on purpose (drop step, empty explode); counted per step on /metrics
  fail,  // the step could not transform it: to the dataset's dead-letter output with _error
};

// A compiled step: immutable after creation (the factory validated its options),
// shared by every batch. The pipeline runs each event through the steps in turn.
class Transform {
 public:
  virtual ~Transform() = default;
  // Changes one event in place. On fail, `error` says why, and the event must be left
  // as the step found it (it is what the dead-letter output keeps).
  virtual StepResult apply(Event& event, std::string& error) const = 0;
  // Steps that make several events of one (explode) return true and implement expand:
  // it appends the new events to `out` (none: the event is dropped) and leaves `event`
  // unchanged on fail.
  virtual bool expands() const { return false; }
  virtual StepResult expand(Event& event, std::vector<Event>& out, std::string& error) const;
  // Non-null for a route step: the pipeline routes the event instead of calling apply.
  virtual const RouteSpec* route() const { return nullptr; }
  // Steps that work better on the whole batch at once (enrichment: one database
  // snapshot, one round of concurrent DNS queries) return true and implement
  // apply_batch: the pipeline runs the steps before it on every event of the batch,
  // then hands this step the events its `if:` selected. It sets results[i] (and
  // errors[i] on fail) for each, with apply's rules; `apply` is then not called.
  virtual bool batched() const { return false; }
  virtual void apply_batch(const std::vector<Event*>& events, std::vector<StepResult>& results,
                           std::vector<std::string>& errors) const;
  // A batched step whose work on one event does not depend on the others' (geoip,
  // lookup; not rdns's round of queries or dynamic sampling's counts) returns true:
  // the pipeline may then hand it the batch in slices, in order, so that a slice of
  // events is still in the cache when the steps after it run. It takes what it reads
  // once per batch (its file's snapshot: one version for the whole batch) in
  // begin_batch, and each slice's apply_slice gets that state. apply_batch must do
  // what begin_batch and one apply_slice over all the events do.
  struct BatchState {
    virtual ~BatchState() = default;
  };
  virtual bool sliceable() const { return false; }
  virtual std::unique_ptr<BatchState> begin_batch() const { return nullptr; }
  virtual void apply_slice(const std::vector<Event*>& events, std::vector<StepResult>& results,
                           std::vector<std::string>& errors, BatchState* state) const;
  // Registers the step's own /metrics series (beyond the pipeline's per-step drop
  // and failure counts) with `labels` (tenant, dataset, step, kind). Called once,
  // before the step runs; without it the step counts into series of its own.
  virtual void count_as(const Labels& labels) { (void)labels; }
};

// A field path: "a.b.c" addresses nested objects. Split once when a step is
// compiled, not per event.
struct FieldPath {
  std::vector<std::string> parts;
  static FieldPath parse(const std::string& dotted);  // throws PipelineError on empty segments
};
// Reads a step's options strictly, by the step's declaration (TransformFactory::options
// plus step_common_options()): check() refuses keys the declaration lacks and values
// of the wrong type; each accessor takes its default, bounds and allowed values from
// the declaration, so what is documented is what is read. Every user error names the
// dataset, step number and kind (`where`) and the key. Reading a key that is not
// declared, with an accessor of another type, or giving a default in code for an
// option whose declaration has one, is a programming error (std::logic_error).
class StepOptions {
 public:
  // `specs` null: nothing declared (checks off; for steps built outside the registry).
  StepOptions(const boost::json::object& options, std::string where, const PipelineContext* context = nullptr,
              const OptionSpecs* specs = nullptr);
  const PipelineContext* context() const { return context_; }  // null: compiled without one
  // Unknown keys, values of the wrong type and missing required options.
  void check() const;
  // Absent: the declared default, else "missing option".
  std::string str(const std::string& key) const;
  // `def`: a default the step computes (the declaration has a note, not a value).
  std::string str(const std::string& key, const std::string& def) const;
  // A non-empty string (separators, patterns): "must not be empty" otherwise.
  std::string nonempty(const std::string& key) const;
  std::string nonempty(const std::string& key, const std::string& def) const;
  FieldPath field(const std::string& key) const;  // a field path
  FieldPath field(const std::string& key, const std::string& def) const;
  std::vector<FieldPath> fields(const std::string& key) const;  // string or list, non-empty
  bool boolean(const std::string& key) const;
  int64_t integer(const std::string& key) const;  // within the declared range
  // One of the declared values, else an error listing them.
  std::string choice(const std::string& key) const;
  std::string choice(const std::string& key, const std::string& def) const;
  const boost::json::value& value(const std::string& key) const;           // required, any JSON
  const boost::json::object& object(const std::string& key) const;         // a map of strings
  std::vector<std::string> str_list(const std::string& key) const;         // string or list
  std::vector<std::string> str_list(const std::string& key, std::vector<std::string> def) const;
  // An RE2 pattern, compiled now; a bad pattern names the key and RE2's message.
  std::shared_ptr<const re2::RE2> regex(const std::string& key) const;
  // A condition-language expression (piper/expr/expr.h), compiled now.
  std::shared_ptr<const Expr> expr(const std::string& key) const;
  bool has(const std::string& key) const;
  // After the step was created: a key given but never read does not apply with the
  // other options (or, without a declaration, is unknown).
  void check_unknown() const;
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;  // "option 'key': message"
  // As fail(key, ...), as a PipelineFileError: the file `key` names is missing.
  [[noreturn]] void fail_missing_file(const std::string& key, const std::string& message) const;
  // False when compiled to validate only (PipelineContext::open_files).
  bool open_files() const { return !context_ || context_->open_files; }

 private:
  // The declaration of `key`, checked against the accessor's type (null: none given).
  const OptionSpec* declared(const std::string& key, OptionType type) const;
  const boost::json::value* present(const std::string& key) const;  // marks it read
  // The declared default of an absent option; "missing option" without one.
  const std::string& fixed_default(const std::string& key, const OptionSpec* spec) const;
  void computed_default(const std::string& key, const OptionSpec* spec) const;
  const boost::json::object& options_;
  std::string where_;
  const PipelineContext* context_;
  const OptionSpecs* specs_;
  mutable std::vector<std::string> used_;
};

// The options every step takes (`if`), declared once.
const OptionSpecs& step_common_options();

struct TransformFactory {
  std::string type;
  std::string description;
  std::function<std::unique_ptr<Transform>(const StepOptions& options)> create;
  // The step's options (name, type, default, description, bounds), declared in its
  // file: they validate the config (StepOptions), make its JSON Schema for
  // `bytefreezer plugins --schema` and its table in docs/pipelines.md.
  OptionSpecs options = {};
};

const std::vector<TransformFactory>& transform_factories();
const TransformFactory* find_transform_factory(const std::string& type);  // null: no such kind

boost::json::value* find_field(Event& event, const FieldPath& path);
// obj[key], without its cost on a key that is there: Boost.JSON's operator[] (emplace)
// reserves room for one more member before it looks, so on a full object (every event
// after grok's captures) replacing a field grows and rehashes the whole table.
boost::json::value& member(boost::json::object& obj, std::string_view key);
// Creates intermediate objects as needed (replacing non-objects on the way).
void set_field(Event& event, const FieldPath& path, boost::json::value value);
// Removes the field and returns its value, if present.
std::optional<boost::json::value> take_field(Event& event, const FieldPath& path);

// What a pipeline made of a batch.
struct PipelineOutput {
  std::vector<Event> events;        // for processed/
  std::vector<Event> dead_letters;  // events a step failed on, each with _error
  size_t dropped = 0;               // removed on purpose (counted per step)
  std::vector<uint64_t> dropped_by_step;  // the same per step (empty without steps)
  // Events route steps sent to other datasets of the tenant, by target dataset id,
  // in the order they were routed.
  std::vector<std::pair<std::string, std::vector<Event>>> routed;
  std::vector<Event>& routed_to(const std::string& dataset);
  size_t routed_count() const;
};

// Watches a pipeline run step by step (the preview): called after each step that ran
// on an event (its `if:` was true), with the event as it was before and the result.
// `after` is the event after the step (null when it was dropped, failed or moved;
// for explode, the first of its events); `error` is set on fail.
struct StepObserver {
  virtual ~StepObserver() = default;
  virtual void step(size_t index, const Event& before, StepResult result, const Event* after, size_t outputs,
                    const std::string& error) = 0;
};

// A compiled pipeline: the steps in order, each with its optional `if:` condition.
// `where` names the dataset in errors.
class Pipeline {
 public:
  static Pipeline compile(const boost::json::array& steps, const std::string& where,
                          const PipelineContext* context = nullptr);
  // Reports each step's drops and failures on /metrics, labelled with `labels`
  // (tenant, dataset) plus step (1-based) and kind.
  void count_as(const Labels& labels);
  PipelineOutput run(std::vector<Event> events) const;
  // The same, reporting every step to `observer` (slower: copies each event per step).
  PipelineOutput run(std::vector<Event> events, StepObserver& observer) const;
  size_t size() const { return steps_.size(); }
  const std::string& kind(size_t step) const { return steps_[step].kind; }  // "add", "drop", …

 private:
  struct Step {
    std::string kind;
    std::shared_ptr<Transform> transform;  // not changed after count_as
    std::shared_ptr<const Expr> condition;  // null: every event
    Counter* dropped = nullptr;
    Counter* failed = nullptr;
  };
  struct Counts {
    uint64_t dropped = 0, failed = 0;
  };
  // Runs steps [first_step, end_step) on the event; what is kept goes to `kept`.
  void run_event(size_t first_step, size_t end_step, Event& event, std::vector<Event>& kept, PipelineOutput& out,
                 std::vector<Counts>& counts, StepObserver* observer) const;
  struct BatchScratch;  // run_batched's per-event arrays, kept per thread (pipeline.cpp)
  // Runs a batched step on every event; keeps those it keeps in `events`. With
  // `state` (a slice of the batch: see Transform::sliceable), apply_slice with it.
  void run_batched(size_t step, std::vector<Event>& events, PipelineOutput& out, std::vector<Counts>& counts,
                   StepObserver* observer, BatchScratch& scratch, Transform::BatchState* state) const;
  // Runs steps [first, end) on `events` (a batch, or a slice of one with the batched
  // steps' states, indexed from `first`); what is kept stays in `events`.
  void run_steps(size_t first, size_t end, std::vector<Event>& events, std::vector<Event>& spare, PipelineOutput& out,
                 std::vector<Counts>& counts, StepObserver* observer, BatchScratch& scratch,
                 const std::vector<std::unique_ptr<Transform::BatchState>>* states) const;
  void fail_event(size_t step, Event& event, const std::string& error, PipelineOutput& out,
                  std::vector<Counts>& counts) const;
  PipelineOutput run_all(std::vector<Event> events, StepObserver* observer) const;
  std::vector<Step> steps_;
};

}  // namespace bf
