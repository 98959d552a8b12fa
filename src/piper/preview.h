#pragma once
// Pipeline preview: a pipeline and sample events in, the output events, what each step
// did to each event, and the errors out. Used by `bytefreezer pipeline test` and
// `POST /api/v1/pipelines/preview` (docs/pipelines.md, "Trying a pipeline").
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "piper/transform.h"

namespace bf {

// Bounds of one preview, so a preview request cannot hold a worker.
struct PreviewLimits {
  size_t max_events = 1000;           // input events
  size_t max_input_bytes = 1 << 20;   // NDJSON text
};

struct PreviewInputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// NDJSON text -> events. A line that is not a JSON object is reported in `errors`
// ({"line": n, "error": "..."}) and skipped; more than max_events events or
// max_input_bytes of text throw PreviewInputError.
std::vector<Event> parse_preview_input(std::string_view ndjson, const PreviewLimits& limits, boost::json::array& errors);

// Compiles `steps` (a PipelineError escapes: the caller reports it) and runs `events`:
// {"output": [events], "routed": {dataset: [events]}, "dead_letters": [events with _error],
//  "dropped": n, "trace": [{"input": i, "steps": [{"step": 1, "kind": "set", "result":
//  "changed"|"unchanged"|"dropped"|"failed"|"copied"|"moved"|"expanded", "added": [..],
//  "removed": [..], "changed": [..], "events": n (expanded), "error": ".." (failed)}]}]}
// A step whose `if:` was false is left out of the event's steps.
boost::json::object preview_pipeline(const boost::json::array& steps, std::vector<Event> events, const std::string& where,
                                     const PipelineContext* context = nullptr);

}  // namespace bf

#include <iosfwd>

namespace bf {
// `bytefreezer pipeline test --config FILE [--dataset SPEC] [--json] < events.ndjson`.
// FILE holds a list of steps, a mapping with `pipeline:`, or (with --dataset
// "tenant/dataset" or "account/tenant/dataset") a full config whose dataset's pipeline
// is tried, with route targets checked against its tenant. Prints the trace, the
// output, routed events, dead letters and input errors (or all of it as JSON).
// Returns 0, or 1 when the pipeline does not compile or the input is over the limits.
int pipeline_test_command(const std::string& config_path, const std::string& dataset, bool as_json, std::istream& in,
                          std::ostream& out, std::ostream& err);
}  // namespace bf
