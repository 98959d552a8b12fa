#include "proxy/sources/common.h"

#include <stdexcept>

#include "common/config.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/time.h"
#include "net/listeners.h"
#include "proxy/ndjson_writer.h"

namespace bf {

SourceCommon read_source_common(const ConfigNode& node, const std::string& type, const std::string& default_listen,
                                const std::string& default_dataset) {
  SourceCommon c;
  c.type = type;
  c.listen = node.str("listen", default_listen);
  uint16_t port = 0;
  try {
    port = split_host_port(c.listen).second;
  } catch (const std::exception& e) {
    node.fail("listen", e.what());
  }
  c.name = node.str("name", type + ":" + std::to_string(port));
  if (c.name.empty()) node.fail("name", "must not be empty");
  c.tenant = node.str("tenant", "default");
  c.dataset = node.str("dataset", default_dataset);
  try {
    require_id("tenant", c.tenant);
  } catch (const std::exception& e) {
    node.fail("tenant", e.what());
  }
  try {
    require_id("dataset", c.dataset);
  } catch (const std::exception& e) {
    node.fail("dataset", e.what());
  }
  return c;
}

SourceMetrics::SourceMetrics(const std::string& s)
    : events(metrics().counter("bf_proxy_events_total", "Events received by a proxy source", {{"source", s}})),
      bytes(metrics().counter("bf_proxy_bytes_total", "Bytes received by a proxy source", {{"source", s}})),
      parse_errors(metrics().counter("bf_proxy_parse_errors_total",
                                     "Messages a proxy source could not parse (kept with _parse_error)",
                                     {{"source", s}})),
      source(s) {}

Counter& SourceMetrics::rejected(const std::string& reason) const {
  return metrics().counter("bf_proxy_rejected_total", "Requests a proxy source refused",
                           {{"source", source}, {"reason", reason}});
}

void normalize_event_time(Event& ev, const std::string& received) {
  auto* t = ev.if_contains("_time");
  if (!t) {
    ev["_time"] = received;
    return;
  }
  if (auto us = parse_event_time(*t)) {
    *t = format_rfc3339(*us);
  } else {
    ev["_time_raw"] = std::move(*t);
    ev["_time"] = received;
  }
}

void stamp_event(Event& event, const std::string& received, const std::string& source, const std::string& peer) {
  event["_received"] = received;
  event["_source"] = source;
  if (!peer.empty()) event["_peer"] = peer;
}

SyslogIngest::SyslogIngest(SourceCommon common, EventSink& sink, SyslogParseOptions options, Delivery delivery)
    : common_(std::move(common)),
      sink_(sink),
      options_(options),
      delivery_(delivery),
      metrics_(common_.name),
      rejected_empty_(metrics_.rejected("empty")) {}

void SyslogIngest::handle(std::string_view message, const std::string& peer) {
  const int64_t received = now_us();
  pending_bytes_ += message.size();
  std::string_view trimmed = message;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r' || trimmed.back() == '\0'))
    trimmed.remove_suffix(1);
  if (trimmed.empty()) {  // a blank frame carries nothing to keep
    rejected_empty_.inc();
    return;
  }
  parse_syslog_record(trimmed, received, options_, record_);
  if (!record_.error.empty()) metrics_.parse_errors.inc();
  JsonObjectWriter w(pending_);
  write_syslog_fields(w, record_, time_format_);
  w.plain_field("_received", received_format_.format(received));
  w.plain_field("_source", common_.name);
  if (!peer.empty()) w.plain_field("_peer", peer);
  w.close();
  pending_.push_back('\n');
  ++pending_events_;
  if (pending_.size() >= kFlushBytes) flush();
}

void SyslogIngest::flush() {
  hand_over_lines(sink_, common_, metrics_, delivery_, pending_, pending_events_, pending_bytes_);
}

void hand_over_lines(EventSink& sink, const SourceCommon& common, SourceMetrics& metrics, Delivery delivery,
                     std::string& pending, size_t& events, uint64_t& bytes) {
  if (bytes) {
    metrics.bytes.inc(bytes);
    bytes = 0;
  }
  if (events == 0) {
    pending.clear();
    return;
  }
  const size_t n = events;
  events = 0;
  try {
    sink.emit_ndjson(common.tenant, common.dataset, pending, n, delivery);
  } catch (...) {
    pending.clear();
    throw;
  }
  pending.clear();
  metrics.events.inc(n);
}

TcpListenerOptions read_tcp_listener_options(const ConfigNode& node, const SourceCommon& common) {
  TcpListenerOptions opt;
  opt.listen = common.listen;
  opt.max_message = node.bytes("max_message", opt.max_message);
  if (opt.max_message == 0) node.fail("max_message", "must be positive");
  const int64_t conns = node.integer("max_connections", opt.max_connections);
  if (conns < 1 || conns > 1000000) node.fail("max_connections", "must be between 1 and 1000000");
  opt.max_connections = static_cast<int>(conns);
  opt.idle_timeout = node.duration("idle_timeout", opt.idle_timeout);
  if (opt.idle_timeout.count() <= 0) node.fail("idle_timeout", "must be greater than 0");
  return opt;
}

}  // namespace bf
