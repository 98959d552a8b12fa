#include "common/batch.h"

#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>

#include "common/time.h"

namespace bf {

void append_ndjson(std::string& out, const Event& event) {
  out += boost::json::serialize(event);
  out += '\n';
}

std::string to_ndjson(const std::vector<Event>& events) {
  std::string out;
  out.reserve(events.size() * 256);
  for (const auto& e : events) append_ndjson(out, e);
  return out;
}

std::vector<Event> parse_ndjson(std::string_view text) {
  std::vector<Event> events;
  boost::json::parser parser;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    parser.reset();
    boost::system::error_code ec;
    parser.write(line.data(), line.size(), ec);
    if (ec) throw BatchFormatError("line " + std::to_string(line_no) + ": invalid JSON: " + ec.message());
    boost::json::value v = parser.release();
    if (!v.is_object()) throw BatchFormatError("line " + std::to_string(line_no) + ": not a JSON object");
    events.push_back(std::move(v.get_object()));
  }
  return events;
}

std::optional<int64_t> parse_event_time(const boost::json::value& v) {
  if (v.is_string()) return parse_rfc3339(v.get_string(), /*require_offset=*/false);
  if (!v.is_number()) return std::nullopt;
  const double n = v.to_number<double>();
  if (!std::isfinite(n) || n < 0) return std::nullopt;
  const double micros = n >= 1e17 ? n / 1e3 : n >= 1e14 ? n : n >= 1e11 ? n * 1e3 : n * 1e6;
  if (micros >= 9.2e18) return std::nullopt;
  return static_cast<int64_t>(micros);
}

std::string encode_batch(const std::vector<Event>& events) {
  return compress(Encoding::zstd, to_ndjson(events));
}

std::vector<Event> decode_batch(std::string_view compressed, size_t max_bytes) {
  // No stage stores an empty batch, so an empty object is a read that raced a write
  // (some S3 servers show an object empty while it is being overwritten): never
  // "a batch of no events", which would let the batch be committed with nothing in it.
  if (compressed.empty()) throw BatchFormatError("empty batch object");
  return parse_ndjson(decompress(Encoding::zstd, compressed, max_bytes));
}

}  // namespace bf
