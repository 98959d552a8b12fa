#pragma once
// Reverse DNS (PTR) for many addresses at once over UDP, to one server: the
// queries go out together (at most max_in_flight unanswered), each is waited for up
// to `timeout`, and everything ends at `deadline`. Our own small client rather than
// getnameinfo(): that one blocks per address, cannot be given a deadline, and
// cannot be pointed at a server on another port (the tests' dnsmasq).
#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "piper/expr/cidr.h"

namespace bf {

struct DnsServer {
  sockaddr_storage address{};
  socklen_t length = 0;
  // "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:5353"; nullopt if not an address.
  static std::optional<DnsServer> parse(const std::string& text);
  // The first nameserver in /etc/resolv.conf.
  static std::optional<DnsServer> system();
};

struct PtrAnswer {
  enum Status { found, not_found, failed, timeout };  // failed: SERVFAIL, REFUSED, a broken answer
  Status status = failed;
  std::string name;  // found: the host name, without the final dot
};

struct PtrQueryOptions {
  std::chrono::milliseconds timeout{500};
  std::chrono::steady_clock::time_point deadline;
  size_t max_in_flight = 64;
};

// One answer per address; nullopt for those the deadline left without one.
// Throws std::runtime_error only when no socket can be had.
std::vector<std::optional<PtrAnswer>> resolve_ptr(const DnsServer& server, const std::vector<IpAddress>& addresses,
                                                  const PtrQueryOptions& options);

// The PTR query name: 4.3.2.1.in-addr.arpa, or the nibbles under ip6.arpa.
std::string ptr_name(const IpAddress& ip);

}  // namespace bf
