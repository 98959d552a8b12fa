// syslog_udp: one syslog message per UDP datagram (RFC 5426).
//
//   - type: syslog_udp
//     listen: 0.0.0.0:5514
//     receive_buffer: 8MiB     # SO_RCVBUF request
//     workers: 1               # receive threads, one SO_REUSEPORT socket each
//     max_datagram: 65535
//     keep_raw: true
//     timezone: UTC            # IANA zone of timestamps without one (RFC 3164)
//     vendor_payloads: true    # split CEF / LEEF / key=value payloads into fields
//
// Delivery::best_effort: UDP cannot push back, so while the proxy spool is full new
// batches are dropped and counted (bf_proxy_dropped_total{reason="spool_full"}); with
// spool.fsync: interval these batches are group-committed.
#include "common/config.h"
#include "net/listeners.h"
#include "proxy/sources/common.h"
#include "proxy/sources/udp_workers.h"

namespace bf {
namespace {

struct SyslogUdpSettings {
  SourceCommon common;
  UdpWorkersOptions udp;
  SyslogParseOptions parse;
};

const OptionTable<SyslogUdpSettings>& syslog_udp_options() {
  static const OptionTable<SyslogUdpSettings> table = [] {
    using S = SyslogUdpSettings;
    OptionTable<S> t;
    add_source_common(t, "syslog_udp", "0.0.0.0:5514", "syslog");
    add_udp_workers_options(t, [](S& s) -> UdpWorkersOptions& { return s.udp; });
    add_syslog_parse_options(t, [](S& s) -> SyslogParseOptions& { return s.parse; });
    return t;
  }();
  return table;
}

}  // namespace

SourceFactory syslog_udp_source_factory() {
  return {"syslog_udp", "Syslog (RFC 5424 / RFC 3164) over UDP, one message per datagram",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            SyslogUdpSettings s = syslog_udp_options().read(node, source_context(node, "syslog_udp"));
            if (s.udp.workers == 1)
              return std::make_unique<SyslogListenerSource<UdpListener, UdpListenerOptions>>(
                  std::move(s.common), std::move(s.udp.udp), s.parse, sink, Delivery::best_effort);
            // One SyslogIngest (pending buffer, record, formatters) per worker: the
            // workers share no state and their counters add up under the source's name.
            const SourceCommon common = s.common;
            const SyslogParseOptions parse = s.parse;
            return std::make_unique<UdpWorkersSource<SyslogIngest>>(common.name, s.udp.udp, s.udp.workers,
                                                                    [common, parse, &sink] {
              return std::make_unique<SyslogIngest>(common, sink, parse, Delivery::best_effort);
            });
          },
          syslog_udp_options().specs()};
}

}  // namespace bf
