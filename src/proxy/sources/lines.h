#pragma once
// Lines -> events, shared by the raw `udp` and `tcp` sources: each line is an event,
// its text in `message`, or the line's own fields when it is a JSON object
// (format auto | json | text). Not thread-safe: one per receive thread / listener.
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/ndjson_writer.h"
#include "proxy/sources/common.h"

namespace bf {

class ConfigNode;

enum class LineFormat { auto_detect, json, text };
// The `format` key of the udp and tcp sources.
template <class S, class Get>
void add_line_format_option(OptionTable<S>& t, Get get) {
  t.choice("format", get,
           std::vector<std::pair<std::string, LineFormat>>{
               {"auto", LineFormat::auto_detect}, {"json", LineFormat::json}, {"text", LineFormat::text}},
           "auto",
           "`auto`: a line that is a JSON object becomes that object's fields, any other line "
           "`{\"message\": <line>}`; `json`: lines must be JSON objects, others are kept as `message` with "
           "`_parse_error` (and counted in `bf_proxy_parse_errors_total`); `text`: every line is `message`");
}

class LineIngest {
 public:
  LineIngest(const SourceCommon& common, EventSink& sink, LineFormat format, Delivery delivery);
  // One datagram or framed message: split at '\n' (a '\r' before it dropped), blank lines skipped.
  void handle(std::string_view data, const std::string& peer);
  void flush();

 private:
  void line(std::string_view text, const std::string& peer, int64_t received_us, std::string_view received);
  static constexpr size_t kFlushBytes = 1 << 20;
  const SourceCommon common_;
  EventSink& sink_;
  LineFormat format_;
  Delivery delivery_;
  SourceMetrics metrics_;
  Counter& rejected_empty_;
  Rfc3339Formatter received_format_;
  std::string pending_;
  size_t pending_events_ = 0;
  uint64_t pending_bytes_ = 0;
};

}  // namespace bf
