// libFuzzer target: net::TcpFramer (RFC 6587 octet counting / LF framing, detection,
// framing errors, truncation). Byte 0 chooses the options (detection, stop on error,
// max_message), byte 1 how the rest is cut into reads. Besides "no crash, no
// sanitizer report" it checks that every message is non-empty and at most
// max_message long, and that the framing does not depend on how the stream was cut
// into reads: fed whole and fed in pieces, the messages, flags and error counts agree.
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/tcp_framer.h"

namespace {

struct Result {
  std::vector<std::pair<std::string, bool>> messages;
  uint64_t errors = 0;
  bool failed = false;
  bool incomplete = false;
};

Result run(std::string_view data, size_t max_message, bool detect, bool stop, uint8_t cut_seed, bool whole) {
  bf::TcpFramer framer(max_message, detect, stop);
  Result r;
  const bf::TcpFramer::Sink sink = [&](std::string_view m, bool truncated) {
    if (m.empty() || m.size() > max_message) std::abort();
    r.messages.emplace_back(std::string(m), truncated);
  };
  if (whole) {
    framer.feed(data, sink);
  } else {
    size_t step = 0;
    while (!data.empty()) {
      // Read sizes 1..16 in a pattern set by the seed.
      const size_t n = std::min(data.size(), size_t{1} + ((cut_seed + step * 7) % 16));
      framer.feed(data.substr(0, n), sink);
      data.remove_prefix(n);
      ++step;
    }
  }
  r.incomplete = framer.finish(sink);
  r.errors = framer.framing_errors();
  r.failed = framer.failed();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const size_t kMax[] = {1, 2, 5, 9, 10, 64, 100, 1000};
  const bool detect = data[0] & 1;
  const bool stop = data[0] & 2;
  const size_t max_message = kMax[(data[0] >> 2) & 7];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  const Result whole = run(stream, max_message, detect, stop, data[1], true);
  const Result pieces = run(stream, max_message, detect, stop, data[1], false);
  if (whole.messages != pieces.messages || whole.errors != pieces.errors || whole.failed != pieces.failed ||
      whole.incomplete != pieces.incomplete)
    std::abort();
  if (whole.failed && !stop) std::abort();  // skip mode never gives up on the stream
  return 0;
}
