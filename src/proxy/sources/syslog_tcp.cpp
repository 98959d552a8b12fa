// syslog_tcp: syslog over TCP, framed per RFC 6587 (octet counting or LF) by the listener.
//
//   - type: syslog_tcp
//     listen: 0.0.0.0:5514
//     framing: auto            # auto | newline
//     max_message: 64KiB       # longer messages are truncated
//     max_connections: 1024    # more are closed at once and counted
//     idle_timeout: 10m        # a connection silent this long is closed
//     keep_raw: true
//     timezone: UTC            # IANA zone of timestamps without one (RFC 3164)
//     vendor_payloads: true    # split CEF / LEEF / key=value payloads into fields
//     close_on_framing_error: true   # false: skip to the next LF instead
//
// Delivery::backpressure: while the proxy spool is full the listener stops reading
// (its io thread waits in the batcher output), so senders are flow-controlled by TCP
// and nothing they sent is dropped.
#include "common/config.h"
#include "net/listeners.h"
#include "proxy/sources/common.h"

namespace bf {

SourceFactory syslog_tcp_source_factory() {
  return {"syslog_tcp", "Syslog (RFC 5424 / RFC 3164) over TCP, RFC 6587 framing",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            SourceCommon common = read_source_common(node, "syslog_tcp", "0.0.0.0:5514", "syslog");
            TcpListenerOptions opt = read_tcp_listener_options(node, common);
            opt.framing = node.str("framing", opt.framing);
            if (opt.framing != "auto" && opt.framing != "newline")
              node.fail("framing", "must be 'auto' or 'newline', got '" + opt.framing + "'");
            opt.close_on_framing_error = node.boolean("close_on_framing_error", opt.close_on_framing_error);
            SyslogParseOptions parse = read_syslog_parse_options(node);
            return std::make_unique<SyslogListenerSource<TcpListener, TcpListenerOptions>>(std::move(common), std::move(opt), parse, sink,
                                                                                    Delivery::backpressure);
          }};
}

}  // namespace bf
