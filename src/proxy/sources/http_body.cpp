#include "proxy/sources/http_body.h"

#include <boost/json.hpp>

#include <cctype>

#include "common/compression.h"
#include "common/utf8.h"

namespace bf {
namespace {

namespace json = boost::json;

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string lower_trimmed(std::string_view s) {
  std::string out;
  for (char c : s)
    if (!is_ws(c)) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

HttpBodyError too_many(size_t max_events) {
  return {413, "decode", "too_many_events",
          "body holds more than " + std::to_string(max_events) + " events (max_events); nothing from this request "
          "was accepted"};
}

// Adds a top-level value's events: an object, or an array of objects.
std::string take_value(json::value&& v, size_t line, std::vector<Event>& out) {
  if (v.is_object()) {
    out.push_back(std::move(v.as_object()));
    return "";
  }
  if (v.is_array()) {
    auto& a = v.as_array();
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_object())
        return "line " + std::to_string(line) + ": array element " + std::to_string(i) + " is not a JSON object";
      out.push_back(std::move(a[i].as_object()));
    }
    return "";
  }
  return "line " + std::to_string(line) + ": not a JSON object";
}

// JSON: the body is fed to the parser one line at a time so that an error is reported
// on the line where the parser found it.
HttpBodyError parse_json_body(std::string_view body, size_t max_events, std::vector<Event>& out) {
  auto bad = [](std::string msg) {
    return HttpBodyError{400, "decode", "bad_json", msg + "; nothing from this request was accepted"};
  };
  json::stream_parser p;
  bool in_value = false;
  size_t value_line = 0;
  size_t line = 0;
  size_t pos = 0;
  auto take = [&]() -> HttpBodyError {
    in_value = false;
    if (auto err = take_value(p.release(), value_line, out); !err.empty()) return bad(err);
    if (out.size() > max_events) return too_many(max_events);
    return {};
  };
  while (pos < body.size()) {
    ++line;
    const size_t nl = body.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? body.size() : nl + 1;
    std::string_view chunk = body.substr(pos, end - pos);
    pos = end;
    while (!chunk.empty()) {
      if (!in_value) {
        while (!chunk.empty() && is_ws(chunk.front())) chunk.remove_prefix(1);
        if (chunk.empty()) break;
        p.reset();
        in_value = true;
        value_line = line;
      }
      json::error_code ec;
      const size_t n = p.write_some(chunk.data(), chunk.size(), ec);
      if (ec) return bad("line " + std::to_string(line) + ": invalid JSON: " + ec.message());
      chunk.remove_prefix(n);
      if (p.done())
        if (auto err = take(); !err.ok()) return err;
    }
  }
  if (in_value) {
    json::error_code ec;
    p.finish(ec);
    if (ec) return bad("line " + std::to_string(line) + ": invalid JSON: " + ec.message());
    if (auto err = take(); !err.ok()) return err;
  }
  return {};
}

HttpBodyError parse_text_body(std::string_view body, size_t max_events, std::vector<Event>& out) {
  NdjsonLines lines(body);  // the same line rule: '\n' ends a line, '\r' before it dropped
  std::string_view text;
  while (lines.next(text)) {
    if (is_blank_line(text)) continue;
    if (out.size() == max_events) return too_many(max_events);
    Event& ev = out.emplace_back();
    if (is_valid_utf8(text) && text.find('\0') == std::string_view::npos) {
      ev["message"] = text;
    } else {
      // message stays queryable text; the bytes as sent are kept in _raw_b64.
      ev["message"] = repair_utf8(text);
      ev["_raw_b64"] = base64(text);
    }
  }
  return {};
}

}  // namespace

bool is_text_plain(std::string_view content_type) {
  const std::string t = lower_trimmed(content_type.substr(0, content_type.find(';')));
  return t == "text/plain";
}

HttpBodyError decode_http_body(std::optional<std::string_view> content_encoding,
                               std::optional<std::string_view> content_type, std::string_view body,
                               const HttpBodyLimits& limits, std::vector<Event>& out) {
  std::string decoded;
  if (content_encoding) {
    const std::string name = lower_trimmed(*content_encoding);
    auto enc = parse_encoding(name);
    if (!enc)
      return {415, "decode", "bad_encoding",
              "unsupported Content-Encoding '" + std::string(*content_encoding) + "' (use gzip, zstd or identity)"};
    if (*enc != Encoding::identity) {
      try {
        decoded = decompress(*enc, body, limits.max_decompressed);
      } catch (const DecompressTooLarge&) {
        return {413, "decode", "too_large",
                "decompressed body exceeds " + std::to_string(limits.max_decompressed) + " bytes"};
      } catch (const std::exception& e) {
        return {400, "decode", "bad_encoding", "cannot decode " + name + " body: " + e.what()};
      }
      body = decoded;
    }
  }
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
  if (content_type && is_text_plain(*content_type)) return parse_text_body(body, limits.max_events, out);
  return parse_json_body(body, limits.max_events, out);
}

}  // namespace bf
