#pragma once
// The piper's plugin interface for pipeline steps. One file per kind under
// piper/transforms/, each listed in transforms/registry.cpp.
//
// A dataset's pipeline is a JSON list of steps, each an object with exactly one
// key naming the kind: [{"add": {"field": "env", "value": "prod"}}, {"remove": {"field": "x"}}]
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/batch.h"

namespace bf {

struct PipelineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A compiled step: immutable after creation, applied to whole batches.
class Transform {
 public:
  virtual ~Transform() = default;
  virtual void apply(std::vector<Event>& events) const = 0;
};

// A field path: "a.b.c" addresses nested objects. Split once when a step is
// compiled, not per event.
struct FieldPath {
  std::vector<std::string> parts;
  static FieldPath parse(const std::string& dotted);  // throws PipelineError on empty segments
};
// Reads a step's options strictly: every key must be consumed, else PipelineError
// naming the step and the key.
class StepOptions {
 public:
  StepOptions(const boost::json::object& options, std::string where);
  std::string str(const std::string& key) const;                           // required
  std::string str(const std::string& key, const std::string& def) const;   // optional
  FieldPath field(const std::string& key) const;                           // required field path
  bool boolean(const std::string& key, bool def) const;
  const boost::json::value& value(const std::string& key) const;           // required, any JSON
  std::vector<std::string> str_list(const std::string& key) const;         // string or list
  bool has(const std::string& key) const;
  void check_unknown() const;
  [[noreturn]] void fail(const std::string& message) const;

 private:
  const boost::json::object& options_;
  std::string where_;
  mutable std::vector<std::string> used_;
};

struct TransformFactory {
  std::string type;
  std::string description;
  std::function<std::unique_ptr<Transform>(const StepOptions& options)> create;
};

const std::vector<TransformFactory>& transform_factories();

boost::json::value* find_field(Event& event, const FieldPath& path);
// Creates intermediate objects as needed (replacing non-objects on the way).
void set_field(Event& event, const FieldPath& path, boost::json::value value);
// Removes the field and returns its value, if present.
std::optional<boost::json::value> take_field(Event& event, const FieldPath& path);

// A compiled pipeline: the steps in order. `where` names the dataset in errors.
class Pipeline {
 public:
  static Pipeline compile(const boost::json::array& steps, const std::string& where);
  void apply(std::vector<Event>& events) const;
  // The same, adding to removed[i] the events step i took out of the batch (filter,
  // sample: the piper counts them as intentional discards); removed has size() entries.
  void apply(std::vector<Event>& events, std::vector<uint64_t>& removed) const;
  size_t size() const { return steps_.size(); }
  const std::string& kind(size_t step) const { return kinds_[step]; }  // "add", "filter", …

 private:
  std::vector<std::shared_ptr<const Transform>> steps_;
  std::vector<std::string> kinds_;
};

}  // namespace bf
