// netflow: NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) over UDP, told
// apart per datagram by its version; decoded by proxy/flow/netflow.cpp and ipfix.cpp.
//
//   - type: netflow
//     listen: 0.0.0.0:2055
//     workers: 1              # receive threads, one SO_REUSEPORT socket and template cache each
//     receive_buffer: 8MiB
//     max_datagram: 65535
//     max_templates: 4096     # per worker, over all exporters (least recently used evicted)
//     template_timeout: 30m   # a template not refreshed for this long is forgotten
//     template_wait: 60s      # data that comes before its template is held this long
//     max_held: 4MiB          # … and at most this many bytes of it (per worker)
#include "proxy/sources/flow_source.h"

namespace bf {

SourceFactory netflow_source_factory() {
  static const OptionTable<TemplateFlowSettings> table = template_flow_options("netflow", "0.0.0.0:2055", "netflow");
  return {"netflow", "NetFlow v5 / v9 and IPFIX over UDP (version detected per datagram)",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            return make_template_flow_source(table.read(node, source_context(node, "netflow")), sink);
          },
          table.specs()};
}

}  // namespace bf
