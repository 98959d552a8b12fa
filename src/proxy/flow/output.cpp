#include "proxy/flow/output.h"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <cstring>

#include "common/utf8.h"

namespace bf::flow {

const char* flow_error_name(FlowError e) {
  switch (e) {
    case FlowError::truncated: return "truncated";
    case FlowError::bad_version: return "bad_version";
    case FlowError::bad_length: return "bad_length";
    case FlowError::absurd_count: return "absurd_count";
    case FlowError::zero_length_field: return "zero_length_field";
    case FlowError::bad_template: return "bad_template";
    case FlowError::no_template: return "no_template";
    case FlowError::held_overflow: return "held_overflow";
    case FlowError::template_evicted: return "template_evicted";
    case FlowError::unknown_format: return "unknown_format";
    case FlowError::kCount: break;
  }
  return "unknown";
}

void finish_event(JsonObjectWriter& w, const EventContext& ctx, FlowStats& stats) {
  w.plain_field("_received", ctx.received);
  w.plain_field("_source", ctx.source);
  if (!ctx.peer.empty()) w.plain_field("_peer", ctx.peer);
  w.close();
  w.out().push_back('\n');
  ++stats.events;
}

void put_u64(JsonObjectWriter& w, std::string_view key, uint64_t v) {
  w.key(key);
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  w.out().append(buf, static_cast<size_t>(r.ptr - buf));
}

void put_i64(JsonObjectWriter& w, std::string_view key, int64_t v) {
  w.key(key);
  w.num(v);
}

void put_double(JsonObjectWriter& w, std::string_view key, double v) {
  w.key(key);
  if (!std::isfinite(v)) {
    w.out().append("null");
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  w.out().append(buf, static_cast<size_t>(r.ptr - buf));
}

void put_ipv4(JsonObjectWriter& w, std::string_view key, const uint8_t* p) {
  char buf[16];
  char* o = buf;
  for (int i = 0; i < 4; ++i) {
    if (i) *o++ = '.';
    o = std::to_chars(o, buf + sizeof buf, p[i]).ptr;
  }
  w.plain_field(key, std::string_view(buf, static_cast<size_t>(o - buf)));
}

void put_ipv4(JsonObjectWriter& w, std::string_view key, uint32_t v) {
  const uint8_t b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  put_ipv4(w, key, b);
}

void put_ipv6(JsonObjectWriter& w, std::string_view key, const uint8_t* p) {
  char buf[INET6_ADDRSTRLEN];
  in6_addr a;
  std::memcpy(&a, p, 16);
  inet_ntop(AF_INET6, &a, buf, sizeof buf);
  w.plain_field(key, buf);
}

void put_mac(JsonObjectWriter& w, std::string_view key, const uint8_t* p) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[17];
  for (int i = 0; i < 6; ++i) {
    buf[i * 3] = kHex[p[i] >> 4];
    buf[i * 3 + 1] = kHex[p[i] & 15];
    if (i < 5) buf[i * 3 + 2] = ':';
  }
  w.plain_field(key, std::string_view(buf, 17));
}

void put_hex(JsonObjectWriter& w, std::string_view key, const uint8_t* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  w.key(key);
  std::string& o = w.out();
  o.push_back('"');
  for (size_t i = 0; i < n; ++i) {
    o.push_back(kHex[p[i] >> 4]);
    o.push_back(kHex[p[i] & 15]);
  }
  o.push_back('"');
}

void put_text(JsonObjectWriter& w, std::string_view key, const uint8_t* p, size_t n) {
  while (n > 0 && p[n - 1] == 0) --n;
  std::string_view s(reinterpret_cast<const char*>(p), n);
  w.key(key);
  if (is_valid_utf8(s)) {
    w.str(s);
  } else {
    w.str(repair_utf8(s));
  }
}

void put_time(JsonObjectWriter& w, std::string_view key, int64_t unix_us) {
  thread_local Rfc3339Formatter f;
  w.plain_field(key, f.format(unix_us));
}

}  // namespace bf::flow
