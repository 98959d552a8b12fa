#include "piper/enrich/ptr_resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace bf {
namespace {

constexpr uint16_t kTypePtr = 12, kClassIn = 1;

void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// The question section for `name` (dotted, no final dot).
std::string question(const std::string& name) {
  std::string q;
  size_t pos = 0;
  while (pos < name.size()) {
    size_t dot = name.find('.', pos);
    if (dot == std::string::npos) dot = name.size();
    q += static_cast<char>(dot - pos);
    q.append(name, pos, dot - pos);
    pos = dot + 1;
  }
  q += '\0';
  put16(q, kTypePtr);
  put16(q, kClassIn);
  return q;
}

// Reads a (possibly compressed) name at `pos` of the message; advances pos past it
// in the record. false on a malformed name (loops, overruns, over 255 bytes).
bool read_name(const uint8_t* msg, size_t size, size_t& pos, std::string* out) {
  size_t p = pos, jumps = 0, length = 0;
  bool jumped = false;
  while (true) {
    if (p >= size) return false;
    uint8_t len = msg[p];
    if ((len & 0xC0) == 0xC0) {
      if (p + 1 >= size || ++jumps > 16) return false;
      size_t target = static_cast<size_t>((len & 0x3F) << 8 | msg[p + 1]);
      if (!jumped) pos = p + 2;
      jumped = true;
      p = target;
      continue;
    }
    if (len & 0xC0) return false;
    if (len == 0) {
      if (!jumped) pos = p + 1;
      return true;
    }
    if (p + 1 + len > size || (length += len + 1) > 255) return false;
    if (out) {
      if (!out->empty()) *out += '.';
      out->append(reinterpret_cast<const char*>(msg + p + 1), len);
    }
    p += 1 + len;
  }
}

bool same_question(const uint8_t* got, const std::string& sent) {
  for (size_t i = 0; i < sent.size(); ++i) {
    unsigned char a = got[i], b = static_cast<unsigned char>(sent[i]);
    if (a != b && std::tolower(a) != std::tolower(b)) return false;  // servers may echo another case
  }
  return true;
}

// The answer in a response to `sent` (the question), or nullopt if the message is
// not a response to it.
std::optional<PtrAnswer> parse_response(const uint8_t* msg, size_t size, const std::string& sent) {
  if (size < 12 + sent.size() || !(msg[2] & 0x80)) return std::nullopt;
  if (get16(msg + 4) != 1 || !same_question(msg + 12, sent)) return std::nullopt;
  PtrAnswer a;
  const int rcode = msg[3] & 0x0F;
  if (rcode == 3) {
    a.status = PtrAnswer::not_found;
    return a;
  }
  if (rcode != 0) return a;  // failed
  a.status = PtrAnswer::not_found;
  size_t pos = 12 + sent.size();
  for (uint16_t i = 0, n = get16(msg + 6); i < n; ++i) {
    if (!read_name(msg, size, pos, nullptr) || pos + 10 > size) return PtrAnswer{};
    uint16_t type = get16(msg + pos), cls = get16(msg + pos + 2), rdlength = get16(msg + pos + 8);
    pos += 10;
    if (pos + rdlength > size) return PtrAnswer{};
    if (type == kTypePtr && cls == kClassIn) {
      size_t at = pos;
      std::string name;
      if (!read_name(msg, size, at, &name) || name.empty()) return PtrAnswer{};
      a.status = PtrAnswer::found;
      a.name = std::move(name);
      return a;
    }
    pos += rdlength;
  }
  return a;  // no PTR record: not found
}

}  // namespace

std::string ptr_name(const IpAddress& ip) {
  std::string out;
  static const char* kHex = "0123456789abcdef";
  if (ip.v4) {
    for (int i = 3; i >= 0; --i) out += std::to_string(ip.bytes[static_cast<size_t>(i)]) + ".";
    return out + "in-addr.arpa";
  }
  for (int i = 15; i >= 0; --i) {
    uint8_t b = ip.bytes[static_cast<size_t>(i)];
    out += kHex[b & 0xF];
    out += '.';
    out += kHex[b >> 4];
    out += '.';
  }
  return out + "ip6.arpa";
}

std::optional<DnsServer> DnsServer::parse(const std::string& text) {
  std::string host = text, port = "53";
  if (!text.empty() && text[0] == '[') {  // [v6]:port
    size_t close = text.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return std::nullopt;
      port = text.substr(close + 2);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {  // v4:port
    host = text.substr(0, text.find(':'));
    port = text.substr(text.find(':') + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  int p = std::stoi(port);
  if (p < 1 || p > 65535) return std::nullopt;
  DnsServer s;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&s.address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&s.address);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(p));
    s.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(p));
    s.length = sizeof(sockaddr_in6);
  } else {
    return std::nullopt;
  }
  return s;
}

std::optional<DnsServer> DnsServer::system() {
  std::ifstream in("/etc/resolv.conf");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (words >> key >> value && key == "nameserver") {
      if (value.find(':') != std::string::npos) value = "[" + value.substr(0, value.find('%')) + "]";
      if (auto s = parse(value)) return s;
    }
  }
  return std::nullopt;
}

std::vector<std::optional<PtrAnswer>> resolve_ptr(const DnsServer& server, const std::vector<IpAddress>& addresses,
                                                  const PtrQueryOptions& o) {
  using Clock = std::chrono::steady_clock;
  std::vector<std::optional<PtrAnswer>> answers(addresses.size());
  if (addresses.empty()) return answers;
  int fd = ::socket(server.address.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("rdns: no UDP socket: ") + std::strerror(errno));
  // connect: the kernel then passes on only the server's datagrams
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&server.address), server.length) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("rdns: cannot reach the server: ") + std::strerror(errno));
  }
  static thread_local std::mt19937 random{std::random_device{}()};
  const uint16_t base = static_cast<uint16_t>(random());  // ids base, base+1, …: one per address
  const size_t count = std::min<size_t>(addresses.size(), 65535);
  std::vector<std::string> questions(count);
  std::vector<Clock::time_point> sent_at(count);
  size_t next = 0, oldest = 0, in_flight = 0, open = count;
  std::vector<bool> waiting(count, false);
  uint8_t buf[1500];
  while (open > 0) {
    const auto now = Clock::now();
    if (now >= o.deadline) break;
    while (next < count && in_flight < o.max_in_flight) {  // send up to the window
      questions[next] = question(ptr_name(addresses[next]));
      std::string packet;
      put16(packet, static_cast<uint16_t>(base + next));
      put16(packet, 0x0100);  // a standard query, recursion desired
      put16(packet, 1);
      put16(packet, 0);
      put16(packet, 0);
      put16(packet, 0);
      packet += questions[next];
      if (::send(fd, packet.data(), packet.size(), 0) < 0) {
        answers[next] = PtrAnswer{};  // failed (e.g. ICMP unreachable reported on a connected socket)
        --open;
      } else {
        sent_at[next] = now;
        waiting[next] = true;
        ++in_flight;
      }
      ++next;
    }
    // Time out what waited too long; wait for the earliest of the rest. Queries go
    // out in index order, so the first one still in time ends the scan.
    auto wake = o.deadline;
    while (oldest < next && !waiting[oldest]) ++oldest;
    for (size_t i = oldest; i < next; ++i) {
      if (!waiting[i]) continue;
      if (now - sent_at[i] < o.timeout) {
        wake = std::min(wake, sent_at[i] + o.timeout);
        break;
      }
      answers[i] = PtrAnswer{PtrAnswer::timeout, {}};
      waiting[i] = false;
      --in_flight;
      --open;
    }
    if (open == 0 || (in_flight == 0 && next < count)) continue;
    pollfd p{fd, POLLIN, 0};
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(wake - Clock::now()).count();
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(ms, 0))) <= 0) continue;
    while (true) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0) break;  // EAGAIN, or a refused port reported as an error: the timeouts handle it
      if (n < 12) continue;
      size_t i = static_cast<uint16_t>(get16(buf) - base);
      if (i >= next || !waiting[i]) continue;  // late, duplicate, or not ours
      auto a = parse_response(buf, static_cast<size_t>(n), questions[i]);
      if (!a) continue;
      answers[i] = std::move(a);
      waiting[i] = false;
      --in_flight;
      --open;
    }
  }
  ::close(fd);
  return answers;
}

}  // namespace bf
