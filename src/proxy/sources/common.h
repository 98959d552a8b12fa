#pragma once
// Shared by the source implementations in this directory (not a public interface).
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/batch.h"
#include "common/metrics.h"
#include "common/option_table.h"
#include "common/time_zone.h"
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

// The options of a source, declared once in its file as an OptionTable
// (common/option_table.h): they read its config, and `bytefreezer plugins --schema`
// and docs/proxy.md's tables come from them. The helpers below add the keys several
// sources share; S is the source's settings struct and `get(S&)` returns the member
// they fill.

// The context named in a source's config errors: "source syslog_tcp 'edge'".
std::string source_context(const ConfigNode& node, const std::string& type);
// OptionChecks: "" or what is wrong.
std::string check_listen_address(const std::string& listen);
std::string check_id(const char* what, const std::string& id);

// The keys every source has: type, name, listen, tenant, dataset. S has a `common`
// member. `name` defaults to "<type>:<port of listen>".
template <class S>
void add_source_common(OptionTable<S>& t, const std::string& type, const std::string& default_listen,
                       const std::string& default_dataset) {
  t.string("type", [](S& s) -> std::string& { return s.common.type; }, type, "the source type", {type});
  t.mark_required("type");
  t.computed_string("name", [](S& s) -> std::string& { return s.common.name; }, "`<type>:<port>`, e.g. `" + type +
                        ":" + default_listen.substr(default_listen.rfind(':') + 1) + "`",
                    "the events' `_source` and the `source` label of the metrics; must be unique",
                    [](const std::string& v) { return v.empty() ? std::string("must not be empty") : std::string(); });
  t.string("listen", [](S& s) -> std::string& { return s.common.listen; }, default_listen,
           "`host:port` to listen on; port `0` picks a free port", {}, check_listen_address);
  t.string("tenant", [](S& s) -> std::string& { return s.common.tenant; }, "default",
           "tenant ID (`[a-z0-9][a-z0-9_-]{0,62}`)", {}, [](const std::string& v) { return check_id("tenant", v); });
  t.string("dataset", [](S& s) -> std::string& { return s.common.dataset; }, default_dataset, "dataset ID, same rules",
           {}, [](const std::string& v) { return check_id("dataset", v); });
  t.finally([](S& s, const ConfigNode&) {
    if (s.common.name.empty())
      s.common.name = s.common.type + ":" + std::to_string(split_host_port(s.common.listen).second);
  });
}

// keep_raw, timezone (IANA name, checked against the system zoneinfo), vendor_payloads.
template <class S, class Get>
void add_syslog_parse_options(OptionTable<S>& t, Get get) {
  t.boolean("keep_raw", [get](S& s) -> bool& { return get(s).keep_raw; }, true,
            "store the original message in `_raw` (messages with a `_parse_error` always keep it)");
  t.parsed("timezone", [get](S& s) -> std::shared_ptr<const TimeZone>& { return get(s).timezone; }, "UTC",
           "IANA zone name (`Europe/Berlin`, `America/New_York`) in which timestamps without a zone are read "
           "(RFC 3164, ISO without offset, vendor `date=`/`time=` without `tz=`); checked at start against the "
           "system zoneinfo (Debian `tzdata`, or `$TZDIR`), an unknown name is a config error. Rules are read from "
           "the zone's TZif file (Debian's files list DST changes up to 2037; later times keep the last offset)",
           [](const std::string& zone) { return TimeZone::load(zone); });
  t.boolean("vendor_payloads", [get](S& s) -> bool& { return get(s).vendor_payloads; }, true,
            "split CEF, LEEF and key=value payloads (FortiGate, Sophos, Check Point) into fields (see Vendor payloads)");
}

// max_message, max_connections, idle_timeout; `listen` comes from `common`.
template <class S, class Get>
void add_tcp_listener_options(OptionTable<S>& t, Get get) {
  using namespace std::chrono_literals;
  const TcpListenerOptions d;
  t.size("max_message", [get](S& s) -> size_t& { return get(s).max_message; }, d.max_message, 1, 1ull << 30,
         "longer messages are truncated (`_truncated: true` on the event) and counted");
  t.integer("max_connections", [get](S& s) -> int& { return get(s).max_connections; }, d.max_connections, 1, 1000000,
            "concurrent connections; one more is closed at once and counted in "
            "`bf_tcp_connections_rejected_total{reason=\"max_connections\"}`. Connections also draw on the "
            "process-wide budget (`limits.reserved_fds`, see http.md)");
  t.duration("idle_timeout", [get](S& s) -> std::chrono::milliseconds& { return get(s).idle_timeout; }, d.idle_timeout,
             1ms, 24h * 365,
             "a connection that sends nothing for this long is closed (`bf_tcp_connections_idle_closed_total`); "
             "senders reconnect");
  t.finally([get](S& s, const ConfigNode&) { get(s).listen = s.common.listen; });
}

// tls.cert_file, tls.key_file, tls.ca_file, tls.client_auth, tls.min_version (the TCP
// sources and http; net/tls.h).
template <class S, class Get>
void add_tls_server_options(OptionTable<S>& t, Get get, const std::string& what) {
  t.string("tls.cert_file", [get](S& s) -> std::string& { return get(s).cert_file; }, "",
           "PEM certificate chain (server certificate first); set together with `tls.key_file`, the source accepts " +
               what + " over TLS only");
  t.string("tls.key_file", [get](S& s) -> std::string& { return get(s).key_file; }, "",
           "PEM private key of `tls.cert_file`");
  t.string("tls.ca_file", [get](S& s) -> std::string& { return get(s).ca_file; }, "",
           "PEM CA bundle that client certificates must chain to (needed for `tls.client_auth` optional or required)");
  t.string("tls.client_auth", [get](S& s) -> std::string& { return get(s).client_auth; }, "none",
           "`none`: no client certificate is asked for; `optional`: asked for and verified when sent; `required`: "
           "a client without a certificate that verifies against `tls.ca_file` is refused. Refused and failed "
           "handshakes are counted in `bf_tls_handshake_failures_total{listener, reason}`",
           {"none", "optional", "required"});
  t.string("tls.min_version", [get](S& s) -> std::string& { return get(s).min_version; }, "1.2",
           "lowest TLS version accepted", {"1.2", "1.3"});
  t.together({"tls.cert_file", "tls.key_file"});
  t.finally([get](S& s, const ConfigNode& node) {
    const TlsServerOptions& tls = get(s);
    if (!node.has("tls")) return;
    const ConfigNode group = node.child("tls");
    if (tls.cert_file.empty()) group.fail("cert_file", "is required when other tls keys are set");
    if (tls.client_auth != "none" && tls.ca_file.empty())
      group.fail("ca_file", "is required with client_auth: " + tls.client_auth);
  });
}

// receive_buffer, max_datagram; `listen` comes from `common`.
template <class S, class Get>
void add_udp_receive_options(OptionTable<S>& t, Get get) {
  const UdpListenerOptions d;
  t.size("receive_buffer", [get](S& s) -> int& { return get(s).receive_buffer_bytes; },
         static_cast<uint64_t>(d.receive_buffer_bytes), 0, 1ull << 30,
         "`SO_RCVBUF` requested per socket; what the kernel granted is the gauge `bf_udp_receive_buffer_bytes`, and "
         "when it grants less (`net.core.rmem_max`) a warning is logged at start");
  t.size("max_datagram", [get](S& s) -> size_t& { return get(s).max_datagram; }, d.max_datagram, 1, 65535,
         "largest datagram read");
  t.size("receive_ring", [get](S& s) -> size_t& { return get(s).ring_bytes; }, d.ring_bytes, 0, 1ull << 34,
         "bytes of the ring (per socket) between the thread that only drains the socket and the thread that parses: "
         "it absorbs parser stalls (compression, fsync) that would otherwise overflow the socket buffer. Full: new "
         "datagrams are dropped and counted in `bf_udp_ring_drops_total`. Only as much memory as the ring has held at once becomes resident. "
         "`0`: no ring, parse on the receive thread. Otherwise at least 64KiB and twice `max_datagram`");
  t.choice("receive_priority", [get](S& s) -> UdpReceivePriority& { return get(s).receive_priority; },
           std::vector<std::pair<std::string, UdpReceivePriority>>{{"normal", UdpReceivePriority::normal},
                                                                   {"high", UdpReceivePriority::high},
                                                                   {"realtime", UdpReceivePriority::realtime}},
           "normal",
           "scheduling of the thread that drains the socket (`bf-proxy-udp-rx`; with `receive_ring: 0` the one "
           "thread that also parses): `normal` is the process's own; `high` is nice -10; `realtime` is "
           "`SCHED_FIFO` priority 1, so that it gets a core within microseconds of datagrams arriving even when "
           "other processes saturate the machine (it only copies into the ring and sleeps a millisecond between "
           "drains; under a flood that never lets the socket empty it pauses after 2,048 datagrams, so it "
           "cannot keep a core to itself). `high` and "
           "`realtime` need `CAP_SYS_NICE` (or `RLIMIT_NICE` / `RLIMIT_RTPRIO`); when refused, a warning is "
           "logged and the thread runs at `normal`");
  t.finally([get](S& s, const ConfigNode& node) {
    UdpListenerOptions& u = get(s);
    u.listen = s.common.listen;
    if (u.ring_bytes != 0 && u.ring_bytes < min_udp_ring_bytes(u.max_datagram))
      node.fail("receive_ring", "must be 0 or at least " + format_size(min_udp_ring_bytes(u.max_datagram)) +
                                    " (with max_datagram " + std::to_string(u.max_datagram) + ")");
  });
}

// The receive-side keys of the sources with several receive threads: receive_buffer,
// max_datagram, workers.
struct UdpWorkersOptions {
  UdpListenerOptions udp;
  int workers = 1;
};
template <class S, class Get>
void add_udp_workers_options(OptionTable<S>& t, Get get) {
  add_udp_receive_options(t, [get](S& s) -> UdpListenerOptions& { return get(s).udp; });
  t.integer("workers", [get](S& s) -> int& { return get(s).workers; }, 1, 1, 64,
            "receive threads, each with its own socket bound to the port with `SO_REUSEPORT`; the kernel spreads "
            "datagrams over them by sender");
}

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
