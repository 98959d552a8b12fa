#pragma once
// The body of a request to the `http` source, decoded into events with no I/O (the
// source's handler calls it; tests/fuzz/fuzz_http_body.cpp drives it directly).
//
//   Content-Encoding: gzip | zstd | identity (or none), decoded up to max_decompressed.
//   Content-Type text/plain: each non-blank line an event {"message": <line>} (a '\r'
//     before the LF dropped; bytes that are not UTF-8 or hold NUL also kept in
//     `_raw_b64`), as the raw `tcp` source with `format: text`.
//   Anything else: JSON — one object, an array of objects, or NDJSON (whitespace-
//     separated top-level objects or arrays of objects).
// All or nothing: on any error `out` is to be discarded whole.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/batch.h"

namespace bf {

struct HttpBodyLimits {
  uint64_t max_decompressed = 64ull << 20;
  size_t max_events = 100000;
};

// Why a body was refused: the HTTP status, the contract's error stage and the reason
// (bad_encoding, too_large, bad_json, too_many_events); reason empty = accepted.
struct HttpBodyError {
  int status = 0;
  std::string stage;
  std::string reason;
  std::string message;
  bool ok() const { return reason.empty(); }
};

// True for a Content-Type of text/plain (any case, parameters ignored).
bool is_text_plain(std::string_view content_type);

HttpBodyError decode_http_body(std::optional<std::string_view> content_encoding,
                               std::optional<std::string_view> content_type, std::string_view body,
                               const HttpBodyLimits& limits, std::vector<Event>& out);

}  // namespace bf
