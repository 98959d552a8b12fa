// The built-in sinks, in one explicit list (survives static linking; a duplicate
// name is a programming error).
#include <stdexcept>

#include "connector/sinks.h"

namespace bf {

SinkFactory elasticsearch_sink();
SinkFactory splunk_hec_sink();
SinkFactory webhook_sink();

const std::vector<SinkFactory>& sink_factories() {
  static const std::vector<SinkFactory> all = [] {
    std::vector<SinkFactory> v{elasticsearch_sink(), splunk_hec_sink(), webhook_sink()};
    for (size_t i = 0; i < v.size(); ++i)
      for (size_t j = i + 1; j < v.size(); ++j)
        if (v[i].type == v[j].type) throw std::logic_error("sink '" + v[i].type + "' registered twice");
    return v;
  }();
  return all;
}

const SinkFactory* find_sink(std::string_view type) {
  for (const auto& f : sink_factories())
    if (f.type == type) return &f;
  return nullptr;
}

}  // namespace bf
