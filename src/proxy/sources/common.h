#pragma once
// Shared by the source implementations in this directory (not a public interface).
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

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

// The parse keys both syslog sources have: keep_raw, timezone (IANA name, checked
// against the system zoneinfo), vendor_payloads.
SyslogParseOptions read_syslog_parse_options(const ConfigNode& node);

// The metrics every source reports: the component contract (kind "source", type and
// id from the config; docs/metrics.md) and the proxy's own series, labelled
// {source=<name>}. Every counter a hot path touches is resolved here, once.
struct SourceMetrics {
  explicit SourceMetrics(const SourceCommon& common);
  ComponentMetrics component;
  Counter& events;        // bf_proxy_events_total
  Counter& bytes;         // bf_proxy_bytes_total
  Counter& parse_errors;  // bf_proxy_parse_errors_total
  Counter& parse_error_contract;  // bf_component_errors_total{stage="parse", error_type="unparsed"}
  Counter& emit_errors;           // bf_component_errors_total{stage="emit", error_type="sink_error"}
  Counter& emit_discards;         // bf_component_discarded_events_total{intentional="false", reason="sink_error"}
  const std::string source;
  Counter& rejected(const std::string& reason) const;  // bf_proxy_rejected_total{source,reason}
  // A refused request: bf_proxy_rejected_total{reason} and the contract's
  // errors{stage, error_type=reason}. Its events are not discarded: the sender was told.
  void reject(const std::string& stage, const std::string& reason) const;
};

// _time: see parse_event_time -> RFC 3339 UTC; absent -> receive time; anything
// else -> receive time, the original kept as _time_raw (as the packer does).
void normalize_event_time(Event& event, const std::string& received);

// Sets _received, _source and _peer.
void stamp_event(Event& event, const std::string& received, const std::string& source, const std::string& peer);

// Hands a source's pending NDJSON lines (`events` of them) to the sink in one call and
// counts them, the `bytes` read for them and the `messages` those bytes held (the
// component contract's events in; blank ones are not among `events`); clears
// pending, events and bytes, also when the sink throws.
void hand_over_lines(EventSink& sink, const SourceCommon& common, SourceMetrics& metrics, Delivery delivery,
                     std::string& pending, size_t& events, uint64_t& bytes, size_t messages);

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
  // `truncated`: the listener cut the message (too long, or the stream ended inside it).
  void handle(std::string_view message, const std::string& peer, bool truncated = false);
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
  Counter& discarded_empty_;
  SyslogRecord record_;
  Rfc3339Formatter time_format_, received_format_;
  std::string pending_;
  size_t pending_events_ = 0;
  uint64_t pending_bytes_ = 0;     // message bytes read, for bf_proxy_bytes_total
  uint64_t pending_messages_ = 0;  // messages read (incl. blank ones), for received_events
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
        listener_(ingest_.common().name, std::move(options), message_handler(), [this] { ingest_.flush(); }) {}
  void start() override { listener_.start(); }
  void stop() override { listener_.stop(); }
  std::string name() const override { return ingest_.common().name; }
  uint16_t port() const override { return listener_.port(); }

 private:
  // TCP tells which messages it cut (they get `_truncated`); a UDP datagram is whole
  // or counted by the listener as truncated.
  auto message_handler() {
    if constexpr (std::is_same_v<Listener, TcpListener>) {
      return FrameHandler([this](std::string_view m, const std::string& peer, bool truncated) {
        ingest_.handle(m, peer, truncated);
      });
    } else {
      return MessageHandler([this](std::string_view m, const std::string& peer) { ingest_.handle(m, peer); });
    }
  }
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
