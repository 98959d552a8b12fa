#pragma once
// A small JSON text writer for sources that put events straight into a batch's NDJSON
// buffer instead of building a DOM (the syslog sources). Its output is byte for byte
// what boost::json::serialize gives for the same object (key order as written, no
// spaces, the same escapes: \" \\ \b \f \n \r \t, \u00XX with lowercase hex for the
// other control characters, everything else as is). Strings must already be valid
// UTF-8 (callers repair first, as the DOM path does). Also a fast RFC 3339 formatter.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace bf {

namespace ndjson_detail {
inline bool needs_escape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }
// Whether any of 8 bytes is < 0x20, '"' or '\\' (exact: the borrow tricks below give
// false positives only in bytes after a true one).
inline bool any_needs_escape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  const uint64_t quote = w ^ (kOnes * '"'), backslash = w ^ (kOnes * '\\');
  return (((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash)) & kHigh;
}
}  // namespace ndjson_detail

// Appends the text of `s` as the inside of a JSON string (escaped, no quotes).
inline void append_json_string_body(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p < end) {
    const char* run = p;
    // 8 bytes at a time while none needs an escape, then byte by byte to the one that does.
    for (;;) {
      while (end - p >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        if (ndjson_detail::any_needs_escape(w)) break;
        p += 8;
      }
      const char* stop = end - p >= 8 ? p + 8 : end;
      while (p < stop && !ndjson_detail::needs_escape(static_cast<unsigned char>(*p))) ++p;
      if (p < stop || p == end) break;
    }
    out.append(run, static_cast<size_t>(p - run));
    if (p == end) break;
    const auto c = static_cast<unsigned char>(*p++);
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t n = 2;
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      default:
        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = kHex[c >> 4];
        esc[5] = kHex[c & 0xF];
        n = 6;
    }
    out.append(esc, n);
  }
}

// Appends `s` as a JSON string, quotes included.
inline void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  append_json_string_body(out, s);
  out.push_back('"');
}

// Writes one JSON object's members in the order given. Usage:
//   JsonObjectWriter w(out); w.key("a"); w.str("x"); w.key("n"); w.num(3); w.close();
class JsonObjectWriter {
 public:
  explicit JsonObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }
  void key(std::string_view k) {
    if (!first_) out_.push_back(',');
    first_ = false;
    append_json_string(out_, k);
    out_.push_back(':');
  }
  void str(std::string_view v) { append_json_string(out_, v); }
  void num(int64_t v) {
    char buf[24];
    char* e = buf + sizeof buf;
    char* b = e;
    uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    do {
      *--b = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (v < 0) *--b = '-';
    out_.append(b, static_cast<size_t>(e - b));
  }
  void field(std::string_view k, std::string_view v) {
    key(k);
    str(v);
  }
  // A member whose key is a plain ASCII name that needs no escape (the fields a source
  // defines itself, e.g. "message"): `,"key":"` goes out as one append.
  void plain_field(std::string_view k, std::string_view v) {
    char head[40];
    if (k.size() > sizeof head - 5) return field(k, v);
    size_t n = 0;
    if (!first_) head[n++] = ',';
    first_ = false;
    head[n++] = '"';
    std::memcpy(head + n, k.data(), k.size());
    n += k.size();
    head[n++] = '"';
    head[n++] = ':';
    head[n++] = '"';
    out_.append(head, n);
    append_json_string_body(out_, v);
    out_.push_back('"');
  }
  void plain_num(std::string_view k, int64_t v) {
    if (!first_) out_.push_back(',');
    first_ = false;
    out_.push_back('"');
    out_.append(k);
    out_.append("\":", 2);
    num(v);
  }
  void close() { out_.push_back('}'); }
  std::string& out() { return out_; }  // for values the writer has no call for (arrays)

 private:
  std::string& out_;
  bool first_ = true;
};

// format_rfc3339 (common/time.h) without an allocation: "YYYY-MM-DDTHH:MM:SS.uuuuuuZ".
// Remembers the last second it formatted, so a stream of nearby times costs a few
// digit writes each. Falls back to format_rfc3339 outside years 0..9999.
class Rfc3339Formatter {
 public:
  // The text stays valid until the next call.
  std::string_view format(int64_t unix_us);

 private:
  int64_t second_ = INT64_MIN;
  char buf_[40] = {};
  size_t len_ = 0;
  std::string fallback_;
};

}  // namespace bf
