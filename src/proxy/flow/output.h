#pragma once
// What the flow decoders (sflow, netflow, ipfix) share: the event context they stamp
// on each record, the error classes they count, and writers for typed values into
// the NDJSON text of a batch (JsonObjectWriter, proxy/ndjson_writer.h).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/ndjson_writer.h"

namespace bf::flow {

// Every way a datagram (or part of one) can be refused. Each is a label value of
// bf_flow_errors_total{source, error}; the decoder skips what it cannot read and
// keeps what it could.
enum class FlowError : uint8_t {
  truncated,          // a length or count points past the end of the datagram / set
  bad_version,        // not a version this decoder reads
  bad_length,         // a header or set length that is impossible (< its header, past the end)
  absurd_count,       // a record/sample/field count that cannot fit in the bytes there are
  zero_length_field,  // a template field of length 0 (or a template whose records take no bytes)
  bad_template,       // a template that cannot be used (field count 0 outside a withdrawal, reserved id)
  no_template,        // data held for a template that never came, dropped at the end of the hold
  held_overflow,      // data waiting for its template dropped because the hold was full
  template_evicted,   // a cached template evicted because the cache was full (template flood)
  unknown_format,     // an sFlow sample / record format or header protocol we do not decode (skipped)
  kCount
};
constexpr size_t kFlowErrorCount = static_cast<size_t>(FlowError::kCount);
const char* flow_error_name(FlowError e);

struct FlowStats {
  uint64_t events = 0;  // events written
  std::array<uint64_t, kFlowErrorCount> errors{};
  void count(FlowError e, uint64_t n = 1) { errors[static_cast<size_t>(e)] += n; }
  uint64_t error(FlowError e) const { return errors[static_cast<size_t>(e)]; }
  uint64_t total_errors() const {
    uint64_t n = 0;
    for (uint64_t e : errors) n += e;
    return n;
  }
};

// Stamped on every event of one datagram: _received, _source, _peer.
struct EventContext {
  int64_t received_us = 0;
  std::string_view received;  // received_us as RFC 3339
  std::string_view source;
  std::string_view peer;      // "ip:port" of the exporter / agent's datagram
};

// Ends an event: the context fields, '}' and '\n'; counts it.
void finish_event(JsonObjectWriter& w, const EventContext& ctx, FlowStats& stats);

void put_u64(JsonObjectWriter& w, std::string_view key, uint64_t v);
void put_i64(JsonObjectWriter& w, std::string_view key, int64_t v);
void put_double(JsonObjectWriter& w, std::string_view key, double v);  // NaN/inf -> null
void put_ipv4(JsonObjectWriter& w, std::string_view key, const uint8_t* p);
void put_ipv4(JsonObjectWriter& w, std::string_view key, uint32_t host_order);
void put_ipv6(JsonObjectWriter& w, std::string_view key, const uint8_t* p);
void put_mac(JsonObjectWriter& w, std::string_view key, const uint8_t* p);
void put_hex(JsonObjectWriter& w, std::string_view key, const uint8_t* p, size_t n);
// A string field from the wire: trailing NULs (fixed-size padding) dropped, invalid
// UTF-8 repaired (the value stays queryable; flow strings are names, not payloads).
void put_text(JsonObjectWriter& w, std::string_view key, const uint8_t* p, size_t n);
void put_time(JsonObjectWriter& w, std::string_view key, int64_t unix_us);

// Uptime arithmetic across the 32-bit wrap (NetFlow v5/v9 sysUptime, ms): the Unix
// time (µs) of an event stamped `event_uptime_ms`, given a header that was sent at
// `header_unix_us` when the uptime read `header_uptime_ms`. The difference is taken
// modulo 2^32 and read as signed, so an event just before a wrap of the counter and
// a header just after it are 1 ms apart, not 49.7 days.
inline int64_t uptime_to_unix_us(int64_t header_unix_us, uint32_t header_uptime_ms, uint32_t event_uptime_ms) {
  const auto ago_ms = static_cast<int32_t>(header_uptime_ms - event_uptime_ms);
  return header_unix_us - int64_t(ago_ms) * 1000;
}

}  // namespace bf::flow
