// ipfix: IPFIX (RFC 7011) over UDP on its IANA port; the same decoder as netflow
// (which also reads IPFIX), with IPFIX's port and dataset as defaults.
//
//   - type: ipfix
//     listen: 0.0.0.0:4739
//     (the other keys as for netflow)
#include "proxy/sources/flow_source.h"

namespace bf {

SourceFactory ipfix_source_factory() {
  static const OptionTable<TemplateFlowSettings> table = template_flow_options("ipfix", "0.0.0.0:4739", "ipfix");
  return {"ipfix", "IPFIX over UDP (NetFlow v5/v9 datagrams are read too)",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            return make_template_flow_source(table.read(node, source_context(node, "ipfix")), sink);
          },
          table.specs()};
}

}  // namespace bf
