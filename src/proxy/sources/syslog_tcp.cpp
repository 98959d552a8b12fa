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
namespace {

struct SyslogTcpSettings {
  SourceCommon common;
  TcpListenerOptions tcp;
  SyslogParseOptions parse;
};

const OptionTable<SyslogTcpSettings>& syslog_tcp_options() {
  static const OptionTable<SyslogTcpSettings> table = [] {
    using S = SyslogTcpSettings;
    OptionTable<S> t;
    add_source_common(t, "syslog_tcp", "0.0.0.0:5514", "syslog");
    t.string("framing", [](S& s) -> std::string& { return s.tcp.framing; }, "auto",
             "`auto`: the first frame of each connection decides — a digit, more digits and a SP is octet counting "
             "(RFC 6587 §3.4.1), anything else LF framing (§3.4.2) — and the choice holds for the whole connection; "
             "`newline` forces LF",
             {"auto", "newline"});
    t.boolean("close_on_framing_error", [](S& s) -> bool& { return s.tcp.close_on_framing_error; }, true,
              "on an octet-counted connection a frame whose length prefix is zero, absurd (more digits than "
              "`max_message` has) or missing is a framing error, counted in `bf_tcp_framing_errors_total`; nothing of "
              "that frame is delivered. `true` closes the connection (the sender reconnects and resynchronises); "
              "`false` skips to the next LF and resumes framing there");
    add_tcp_listener_options(t, [](S& s) -> TcpListenerOptions& { return s.tcp; });
    add_tls_server_options(t, [](S& s) -> TlsServerOptions& { return s.tcp.tls; }, "syslog (RFC 5425)");
    add_syslog_parse_options(t, [](S& s) -> SyslogParseOptions& { return s.parse; });
    return t;
  }();
  return table;
}

}  // namespace

SourceFactory syslog_tcp_source_factory() {
  return {"syslog_tcp", "Syslog (RFC 5424 / RFC 3164) over TCP, RFC 6587 framing",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            SyslogTcpSettings s = syslog_tcp_options().read(node, source_context(node, "syslog_tcp"));
            return std::make_unique<SyslogListenerSource<TcpListener, TcpListenerOptions>>(
                std::move(s.common), std::move(s.tcp), s.parse, sink, Delivery::backpressure);
          },
          syslog_tcp_options().specs()};
}

}  // namespace bf
