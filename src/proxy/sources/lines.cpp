#include "proxy/sources/lines.h"

#include <boost/json.hpp>

#include "common/config.h"
#include "common/time.h"
#include "common/utf8.h"

namespace bf {

LineIngest::LineIngest(const SourceCommon& common, EventSink& sink, LineFormat format, Delivery delivery)
    : common_(common),
      sink_(sink),
      format_(format),
      delivery_(delivery),
      metrics_(common),
      rejected_empty_(metrics_.rejected("empty")) {}

void LineIngest::handle(std::string_view data, const std::string& peer) {
  const int64_t received_us = now_us();
  const std::string received(received_format_.format(received_us));
  pending_bytes_ += data.size();
  bool any = false;
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    std::string_view text = data.substr(0, nl);
    data = nl == std::string_view::npos ? std::string_view() : data.substr(nl + 1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (is_blank_line(text)) continue;
    any = true;
    line(text, peer, received_us, received);
  }
  if (!any) rejected_empty_.inc();
  if (pending_.size() >= kFlushBytes) flush();
}

void LineIngest::line(std::string_view text, const std::string& peer, int64_t, std::string_view received) {
  std::string parse_error;
  if (format_ != LineFormat::text) {
    size_t first = 0;
    while (first < text.size() && (text[first] == ' ' || text[first] == '\t')) ++first;
    if (first < text.size() && text[first] == '{') {
      boost::system::error_code ec;
      boost::json::value v = boost::json::parse(text, ec);
      if (!ec && v.is_object()) {
        Event& ev = v.as_object();
        normalize_event_time(ev, std::string(received));
        stamp_event(ev, std::string(received), common_.name, peer);
        append_ndjson(pending_, ev);
        ++pending_events_;
        return;
      }
      parse_error = ec ? "invalid JSON: " + ec.message() : "not a JSON object";
    } else {
      parse_error = "not a JSON object";
    }
    if (format_ == LineFormat::auto_detect && text[first] != '{') parse_error.clear();  // plain text, as expected
  }
  JsonObjectWriter w(pending_);
  const bool exact = is_valid_utf8(text) && text.find('\0') == std::string_view::npos;
  if (exact) {
    w.plain_field("message", text);
  } else {
    // message stays queryable text; the bytes as sent are kept in _raw_b64.
    w.plain_field("message", repair_utf8(text));
    w.plain_field("_raw_b64", base64(text));
  }
  if (!parse_error.empty()) {
    w.plain_field("_parse_error", parse_error);
    metrics_.parse_errors.inc();
    metrics_.parse_error_contract.inc();
  }
  w.plain_field("_time", received);
  w.plain_field("_received", received);
  w.plain_field("_source", common_.name);
  if (!peer.empty()) w.plain_field("_peer", peer);
  w.close();
  pending_.push_back('\n');
  ++pending_events_;
}

void LineIngest::flush() {
  hand_over_lines(sink_, common_, metrics_, delivery_, pending_, pending_events_, pending_bytes_, pending_events_);
}

}  // namespace bf
