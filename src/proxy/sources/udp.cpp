// udp: raw lines over UDP; each line of a datagram is an event (`format`, lines.h).
//
//   - type: udp
//     listen: 0.0.0.0:5170
//     format: auto            # auto | json | text
//     workers: 1              # receive threads, one SO_REUSEPORT socket each
//     receive_buffer: 8MiB
//     max_datagram: 65535
#include "common/config.h"
#include "proxy/sources/flow_ingest.h"
#include "proxy/sources/lines.h"
#include "proxy/sources/udp_workers.h"

namespace bf {

SourceFactory udp_source_factory() {
  return {"udp", "Raw lines over UDP: each line an event, JSON objects read as such",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            SourceCommon common = read_source_common(node, "udp", "0.0.0.0:5170", "udp");
            UdpWorkersOptions opt = read_udp_workers_options(node, common);
            const LineFormat format = read_line_format(node);
            return std::make_unique<UdpWorkersSource<LineIngest>>(common.name, opt.udp, opt.workers, [common, &sink, format] {
              return std::make_unique<LineIngest>(common, sink, format, Delivery::best_effort);
            });
          }};
}

}  // namespace bf
