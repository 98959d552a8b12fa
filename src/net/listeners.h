#pragma once
// UDP and TCP listeners for the proxy's network sources. Each runs its own thread(s).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace bf {

// Called with one datagram (UDP) or one framed message (TCP) and the sender "ip:port".
using MessageHandler = std::function<void(std::string_view message, const std::string& peer)>;

struct UdpListenerOptions {
  std::string listen = "0.0.0.0:5514";
  int receive_buffer_bytes = 8 << 20;   // SO_RCVBUF request
  size_t max_datagram = 65535;
};

class UdpListener {
 public:
  UdpListener(std::string name, UdpListenerOptions options, MessageHandler handler);
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
  int max_connections = 1024;
  // Framing (RFC 6587): "auto" detects octet-counting ("123 <msg>") per message and
  // falls back to newline (LF) framing; "newline" forces LF framing.
  std::string framing = "auto";
};

class TcpListener {
 public:
  TcpListener(std::string name, TcpListenerOptions options, MessageHandler handler);
  ~TcpListener();
  void start();
  void stop();
  uint16_t port() const;
 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "host:port" -> (host, port); throws std::invalid_argument naming the value.
std::pair<std::string, uint16_t> split_host_port(const std::string& listen);

}  // namespace bf
