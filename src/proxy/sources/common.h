#pragma once
// Shared by the source implementations in this directory (not a public interface).
#include <cstdint>
#include <string>
#include <string_view>

#include "common/batch.h"
#include "common/metrics.h"
#include "proxy/source.h"
#include "net/listeners.h"
#include "proxy/ndjson_writer.h"
#include "proxy/syslog_parser.h"

namespace bf {

// Keys every source has: type, name, listen, tenant, dataset.
struct SourceCommon {
  std::string type;
  std::string name;     // default "<type>:<port of listen>"
  std::string listen;
  std::string tenant;   // validated IDs
  std::string dataset;
};

// Reads and validates the common keys; errors are ConfigErrors naming the key.
SourceCommon read_source_common(const ConfigNode& node, const std::string& type, const std::string& default_listen,
                                const std::string& default_dataset);

// The metrics every source reports, labelled {source=<name>}.
struct SourceMetrics {
  explicit SourceMetrics(const std::string& source);
  Counter& events;        // bf_proxy_events_total
  Counter& bytes;         // bf_proxy_bytes_total
  Counter& parse_errors;  // bf_proxy_parse_errors_total
  const std::string source;
  Counter& rejected(const std::string& reason) const;  // bf_proxy_rejected_total{source,reason}
};

// _time: see parse_event_time -> RFC 3339 UTC; absent -> receive time; anything
// else -> receive time, the original kept as _time_raw (as the packer does).
void normalize_event_time(Event& event, const std::string& received);

// Sets _received, _source and _peer.
void stamp_event(Event& event, const std::string& received, const std::string& source, const std::string& peer);

// Hands a source's pending NDJSON lines (`events` of them) to the sink in one call and
// counts them and the `bytes` read for them; clears all three, also when the sink throws.
void hand_over_lines(EventSink& sink, const SourceCommon& common, SourceMetrics& metrics, Delivery delivery,
                     std::string& pending, size_t& events, uint64_t& bytes);

// The listener keys of the TCP sources (syslog_tcp, tcp): max_message, max_connections,
// idle_timeout; listen from `common`.
TcpListenerOptions read_tcp_listener_options(const ConfigNode& node, const SourceCommon& common);

// Syslog message -> NDJSON line -> sink, shared by syslog_udp and syslog_tcp. handle()
// parses a message into a reused SyslogRecord and writes its event as NDJSON text
// straight into a pending buffer (no DOM, no allocation per field); flush() hands the
// pending lines to the sink in one call. The listener calls flush() after each read
// (ReadEndHandler), so a read's worth of messages is one batcher append, and nothing
// waits in the buffer past the read that brought it. Not thread-safe: one listener
// thread calls both.
class SyslogIngest {
 public:
  SyslogIngest(SourceCommon common, EventSink& sink, SyslogParseOptions options, Delivery delivery);
  void handle(std::string_view message, const std::string& peer);
  void flush();
  const SourceCommon& common() const { return common_; }

 private:
  static constexpr size_t kFlushBytes = 1 << 20;  // hand over early past this
  SourceCommon common_;
  EventSink& sink_;
  SyslogParseOptions options_;
  Delivery delivery_;
  SourceMetrics metrics_;
  Counter& rejected_empty_;
  SyslogRecord record_;
  Rfc3339Formatter time_format_, received_format_;
  std::string pending_;
  size_t pending_events_ = 0;
  uint64_t pending_bytes_ = 0;  // message bytes read, for bf_proxy_bytes_total
};

// A syslog source over one network listener (UdpListener or TcpListener): the
// listener frames messages, SyslogIngest turns them into events. Over TCP the
// delivery is Delivery::backpressure: while the spool is full the handler blocks, so
// the listener's io thread reads no socket and senders see TCP flow control.
template <class Listener, class ListenerOptions>
class SyslogListenerSource final : public Source {
 public:
  SyslogListenerSource(SourceCommon common, ListenerOptions options, SyslogParseOptions parse, EventSink& sink,
                       Delivery delivery)
      : ingest_(std::move(common), sink, parse, delivery),
        listener_(
            ingest_.common().name, std::move(options),
            [this](std::string_view m, const std::string& peer) { ingest_.handle(m, peer); },
            [this] { ingest_.flush(); }) {}
  void start() override { listener_.start(); }
  void stop() override { listener_.stop(); }
  std::string name() const override { return ingest_.common().name; }
  uint16_t port() const override { return listener_.port(); }

 private:
  SyslogIngest ingest_;
  Listener listener_;
};

// The factories registered in registry.cpp.
SourceFactory syslog_udp_source_factory();
SourceFactory syslog_tcp_source_factory();
SourceFactory http_source_factory();
SourceFactory sflow_source_factory();
SourceFactory netflow_source_factory();
SourceFactory ipfix_source_factory();
SourceFactory udp_source_factory();
SourceFactory tcp_source_factory();

}  // namespace bf
