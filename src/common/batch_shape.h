#pragma once
// The field shape of a batch: which fields its events have and which JSON kinds
// their values take, nested for objects and arrays. The piper computes it while
// it holds every event as a DOM and stores it in the processed/ object's batch
// envelope (member "shape", docs/storage.md), so the packer can give DuckDB an
// explicit column list instead of a full inference scan. Bounded: an object with
// more than kMaxObjectKeys distinct keys (or once a batch has tracked kMaxNodes
// nested fields) is marked `many` and its members are no longer tracked.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bf {

enum JsonKind : uint8_t {
  kKindNull = 1,
  kKindBool = 2,
  kKindInt = 4,     // fits int64
  kKindUint = 8,    // above INT64_MAX
  kKindFloat = 16,
  kKindString = 32,
  kKindObject = 64,
  kKindArray = 128,
};

struct FieldShape {
  uint8_t kinds = 0;        // JsonKind bits seen
  uint64_t count = 0;       // values seen (top level: events having the field, null included)
  uint64_t bad_time = 0;    // top-level _time/_received only: values parse_event_time rejects
  bool many = false;        // object with too many distinct keys: members not tracked
  std::vector<std::string> names;      // object members, in first-seen order
  std::vector<FieldShape> members;     // parallel to names
  std::vector<FieldShape> items;       // array elements: empty, or one shape for all of them

  FieldShape* member(const std::string& name);  // nullptr if not tracked
  const FieldShape* member(const std::string& name) const;
  // Adds a member (callers check the bounds first).
  FieldShape& add_member(const std::string& name);

 private:
  mutable std::unordered_map<std::string, uint32_t> index_;  // built once names grow past a few
  friend struct BatchShape;
};

struct BatchShape {
  static constexpr size_t kMaxObjectKeys = 1000;  // per nested object
  static constexpr size_t kMaxNodes = 20000;      // nested members tracked per shape

  uint64_t events = 0;
  FieldShape root;  // kinds unused; members are the top-level fields
  size_t nodes = 0;

  void add(const boost::json::object& event);
  // Adds every event of NDJSON text by parse_ndjson's rules (and its BatchFormatError),
  // each parsed into a reused arena and dropped after: no DOM is kept, nothing is
  // allocated per field. Returns the number of events.
  size_t add_ndjson(std::string_view text);
  // Union of both (counts added); used to merge the shapes of a run's inputs.
  void merge(const BatchShape& other);
  // {"events": N, "fields": {"name": {"kinds": ["string", ...], "count": N, ...}}};
  // with_counts=false leaves the counts out (the schema registry keeps kinds only).
  boost::json::object to_json(bool with_counts = true) const;
  // nullopt for anything that is not a shape as to_json writes it.
  static std::optional<BatchShape> from_json(const boost::json::value& v);
};

// Builds a BatchShape from a streaming (SAX) parse, so a stage that already walks every
// event without a DOM (the receiver's validation) gets the shape in the same pass. Fed
// an event's parse events in document order, it gives the shape BatchShape::add gives
// for the same events — except for an object with a key twice, which the DOM keeps
// once (the last) and this counts twice: its kinds are then a superset, which only
// widens column types.
class ShapeBuilder {
 public:
  explicit ShapeBuilder(BatchShape& shape) : shape_(shape) {}
  void begin_event();  // the event object itself begins
  void end_event();    // ... and ended: counted
  void key(std::string_view name);
  void begin_object();  // a value that is an object
  void end_object();
  void begin_array();
  void end_array();
  void scalar(JsonKind kind);  // null, bool, int, uint, float or string
  // The value about to be added is a top-level _time or _received: its text or number
  // is then checked as parse_event_time checks it (bad_time).
  bool wants_time_value() const { return time_field_ != nullptr; }
  void time_string(std::string_view text);
  void time_number(double n);

 private:
  struct Frame {
    FieldShape* target = nullptr;  // the object or array shape; nullptr: not tracked
    bool array = false;
    bool bounded = true;
    size_t depth = 0;  // as BatchShape::add counts it
    size_t next = 0;   // members seen in this object: where the next key usually is
  };
  FieldShape* value_shape();  // the shape the next value goes to, or nullptr
  FieldShape* add_value(JsonKind kind);  // counts the next value; its shape, or nullptr
  void not_a_time();

  BatchShape& shape_;
  std::vector<Frame> frames_;
  FieldShape* member_ = nullptr;      // the current key's member, in the top frame
  FieldShape* time_field_ = nullptr;  // set between a top-level time key and its value
  std::string key_;
};

// "null", "bool", "int", "uint", "float", "string", "object", "array".
const char* json_kind_name(JsonKind k);

}  // namespace bf
