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
namespace {

struct UdpSettings {
  SourceCommon common;
  UdpWorkersOptions udp;
  LineFormat format = LineFormat::auto_detect;
};

const OptionTable<UdpSettings>& udp_options() {
  static const OptionTable<UdpSettings> table = [] {
    using S = UdpSettings;
    OptionTable<S> t;
    add_source_common(t, "udp", "0.0.0.0:5170", "udp");
    add_line_format_option(t, &S::format);
    add_udp_workers_options(t, [](S& s) -> UdpWorkersOptions& { return s.udp; });
    return t;
  }();
  return table;
}

}  // namespace

SourceFactory udp_source_factory() {
  return {"udp", "Raw lines over UDP: each line an event, JSON objects read as such",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            const UdpSettings s = udp_options().read(node, source_context(node, "udp"));
            const SourceCommon common = s.common;
            const LineFormat format = s.format;
            return std::make_unique<UdpWorkersSource<LineIngest>>(common.name, s.udp.udp, s.udp.workers,
                                                                  [common, &sink, format] {
              return std::make_unique<LineIngest>(common, sink, format, Delivery::best_effort);
            });
          },
          udp_options().specs()};
}

}  // namespace bf
