#pragma once
// UDP and TCP listeners for the proxy's network sources. Each runs its own thread(s).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "net/tcp_framer.h"
#include "net/tls.h"

namespace bf {

// Called with one datagram (UDP) or one framed message (TCP) and the sender "ip:port".
// The handler runs on the listener's thread (UDP with a receive ring: its delivery
// thread, while the receive thread goes on reading into the ring). It may block (a TCP
// source applying backpressure): while it does, that listener reads none of its
// sockets, so the kernel buffers fill and TCP senders are flow-controlled; stop() waits
// for it to return.
using MessageHandler = std::function<void(std::string_view message, const std::string& peer)>;
// The same for TCP with whether the message was cut: longer than max_message, or the
// last frame of a stream that ended before all its octets arrived.
using FrameHandler = std::function<void(std::string_view message, const std::string& peer, bool truncated)>;
// Optional: called on the listener's thread after the messages of one read (one TCP
// read, one batch of UDP datagrams; at end of a TCP stream also after its last
// message) have gone to the MessageHandler, so that a handler which gathers messages
// can hand them on a read at a time. It may block as the MessageHandler may.
using ReadEndHandler = std::function<void()>;

// Scheduling of a UDP listener's receive thread (the one that drains the socket):
// normal inherits the process's; high is nice -10; realtime is SCHED_FIFO priority 1,
// so that it runs as soon as datagrams wake it even on a saturated machine (it sleeps
// a millisecond between drains, and at the latest after 2,048 datagrams, and does
// nothing but copy into the ring). high and
// realtime need CAP_SYS_NICE (or RLIMIT_NICE / RLIMIT_RTPRIO); refused: a warning and
// the thread stays normal.
enum class UdpReceivePriority { normal, high, realtime };

struct UdpListenerOptions {
  std::string listen = "0.0.0.0:5514";
  UdpReceivePriority receive_priority = UdpReceivePriority::normal;
  int receive_buffer_bytes = 8 << 20;   // SO_RCVBUF request
  size_t max_datagram = 65535;
  // SO_REUSEPORT: several listeners (one per receive thread) bind the same port and
  // the kernel spreads datagrams over them by sender (one exporter stays on one socket).
  bool reuse_port = false;
  // Bytes of the user-space ring between the receive thread, which only drains the
  // socket (recvmmsg) into it, and the delivery thread, which calls the handlers: a
  // handler that stalls (compression, fsync) no longer leaves datagrams to the kernel
  // to drop. A datagram that finds the ring full is dropped and counted
  // (bf_udp_ring_drops_total); the receiver never waits. 0: no ring, the handlers run on
  // the receive thread (the socket is not read while they do). Otherwise at least
  // min_ring_bytes(max_datagram).
  size_t ring_bytes = size_t{64} << 20;
};
// The smallest ring that holds two datagrams of max_datagram bytes.
size_t min_udp_ring_bytes(size_t max_datagram);

class UdpListener {
 public:
  UdpListener(std::string name, UdpListenerOptions options, MessageHandler handler, ReadEndHandler read_end = {});
  ~UdpListener();
  void start();
  void stop();
  uint16_t port() const;
 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct TcpListenerOptions {
  std::string listen = "0.0.0.0:5514";
  size_t max_message = 64 * 1024;       // longer messages are truncated and counted
  // Open connections at most; one more is closed at once and counted. Connections also
  // draw on the process-wide ConnectionBudget (net/conn_limits.h).
  int max_connections = 1024;
  // A connection that sends nothing for this long is closed (and counted).
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
  // Framing (RFC 6587): "auto" detects octet counting ("123 <msg>") from the first
  // frame of a connection and keeps it for the connection, else newline (LF) framing;
  // "newline" forces LF framing.
  std::string framing = "auto";
  // An octet-counting connection whose length prefix is zero, absurd (more digits than
  // max_message has) or missing is broken: counted, and closed when this is true;
  // when false the bytes up to the next LF are skipped and framing resumes there.
  bool close_on_framing_error = true;
  // tls.cert_file set: every connection is TLS (syslog over TLS, RFC 5425; its framing
  // is RFC 6587's octet counting, which `auto` detects). A failed handshake (a client
  // certificate that does not verify, a protocol below min_version, plain text) closes
  // the connection and is counted in bf_tls_handshake_failures_total{listener,reason}.
  TlsServerOptions tls;
};

class TcpListener {
 public:
  TcpListener(std::string name, TcpListenerOptions options, MessageHandler handler, ReadEndHandler read_end = {});
  TcpListener(std::string name, TcpListenerOptions options, FrameHandler handler, ReadEndHandler read_end = {});
  ~TcpListener();
  void start();
  void stop();
  uint16_t port() const;
  size_t open_connections() const;
 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "host:port" -> (host, port); throws std::invalid_argument naming the value.
std::pair<std::string, uint16_t> split_host_port(const std::string& listen);

}  // namespace bf
