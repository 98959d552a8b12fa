#pragma once
// The batch codec of DESIGN.md §3: NDJSON, one JSON object per line, zstd-compressed.
#include <boost/json/object.hpp>
#include <boost/json/storage_ptr.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/compression.h"

namespace boost::json {
class monotonic_resource;
}

namespace bf {

using Event = boost::json::object;

struct BatchFormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One line per event, each terminated by '\n'.
std::string to_ndjson(const std::vector<Event>& events);
void append_ndjson(std::string& out, const Event& event);
// The line splitting every NDJSON reader here shares (parse_ndjson, validate_ndjson):
// a line ends at '\n' (or the end of the text), a '\r' before it is dropped, and a
// blank line (spaces and tabs only) holds no event.
class NdjsonLines {
 public:
  explicit NdjsonLines(std::string_view text) : text_(text) {}
  // The next line, blank or not; false at the end of the text.
  bool next(std::string_view& line);
  size_t number() const { return number_; }  // 1-based number of the line last returned
 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t number_ = 0;
};
bool is_blank_line(std::string_view line);

// Parses NDJSON; blank lines are skipped; a line that is not a JSON object (or not
// valid UTF-8 JSON) throws BatchFormatError naming the 1-based line number.
// `storage`: the memory resource the events are built in (default: the heap).
std::vector<Event> parse_ndjson(std::string_view text, boost::json::storage_ptr storage = {});
// The same walk without keeping the events: each is parsed (into `arena` when given,
// which is released after each event) and handed to `on_event`; the same errors.
// Returns the number of events.
size_t for_each_ndjson_event(std::string_view text, boost::json::monotonic_resource* arena,
                             const std::function<void(Event&)>& on_event);

// An event time field as UTC µs: an RFC 3339 string, or a Unix epoch number in
// seconds (values >= 1e11 read as ms, >= 1e14 as µs, >= 1e17 as ns). nullopt otherwise.
std::optional<int64_t> parse_event_time(const boost::json::value& v);
// The number rule of parse_event_time alone (for parsers that see the number, not a DOM).
std::optional<int64_t> parse_epoch_time(double n);

// The batch envelope (DESIGN.md §3): metadata about a batch stored beside its events,
// not in them — e.g. the receive time, source and peer the receiver saw, which the next
// stage applies as defaults when it decodes anyway. It travels as a zstd skippable frame
// (magic 0x184D2A5B) ahead of the compressed NDJSON, so any zstd tool (and DuckDB's
// read_ndjson) still reads the object as plain NDJSON and skips the envelope.
//   object = [skippable frame: LE u32 magic, LE u32 size, envelope JSON] zstd-frames...
// An object without the frame has an empty envelope. Members are free-form JSON; the
// ones in use are listed in docs/storage.md.
using BatchEnvelope = boost::json::object;

// Prefixes an already zstd-compressed payload with the envelope (no frame if it is empty).
std::string wrap_batch_object(const BatchEnvelope& envelope, std::string_view compressed_ndjson);
struct BatchObject {
  BatchEnvelope envelope;
  std::string_view payload;  // the zstd NDJSON after the envelope (points into the input)
};
// Throws BatchFormatError for a truncated or malformed envelope frame.
BatchObject split_batch_object(std::string_view object);
BatchObject split_batch_object(std::string&& object) = delete;  // payload would point into a temporary

// The receive metadata the receiver keeps in a raw/ batch's envelope ("received",
// "source", "peer"; docs/storage.md), applied to each event that lacks it by the rules
// the receiver applies: _received <- received; _time <- the event's _received; without
// _source: _source <- source, and _peer <- peer unless present. An envelope without
// these members, or with "complete": true (every event has them), changes nothing.
void apply_envelope_defaults(const BatchEnvelope& envelope, std::vector<Event>& events);

// The events a batch object's envelope declares ("events", or the piper's
// "shape"."events"), without decoding the payload; 0 when it declares none or the
// envelope is unreadable. For counting what an undecodable object held.
uint64_t declared_event_count(std::string_view object) noexcept;

// zstd NDJSON, as stored in raw/ and processed/.
std::string encode_batch(const std::vector<Event>& events, const BatchEnvelope& envelope = {});
// The events of a batch object, with its envelope's defaults applied (above), so every
// reader of raw/ sees complete events. Throws BatchFormatError for an empty object (no
// stage writes one). `storage`: where the events are built (default: the heap). The
// piper passes one monotonic arena per batch (DESIGN.md §3, "events of one batch share
// one arena"): no heap allocation per field, and freeing the batch is one release —
// the arena must then outlive every event and every value copied out of one.
std::vector<Event> decode_batch(std::string_view compressed, size_t max_bytes = size_t(1) << 30,
                                boost::json::storage_ptr storage = {});

// The arena of one batch's events: a monotonic resource (nothing is freed until the
// arena goes). The blocks it took are kept per thread, up to 256 MiB, for the thread's
// next batch, which asks for the same sizes: its pages are not mapped and faulted in
// again for every batch (fresh memory per batch cost more than the heap allocations
// the arena saves). Not thread-safe, like the events it holds; declare it before them.
class BatchArena {
 public:
  BatchArena();
  ~BatchArena();
  BatchArena(const BatchArena&) = delete;
  BatchArena& operator=(const BatchArena&) = delete;
  boost::json::storage_ptr storage() const;  // not counted: the arena must outlive its values

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
