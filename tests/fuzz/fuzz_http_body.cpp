// libFuzzer target: the http source's body decoder (http_body.h): JSON object, array,
// NDJSON, text/plain lines; identity, gzip and zstd bodies; max_events.
// Byte 0 chooses Content-Encoding (none, identity, gzip, zstd), text/plain or JSON,
// and whether the rest is compressed here first (so the parsers see what a client's
// compressed body decodes to) or given to the decoder as it is (hostile compressed
// bytes). Byte 1 chooses max_events. Checks: an accepted body has at most max_events
// events, text events carry a valid UTF-8 `message`, a refusal has a known status and
// reason, a body compressed here decodes to what the same body sent uncompressed
// does, and the events serialise as NDJSON.
#include <cstdlib>
#include <string>

#include "common/compression.h"
#include "common/utf8.h"
#include "fuzz_check.h"
#include "proxy/sources/http_body.h"

namespace {

std::string describe(const bf::HttpBodyError& e, const std::vector<bf::Event>& events) {
  return e.reason + "\n" + bf::to_ndjson(events);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* kEncodings[] = {nullptr, "identity", "gzip", " ZStd "};
  static const size_t kMaxEvents[] = {1, 2, 3, 10, 1000};
  const char* encoding = kEncodings[data[0] & 3];
  const bool text = data[0] & 4;
  const bool compress_here = data[0] & 8;
  bf::HttpBodyLimits limits;
  limits.max_decompressed = 1 << 16;
  limits.max_events = kMaxEvents[data[1] % 5];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const std::optional<std::string_view> type =
      text ? std::optional<std::string_view>("Text/Plain; charset=utf-8") : std::optional<std::string_view>();
  const std::optional<std::string_view> ce =
      encoding ? std::optional<std::string_view>(encoding) : std::optional<std::string_view>();

  const bool compressed = (data[0] & 3) >= 2;
  std::string body(rest);
  if (compress_here && compressed) body = bf::compress((data[0] & 3) == 2 ? bf::Encoding::gzip : bf::Encoding::zstd, rest);
  std::vector<bf::Event> events;
  const bf::HttpBodyError err = bf::decode_http_body(ce, type, body, limits, events);
  if (err.ok()) {
    if (events.size() > limits.max_events) std::abort();
    if (text)
      for (const auto& ev : events) {
        const auto* m = ev.if_contains("message");
        if (!m || !m->is_string() || !bf::is_valid_utf8(std::string_view(m->as_string()))) std::abort();
      }
    check_ndjson(bf::to_ndjson(events));
  } else {
    const bool known = (err.status == 400 && (err.reason == "bad_json" || err.reason == "bad_encoding")) ||
                       (err.status == 413 && (err.reason == "too_large" || err.reason == "too_many_events")) ||
                       (err.status == 415 && err.reason == "bad_encoding");
    if (!known || err.message.empty()) std::abort();
  }
  if (compress_here && compressed) {
    std::vector<bf::Event> plain;
    const bf::HttpBodyError plain_err = bf::decode_http_body(std::nullopt, type, rest, limits, plain);
    if (describe(err, events) != describe(plain_err, plain)) std::abort();
  }
  return 0;
}
