// syslog_udp: one syslog message per UDP datagram (RFC 5426).
//
//   - type: syslog_udp
//     listen: 0.0.0.0:5514
//     receive_buffer: 8MiB     # SO_RCVBUF request
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

namespace bf {

SourceFactory syslog_udp_source_factory() {
  return {"syslog_udp", "Syslog (RFC 5424 / RFC 3164) over UDP, one message per datagram",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            SourceCommon common = read_source_common(node, "syslog_udp", "0.0.0.0:5514", "syslog");
            UdpListenerOptions opt;
            opt.listen = common.listen;
            opt.receive_buffer_bytes = static_cast<int>(node.bytes("receive_buffer", uint64_t(opt.receive_buffer_bytes)));
            opt.max_datagram = node.bytes("max_datagram", opt.max_datagram);
            if (opt.max_datagram == 0 || opt.max_datagram > 65535) node.fail("max_datagram", "must be 1..65535");
            SyslogParseOptions parse = read_syslog_parse_options(node);
            return std::make_unique<SyslogListenerSource<UdpListener, UdpListenerOptions>>(std::move(common), std::move(opt), parse, sink,
                                                                                    Delivery::best_effort);
          }};
}

}  // namespace bf
