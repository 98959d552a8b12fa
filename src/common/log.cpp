#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace bf {

void init_logging(const std::string& level) {
  auto logger = spdlog::get("bytefreezer");
  if (!logger) logger = spdlog::stderr_color_mt("bytefreezer");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
}

}  // namespace bf
