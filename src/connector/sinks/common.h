#pragma once
// Shared by the sink declarations in this directory (not a public interface): the keys
// every sink has and the checks of URLs and environment variable names.
#include <chrono>
#include <cstdint>
#include <string>

#include "common/option_table.h"

namespace bf {

// Keys every sink has.
struct SinkCommon {
  std::string url;
  int64_t batch_events = 0;
  uint64_t batch_bytes = 0;
  std::chrono::milliseconds timeout{0};
  std::string ca_file;
};

// OptionChecks: "" or what is wrong.
std::string check_sink_url(const std::string& url);   // http(s)://host[:port][/path], required
std::string check_env_name(const std::string& name);  // [A-Z_][A-Z0-9_]*, or empty (not set)
std::string check_required(const std::string& value);

// url, batch_events, batch_bytes, timeout, tls.ca_file. S has a `common` member.
template <class S>
void add_sink_common(OptionTable<S>& t, const std::string& url_example) {
  t.string("url", [](S& s) -> std::string& { return s.common.url; }, "",
           "the destination's base URL, e.g. `" + url_example + "`", {}, check_sink_url);
  t.mark_required("url");
  t.integer("batch_events", [](S& s) -> int64_t& { return s.common.batch_events; }, 5000, 1, 100000,
            "events per request at most");
  t.size("batch_bytes", [](S& s) -> uint64_t& { return s.common.batch_bytes; }, 5 << 20, 1024, 100 << 20,
         "request body size at most (before compression)");
  t.duration("timeout", [](S& s) -> std::chrono::milliseconds& { return s.common.timeout; },
             std::chrono::seconds(30), std::chrono::seconds(1), std::chrono::minutes(10), "one request's time limit");
  t.string("tls.ca_file", [](S& s) -> std::string& { return s.common.ca_file; }, "",
           "PEM file of the CAs to trust on the connector's host (default: the system's)");
}

// The validate function of a SinkFactory for settings struct S read by `table`.
template <class S>
void validate_with(const OptionTable<S>& table, const ConfigNode& settings, const std::string& context) {
  (void)table.read(settings, context);
}

}  // namespace bf
