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

}  // namespace

SourceFactory tcp_source_factory() {
  return {"tcp", "Raw newline-delimited lines over TCP: each line an event, JSON objects read as such",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            SourceCommon common = read_source_common(node, "tcp", "0.0.0.0:5170", "tcp");
            TcpListenerOptions opt = read_tcp_listener_options(node, common);
            opt.framing = "newline";
            const LineFormat format = read_line_format(node);
            return std::make_unique<TcpLineSource>(common, std::move(opt), format, sink);
          }};
}

}  // namespace bf
