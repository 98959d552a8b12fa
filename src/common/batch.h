#pragma once
// The batch codec of DESIGN.md §3: NDJSON, one JSON object per line, zstd-compressed.
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/compression.h"

namespace bf {

using Event = boost::json::object;

struct BatchFormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One line per event, each terminated by '\n'.
std::string to_ndjson(const std::vector<Event>& events);
void append_ndjson(std::string& out, const Event& event);
// Parses NDJSON; blank lines are skipped; a line that is not a JSON object (or not
// valid UTF-8 JSON) throws BatchFormatError naming the 1-based line number.
std::vector<Event> parse_ndjson(std::string_view text);

// An event time field as UTC µs: an RFC 3339 string, or a Unix epoch number in
// seconds (values >= 1e11 read as ms, >= 1e14 as µs, >= 1e17 as ns). nullopt otherwise.
std::optional<int64_t> parse_event_time(const boost::json::value& v);

// zstd NDJSON, as stored in raw/ and processed/.
std::string encode_batch(const std::vector<Event>& events);
// Throws BatchFormatError for an empty object (no stage writes one).
std::vector<Event> decode_batch(std::string_view compressed, size_t max_bytes = size_t(1) << 30);

}  // namespace bf
