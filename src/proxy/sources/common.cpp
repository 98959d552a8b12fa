#include "proxy/sources/common.h"

#include <stdexcept>

#include "common/config.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/time_zone.h"
#include "net/listeners.h"
#include "proxy/ndjson_writer.h"

namespace bf {

std::string source_context(const ConfigNode& node, const std::string& type) {
  std::string context = "source " + type;
  if (node.has("name")) context += " '" + node.str("name", "") + "'";
  return context;
}

std::string check_listen_address(const std::string& listen) {
  try {
    split_host_port(listen);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string check_id(const char* what, const std::string& id) {
  try {
    require_id(what, id);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

SourceMetrics::SourceMetrics(const SourceCommon& common)
    : component("source", common.type, common.name),
      events(metrics().counter("bf_proxy_events_total", "Events received by a proxy source", {{"source", common.name}})),
      bytes(metrics().counter("bf_proxy_bytes_total", "Bytes received by a proxy source", {{"source", common.name}})),
      parse_errors(metrics().counter("bf_proxy_parse_errors_total",
                                     "Messages a proxy source could not parse (kept with _parse_error)",
                                     {{"source", common.name}})),
      parse_error_contract(component.error("parse", "unparsed")),
      emit_errors(component.error("emit", "sink_error")),
      emit_discards(component.discarded(Discard::unintentional, "sink_error")),
      source(common.name) {}

Counter& SourceMetrics::rejected(const std::string& reason) const {
  return metrics().counter("bf_proxy_rejected_total", "Requests a proxy source refused",
                           {{"source", source}, {"reason", reason}});
}

void SourceMetrics::reject(const std::string& stage, const std::string& reason) const {
  rejected(reason).inc();
  component.error(stage, reason).inc();
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
      metrics_(common_),
      rejected_empty_(metrics_.rejected("empty")),
      discarded_empty_(metrics_.component.discarded(Discard::unintentional, "empty")) {}

void SyslogIngest::handle(std::string_view message, const std::string& peer, bool truncated) {
  const int64_t received = now_us();
  pending_bytes_ += message.size();
  ++pending_messages_;
  std::string_view trimmed = message;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r' || trimmed.back() == '\0'))
    trimmed.remove_suffix(1);
  if (trimmed.empty()) {  // a blank frame carries nothing to keep
    rejected_empty_.inc();
    discarded_empty_.inc();
    return;
  }
  // The whole message: the parser keeps NULs in `_raw_b64`, so the bytes stay exact.
  parse_syslog_record(message, received, options_, record_);
  record_.truncated = truncated;
  if (!record_.error.empty()) {
    metrics_.parse_errors.inc();
    metrics_.parse_error_contract.inc();
  }
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
  const size_t messages = pending_messages_;
  pending_messages_ = 0;
  hand_over_lines(sink_, common_, metrics_, delivery_, pending_, pending_events_, pending_bytes_, messages);
}

void hand_over_lines(EventSink& sink, const SourceCommon& common, SourceMetrics& metrics, Delivery delivery,
                     std::string& pending, size_t& events, uint64_t& bytes, size_t messages) {
  // Counted a read at a time, not per message (the hot path: one add per counter).
  if (bytes) {
    metrics.bytes.inc(bytes);
    metrics.component.received_bytes.inc(bytes);
    bytes = 0;
  }
  if (messages) metrics.component.received_events.inc(messages);
  if (events == 0) {
    pending.clear();
    return;
  }
  const size_t n = events;
  const size_t out_bytes = pending.size();
  events = 0;
  try {
    sink.emit_ndjson(common.tenant, common.dataset, pending, n, delivery);
  } catch (...) {
    pending.clear();
    metrics.emit_errors.inc();
    metrics.emit_discards.inc(n);
    throw;
  }
  pending.clear();
  metrics.events.inc(n);
  metrics.component.sent_events.inc(n);
  metrics.component.sent_bytes.inc(out_bytes);
}

}  // namespace bf
