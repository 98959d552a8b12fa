// UdpListener, TcpListener, TcpFramer and split_host_port over loopback sockets.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <linux/capability.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <algorithm>
#include <filesystem>
#include <thread>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <vector>

#include "common/metrics.h"
#include "net/listeners.h"
#include "net_test_util.h"

namespace bf {
namespace {

using test::RawConn;
using test::wait_until;

struct Received {
  std::string message;
  std::string peer;
};

// Thread-safe collector for handler calls.
struct Collector {
  std::mutex mu;
  std::vector<Received> items;
  MessageHandler handler() {
    return [this](std::string_view m, const std::string& peer) {
      std::lock_guard<std::mutex> lock(mu);
      items.push_back({std::string(m), peer});
    };
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return items.size();
  }
  std::vector<std::string> messages() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    for (auto& r : items) out.push_back(r.message);
    return out;
  }
  std::vector<Received> all() {
    std::lock_guard<std::mutex> lock(mu);
    return items;
  }
};

// Unique per call, so metric series start at zero even with --gtest_repeat.
std::string test_name() {
  static std::atomic<int> seq{0};
  return std::string("t_") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
         std::to_string(seq.fetch_add(1));
}

int64_t metric(const std::string& name, const std::string& listener) {
  return metrics().value(name, {{"listener", listener}});
}

int64_t rejected_at_cap(const std::string& listener) {
  return metrics().value("bf_tcp_connections_rejected_total", {{"listener", listener}, {"reason", "max_connections"}});
}

// --- split_host_port -------------------------------------------------------------

TEST(SplitHostPort, AcceptedForms) {
  EXPECT_EQ(split_host_port("127.0.0.1:8080"), std::make_pair(std::string("127.0.0.1"), uint16_t{8080}));
  EXPECT_EQ(split_host_port("localhost:0"), std::make_pair(std::string("localhost"), uint16_t{0}));
  EXPECT_EQ(split_host_port("[::1]:5514"), std::make_pair(std::string("::1"), uint16_t{5514}));
  EXPECT_EQ(split_host_port("[::]:65535"), std::make_pair(std::string("::"), uint16_t{65535}));
  EXPECT_EQ(split_host_port(":514"), std::make_pair(std::string("0.0.0.0"), uint16_t{514}));
}

TEST(SplitHostPort, RejectsAndNamesTheValue) {
  for (const std::string bad : {"", "8080", "host:", "host:port", "host:65536", "host:-1", "[::1]",
                                "[::1]8080", "[]:80", "::1:80", "[::1:80", "h:123456"}) {
    try {
      split_host_port(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("'" + bad + "'"), std::string::npos) << e.what();
    }
  }
}

// --- UDP ---------------------------------------------------------------------------

// A UDP socket bound to 127.0.0.1:<ephemeral> that sends to the listener.
struct UdpSender {
  int fd;
  UdpSender() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  ~UdpSender() { ::close(fd); }
  std::string local() const {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  bool send(uint16_t port, std::string_view data) const {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
           static_cast<ssize_t>(data.size());
  }
};

TEST(UdpListener, DeliversDatagramsWithPeer) {
  const std::string name = test_name();
  Collector got;
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  UdpListener l(name, o, got.handler());
  l.start();
  ASSERT_NE(l.port(), 0);
  UdpSender s;
  ASSERT_TRUE(s.send(l.port(), "<13>first"));
  ASSERT_TRUE(s.send(l.port(), "second message"));
  ASSERT_TRUE(s.send(l.port(), std::string(1000, 'x')));
  ASSERT_TRUE(wait_until([&] { return got.size() >= 3; }));
  auto all = got.all();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].message, "<13>first");
  EXPECT_EQ(all[1].message, "second message");
  EXPECT_EQ(all[2].message, std::string(1000, 'x'));
  for (auto& r : all) EXPECT_EQ(r.peer, s.local());
  // Counters are added per receive batch (by the receive thread, before or after the handler calls).
  EXPECT_TRUE(wait_until([&] { return metric("bf_udp_datagrams_total", name) == 3; }));
  EXPECT_TRUE(wait_until([&] { return metric("bf_udp_bytes_total", name) == 9 + 14 + 1000; }));
  l.stop();
}

TEST(UdpListener, ManyDatagramsInBurstsAllArrive) {
  const std::string name = test_name();
  Collector got;
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  UdpListener l(name, o, got.handler());
  l.start();
  UdpSender s;
  // Small enough to fit in the socket buffer, large enough to need several recvmmsg batches.
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(s.send(l.port(), "msg " + std::to_string(i)));
  ASSERT_TRUE(wait_until([&] { return got.size() >= 200; }));
  auto msgs = got.messages();
  ASSERT_EQ(msgs.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(msgs[i], "msg " + std::to_string(i));
}

TEST(UdpListener, OversizedDatagramIsTruncatedAndCounted) {
  const std::string name = test_name();
  Collector got;
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  o.max_datagram = 10;
  UdpListener l(name, o, got.handler());
  l.start();
  UdpSender s;
  ASSERT_TRUE(s.send(l.port(), "0123456789abcdefghij"));
  ASSERT_TRUE(s.send(l.port(), "short"));
  ASSERT_TRUE(wait_until([&] { return got.size() >= 2; }));
  auto msgs = got.messages();
  EXPECT_EQ(msgs[0], "0123456789");
  EXPECT_EQ(msgs[1], "short");
  EXPECT_TRUE(wait_until([&] { return metric("bf_udp_datagrams_truncated_total", name) == 1; }));
}

TEST(UdpListener, KernelDropsAreCounted) {
  const std::string name = test_name();
  // Block the receive thread inside the handler so the (tiny) socket buffer overflows.
  std::atomic<bool> release{false};
  std::atomic<int> received{0};
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  o.receive_buffer_bytes = 4096;
  o.ring_bytes = 0;  // the handler runs on the receive thread, so blocking it blocks the socket
  UdpListener l(name, o, [&](std::string_view m, const std::string&) {
    received.fetch_add(1);
    if (m == "first") wait_until([&] { return release.load(); }, std::chrono::seconds(10));
  });
  l.start();
  UdpSender s;
  ASSERT_TRUE(s.send(l.port(), "first"));
  ASSERT_TRUE(wait_until([&] { return received.load() == 1; }));
  const int burst = 300;
  for (int i = 0; i < burst; ++i) ASSERT_TRUE(s.send(l.port(), std::string(200, 'd')));
  release = true;
  // The drop count rides on the next datagram the kernel queues: send probes, one at a
  // time, until one has been received after the backlog drained.
  int sent = burst + 1;
  ASSERT_TRUE(wait_until([&] {
    if (metric("bf_udp_kernel_drops_total", name) > 0) return true;
    const int before = received.load();
    EXPECT_TRUE(s.send(l.port(), "probe"));
    ++sent;
    wait_until([&] { return received.load() > before; }, std::chrono::milliseconds(200));
    return false;
  })) << "received " << received.load() << " of " << sent;
  ASSERT_TRUE(wait_until([&] {
    return received.load() + metric("bf_udp_kernel_drops_total", name) == sent;
  })) << "received " << received.load() << " drops " << metric("bf_udp_kernel_drops_total", name)
      << " sent " << sent;
  EXPECT_GT(metric("bf_udp_kernel_drops_total", name), 0);
  EXPECT_LT(received.load(), sent);
}

// Whether a thread of this process has this name (/proc/self/task/*/comm).
bool thread_named(const std::string& want) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string n;
    if (std::getline(comm, n) && n == want) return true;
  }
  return false;
}

// A handler that blocks at the datagram "stall" until released, collecting the rest.
struct StallingCollector : Collector {
  std::atomic<bool> stalled{false};
  std::atomic<bool> release{false};
  MessageHandler handler() {
    return [this](std::string_view m, const std::string& peer) {
      {
        std::lock_guard<std::mutex> lock(mu);
        items.push_back({std::string(m), peer});
      }
      if (m == "stall") {
        stalled = true;
        wait_until([&] { return release.load(); }, std::chrono::seconds(30));
      }
    };
  }
};

// Flood: the handler stalls, the receive thread drains the socket into the ring
// regardless (every datagram read, none dropped by the kernel); once the ring is full
// the rest are dropped and counted; after the stall, what the ring accepted arrives
// whole and in order.
TEST(UdpListener, RingAbsorbsAStalledHandlerThenCountsWhatDidNotFit) {
  const std::string name = test_name();
  StallingCollector got;
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  o.max_datagram = 1024;
  o.ring_bytes = min_udp_ring_bytes(o.max_datagram);  // 64 KiB: a few hundred 200-byte datagrams
  UdpListener l(name, o, got.handler());
  l.start();
  UdpSender s;
  ASSERT_TRUE(s.send(l.port(), "stall"));
  ASSERT_TRUE(wait_until([&] { return got.stalled.load(); }));
  const int flood = 2000;
  for (int i = 0; i < flood; ++i) {
    std::string m = "flood " + std::to_string(i) + " ";
    m.resize(200, 'f');
    ASSERT_TRUE(s.send(l.port(), m));
  }
  // The receive thread read every datagram although the handler is stuck.
  ASSERT_TRUE(wait_until([&] { return metric("bf_udp_datagrams_total", name) == flood + 1; }))
      << metric("bf_udp_datagrams_total", name) << " read";
  EXPECT_EQ(metric("bf_udp_kernel_drops_total", name), 0);
  const int64_t dropped = metric("bf_udp_ring_drops_total", name);
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, flood - 100);  // the ring held a few hundred
  got.release = true;
  const int64_t accepted = flood - dropped;
  ASSERT_TRUE(wait_until([&] { return static_cast<int64_t>(got.size()) == 1 + accepted; }))
      << got.size() << " delivered, " << accepted << " accepted";
  auto msgs = got.messages();
  EXPECT_EQ(msgs[0], "stall");
  // The ring filled while the handler was stuck: the accepted ones are the first ones.
  for (int64_t i = 0; i < accepted; ++i)
    ASSERT_EQ(msgs[static_cast<size_t>(i + 1)].substr(0, msgs[static_cast<size_t>(i + 1)].find(' ', 6)),
              "flood " + std::to_string(i));
  // With room again, new datagrams are accepted.
  ASSERT_TRUE(s.send(l.port(), "after"));
  ASSERT_TRUE(wait_until([&] { return static_cast<int64_t>(got.size()) == 2 + accepted; }));
  EXPECT_EQ(got.messages().back(), "after");
  EXPECT_EQ(metric("bf_udp_ring_drops_total", name), dropped);
}

// A clean stop while the handler is stalled with datagrams in the ring: the receive
// thread ends at once, the delivery thread hands on everything the ring holds.
TEST(UdpListener, StopDeliversEverythingInTheRing) {
  const std::string name = test_name();
  StallingCollector got;
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  UdpListener l(name, o, got.handler());
  l.start();
  UdpSender s;
  ASSERT_TRUE(s.send(l.port(), "stall"));
  ASSERT_TRUE(wait_until([&] { return got.stalled.load(); }));
  const int n = 500;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(s.send(l.port(), "queued " + std::to_string(i)));
  ASSERT_TRUE(wait_until([&] { return metric("bf_udp_datagrams_total", name) == n + 1; }));
  ASSERT_TRUE(thread_named("bf-proxy-udp-rx"));
  std::thread stopper([&] { l.stop(); });
  // stop() has ended the receive thread while the handler still holds the delivery thread.
  EXPECT_TRUE(wait_until([&] { return !thread_named("bf-proxy-udp-rx"); }));
  EXPECT_EQ(got.size(), 1u);
  got.release = true;
  stopper.join();
  auto msgs = got.messages();
  ASSERT_EQ(msgs.size(), static_cast<size_t>(n + 1));
  for (int i = 0; i < n; ++i) EXPECT_EQ(msgs[static_cast<size_t>(i + 1)], "queued " + std::to_string(i));
  EXPECT_EQ(metric("bf_udp_ring_drops_total", name), 0);
}

// Hostile datagrams through the ring: empty, NUL bytes, binary, exactly max_datagram,
// longer (cut and counted), and many of varying size through a small ring so records
// wrap around its end many times; each arrives byte for byte, in order, or is counted.
TEST(UdpListener, RingKeepsOddDatagramsExactAcrossWraps) {
  const std::string name = test_name();
  Collector got;
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  o.max_datagram = 1000;
  o.ring_bytes = min_udp_ring_bytes(o.max_datagram) + 8 * 3;  // not a multiple of any record size
  std::atomic<int> read_ends{0};
  UdpListener l(name, o, got.handler(), [&] { read_ends.fetch_add(1); });
  l.start();
  UdpSender s;
  std::vector<std::string> sent;
  sent.push_back("");
  sent.push_back(std::string("\0\0\0", 3));
  std::string binary;
  for (int b = 0; b < 256; ++b) binary.push_back(static_cast<char>(b));
  sent.push_back(binary);
  sent.push_back(std::string(1000, 'm'));
  for (const auto& m : sent) ASSERT_TRUE(s.send(l.port(), m));
  ASSERT_TRUE(s.send(l.port(), std::string(1500, 'L')));  // cut to 1000
  sent.push_back(std::string(1000, 'L'));
  ASSERT_TRUE(wait_until([&] { return got.size() == sent.size(); }));
  EXPECT_EQ(metric("bf_udp_datagrams_truncated_total", name), 1);
  // Sizes up to 1000 in a pattern that does not repeat with the ring, content tied to the index.
  const int many = 3000;
  auto accounted = [&] {
    return static_cast<int64_t>(got.size()) + metric("bf_udp_ring_drops_total", name) +
           metric("bf_udp_kernel_drops_total", name);
  };
  for (int i = 0; i < many; ++i) {
    std::string m = std::to_string(i) + ":";
    m.resize(std::max(m.size(), static_cast<size_t>((i * 389) % 1001)), static_cast<char>('a' + i % 26));
    ASSERT_TRUE(s.send(l.port(), m));
    sent.push_back(m);
    // Paced, 40 (< 64 KiB) at a time, so that most fit (drops would be counted, but
    // this test is about the bytes).
    if (i % 40 == 39) wait_until([&] { return accounted() >= static_cast<int64_t>(sent.size()); });
  }
  ASSERT_TRUE(wait_until([&] { return accounted() == static_cast<int64_t>(sent.size()); }))
      << got.size() << " delivered, ring drops " << metric("bf_udp_ring_drops_total", name) << ", kernel drops "
      << metric("bf_udp_kernel_drops_total", name) << ", sent " << sent.size();
  EXPECT_GT(got.size(), sent.size() / 2);  // the bytes of most were checked
  auto msgs = got.messages();
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(msgs[i], sent[i]) << i;
  // The rest: each delivered one equals the sent one of its index, indices increase.
  int last = -1;
  for (size_t k = 5; k < msgs.size(); ++k) {
    const int idx = std::stoi(msgs[k].substr(0, msgs[k].find(':')));
    ASSERT_GT(idx, last);
    last = idx;
    ASSERT_EQ(msgs[k], sent[static_cast<size_t>(idx) + 5]) << idx;
  }
  EXPECT_GT(read_ends.load(), 0);
  EXPECT_LT(read_ends.load(), static_cast<int>(sent.size()));  // a chunk at a time, not per datagram
}

TEST(UdpListener, RingBelowTheMinimumIsRefused) {
  Collector got;
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  o.ring_bytes = min_udp_ring_bytes(o.max_datagram) - 8;
  try {
    UdpListener l("t_udp_small_ring", o, got.handler());
    FAIL() << "accepted a ring of " << o.ring_bytes;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("receive ring"), std::string::npos) << e.what();
  }
}

// SO_RCVBUF of this process's UDP socket bound to `port`, read with getsockopt (the
// test finds the listener's socket among its own descriptors).
int receive_buffer_of_udp_port(uint16_t port) {
  for (int fd = 0; fd < 4096; ++fd) {
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_DGRAM) continue;
    sockaddr_storage a{};
    socklen_t alen = sizeof a;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &alen) != 0 || a.ss_family != AF_INET) continue;
    if (ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port) != port) continue;
    int got = 0;
    len = sizeof got;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0) return got;
  }
  return -1;
}

// Log lines of the default logger while it lives.
struct LogCapture {
  std::ostringstream out;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  LogCapture() { spdlog::default_logger()->sinks().push_back(sink); }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  }
  std::string text() {
    spdlog::default_logger()->flush();
    return out.str();
  }
};

// Drops `cap` from the calling thread's effective set (capabilities are per thread on
// Linux; threads it starts inherit them), so that e.g. SO_RCVBUFFORCE (CAP_NET_ADMIN)
// fails for it even when the test runs as root.
bool drop_capability_in_this_thread(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  data[cap / 32].effective &= ~(1u << (cap % 32));
  return syscall(SYS_capset, &header, data) == 0;
}

// Starts `l` (its socket, its threads) on a thread of its own that first drops `cap`
// (none when negative); false if the capability could not be dropped.
bool start_without_capability(UdpListener& l, int cap) {
  bool dropped = true;
  std::thread([&] {
    if (cap >= 0) dropped = drop_capability_in_this_thread(cap);
    l.start();
  }).join();
  return dropped;
}

// The granted receive buffer is the gauge bf_udp_receive_buffer_bytes{source}, and
// a request the kernel does not grant in full (over net.core.rmem_max without
// CAP_NET_ADMIN for SO_RCVBUFFORCE) is a warning naming net.core.rmem_max.
TEST(UdpListener, ReceiveBufferGaugeAndWarningWhenTheKernelCapsIt) {
  int rmem_max = 0;
  std::ifstream("/proc/sys/net/core/rmem_max") >> rmem_max;
  ASSERT_GT(rmem_max, 64 << 10);
  const int big = std::min(rmem_max * 2, 64 << 20);  // over the limit, bounded for a root run that forces it
  struct Case {
    int want;
    bool without_net_admin;
  };
  for (const Case c : {Case{big, true}, Case{big, false}, Case{64 << 10, false}}) {
    SCOPED_TRACE(std::to_string(c.want) + (c.without_net_admin ? " without CAP_NET_ADMIN" : ""));
    const std::string name = test_name();
    UdpListenerOptions o;
    o.listen = "127.0.0.1:0";
    o.receive_buffer_bytes = c.want;
    Collector col;
    LogCapture log;
    UdpListener l(name, o, col.handler());
    ASSERT_TRUE(start_without_capability(l, c.without_net_admin ? CAP_NET_ADMIN : -1));
    const int got = receive_buffer_of_udp_port(l.port());
    ASSERT_GT(got, 0);
    EXPECT_EQ(metrics().value("bf_udp_receive_buffer_bytes", {{"source", name}}), got);
    const bool capped = got / 2 < c.want;  // Linux reports twice the usable size
    const std::string text = log.text();
    EXPECT_EQ(text.find("net.core.rmem_max") != std::string::npos, capped) << text;
    if (capped) {
      EXPECT_NE(text.find("udp listener '" + name + "': asked for a " + std::to_string(c.want) +
                          " byte receive buffer, the kernel granted " + std::to_string(got / 2)),
                std::string::npos)
          << text;
    }
    if (c.want <= rmem_max) {
      EXPECT_FALSE(capped);  // within the limit: granted as asked
    }
    if (c.without_net_admin) {
      EXPECT_TRUE(capped);  // rmem_max applies
      EXPECT_EQ(got / 2, rmem_max);
    }
    l.stop();
  }
}

// nice, rt_priority and policy of each thread of this process named `comm`
// (/proc/self/task/<tid>/stat fields 19, 40 and 41).
struct ThreadSched {
  long nice = 0;
  long rt_priority = 0;
  long policy = 0;
};
std::vector<ThreadSched> threads_named(const std::string& comm) {
  std::vector<ThreadSched> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "stat");
    std::string line;
    std::getline(in, line);
    const size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    if (line.substr(open + 1, close - open - 1) != comm) continue;
    std::istringstream rest(line.substr(close + 2));  // field 3 onwards
    std::vector<std::string> f{std::istream_iterator<std::string>(rest), std::istream_iterator<std::string>()};
    if (f.size() < 39) continue;
    out.push_back({std::stol(f[16]), std::stol(f[37]), std::stol(f[38])});
  }
  return out;
}

// receive_priority: high makes the receive thread nice -10, realtime SCHED_FIFO 1,
// and the parsing thread keeps the process's scheduling. Without CAP_SYS_NICE the
// request is refused with a warning, the thread stays normal and datagrams still arrive.
TEST(UdpListener, ReceivePriorityAppliesToTheReceiveThreadOnly) {
  struct Case {
    UdpReceivePriority priority;
    bool without_sys_nice;
    long nice, policy;  // expected on bf-proxy-udp-rx
  };
  const long base_nice = ::getpriority(PRIO_PROCESS, 0);
  for (const Case c : {Case{UdpReceivePriority::normal, false, base_nice, SCHED_OTHER},
                       Case{UdpReceivePriority::high, false, -10, SCHED_OTHER},
                       Case{UdpReceivePriority::realtime, false, base_nice, SCHED_FIFO},
                       Case{UdpReceivePriority::high, true, base_nice, SCHED_OTHER},
                       Case{UdpReceivePriority::realtime, true, base_nice, SCHED_OTHER}}) {
    SCOPED_TRACE(std::to_string(static_cast<int>(c.priority)) + (c.without_sys_nice ? " without CAP_SYS_NICE" : ""));
    const std::string name = test_name();
    UdpListenerOptions o;
    o.listen = "127.0.0.1:0";
    o.receive_priority = c.priority;
    Collector got;
    LogCapture log;
    UdpListener l(name, o, got.handler());
    // Root's RLIMIT_NICE and RLIMIT_RTPRIO are 0 by default: without CAP_SYS_NICE a
    // negative nice value and SCHED_FIFO are refused.
    ASSERT_TRUE(start_without_capability(l, c.without_sys_nice ? CAP_SYS_NICE : -1));
    UdpSender s;
    ASSERT_TRUE(s.send(l.port(), "after the scheduling was set"));
    ASSERT_TRUE(wait_until([&] { return got.size() == 1; }));  // the thread has run past its setup
    const auto rx = threads_named("bf-proxy-udp-rx");
    ASSERT_EQ(rx.size(), 1u);
    EXPECT_EQ(rx[0].nice, c.nice);
    EXPECT_EQ(rx[0].policy, c.policy);
    EXPECT_EQ(rx[0].rt_priority, c.policy == SCHED_FIFO ? 1 : 0);
    const auto parser = threads_named("bf-proxy-udp");
    ASSERT_EQ(parser.size(), 1u);
    EXPECT_EQ(parser[0].nice, base_nice);
    EXPECT_EQ(parser[0].policy, SCHED_OTHER);
    const std::string text = log.text();
    EXPECT_EQ(text.find("receive_priority") != std::string::npos, c.without_sys_nice) << text;
    if (c.without_sys_nice) {
      EXPECT_NE(text.find("udp listener '" + name + "': receive_priority"), std::string::npos) << text;
    }
    l.stop();
  }
}

TEST(UdpListener, HandlerExceptionDoesNotStopTheListener) {
  const std::string name = test_name();
  std::atomic<int> calls{0};
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  UdpListener l(name, o, [&](std::string_view m, const std::string&) {
    calls.fetch_add(1);
    if (m == "bad") throw std::runtime_error("bad datagram");
  });
  l.start();
  UdpSender s;
  ASSERT_TRUE(s.send(l.port(), "bad"));
  ASSERT_TRUE(s.send(l.port(), "good"));
  ASSERT_TRUE(wait_until([&] { return calls.load() >= 2; }));
  EXPECT_EQ(metric("bf_listener_handler_errors_total", name), 1);
}

TEST(UdpListener, StopIsQuickAndReleasesThePort) {
  Collector got;
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  auto l = std::make_unique<UdpListener>(test_name(), o, got.handler());
  l->start();
  const uint16_t p = l->port();
  const auto t0 = std::chrono::steady_clock::now();
  l->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  l->stop();
  l.reset();
  // The port is free again: another listener can bind it.
  o.listen = "127.0.0.1:" + std::to_string(p);
  UdpListener again("t_udp_again", o, got.handler());
  EXPECT_NO_THROW(again.start());
}

TEST(UdpListener, BindConflictThrowsNamingTheAddress) {
  Collector got;
  UdpListenerOptions o;
  o.listen = "127.0.0.1:0";
  UdpListener a("t_udp_a", o, got.handler());
  a.start();
  o.listen = "127.0.0.1:" + std::to_string(a.port());
  UdpListener b("t_udp_b", o, got.handler());
  try {
    b.start();
    FAIL() << "second bind succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(o.listen), std::string::npos) << e.what();
  }
}

// --- TcpFramer -----------------------------------------------------------------------

struct Framed {
  std::vector<std::string> messages;
  int truncated = 0;
};

Framed frame_all(std::string_view input, size_t max_message, bool detect, size_t chunk) {
  Framed out;
  TcpFramer f(max_message, detect);
  TcpFramer::Sink sink = [&](std::string_view m, bool t) {
    out.messages.emplace_back(m);
    out.truncated += t ? 1 : 0;
  };
  for (size_t i = 0; i < input.size(); i += chunk) f.feed(input.substr(i, chunk), sink);
  f.finish(sink);
  return out;
}

TEST(TcpFramer, FirstFrameDecidesOctetCountingForTheConnection) {
  const std::string input =
      "5 hello"            // octet-counted: the stream is octet-counted from now on
      "11 hello\nworld"    // contains LF
      "\n"                 // a line end between frames, as some senders add: skipped
      "4 <13>"
      "42 is the answer\n"; // 17 bytes of an announced 42: incomplete at end of stream
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, input.size()}) {
    auto got = frame_all(input, 1024, true, chunk);
    ASSERT_EQ(got.messages.size(), 4u) << "chunk " << chunk;
    EXPECT_EQ(got.messages[0], "hello");
    EXPECT_EQ(got.messages[1], "hello\nworld");
    EXPECT_EQ(got.messages[2], "<13>");
    EXPECT_EQ(got.messages[3], "is the answer\n");
    EXPECT_EQ(got.truncated, 1);
  }
}

TEST(TcpFramer, FirstFrameDecidesNewlineFramingForTheConnection) {
  // Once a connection is newline-framed, "5 hello" is a line like any other.
  auto got = frame_all("<13>first\n5 hello\n0 zero\n", 1024, true, 3);
  ASSERT_EQ(got.messages.size(), 3u);
  EXPECT_EQ(got.messages[1], "5 hello");
  EXPECT_EQ(got.messages[2], "0 zero");
}

TEST(TcpFramer, BadLengthPrefixIsAFramingErrorAndNothingHalfParsedIsDelivered) {
  struct Case {
    std::string input;
    size_t delivered;
  } cases[] = {
      {"5 hello<13>no length\n5 after", 1},  // octet-counted stream, a frame without a length
      {"0 5 hello", 0},                       // zero length
      {"5 hello99999 x", 1},                  // 5 digits where max_message 1024 has 4: absurd
      {"123456789012 x", 0},                  // absurd on the first frame too
      {"5 hello12x34", 1},                    // digits, then no SP
  };
  for (const Case& c : cases) {
    for (size_t chunk : {size_t{1}, size_t{4}, c.input.size()}) {
      std::vector<std::string> got;
      TcpFramer f(1024, true);
      TcpFramer::Sink sink = [&](std::string_view m, bool) { got.emplace_back(m); };
      for (size_t i = 0; i < c.input.size(); i += chunk) f.feed(std::string_view(c.input).substr(i, chunk), sink);
      EXPECT_FALSE(f.finish(sink));
      SCOPED_TRACE(c.input + " chunk " + std::to_string(chunk));
      EXPECT_TRUE(f.failed());
      EXPECT_EQ(f.framing_errors(), 1u);
      ASSERT_EQ(got.size(), c.delivered);
      if (c.delivered) EXPECT_EQ(got[0], "hello");
    }
  }
  // A length within the digit count but above max_message is a long message, cut, not an error.
  auto got = frame_all("2000 " + std::string(2000, 'z'), 1024, true, 100);
  ASSERT_EQ(got.messages.size(), 1u);
  EXPECT_EQ(got.messages[0].size(), 1024u);
  EXPECT_EQ(got.truncated, 1);
}

TEST(TcpFramer, SkipModeResumesAfterTheNextLine) {
  std::vector<std::string> got;
  TcpFramer f(1024, true, /*stop_on_error=*/false);
  TcpFramer::Sink sink = [&](std::string_view m, bool) { got.emplace_back(m); };
  f.feed("5 hello0 junk up to here\n5 world<bad>\n3 end", sink);
  EXPECT_FALSE(f.finish(sink));
  EXPECT_FALSE(f.failed());
  EXPECT_EQ(f.framing_errors(), 2u);
  EXPECT_EQ(got, (std::vector<std::string>{"hello", "world", "end"}));
}

TEST(TcpFramer, TruncatedFinalFrameIsReported) {
  std::vector<std::pair<std::string, bool>> got;
  TcpFramer f(1024, true);
  TcpFramer::Sink sink = [&](std::string_view m, bool t) { got.emplace_back(std::string(m), t); };
  f.feed("3 abc10 <13>par", sink);
  EXPECT_TRUE(f.finish(sink));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::make_pair(std::string("abc"), false));
  EXPECT_EQ(got[1], std::make_pair(std::string("<13>par"), true));
  // A stream that ends on a complete frame is not incomplete.
  TcpFramer g(1024, true);
  g.feed("3 abc", sink);
  EXPECT_FALSE(g.finish(sink));
}

TEST(TcpFramer, DigitsWithoutSpaceAreALine) {
  auto got = frame_all("12345\n123abc\n99", 1024, true, 1);
  ASSERT_EQ(got.messages.size(), 3u);
  EXPECT_EQ(got.messages[0], "12345");
  EXPECT_EQ(got.messages[1], "123abc");
  EXPECT_EQ(got.messages[2], "99");  // partial last "line" at end of stream
  EXPECT_EQ(got.truncated, 0);
}

TEST(TcpFramer, NewlineModeNeverCountsOctets) {
  auto got = frame_all("5 hello\n3 abc\n", 1024, false, 4);
  ASSERT_EQ(got.messages.size(), 2u);
  EXPECT_EQ(got.messages[0], "5 hello");
  EXPECT_EQ(got.messages[1], "3 abc");
}

TEST(TcpFramer, TruncatesBothFramingsAndResynchronises) {
  const std::string lines = std::string(20, 'a') + "\n" +  // line over the limit
                            "abcdefgh\r\n";                // exactly the limit + CRLF
  const std::string frames = "9 " + std::string(9, 'b') +  // frame over the limit (1 digit, as 8 has)
                             "8 12345678";                 // frame at the limit
  for (size_t chunk : {size_t{1}, size_t{5}, size_t{100}}) {
    auto got = frame_all(lines, 8, true, chunk);
    ASSERT_EQ(got.messages.size(), 2u);
    EXPECT_EQ(got.messages[0], std::string(8, 'a'));
    EXPECT_EQ(got.messages[1], "abcdefgh");
    EXPECT_EQ(got.truncated, 1) << "chunk " << chunk;
    got = frame_all(frames, 8, true, chunk);
    ASSERT_EQ(got.messages.size(), 2u);
    EXPECT_EQ(got.messages[0], std::string(8, 'b'));
    EXPECT_EQ(got.messages[1], "12345678");
    EXPECT_EQ(got.truncated, 1) << "chunk " << chunk;
  }
}

// --- TCP -------------------------------------------------------------------------------

struct TcpFixture : ::testing::Test {
  Collector got;
  std::string name;
  std::unique_ptr<TcpListener> listener;
  void start(TcpListenerOptions o = {}) {
    name = test_name();
    o.listen = "127.0.0.1:0";
    listener = std::make_unique<TcpListener>(name, o, got.handler());
    listener->start();
    ASSERT_NE(listener->port(), 0);
  }
  uint16_t port() const { return listener->port(); }
};

TEST_F(TcpFixture, NewlineFramingWithCrLfAndPartialLastLine) {
  start();
  std::string local;
  {
    RawConn c(port());
    ASSERT_TRUE(c.connected());
    local = c.local();
    ASSERT_TRUE(c.send("<13>one\n<13>two\r\n"));
    ASSERT_TRUE(c.send("<13>thr"));
    ASSERT_TRUE(c.send("ee\n<13>partial"));
  }  // close: the partial last line is delivered
  ASSERT_TRUE(wait_until([&] { return got.size() >= 4; }));
  auto all = got.all();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].message, "<13>one");
  EXPECT_EQ(all[1].message, "<13>two");
  EXPECT_EQ(all[2].message, "<13>three");
  EXPECT_EQ(all[3].message, "<13>partial");
  for (auto& r : all) EXPECT_EQ(r.peer, local);
  EXPECT_EQ(metric("bf_tcp_messages_total", name), 4);
}

TEST_F(TcpFixture, OctetCountingFraming) {
  start();
  {
    RawConn c(port());
    ASSERT_TRUE(c.send("17 <13>hello\nworld!!"));
    ASSERT_TRUE(c.send("9 <13>short"));
  }
  {
    RawConn c(port());  // each connection decides its own framing
    ASSERT_TRUE(c.send("<13>newline framed\n"));
  }
  ASSERT_TRUE(wait_until([&] { return got.size() >= 3; }));
  auto msgs = got.messages();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0], "<13>hello\nworld!!");
  EXPECT_EQ(msgs[1], "<13>short");
  EXPECT_EQ(msgs[2], "<13>newline framed");
}

TEST_F(TcpFixture, FramingErrorIsCountedAndClosesTheConnection) {
  start();
  RawConn c(port());
  ASSERT_TRUE(c.send("9 <13>first<13>no length prefix\n9 <13>after"));
  // The listener closes its side: our read sees the end of the stream.
  char buf[16];
  EXPECT_EQ(::recv(c.fd(), buf, sizeof buf, 0), 0);
  ASSERT_TRUE(wait_until([&] { return metric("bf_tcp_framing_errors_total", name) == 1; }));
  EXPECT_EQ(got.messages(), (std::vector<std::string>{"<13>first"}));
  EXPECT_TRUE(wait_until([&] { return listener->open_connections() == 0; }));
}

TEST_F(TcpFixture, FramingErrorCanSkipToTheNextLine) {
  TcpListenerOptions o;
  o.close_on_framing_error = false;
  start(o);
  {
    RawConn c(port());
    ASSERT_TRUE(c.send("9 <13>first0 bad\n9 <13>after"));
  }
  ASSERT_TRUE(wait_until([&] { return got.size() >= 2; }));
  EXPECT_EQ(got.messages(), (std::vector<std::string>{"<13>first", "<13>after"}));
  EXPECT_EQ(metric("bf_tcp_framing_errors_total", name), 1);
}

TEST_F(TcpFixture, StreamEndingInsideAFrameIsMarkedTruncatedAndCounted) {
  name = test_name();
  TcpListenerOptions o;
  o.listen = "127.0.0.1:0";
  std::mutex mu;
  std::vector<std::pair<std::string, bool>> frames;
  listener = std::make_unique<TcpListener>(name, o, FrameHandler([&](std::string_view m, const std::string&, bool t) {
                                             std::lock_guard<std::mutex> lock(mu);
                                             frames.emplace_back(std::string(m), t);
                                           }));
  listener->start();
  {
    RawConn c(port());
    ASSERT_TRUE(c.send("5 <13>a40 <13>cut short"));
  }
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard<std::mutex> lock(mu);
    return frames.size() == 2;
  }));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(frames[0], std::make_pair(std::string("<13>a"), false));
  EXPECT_EQ(frames[1], std::make_pair(std::string("<13>cut short"), true));
  EXPECT_EQ(metric("bf_tcp_frames_incomplete_total", name), 1);
  EXPECT_EQ(metric("bf_tcp_messages_truncated_total", name), 0);  // that one is for over-long messages
}

TEST_F(TcpFixture, OversizedMessagesAreTruncatedAndCounted) {
  TcpListenerOptions o;
  o.max_message = 16;
  start(o);
  {
    RawConn c(port());
    ASSERT_TRUE(c.send(std::string(100, 'L') + "\n"));
    ASSERT_TRUE(c.send("next\n"));
  }
  ASSERT_TRUE(wait_until([&] { return got.size() >= 2; }));
  {
    RawConn c(port());
    ASSERT_TRUE(c.send("40 " + std::string(40, 'F')));
  }
  ASSERT_TRUE(wait_until([&] { return got.size() >= 3; }));
  auto msgs = got.messages();
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0], std::string(16, 'L'));
  EXPECT_EQ(msgs[1], "next");
  EXPECT_EQ(msgs[2], std::string(16, 'F'));
  EXPECT_EQ(metric("bf_tcp_messages_truncated_total", name), 2);
}

TEST_F(TcpFixture, SeveralConnectionsAreFramedIndependently) {
  start();
  RawConn a(port());
  RawConn b(port());
  ASSERT_TRUE(a.send("from-a-"));
  ASSERT_TRUE(b.send("from-b\n"));
  ASSERT_TRUE(wait_until([&] { return got.size() >= 1; }));
  ASSERT_TRUE(a.send("done\n"));
  ASSERT_TRUE(wait_until([&] { return got.size() >= 2; }));
  auto all = got.all();
  EXPECT_EQ(all[0].message, "from-b");
  EXPECT_EQ(all[0].peer, b.local());
  EXPECT_EQ(all[1].message, "from-a-done");
  EXPECT_EQ(all[1].peer, a.local());
}

TEST_F(TcpFixture, MaxConnectionsIsEnforced) {
  TcpListenerOptions o;
  o.max_connections = 1;
  start(o);
  RawConn first(port());
  ASSERT_TRUE(first.send("hello\n"));
  ASSERT_TRUE(wait_until([&] { return got.size() >= 1; }));  // accepted and registered
  RawConn second(port());
  ASSERT_TRUE(second.connected());  // the kernel completes the handshake...
  EXPECT_TRUE(second.wait_closed());  // ...then the listener closes it
  EXPECT_TRUE(wait_until([&] { return rejected_at_cap(name) == 1; }));
  // The first connection still works.
  ASSERT_TRUE(first.send("still here\n"));
  ASSERT_TRUE(wait_until([&] { return got.size() >= 2; }));
  EXPECT_EQ(got.messages()[1], "still here");
}

TEST_F(TcpFixture, ConnectionSlotIsFreedOnClose) {
  TcpListenerOptions o;
  o.max_connections = 1;
  start(o);
  {
    RawConn c(port());
    ASSERT_TRUE(c.send("one\n"));
    ASSERT_TRUE(wait_until([&] { return got.size() >= 1; }));
  }
  ASSERT_TRUE(wait_until([&] { return metric("bf_tcp_connections_active", name) == 0; }));
  RawConn c2(port());
  ASSERT_TRUE(c2.send("two\n"));
  ASSERT_TRUE(wait_until([&] { return got.size() >= 2; }));
  EXPECT_EQ(rejected_at_cap(name), 0);
}

TEST_F(TcpFixture, StopIsCleanAndDeliversPartialLines) {
  start();
  RawConn c(port());
  ASSERT_TRUE(c.send("complete\nincomplete"));
  ASSERT_TRUE(wait_until([&] { return got.size() >= 1; }));
  const uint16_t p = port();
  const auto t0 = std::chrono::steady_clock::now();
  listener->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  auto msgs = got.messages();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1], "incomplete");
  EXPECT_TRUE(c.wait_closed());
  RawConn after(p);
  EXPECT_FALSE(after.connected());
  listener->stop();
  listener.reset();
}

TEST(TcpListener, RejectsUnknownFraming) {
  TcpListenerOptions o;
  o.framing = "octets";
  try {
    TcpListener l("t_bad_framing", o, [](std::string_view, const std::string&) {});
    FAIL() << "accepted framing 'octets'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("octets"), std::string::npos);
  }
}

}  // namespace
}  // namespace bf
