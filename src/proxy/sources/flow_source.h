#pragma once
// The netflow and ipfix sources are one source with different defaults.
#include <chrono>
#include <memory>
#include <string>

#include "proxy/sources/common.h"

namespace bf {

struct TemplateFlowSettings {
  SourceCommon common;
  UdpWorkersOptions udp;
  int64_t max_templates = 4096, max_templates_per_exporter = 1024;
  std::chrono::milliseconds template_timeout{0}, template_wait{0};
  uint64_t max_held = 0;
};

// The option table of a template flow source of `type` with these defaults.
OptionTable<TemplateFlowSettings> template_flow_options(const std::string& type, const std::string& default_listen,
                                                        const std::string& default_dataset);
std::unique_ptr<Source> make_template_flow_source(const TemplateFlowSettings& settings, EventSink& sink);

}  // namespace bf
