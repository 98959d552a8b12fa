#pragma once
// Logging: spdlog, one default logger for the process.
#include <spdlog/spdlog.h>
#include <string>

namespace bf {
// level: trace|debug|info|warn|error; format "text" or "json".
void init_logging(const std::string& level, const std::string& format = "text");
}  // namespace bf
