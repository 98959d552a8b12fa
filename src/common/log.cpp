#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <limits>

namespace bf {

void init_logging(const std::string& level) {
  auto logger = spdlog::get("bytefreezer");
  if (!logger) logger = spdlog::stderr_color_mt("bytefreezer");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
}

LogLimiter::LogLimiter(std::chrono::milliseconds interval, Clock clock)
    : interval_ms_(interval.count()),
      clock_(clock ? std::move(clock)
                   : Clock([] {
                       return std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                           .count();
                     })),
      next_ms_(std::numeric_limits<int64_t>::min()) {}

bool LogLimiter::allow(uint64_t& suppressed) {
  const int64_t now = clock_();
  int64_t next = next_ms_.load(std::memory_order_relaxed);
  // One thread wins the slot; the others (and everything before `next`) are counted.
  if (now >= next && next_ms_.compare_exchange_strong(next, now + interval_ms_, std::memory_order_relaxed)) {
    suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace bf
