#pragma once
// Logging: spdlog, one default logger for the process.
#include <spdlog/spdlog.h>
#include <string>

namespace bf {
// level: trace|debug|info|warn|error|off. Logs go to stderr, timestamps in UTC.
void init_logging(const std::string& level);
}  // namespace bf
