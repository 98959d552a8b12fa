// The built-in proxy sources. Adding a source: one file in this directory defining
// its factory, plus one line here.
#include "proxy/source.h"
#include "proxy/sources/common.h"

namespace bf {

const std::vector<SourceFactory>& source_factories() {
  static const std::vector<SourceFactory> factories = [] {
    std::vector<SourceFactory> f;
    f.push_back(syslog_udp_source_factory());
    f.push_back(syslog_tcp_source_factory());
    f.push_back(http_source_factory());
    f.push_back(sflow_source_factory());
    f.push_back(netflow_source_factory());
    f.push_back(ipfix_source_factory());
    f.push_back(udp_source_factory());
    f.push_back(tcp_source_factory());
    for (size_t i = 0; i < f.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (f[i].type == f[j].type) std::abort();  // duplicate registration is a programming error
    return f;
  }();
  return factories;
}

const SourceFactory* find_source_factory(const std::string& type) {
  for (const auto& f : source_factories())
    if (f.type == type) return &f;
  return nullptr;
}

}  // namespace bf
