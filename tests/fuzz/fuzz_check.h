#pragma once
// What every flow fuzz target checks besides "no crash, no sanitizer report": the
// decoder's output is always valid NDJSON, one JSON object per line.
#include <boost/json.hpp>
#include <cstdlib>
#include <string_view>

inline void check_ndjson(std::string_view out) {
  while (!out.empty()) {
    const size_t nl = out.find('\n');
    if (nl == std::string_view::npos) std::abort();  // every event ends with '\n'
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(out.substr(0, nl), ec);
    if (ec || !v.is_object()) std::abort();
    out.remove_prefix(nl + 1);
  }
}
