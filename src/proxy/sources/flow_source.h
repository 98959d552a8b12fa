#pragma once
// The netflow and ipfix sources are one source with different defaults.
#include <memory>
#include <string>

#include "proxy/source.h"

namespace bf {

std::unique_ptr<Source> make_template_flow_source(const ConfigNode& node, EventSink& sink, const std::string& type,
                                                  const std::string& default_listen,
                                                  const std::string& default_dataset);

}  // namespace bf
