#pragma once
// Logging: spdlog, one default logger for the process.
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace bf {
// level: trace|debug|info|warn|error|off. Logs go to stderr, timestamps in UTC.
void init_logging(const std::string& level);

// Rate limit for a log line that bad input can trigger at any rate (a flood of broken
// datagrams): at most one line per `interval`; the occurrences in between are counted
// and the next line that is allowed reports how many were not logged. Thread-safe
// and lock-free (several receive threads of one source may share one).
class LogLimiter {
 public:
  using Clock = std::function<int64_t()>;  // milliseconds, monotonic
  explicit LogLimiter(std::chrono::milliseconds interval, Clock clock = {});
  // True: log now, and `suppressed` is the number of occurrences not logged since the
  // last line. False: this one is counted for that line.
  bool allow(uint64_t& suppressed);

 private:
  const int64_t interval_ms_;
  const Clock clock_;
  std::atomic<int64_t> next_ms_;
  std::atomic<uint64_t> suppressed_{0};
};
}  // namespace bf
