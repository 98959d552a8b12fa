// Load generator for the proxy benches (bench/proxy_vs_rsyslog*.sh: syslog over TCP and
// UDP; bench/proxy_flow_rss.sh: sFlow / IPFIX / NetFlow v9), and the read-only sink
// that shows it outruns the daemons it loads.
//
//   proxy_loadgen send PORT COUNT [SIZE] [CONNECTIONS] [RATE]
//       COUNT newline-framed RFC 5424 messages of about SIZE bytes (default 200) to
//       127.0.0.1:PORT over CONNECTIONS connections (default 1), as fast as the
//       receiver reads them, or paced at RATE messages/s in all (0: unpaced). Every message is different (sequence number, time, host,
//       app, words), so compression sees text rather than one repeated line. Message
//       times advance with the message number (at RATE, else 200,000/s, from 07:00:00),
//       each up to 2 ms early, as a live stream from many senders does. Prints
//       "sent N messages in S s (R msgs/s)" when every byte is written and the
//       connections are shut down.
//   proxy_loadgen udp PORT COUNT SIZE RATE [SENDERS]
//       COUNT datagrams, one message each (as above, without the LF; RFC 5426), to
//       127.0.0.1:PORT, paced at RATE datagrams/s (sendmmsg, 64 at a time; 0: unpaced),
//       from SENDERS sockets (default 1; each its own source port, so that a receiver
//       with SO_REUSEPORT sockets sees several senders), a burst of 64 from each in turn.
//       Prints "sent N datagrams in S s (R msgs/s)".
//   proxy_loadgen flow KIND PORT COUNT RATE [EXPORTERS]
//       About COUNT flow records in datagrams of KIND (sflow: 9 events each; ipfix,
//       netflow9: 28 records each; bench/flow_datagrams.h) to 127.0.0.1:PORT, paced at
//       RATE records/s in all (0: unpaced), from EXPORTERS sockets (default 1; each is
//       an exporter of its own, by its source port). IPFIX / v9 exporters send their
//       template first and again every 1024 datagrams, as exporters refresh them. Each
//       datagram carries its own sequence number. Prints "sent N datagrams (R records)
//       in S s (X records/s)".
//   proxy_loadgen sink PORT
//       Accepts connections on 127.0.0.1:PORT (0: any free port; prints "port P"),
//       reads and discards, and after the last open connection closes prints
//       "read N lines, B bytes in S s (R lines/s)" and exits.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "flow_datagrams.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "proxy_loadgen: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

uint64_t parse_u64(const char* s, const char* name) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (!end || *end != '\0') {
    std::fprintf(stderr, "proxy_loadgen: %s must be a number, got '%s'\n", name, s);
    std::exit(2);
  }
  return v;
}

// A block of messages with fixed positions of their sequence numbers, rewritten for
// each pass so that every message sent carries its own number.
struct Block {
  std::string text;
  std::vector<size_t> seq_at;   // offset of each message's 10-digit sequence number
  std::vector<size_t> usec_at;  // offset of each message's 6-digit fraction of a second
};

constexpr const char* kWords[] = {"GET",   "POST",  "/api/v1/items", "/index.html", "user", "session",
                                  "login", "ok",    "timeout",       "cache",       "miss", "hit",
                                  "db",    "query", "retry",         "upstream",    "200",  "404",
                                  "503",   "bytes", "latency_ms",    "worker",      "queue", "flush"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

Block make_block(size_t messages, size_t size, uint64_t seed) {
  Block b;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  auto rnd = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  char head[160];
  for (size_t i = 0; i < messages; ++i) {
    const unsigned host = static_cast<unsigned>(rnd() % 16), app = static_cast<unsigned>(rnd() % 8);
    // A second's worth of messages shares its second, as in a busy stream.
    const unsigned sec = static_cast<unsigned>(i / 4096 % 60), usec = static_cast<unsigned>(rnd() % 1000000);
    const int n = std::snprintf(head, sizeof head,
                                "<%u>1 2026-12-02T07:%02u:%02u.%06uZ web%02u.example.net app%u %u ID%u "
                                "[meta@32473 seq=\"",
                                128 + static_cast<unsigned>(rnd() % 8), static_cast<unsigned>(seed % 60), sec,
                                usec, host, app, 1000 + static_cast<unsigned>(rnd() % 9000),
                                static_cast<unsigned>(rnd() % 100));
    const size_t start = b.text.size();
    b.usec_at.push_back(start + static_cast<size_t>(std::strchr(head, '.') - head) + 1);
    b.text.append(head, static_cast<size_t>(n));
    b.seq_at.push_back(b.text.size());
    b.text.append("0000000000\"] ");
    while (b.text.size() - start + 1 < size) {
      b.text.append(kWords[rnd() % kNumWords]);
      b.text.push_back(' ');
    }
    if (b.text.size() - start + 1 > size && b.text.size() - start > 80) b.text.resize(start + size - 1);
    b.text.push_back('\n');
  }
  return b;
}

void put_digits(char* at, uint64_t v, int digits) {
  for (int k = digits - 1; k >= 0; --k) {
    at[k] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

// Writes the time `us` microseconds after 07:00:00 as HH:MM:SS.uuuuuu over a message's
// "07:MM:SS.uuuuuu", given where its fraction starts (the hour wraps within the day).
void put_time(char* fraction, uint64_t us) {
  const uint64_t s = us / 1000000;
  put_digits(fraction - 9, (7 + s / 3600) % 24, 2);
  put_digits(fraction - 6, s / 60 % 60, 2);
  put_digits(fraction - 3, s % 60, 2);
  put_digits(fraction, us % 1000000, 6);
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int connect_to(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  sockaddr_in a = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
  const int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  return fd;
}

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("send");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

int send_main(uint16_t port, uint64_t count, size_t size, unsigned connections, uint64_t rate) {
  // 16384 messages (3.2 MB at 200 bytes): more than a zstd window of the proxy's
  // batches, and each pass gives every message a new number and time fraction, so no
  // batch is a copy of an earlier one.
  constexpr size_t kBlockMessages = 16384;
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  std::atomic<uint64_t> next{0};
  for (unsigned c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      Block block = make_block(kBlockMessages, size, c + 1);
      const int fd = connect_to(port);
      for (;;) {
        const uint64_t first = next.fetch_add(kBlockMessages);
        if (first >= count) break;
        // Paced: block `first` is due first/rate seconds after the start.
        if (rate > 0)
          std::this_thread::sleep_until(start + std::chrono::nanoseconds(first * 1000000000ull / rate));
        const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlockMessages, count - first));
        uint64_t x = (first + 1) * 0x9E3779B97F4A7C15ull;
        for (size_t i = 0; i < n; ++i) {
          put_digits(block.text.data() + block.seq_at[i], first + i, 10);
          x ^= x << 13;
          x ^= x >> 7;
          x ^= x << 17;
          // Times advance with the message number as in a live stream (at the paced rate,
          // else 200,000/s), each up to 2 ms early: the disorder of many senders.
          const uint64_t at_us = (first + i) * 1000000 / (rate > 0 ? rate : 200000);
          put_time(block.text.data() + block.usec_at[i], at_us + 2000 - x % 2000);
        }
        // A last, partial block ends after message n-1: at the LF before message n.
        size_t end = block.text.size();
        if (n < kBlockMessages) end = block.text.rfind('\n', block.seq_at[n]) + 1;
        write_all(fd, block.text.data(), end);
      }
      ::shutdown(fd, SHUT_WR);
      // Wait for the peer to close or reset (it has read everything by then) - bounded.
      pollfd p{fd, POLLIN, 0};
      char sink[4096];
      const auto deadline = Clock::now() + std::chrono::seconds(2);
      while (Clock::now() < deadline && ::poll(&p, 1, 100) >= 0) {
        if (p.revents == 0) continue;
        if (::read(fd, sink, sizeof sink) <= 0) break;
      }
      ::close(fd);
    });
  }
  for (auto& t : threads) t.join();
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("sent %llu messages in %.3f s (%.0f msgs/s)\n", static_cast<unsigned long long>(count), s,
              static_cast<double>(count) / s);
  return 0;
}

// `n` UDP sockets connected to 127.0.0.1:port, each with its own source port.
std::vector<int> udp_senders(uint16_t port, unsigned n) {
  std::vector<int> fds;
  for (unsigned k = 0; k < n; ++k) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    sockaddr_in to = loopback(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) die("connect");
    const int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    fds.push_back(fd);
  }
  return fds;
}

int udp_main(uint16_t port, uint64_t count, size_t size, uint64_t rate, unsigned senders) {
  constexpr size_t kBlockMessages = 16384, kBurst = 64;
  Block block = make_block(kBlockMessages, size, 1);
  std::vector<size_t> starts{0};  // where each message begins in block.text
  for (size_t i = 0; i + 1 < kBlockMessages; ++i) starts.push_back(block.text.find('\n', block.seq_at[i]) + 1);
  const std::vector<int> fds = udp_senders(port, senders);
  size_t burst = 0;
  std::vector<iovec> iov(kBurst);
  std::vector<mmsghdr> msgs(kBurst);
  const auto start = Clock::now();
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (uint64_t sent = 0; sent < count;) {
    if (rate > 0) std::this_thread::sleep_until(start + std::chrono::nanoseconds(sent * 1000000000ull / rate));
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBurst, count - sent));
    for (size_t k = 0; k < n; ++k) {
      const size_t i = static_cast<size_t>((sent + k) % kBlockMessages);
      put_digits(block.text.data() + block.seq_at[i], sent + k, 10);
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      put_digits(block.text.data() + block.usec_at[i], x % 1000000, 6);
      const size_t end = block.text.find('\n', block.seq_at[i]);  // the LF is not sent
      iov[k] = {block.text.data() + starts[i], end - starts[i]};
      msgs[k] = {};
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    const int fd = fds[burst++ % fds.size()];
    size_t done = 0;
    while (done < n) {
      const int r = ::sendmmsg(fd, msgs.data() + done, static_cast<unsigned>(n - done), 0);
      if (r < 0) {
        if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) continue;
        die("sendmmsg");
      }
      done += static_cast<size_t>(r);
    }
    sent += n;
  }
  for (const int fd : fds) ::close(fd);
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("sent %llu datagrams in %.3f s (%.0f msgs/s)\n", static_cast<unsigned long long>(count), s,
              static_cast<double>(count) / s);
  return 0;
}

// Sequence number offsets: IPFIX message header, v9 packet header, sFlow (IPv4 agent) datagram.
int flow_main(const std::string& kind, uint16_t port, uint64_t count, uint64_t rate, unsigned exporters) {
  constexpr size_t kRing = 256, kBurst = 32, kRefresh = 1024;
  size_t seq_at = 0, per = 0;
  std::vector<std::string> ring, with_template;
  for (uint32_t i = 0; i < kRing; ++i) {
    if (kind == "sflow") {
      ring.push_back(bench_flow::sflow_datagram(i));
      seq_at = 16, per = bench_flow::kSflowEvents;
    } else if (kind == "ipfix") {
      ring.push_back(bench_flow::ipfix_message(false, i));
      with_template.push_back(bench_flow::ipfix_message(true, i));
      seq_at = 8, per = bench_flow::kFlowRecords;
    } else if (kind == "netflow9") {
      ring.push_back(bench_flow::netflow9_packet(false, i));
      with_template.push_back(bench_flow::netflow9_packet(true, i));
      seq_at = 12, per = bench_flow::kFlowRecords;
    } else {
      std::fprintf(stderr, "proxy_loadgen: KIND is sflow, ipfix or netflow9\n");
      return 2;
    }
  }
  const uint64_t datagrams = (count + per - 1) / per;
  const std::vector<int> fds = udp_senders(port, exporters);
  std::vector<uint64_t> sent_by(exporters, 0);
  std::vector<iovec> iov(kBurst);
  std::vector<mmsghdr> msgs(kBurst);
  const auto start = Clock::now();
  for (uint64_t sent = 0; sent < datagrams;) {
    if (rate > 0) std::this_thread::sleep_until(start + std::chrono::nanoseconds(sent * per * 1000000000ull / rate));
    const unsigned e = static_cast<unsigned>(sent / kBurst % exporters);  // a burst per exporter in turn
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBurst, datagrams - sent));
    for (size_t k = 0; k < n; ++k) {
      const uint64_t mine = sent_by[e]++;
      std::string& d = (!with_template.empty() && mine % kRefresh == 0) ? with_template[mine % kRing] : ring[mine % kRing];
      const uint32_t seq = static_cast<uint32_t>(kind == "sflow" ? mine : mine * bench_flow::kFlowRecords);
      d[seq_at] = char(seq >> 24), d[seq_at + 1] = char(seq >> 16), d[seq_at + 2] = char(seq >> 8), d[seq_at + 3] = char(seq);
      iov[k] = {d.data(), d.size()};
      msgs[k] = {};
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    size_t done = 0;
    while (done < n) {
      const int r = ::sendmmsg(fds[e], msgs.data() + done, static_cast<unsigned>(n - done), 0);
      if (r < 0) {
        if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) continue;
        die("sendmmsg");
      }
      done += static_cast<size_t>(r);
    }
    sent += n;
  }
  for (int fd : fds) ::close(fd);
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("sent %llu datagrams (%llu records) in %.3f s (%.0f records/s)\n",
              static_cast<unsigned long long>(datagrams), static_cast<unsigned long long>(datagrams * per), s,
              static_cast<double>(datagrams * per) / s);
  return 0;
}

int sink_main(uint16_t port) {
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  const int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(port);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
  if (::listen(lfd, 64) != 0) die("listen");
  socklen_t len = sizeof a;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("port %u\n", ntohs(a.sin_port));
  std::fflush(stdout);
  std::vector<pollfd> fds{{lfd, POLLIN, 0}};
  std::vector<char> buf(1 << 20);
  uint64_t lines = 0, bytes = 0;
  Clock::time_point first{};
  bool any = false;
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const ssize_t r = ::read(fds[i].fd, buf.data(), buf.size());
      if (r <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        continue;
      }
      bytes += static_cast<uint64_t>(r);
      for (const char* p = buf.data(); (p = static_cast<const char*>(
                                            std::memchr(p, '\n', static_cast<size_t>(buf.data() + r - p))));
           ++p)
        ++lines;
    }
    fds.erase(std::remove_if(fds.begin() + 1, fds.end(), [](const pollfd& p) { return p.fd < 0; }), fds.end());
    if (fds[0].revents & POLLIN) {
      const int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        if (!any) first = Clock::now();
        any = true;
        fds.push_back({c, POLLIN, 0});
      }
    }
    if (any && fds.size() == 1) break;
  }
  const double s = std::chrono::duration<double>(Clock::now() - first).count();
  std::printf("read %llu lines, %llu bytes in %.3f s (%.0f lines/s)\n", static_cast<unsigned long long>(lines),
              static_cast<unsigned long long>(bytes), s, static_cast<double>(lines) / s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::strcmp(argv[1], "send") == 0) {
    const uint64_t port = parse_u64(argv[2], "PORT");
    const uint64_t count = parse_u64(argv[3], "COUNT");
    const uint64_t size = argc > 4 ? parse_u64(argv[4], "SIZE") : 200;
    const uint64_t conns = argc > 5 ? parse_u64(argv[5], "CONNECTIONS") : 1;
    const uint64_t rate = argc > 6 ? parse_u64(argv[6], "RATE") : 0;
    if (port == 0 || port > 65535 || size < 100 || size > 60000 || conns < 1 || conns > 64) {
      std::fprintf(stderr, "proxy_loadgen: PORT 1-65535, SIZE 100-60000, CONNECTIONS 1-64\n");
      return 2;
    }
    return send_main(static_cast<uint16_t>(port), count, static_cast<size_t>(size), static_cast<unsigned>(conns),
                     rate);
  }
  if ((argc == 6 || argc == 7) && std::strcmp(argv[1], "udp") == 0) {
    const uint64_t port = parse_u64(argv[2], "PORT"), count = parse_u64(argv[3], "COUNT");
    const uint64_t size = parse_u64(argv[4], "SIZE"), rate = parse_u64(argv[5], "RATE");
    const uint64_t senders = argc > 6 ? parse_u64(argv[6], "SENDERS") : 1;
    if (port == 0 || port > 65535 || size < 100 || size > 8000 || senders < 1 || senders > 1024) {
      std::fprintf(stderr, "proxy_loadgen: PORT 1-65535, SIZE 100-8000, SENDERS 1-1024\n");
      return 2;
    }
    return udp_main(static_cast<uint16_t>(port), count, static_cast<size_t>(size), rate,
                    static_cast<unsigned>(senders));
  }
  if ((argc == 6 || argc == 7) && std::strcmp(argv[1], "flow") == 0) {
    const uint64_t port = parse_u64(argv[3], "PORT"), count = parse_u64(argv[4], "COUNT");
    const uint64_t rate = parse_u64(argv[5], "RATE"), exporters = argc > 6 ? parse_u64(argv[6], "EXPORTERS") : 1;
    if (port == 0 || port > 65535 || exporters < 1 || exporters > 1024) {
      std::fprintf(stderr, "proxy_loadgen: PORT 1-65535, EXPORTERS 1-1024\n");
      return 2;
    }
    return flow_main(argv[2], static_cast<uint16_t>(port), count, rate, static_cast<unsigned>(exporters));
  }
  if (argc == 3 && std::strcmp(argv[1], "sink") == 0) {
    const uint64_t port = parse_u64(argv[2], "PORT");
    if (port > 65535) return 2;
    return sink_main(static_cast<uint16_t>(port));
  }
  std::fprintf(stderr,
               "usage: proxy_loadgen send PORT COUNT [SIZE] [CONNECTIONS] [RATE]\n       proxy_loadgen udp PORT COUNT SIZE "
               "RATE [SENDERS]\n       proxy_loadgen flow sflow|ipfix|netflow9 PORT COUNT RATE [EXPORTERS]\n"
               "       proxy_loadgen sink PORT\n");
  return 2;
}
