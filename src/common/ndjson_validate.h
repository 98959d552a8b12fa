#pragma once
// Streaming validation of an NDJSON batch: one SAX pass (Boost.JSON's basic_parser)
// over every line, no DOM and no allocation per event. It accepts exactly the lines
// parse_ndjson() accepts (the same line splitting, the same parser and options), so a
// batch stored as sent after it validated always decodes; on top it enforces the
// per-event limits of the receiver.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "common/batch.h"

namespace bf {

// An event over a size or field limit (the receiver answers 413). Malformed input
// throws BatchFormatError (400) instead.
struct EventTooLarge : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct NdjsonLimits {
  uint64_t max_event_bytes = 1ull << 20;  // one line's bytes (without its line end)
  size_t max_event_fields = 10000;        // object members and array elements, at every depth
  // Nesting of objects and arrays. 32 is the limit of Boost.JSON's parser, which every
  // decoder of stored batches uses: larger would store batches that cannot be decoded.
  size_t max_depth = 32;
};

struct NdjsonSummary {
  size_t events = 0;
  // Every event has top-level _received, _time and _source members: there is nothing
  // for a decoder to default (the proxy's batches are complete).
  bool complete = true;
};

struct BatchShape;

// Throws BatchFormatError naming the 1-based line ("line 3: invalid JSON: ...",
// "line 3: not a JSON object") or EventTooLarge naming the line and the limit.
// With `shape`, the events are also added to it in the same pass (ShapeBuilder,
// common/batch_shape.h): the receiver's batches carry their shape to the piper.
NdjsonSummary validate_ndjson(std::string_view text, const NdjsonLimits& limits, BatchShape* shape = nullptr);

}  // namespace bf
