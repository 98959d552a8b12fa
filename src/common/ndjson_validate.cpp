#include "common/ndjson_validate.h"

#include <boost/json/array.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>

#include <limits>
#include <optional>
#include <string>

#include "common/batch_shape.h"

namespace bf {

namespace {

using boost::json::error_code;
using boost::json::string_view;

// SAX handler for one line: checks that the document is an object, counts its fields
// (a member per key, an element per array item, at every depth, as the receiver always
// counted them) and notes which of the top-level members _received, _time and _source
// are present. The size limits are those of the DOM parser (detail/handler.hpp), so
// both accept the same documents.
struct Handler {
  static constexpr std::size_t max_object_size = boost::json::object::max_size();
  static constexpr std::size_t max_array_size = boost::json::array::max_size();
  static constexpr std::size_t max_key_size = boost::json::string::max_size();
  static constexpr std::size_t max_string_size = boost::json::string::max_size();

  enum class Failure { none, not_object, too_many_fields };
  static constexpr unsigned kReceived = 1, kTime = 2, kSource = 4, kAll = 7;

  size_t max_fields = 0;
  size_t fields = 0;
  size_t depth = 0;  // 1 inside the event object itself
  unsigned seen = 0;
  Failure failure = Failure::none;
  // A top-level key arriving in parts (escapes): only the first few bytes matter.
  char key[12];
  size_t key_len = 0;
  ShapeBuilder* shape = nullptr;  // optional: the batch's shape, built in the same pass
  std::string part;               // a key, or a time field's text, arriving in parts

  bool fail(Failure f, error_code& ec) {
    failure = f;
    ec = boost::json::error::syntax;  // the caller reports `failure`, not this code
    return false;
  }
  // A value: the document itself must be an object.
  bool value(error_code& ec) { return depth > 0 || fail(Failure::not_object, ec); }
  bool count(size_t n, error_code& ec) {
    fields += n;
    return fields <= max_fields || fail(Failure::too_many_fields, ec);
  }
  void key_bytes(string_view s) {
    if (depth != 1) return;
    for (char c : s) {
      if (key_len < sizeof key) key[key_len] = c;
      ++key_len;
    }
  }

  bool on_document_begin(error_code&) {
    fields = depth = key_len = 0;
    seen = 0;
    failure = Failure::none;
    return true;
  }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    if (shape) {
      if (depth == 0) shape->begin_event();
      else shape->begin_object();
    }
    ++depth;
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    --depth;
    if (shape && depth > 0) shape->end_object();
    return true;
  }
  bool on_array_begin(error_code& ec) {
    if (!value(ec)) return false;
    if (shape) shape->begin_array();
    ++depth;
    return true;
  }
  bool on_array_end(std::size_t n, error_code& ec) {
    --depth;
    if (shape) shape->end_array();
    return count(n, ec);
  }
  bool on_key_part(string_view s, std::size_t, error_code&) {
    key_bytes(s);
    if (shape) part.append(s.data(), s.size());
    return true;
  }
  bool on_key(string_view s, std::size_t, error_code& ec) {
    if (shape) {
      if (part.empty()) {
        shape->key(std::string_view(s.data(), s.size()));
      } else {
        part.append(s.data(), s.size());
        shape->key(part);
        part.clear();
      }
    }
    if (depth == 1) {
      key_bytes(s);
      const std::string_view k(key, key_len <= sizeof key ? key_len : 0);
      if (k == "_received") seen |= kReceived;
      else if (k == "_time") seen |= kTime;
      else if (k == "_source") seen |= kSource;
      key_len = 0;
    }
    return count(1, ec);
  }
  bool on_string_part(string_view s, std::size_t, error_code& ec) {
    if (shape && shape->wants_time_value()) part.append(s.data(), s.size());
    return value(ec);
  }
  bool on_string(string_view s, std::size_t, error_code& ec) {
    if (!value(ec)) return false;
    if (shape) {
      if (shape->wants_time_value()) {
        part.append(s.data(), s.size());
        shape->time_string(part);
        part.clear();
      }
      shape->scalar(kKindString);
    }
    return true;
  }
  bool on_number_part(string_view, error_code& ec) { return value(ec); }
  bool number(double n, JsonKind kind, error_code& ec) {
    if (!value(ec)) return false;
    if (shape) {
      if (shape->wants_time_value()) shape->time_number(n);
      shape->scalar(kind);
    }
    return true;
  }
  bool on_int64(int64_t v, string_view, error_code& ec) { return number(static_cast<double>(v), kKindInt, ec); }
  bool on_uint64(uint64_t v, string_view, error_code& ec) {
    return number(static_cast<double>(v), v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? kKindInt : kKindUint, ec);
  }
  bool on_double(double v, string_view, error_code& ec) { return number(v, kKindFloat, ec); }
  bool on_bool(bool, error_code& ec) {
    if (!value(ec)) return false;
    if (shape) shape->scalar(kKindBool);
    return true;
  }
  bool on_null(error_code& ec) {
    if (!value(ec)) return false;
    if (shape) shape->scalar(kKindNull);
    return true;
  }
  bool on_comment_part(string_view, error_code&) { return true; }  // comments are not allowed
  bool on_comment(string_view, error_code&) { return true; }
};

}  // namespace

NdjsonSummary validate_ndjson(std::string_view text, const NdjsonLimits& limits, BatchShape* shape) {
  boost::json::parse_options options;  // standard JSON only, as parse_ndjson
  options.max_depth = limits.max_depth;
  boost::json::basic_parser<Handler> parser(options);
  parser.handler().max_fields = limits.max_event_fields;
  std::optional<ShapeBuilder> builder;
  if (shape) parser.handler().shape = &builder.emplace(*shape);
  NdjsonSummary summary;
  NdjsonLines lines(text);
  std::string_view line;
  while (lines.next(line)) {
    auto where = [&] { return "line " + std::to_string(lines.number()); };
    if (line.size() > limits.max_event_bytes)
      throw EventTooLarge(where() + ": event larger than receiver.max_event_bytes (" +
                          std::to_string(limits.max_event_bytes) + " bytes)");
    if (is_blank_line(line)) continue;
    parser.reset();
    parser.handler().failure = Handler::Failure::none;
    parser.handler().part.clear();
    error_code ec;
    const size_t n = parser.write_some(false, line.data(), line.size(), ec);
    if (!ec && n < line.size()) ec = boost::json::error::extra_data;
    const Handler& h = parser.handler();
    if (h.failure == Handler::Failure::not_object) throw BatchFormatError(where() + ": not a JSON object");
    if (h.failure == Handler::Failure::too_many_fields)
      throw EventTooLarge(where() + " (event " + std::to_string(summary.events + 1) +
                          "): more fields than receiver.max_event_fields (" + std::to_string(limits.max_event_fields) +
                          ")");
    if (ec) throw BatchFormatError(where() + ": invalid JSON: " + ec.message());
    ++summary.events;
    if (builder) builder->end_event();
    if (h.seen != Handler::kAll) summary.complete = false;
  }
  return summary;
}

}  // namespace bf
