#include "net/tcp_framer.h"

#include <algorithm>
#include <cstring>

namespace bf {

TcpFramer::TcpFramer(size_t max_message, bool octet_counting_detection, bool stop_on_error)
    : max_message_(max_message == 0 ? 1 : max_message),
      max_digits_(std::to_string(max_message_).size()),
      detect_(octet_counting_detection),
      stop_on_error_(stop_on_error) {
  if (!detect_) mode_ = Mode::kLines;
}

void TcpFramer::deliver(const Sink& sink) {
  if (!buf_.empty()) sink(std::string_view(buf_), truncated_);
  buf_.clear();
  truncated_ = false;
  remaining_ = 0;
  state_ = State::kStart;
}

void TcpFramer::framing_error() {
  ++errors_;
  buf_.clear();
  truncated_ = false;
  remaining_ = 0;
  state_ = stop_on_error_ ? State::kFailed : State::kSkip;
}

void TcpFramer::feed(std::string_view data, const Sink& sink) {
  size_t i = 0;
  const size_t n = data.size();
  auto end_line = [&] {
    if (truncated_) {
      buf_.resize(std::min(buf_.size(), max_message_));
    } else {
      if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
      if (buf_.size() > max_message_) {
        buf_.resize(max_message_);
        truncated_ = true;
      }
    }
    deliver(sink);
  };
  while (i < n) {
    switch (state_) {
      case State::kFailed:
        return;
      case State::kSkip: {
        const void* nl = std::memchr(data.data() + i, '\n', n - i);
        if (!nl) return;
        i = static_cast<size_t>(static_cast<const char*>(nl) - data.data()) + 1;
        state_ = State::kStart;
        break;
      }
      case State::kStart: {
        const char c = data[i];
        const bool digit = c >= '0' && c <= '9';
        if (mode_ == Mode::kLines) {
          state_ = State::kLine;
        } else if (mode_ == Mode::kUndecided) {
          state_ = digit ? State::kLength : State::kLine;
          if (!digit) mode_ = Mode::kLines;
        } else if (digit) {
          state_ = State::kLength;
        } else if (c == '\n' || c == '\r') {
          ++i;  // a line end after a frame, as some senders add: not part of any frame
        } else {
          framing_error();
        }
        break;
      }
      case State::kLength: {
        const char c = data[i];
        if (c >= '0' && c <= '9') {
          // Undecided, a long run of digits may still turn out to start a line.
          if (buf_.size() >= (mode_ == Mode::kOctets ? max_digits_ : size_t{20})) {
            if (mode_ == Mode::kOctets) {
              framing_error();  // absurd length: more digits than any allowed message has
            } else {
              mode_ = Mode::kLines;
              state_ = State::kLine;
            }
            break;
          }
          buf_.push_back(c);
          ++i;
        } else if (c == ' ' && !buf_.empty()) {
          uint64_t len = 0;
          for (char d : buf_) len = len * 10 + static_cast<uint64_t>(d - '0');
          const bool absurd = buf_.size() > max_digits_;
          buf_.clear();
          if (len == 0 || absurd) {
            framing_error();
            break;
          }
          ++i;
          mode_ = Mode::kOctets;
          remaining_ = len;
          state_ = State::kOctets;
        } else if (mode_ == Mode::kUndecided) {
          mode_ = Mode::kLines;   // the digits already seen are the start of a line
          state_ = State::kLine;
        } else {
          framing_error();  // octet counting, but no SP after the length
        }
        break;
      }
      case State::kOctets: {
        if (buf_.empty() && !truncated_ && remaining_ <= n - i) {
          // The whole frame is in this chunk: pass a view of it.
          const size_t len = static_cast<size_t>(remaining_);
          const bool cut = len > max_message_;
          sink(data.substr(i, cut ? max_message_ : len), cut);
          i += len;
          remaining_ = 0;
          state_ = State::kStart;
          break;
        }
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
        const size_t room = max_message_ > buf_.size() ? max_message_ - buf_.size() : 0;
        const size_t keep = std::min(take, room);
        buf_.append(data.data() + i, keep);
        if (keep < take) truncated_ = true;
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) deliver(sink);
        break;
      }
      case State::kLine: {
        const void* nl = std::memchr(data.data() + i, '\n', n - i);
        const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - data.data()) : n;
        if (nl && buf_.empty() && !truncated_) {
          // The whole line is in this chunk: pass a view of it (what end_line would
          // pass: CR before the LF removed, cut to max_message).
          std::string_view line = data.substr(i, end - i);
          if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
          const bool cut = line.size() > max_message_;
          if (cut) line = line.substr(0, max_message_);
          if (!line.empty()) sink(line, cut);
          i = end + 1;
          state_ = State::kStart;
          break;
        }
        const size_t chunk = end - i;
        const size_t cap = max_message_ + 1;  // room for a trailing '\r'
        const size_t room = cap > buf_.size() ? cap - buf_.size() : 0;
        const size_t keep = std::min(chunk, room);
        buf_.append(data.data() + i, keep);
        if (keep < chunk) truncated_ = true;
        i = end;
        if (nl) {
          ++i;
          end_line();
        }
        break;
      }
    }
  }
}

bool TcpFramer::finish(const Sink& sink) {
  bool incomplete = false;
  switch (state_) {
    case State::kStart:
    case State::kSkip:
    case State::kFailed:
      break;
    case State::kLength:
      if (mode_ == Mode::kUndecided) {
        feed("\n", sink);  // digits alone: a partial last line
      } else {
        incomplete = true;  // a length prefix and nothing after it: nothing to deliver
      }
      break;
    case State::kLine:
      feed("\n", sink);  // a partial last line ends at end of stream
      break;
    case State::kOctets:
      truncated_ = true;  // the frame announced more octets than arrived
      incomplete = true;
      deliver(sink);
      break;
  }
  buf_.clear();
  truncated_ = false;
  remaining_ = 0;
  if (state_ != State::kFailed) state_ = State::kStart;
  return incomplete;
}

}  // namespace bf
