#pragma once
// RFC 6587 framing of a syslog / line stream, with no I/O (TcpListener runs one per
// connection; the fuzz target tests/fuzz/fuzz_tcp_framer.cpp drives it directly).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace bf {

// Incremental RFC 6587 framer used by TcpListener for each connection; usable on its
// own (e.g. for another stream transport). Feed bytes as they arrive, in any chunking;
// call finish() at end of stream. The sink gets each message and whether it was cut
// (to max_message, or at end of stream). Empty messages are skipped. A message that
// lies whole inside one fed chunk is passed as a view into that chunk (no copy); only
// messages split across chunks are gathered in the framer. Not thread-safe; one per
// stream.
//
// With detection on, the first frame decides the stream's framing: a digit followed by
// more digits and a SP is octet counting, anything else newline framing; the choice
// holds for the rest of the stream. In an octet-counted stream a frame that does not
// start with a valid length (zero, more digits than max_message has, no SP) is a
// framing error: nothing of it is delivered, and the framer either stops (failed(),
// the caller closes the stream) or skips to the next LF and resumes.
class TcpFramer {
 public:
  using Sink = std::function<void(std::string_view message, bool truncated)>;
  // octet_counting_detection: true = "auto" framing, false = newline only.
  TcpFramer(size_t max_message, bool octet_counting_detection, bool stop_on_error = true);
  void feed(std::string_view data, const Sink& sink);
  // End of stream: delivers a partial last line; an incomplete octet-counted frame is
  // delivered as far as it got and flagged truncated. Returns true when the stream
  // ended inside an octet-counted frame.
  bool finish(const Sink& sink);
  uint64_t framing_errors() const { return errors_; }
  bool failed() const { return state_ == State::kFailed; }
  bool octet_counting() const { return mode_ == Mode::kOctets; }

 private:
  enum class State { kStart, kLength, kOctets, kLine, kSkip, kFailed };
  enum class Mode { kUndecided, kOctets, kLines };
  void deliver(const Sink& sink);
  void framing_error();
  size_t max_message_;
  size_t max_digits_;  // digits of max_message: a longer length prefix is absurd
  bool detect_;
  bool stop_on_error_;
  State state_ = State::kStart;
  Mode mode_ = Mode::kUndecided;
  std::string buf_;
  uint64_t remaining_ = 0;   // octets still to read of the current octet-counted frame
  bool truncated_ = false;
  uint64_t errors_ = 0;
};

}  // namespace bf
