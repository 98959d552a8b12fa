// tcp: raw newline-delimited lines over TCP; each line an event (`format`, lines.h).
//
//   - type: tcp
//     listen: 0.0.0.0:5170
//     format: auto            # auto | json | text
//     max_message: 64KiB      # longer lines are truncated (counted)
//     max_connections: 1024
//     idle_timeout: 10m
//
// Delivery::backpressure, as syslog_tcp: while the spool is full the listener stops reading.
#include "common/config.h"
#include "net/listeners.h"
#include "proxy/sources/common.h"
#include "proxy/sources/lines.h"

namespace bf {
namespace {

class TcpLineSource final : public Source {
 public:
  TcpLineSource(const SourceCommon& common, TcpListenerOptions options, LineFormat format, EventSink& sink)
      : name_(common.name),
        ingest_(common, sink, format, Delivery::backpressure),
        listener_(
            common.name, std::move(options),
            [this](std::string_view m, const std::string& peer) { ingest_.handle(m, peer); },
            [this] { ingest_.flush(); }) {}
  void start() override { listener_.start(); }
  void stop() override { listener_.stop(); }
  std::string name() const override { return name_; }
  uint16_t port() const override { return listener_.port(); }

 private:
  std::string name_;
  LineIngest ingest_;
  TcpListener listener_;
};

struct TcpSettings {
  SourceCommon common;
  TcpListenerOptions tcp;
  LineFormat format = LineFormat::auto_detect;
};

const OptionTable<TcpSettings>& tcp_options() {
  static const OptionTable<TcpSettings> table = [] {
    using S = TcpSettings;
    OptionTable<S> t;
    add_source_common(t, "tcp", "0.0.0.0:5170", "tcp");
    add_line_format_option(t, &S::format);
    add_tcp_listener_options(t, [](S& s) -> TcpListenerOptions& { return s.tcp; });
    add_tls_server_options(t, [](S& s) -> TlsServerOptions& { return s.tcp.tls; }, "lines");
    return t;
  }();
  return table;
}

}  // namespace

SourceFactory tcp_source_factory() {
  return {"tcp", "Raw newline-delimited lines over TCP: each line an event, JSON objects read as such",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            TcpSettings s = tcp_options().read(node, source_context(node, "tcp"));
            s.tcp.framing = "newline";
            return std::make_unique<TcpLineSource>(s.common, std::move(s.tcp), s.format, sink);
          },
          tcp_options().specs()};
}

}  // namespace bf
