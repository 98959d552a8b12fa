// UDP listener (POSIX sockets, recvmmsg, one receive thread) and TCP listener (Asio,
// one io thread, RFC 6587 framing per connection).
#include "net/listeners.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/metrics.h"
#include "common/worker.h"
#include "net/acceptor.h"
#include "net/conn_limits.h"
#include "net/tls_context.h"

namespace bf {

namespace asio = boost::asio;
using asio_tcp = boost::asio::ip::tcp;

// ---------------------------------------------------------------------------------
// split_host_port

std::pair<std::string, uint16_t> split_host_port(const std::string& listen) {
  auto bad = [&](const std::string& why) -> std::invalid_argument {
    return std::invalid_argument("invalid listen address '" + listen + "': " + why);
  };
  std::string host;
  std::string port_str;
  if (!listen.empty() && listen.front() == '[') {
    const size_t close = listen.find(']');
    if (close == std::string::npos) throw bad("missing ']' after IPv6 address");
    host = listen.substr(1, close - 1);
    if (host.empty()) throw bad("empty IPv6 address in brackets");
    if (close + 1 >= listen.size() || listen[close + 1] != ':') {
      throw bad("expected ':port' after ']'");
    }
    port_str = listen.substr(close + 2);
  } else {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos) throw bad("expected host:port, [ipv6]:port or :port");
    host = listen.substr(0, colon);
    if (host.find(':') != std::string::npos) {
      throw bad("IPv6 addresses must be written in brackets, e.g. [::1]:8080");
    }
    if (host.empty()) host = "0.0.0.0";
    port_str = listen.substr(colon + 1);
  }
  if (port_str.empty()) throw bad("missing port");
  if (port_str.size() > 5) throw bad("port out of range");
  uint32_t port = 0;
  for (char c : port_str) {
    if (c < '0' || c > '9') throw bad("port is not a number");
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) throw bad("port out of range");
  return {host, static_cast<uint16_t>(port)};
}

namespace {

std::string format_peer(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      inet_ntop(AF_INET, reinterpret_cast<const uint8_t*>(&in6->sin6_addr) + 12, buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(ntohs(in6->sin6_port));
    }
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "unknown";
}

std::string format_peer(const asio_tcp::endpoint& ep) {
  return format_peer(ep.data());
}

std::string errno_text(int err) { return std::strerror(err); }

// Runs a handler call; what it throws is logged and counted, and the listener goes on.
template <class Call>
void call_guarded(Call&& call, Counter& errors, const char* kind, const std::string& name) {
  try {
    call();
  } catch (const std::exception& e) {
    errors.inc();
    spdlog::error("{} listener '{}': handler threw: {}", kind, name, e.what());
  } catch (...) {
    errors.inc();
    spdlog::error("{} listener '{}': handler threw", kind, name);
  }
}

void call_read_end(const ReadEndHandler& read_end, Counter& errors, const char* kind, const std::string& name) {
  if (read_end) call_guarded(read_end, errors, kind, name);
}

}  // namespace

// ---------------------------------------------------------------------------------
// UdpListener

namespace {

// The kernel's drop count of the UDP socket with this inode: the last column of its
// line in /proc/net/udp (or udp6) — sk_drops, the counter SO_RXQ_OVFL reports too.
// Read when the socket is quiet, so drops that no later datagram reports are counted.
std::optional<uint32_t> proc_udp_drops(ino_t inode) {
  for (const char* path : {"/proc/net/udp", "/proc/net/udp6"}) {
    FILE* f = std::fopen(path, "re");
    if (!f) continue;
    char line[512];
    std::optional<uint32_t> found;
    bool header = true;
    while (!found && std::fgets(line, sizeof line, f)) {
      if (header) {  // "  sl  local_address rem_address ... inode ref pointer drops"
        header = false;
        continue;
      }
      // Columns: sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
      char* fields[13] = {};
      int n = 0;
      for (char* save = nullptr, *t = strtok_r(line, " \t\n", &save); t && n < 13; t = strtok_r(nullptr, " \t\n", &save))
        fields[n++] = t;
      if (n == 13 && std::strtoull(fields[9], nullptr, 10) == inode)
        found = static_cast<uint32_t>(std::strtoull(fields[12], nullptr, 10));
    }
    std::fclose(f);
    if (found) return found;
  }
  return std::nullopt;
}

// A bounded ring of datagrams with one writer (the receive thread) and one reader (the
// delivery thread). Records are 8-byte aligned: a header, the sender's address, the
// payload. A record that does not fit before the end of the buffer leaves a wrap
// marker there and starts at offset 0. Positions only grow (offset = position % size),
// so `tail - head` is the bytes in use. The writer publishes a batch of records at a
// time (one store, and a wake-up only when the reader sleeps or, while it naps, when
// the ring is an eighth full); the reader
// frees what it has delivered (one release store per chunk). Neither ever waits for
// the other: a record that finds no room is refused and the caller counts it.
class DatagramRing {
 public:
  struct Header {
    uint32_t len;        // payload bytes
    uint16_t addr_len;   // sender address bytes (sockaddr)
    uint16_t wrap;       // 1: skip to the start of the buffer
  };
  static constexpr size_t kAlign = 8;
  static constexpr size_t kRewindAt = 1 << 20;
  static size_t record_size(size_t addr_len, size_t len) {
    return (sizeof(Header) + addr_len + len + kAlign - 1) / kAlign * kAlign;
  }

  explicit DatagramRing(size_t bytes) : size_(bytes / kAlign * kAlign), buf_(new char[size_]) {}

  // Writer: copies one datagram in at the unpublished tail; false when there is no room.
  bool push(const void* addr, socklen_t addr_len, std::string_view payload) {
    const size_t need = record_size(addr_len, payload.size());
    const uint64_t head = head_.load(std::memory_order_acquire);
    size_t off = static_cast<size_t>(write_ % size_);
    const size_t to_end = size_ - off;
    // An empty ring starts again at the front, so only as much of the buffer as the
    // ring has ever held at once is touched (resident), not all of it.
    const bool rewind = head == write_ && off >= kRewindAt;
    const size_t skip = rewind || need > to_end ? to_end : 0;
    if (write_ + skip + need - head > size_) return false;
    if (skip) {
      Header w{0, 0, 1};
      std::memcpy(buf_.get() + off, &w, sizeof w);  // to_end >= kAlign = sizeof(Header)
      write_ += skip;
      off = 0;
    }
    Header h{static_cast<uint32_t>(payload.size()), static_cast<uint16_t>(addr_len), 0};
    char* p = buf_.get() + off;
    std::memcpy(p, &h, sizeof h);
    std::memcpy(p + sizeof h, addr, addr_len);
    std::memcpy(p + sizeof h + addr_len, payload.data(), payload.size());
    write_ += need;
    return true;
  }
  // Writer: makes the pushed records visible, waking the reader if it needs it.
  void publish() {
    tail_.store(write_, std::memory_order_seq_cst);
    // A napping reader looks again within a millisecond by itself: woken (a futex call
    // and a context switch) only when the ring is filling up; an asleep one always.
    const int state = reader_state_.load(std::memory_order_seq_cst);
    if (state == kAsleep ||
        (state == kNapping && write_ - head_.load(std::memory_order_relaxed) >= size_ / 8)) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_one();
    }
  }
  // Writer: no more records will come (after its last publish()).
  void close() {
    closed_.store(true, std::memory_order_seq_cst);
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_one();
  }

  // Reader: the published end; waits until there is something past `from` or the ring
  // is closed (then returns `from` if nothing is left).
  uint64_t wait_for_records(uint64_t from) {
    uint64_t tail = tail_.load(std::memory_order_acquire);
    if (tail != from) return tail;
    // Naps of a millisecond while datagrams keep coming (each wake-up then finds a
    // few hundred at high rates), asleep until woken after 20 empty naps.
    std::unique_lock<std::mutex> lock(mu_);
    for (int naps = 0;; ++naps) {
      const bool nap = naps < 20;
      reader_state_.store(nap ? kNapping : kAsleep, std::memory_order_seq_cst);
      if (tail_.load(std::memory_order_seq_cst) != from || closed_.load(std::memory_order_seq_cst)) break;
      cv_.wait_for(lock, nap ? std::chrono::milliseconds(1) : std::chrono::milliseconds(200));
    }
    reader_state_.store(kAwake, std::memory_order_relaxed);
    return tail_.load(std::memory_order_acquire);
  }
  // Reader: the record at position `pos` (< the published tail); advances `pos` past it.
  // Returns false for a wrap marker (pos moved to the next start of the buffer).
  bool read(uint64_t& pos, const sockaddr*& addr, socklen_t& addr_len, std::string_view& payload) const {
    const size_t off = static_cast<size_t>(pos % size_);
    Header h;
    std::memcpy(&h, buf_.get() + off, sizeof h);
    if (h.wrap) {
      pos += size_ - off;
      return false;
    }
    addr = reinterpret_cast<const sockaddr*>(buf_.get() + off + sizeof h);
    addr_len = h.addr_len;
    payload = std::string_view(buf_.get() + off + sizeof h + h.addr_len, h.len);
    pos += record_size(h.addr_len, h.len);
    return true;
  }
  // Reader: the records before `pos` are delivered; their room goes back to the writer.
  void release(uint64_t pos) { head_.store(pos, std::memory_order_release); }

 private:
  const size_t size_;
  std::unique_ptr<char[]> buf_;  // not value-initialised: pages are touched when first written
  uint64_t write_ = 0;           // writer only
  alignas(64) std::atomic<uint64_t> tail_{0};
  alignas(64) std::atomic<uint64_t> head_{0};
  static constexpr int kAwake = 0, kNapping = 1, kAsleep = 2;
  std::atomic<int> reader_state_{kAwake};
  std::atomic<bool> closed_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace

size_t min_udp_ring_bytes(size_t max_datagram) {
  return std::max<size_t>(64 * 1024, 2 * DatagramRing::record_size(sizeof(sockaddr_storage), max_datagram));
}

struct UdpListener::Impl {
  static constexpr unsigned kBatch = 32;

  Impl(std::string n, UdpListenerOptions o, MessageHandler h, ReadEndHandler r)
      : name(std::move(n)),
        opts(std::move(o)),
        handler(std::move(h)),
        read_end(std::move(r)),
        datagrams(metrics().counter("bf_udp_datagrams_total", "UDP datagrams received",
                                    {{"listener", name}})),
        bytes(metrics().counter("bf_udp_bytes_total", "UDP payload bytes received",
                                {{"listener", name}})),
        truncated(metrics().counter("bf_udp_datagrams_truncated_total",
                                    "UDP datagrams longer than max_datagram, cut to it",
                                    {{"listener", name}})),
        kernel_drops(metrics().counter("bf_udp_kernel_drops_total",
                                       "UDP datagrams the kernel dropped (socket buffer full)",
                                       {{"listener", name}})),
        ring_drops(metrics().counter("bf_udp_ring_drops_total",
                                     "UDP datagrams received but dropped because the receive ring was full",
                                     {{"listener", name}})),
        handler_errors(metrics().counter("bf_listener_handler_errors_total",
                                         "Exceptions thrown by a listener's message handler",
                                         {{"listener", name}})) {}

  void receive();  // the receive thread
  void deliver();  // the delivery thread (with a ring)
  void call_handler(std::string_view message, const std::string& peer);

  std::string name;
  UdpListenerOptions opts;
  MessageHandler handler;
  ReadEndHandler read_end;
  Counter& datagrams;
  Counter& bytes;
  Counter& truncated;
  Counter& kernel_drops;
  Counter& ring_drops;
  Counter& handler_errors;
  std::unique_ptr<DatagramRing> ring;  // null: ring_bytes 0, handlers on the receive thread

  std::mutex mu;
  bool started = false;
  bool stopped = false;
  int fd = -1;
  int wake_fd = -1;
  uint16_t bound_port = 0;
  std::thread thread;
  std::thread delivery;
};

UdpListener::UdpListener(std::string name, UdpListenerOptions options, MessageHandler handler,
                         ReadEndHandler read_end)
    : impl_(std::make_unique<Impl>(std::move(name), std::move(options), std::move(handler), std::move(read_end))) {
  if (impl_->opts.max_datagram == 0 || impl_->opts.max_datagram > 65535) {
    throw std::invalid_argument("udp listener '" + impl_->name +
                                "': max_datagram must be between 1 and 65535");
  }
  const size_t ring = impl_->opts.ring_bytes;
  if (ring != 0 && ring < min_udp_ring_bytes(impl_->opts.max_datagram)) {
    throw std::invalid_argument("udp listener '" + impl_->name + "': receive ring of " + std::to_string(ring) +
                                " bytes is below the minimum " +
                                std::to_string(min_udp_ring_bytes(impl_->opts.max_datagram)) +
                                " for max_datagram " + std::to_string(impl_->opts.max_datagram));
  }
}

UdpListener::~UdpListener() { stop(); }

void UdpListener::start() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.started) throw std::logic_error("udp listener '" + s.name + "' already started");
  const auto [host, port] = split_host_port(s.opts.listen);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  const int gai = getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res);
  if (gai != 0 || !res) {
    throw std::runtime_error("udp listener '" + s.name + "': cannot resolve '" + s.opts.listen +
                             "': " + gai_strerror(gai));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> res_guard(res, &freeaddrinfo);

  const int fd = ::socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    throw std::runtime_error("udp listener '" + s.name + "': socket(): " + errno_text(errno));
  }
  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error("udp listener '" + s.name + "': " + what + " '" + s.opts.listen +
                             "': " + errno_text(err));
  };

  const int want = s.opts.receive_buffer_bytes;
  if (want > 0) {
    // SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    }
  }
  int got = 0;
  socklen_t got_len = sizeof got;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &got_len) == 0) {
    // What the kernel granted, as it reports it (Linux: twice the usable size, the
    // rest for its bookkeeping); every worker socket of a source asks for the same.
    metrics()
        .gauge("bf_udp_receive_buffer_bytes",
               "SO_RCVBUF of a UDP source's socket as the kernel reports it (getsockopt; Linux doubles the request)",
               {{"source", s.name}})
        .set(got);
    if (want > 0 && got / 2 < want)
      spdlog::warn(
          "udp listener '{}': asked for a {} byte receive buffer, the kernel granted {}; raise the sysctl "
          "net.core.rmem_max (or run with CAP_NET_ADMIN) to avoid kernel drops under bursts",
          s.name, want, got / 2);
  }
  const int one = 1;
  // Kernel drop counter delivered with each datagram (cmsg); cheap and exact.
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);

  if (s.opts.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    fail("SO_REUSEPORT on");
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0) fail("cannot bind");
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) fail("getsockname on");
  s.bound_port = local.ss_family == AF_INET6
                     ? ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port)
                     : ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);

  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) fail("eventfd for");
  s.fd = fd;
  s.wake_fd = wake;
  s.started = true;
  if (s.opts.ring_bytes > 0) {
    s.ring = std::make_unique<DatagramRing>(s.opts.ring_bytes);
    s.delivery = std::thread([&s] { s.deliver(); });
  }
  s.thread = std::thread([&s] { s.receive(); });
  spdlog::info("udp listener '{}' listening on {} (port {})", s.name, s.opts.listen, s.bound_port);
}

void UdpListener::Impl::call_handler(std::string_view message, const std::string& peer) {
  call_guarded([&] { handler(message, peer); }, handler_errors, "udp", name);
}

namespace {
// The sender "ip:port" of the last datagram, formatted again only when the address
// changes (senders are usually few).
struct PeerCache {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;
  const std::string& of(const sockaddr* a, socklen_t n) {
    if (n != len || std::memcmp(a, &addr, n) != 0) {
      len = std::min<socklen_t>(n, sizeof addr);
      std::memcpy(&addr, a, len);
      text = format_peer(a);
    }
    return text;
  }
};
}  // namespace

void UdpListener::Impl::deliver() {
  set_thread_name("bf-proxy-udp");
  // Up to kChunk datagrams go to the handler between read_end calls (the batcher takes
  // them in one call) and between releases of their room in the ring.
  constexpr size_t kChunk = 256;
  PeerCache peer;
  uint64_t pos = 0;
  for (;;) {
    const uint64_t end = ring->wait_for_records(pos);
    if (end == pos) break;  // closed and empty
    size_t in_chunk = 0;
    while (pos != end) {
      const sockaddr* addr = nullptr;
      socklen_t addr_len = 0;
      std::string_view payload;
      if (!ring->read(pos, addr, addr_len, payload)) continue;  // wrap marker
      call_handler(payload, peer.of(addr, addr_len));
      if (++in_chunk == kChunk) {
        call_read_end(read_end, handler_errors, "udp", name);
        ring->release(pos);
        in_chunk = 0;
      }
    }
    if (in_chunk) call_read_end(read_end, handler_errors, "udp", name);
    ring->release(pos);
  }
}

namespace {
// Applies UdpListenerOptions::receive_priority to the calling thread; a refusal is
// logged and the thread keeps its scheduling.
void apply_receive_priority(UdpReceivePriority priority, const std::string& name) {
  if (priority == UdpReceivePriority::normal) return;
  if (priority == UdpReceivePriority::high) {
    // setpriority on a thread id sets that thread's nice value only (Linux).
    if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), -10) != 0)
      spdlog::warn("udp listener '{}': receive_priority high (nice -10) refused: {}; the receive thread runs at "
                   "normal priority (needs CAP_SYS_NICE or RLIMIT_NICE)",
                   name, errno_text(errno));
    return;
  }
  sched_param param{};
  param.sched_priority = 1;
  if (const int err = ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &param); err != 0)
    spdlog::warn("udp listener '{}': receive_priority realtime (SCHED_FIFO 1) refused: {}; the receive thread runs "
                 "at normal priority (needs CAP_SYS_NICE or RLIMIT_RTPRIO)",
                 name, errno_text(err));
}
}  // namespace

void UdpListener::Impl::receive() {
  set_thread_name(ring ? "bf-proxy-udp-rx" : "bf-proxy-udp");
  apply_receive_priority(opts.receive_priority, name);
  const size_t cap = opts.max_datagram;
  std::vector<char> storage(cap * kBatch);
  std::array<mmsghdr, kBatch> msgs{};
  std::array<iovec, kBatch> iovs{};
  std::array<sockaddr_storage, kBatch> addrs{};
  constexpr size_t kCtrl = CMSG_SPACE(sizeof(uint32_t));
  std::array<std::array<char, kCtrl>, kBatch> ctrl{};
  uint32_t last_drops = 0;
  PeerCache peer;
  // With a ring the delivery thread ends once the ring is closed and empty.
  struct CloseRing {
    DatagramRing* r;
    ~CloseRing() {
      if (r) r->close();
    }
  } close_ring{ring.get()};
  // Drops after the last datagram that was queued reach no cmsg: when the socket has
  // been quiet for a second, the count is read from /proc/net/udp instead.
  struct stat st {};
  const bool have_inode = ::fstat(fd, &st) == 0;
  auto count_drops = [&](uint32_t total) {
    // `total` is cumulative; count only the increase (unsigned arithmetic handles wrap).
    const uint32_t delta = total - last_drops;
    if (delta != 0 && delta < (1u << 31)) {
      kernel_drops.inc(delta);
      last_drops = total;
    }
  };

  // Reads everything that is queued, a batch at a time (realtime: at most
  // kRealtimeBatches full ones); false: stop() was called.
  constexpr unsigned kRealtimeBatches = 64;  // 2,048 datagrams, a few ms of a core
  const bool realtime = ring && opts.receive_priority == UdpReceivePriority::realtime;
  auto drain = [&](bool& found) -> bool {
    unsigned full_reads = 0;
    for (;;) {
      for (unsigned i = 0; i < kBatch; ++i) {
        iovs[i].iov_base = storage.data() + i * cap;
        iovs[i].iov_len = cap;
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        msgs[i].msg_hdr.msg_control = ctrl[i].data();
        msgs[i].msg_hdr.msg_controllen = kCtrl;
        msgs[i].msg_hdr.msg_flags = 0;
        msgs[i].msg_len = 0;
      }
      const int n = ::recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          spdlog::warn("udp listener '{}': receive failed: {}", name, errno_text(errno));
        }
        return true;
      }
      uint64_t batch_bytes = 0;
      uint64_t batch_truncated = 0;
      uint64_t batch_refused = 0;
      for (int i = 0; i < n; ++i) {
        auto& hdr = msgs[i].msg_hdr;
        for (cmsghdr* c = CMSG_FIRSTHDR(&hdr); c != nullptr; c = CMSG_NXTHDR(&hdr, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            uint32_t total = 0;
            std::memcpy(&total, CMSG_DATA(c), sizeof total);
            count_drops(total);  // the socket's drop count when this datagram was queued
          }
        }
        const size_t len = std::min<size_t>(msgs[i].msg_len, cap);
        batch_bytes += len;
        if (hdr.msg_flags & MSG_TRUNC) ++batch_truncated;
        const std::string_view payload(storage.data() + i * cap, len);
        if (ring) {
          if (!ring->push(&addrs[i], hdr.msg_namelen, payload)) ++batch_refused;
        } else {
          call_handler(payload, peer.of(reinterpret_cast<const sockaddr*>(&addrs[i]), hdr.msg_namelen));
        }
      }
      if (ring)
        ring->publish();
      else
        call_read_end(read_end, handler_errors, "udp", name);
      datagrams.inc(static_cast<uint64_t>(n));
      bytes.inc(batch_bytes);
      if (batch_truncated) truncated.inc(batch_truncated);
      if (batch_refused) ring_drops.inc(batch_refused);
      if (n > 0) found = true;
      if (n < static_cast<int>(kBatch)) return true;
      // A realtime receive thread would keep its core for as long as a flood keeps the
      // socket non-empty: it pauses (the caller's millisecond) after kRealtimeBatches
      // full reads, so other threads run and what the kernel cannot hold meanwhile is
      // dropped and counted there.
      if (realtime && ++full_reads == kRealtimeBatches) return true;
      // Let stop() win against a sender that never pauses.
      pollfd w{wake_fd, POLLIN, 0};
      if (::poll(&w, 1, 0) > 0) return false;
    }
  };

  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int pr = ::poll(fds, 2, 1000);
    if (pr < 0) {
      if (errno == EINTR) continue;
      spdlog::error("udp listener '{}': poll failed: {}", name, errno_text(errno));
      return;
    }
    if (pr == 0) {
      if (have_inode)
        if (auto total = proc_udp_drops(st.st_ino)) count_drops(*total);
      continue;
    }
    if (fds[1].revents != 0) return;  // stop()
    if ((fds[0].revents & (POLLERR | POLLNVAL)) != 0 && (fds[0].revents & POLLIN) == 0) {
      // Drain a pending socket error (e.g. ICMP) so poll does not spin.
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (fds[0].revents & POLLNVAL) return;
      continue;
    }
    bool found = false;
    if (!drain(found)) return;
    // With a ring, a drain that found datagrams is followed by a millisecond's pause
    // and another drain, until one finds none: under load the thread then wakes a
    // thousand times a second for batches of datagrams rather than once per datagram
    // (poll), and the socket buffer holds a millisecond easily.
    while (ring && found) {
      pollfd w{wake_fd, POLLIN, 0};  // the pause, cut short by stop()
      if (::poll(&w, 1, 1) > 0) return;
      found = false;
      if (!drain(found)) return;
    }
  }
}

void UdpListener::stop() {
  if (!impl_) return;
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.started || s.stopped) return;
  s.stopped = true;
  const uint64_t one = 1;
  ssize_t w = ::write(s.wake_fd, &one, sizeof one);
  (void)w;
  if (s.thread.joinable()) s.thread.join();
  // The receive thread closed the ring on its way out: the delivery thread hands on
  // what the ring holds and ends.
  if (s.delivery.joinable()) s.delivery.join();
  ::close(s.fd);
  ::close(s.wake_fd);
  s.fd = s.wake_fd = -1;
}

uint16_t UdpListener::port() const { return impl_->bound_port; }

// ---------------------------------------------------------------------------------
// TcpListener

namespace {
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
}

struct TcpListener::Impl {
  Impl(std::string n, TcpListenerOptions o, FrameHandler h, ReadEndHandler r)
      : name(std::move(n)),
        opts(std::move(o)),
        handler(std::move(h)),
        read_end(std::move(r)),
        messages(metrics().counter("bf_tcp_messages_total", "TCP messages received",
                                   {{"listener", name}})),
        truncated(metrics().counter("bf_tcp_messages_truncated_total",
                                    "TCP messages longer than max_message, cut to it",
                                    {{"listener", name}})),
        incomplete(metrics().counter("bf_tcp_frames_incomplete_total",
                                     "TCP connections that ended inside an octet-counted frame (delivered as "
                                     "far as it got, marked truncated)",
                                     {{"listener", name}})),
        framing_errors(metrics().counter("bf_tcp_framing_errors_total",
                                         "Octet-counted TCP frames with a zero, absurd or missing length prefix",
                                         {{"listener", name}})),
        rejected(metrics().counter("bf_tcp_connections_rejected_total", kRejectedHelp,
                                   {{"listener", name}, {"reason", "max_connections"}})),
        rejected_budget(metrics().counter("bf_tcp_connections_rejected_total", kRejectedHelp,
                                          {{"listener", name}, {"reason", "process_limit"}})),
        rejected_no_fds(metrics().counter("bf_tcp_connections_rejected_total", kRejectedHelp,
                                          {{"listener", name}, {"reason", "no_fds"}})),
        idle_closed(metrics().counter("bf_tcp_connections_idle_closed_total",
                                      "TCP connections closed after idle_timeout without data",
                                      {{"listener", name}})),
        accepted(metrics().counter("bf_tcp_connections_total", "TCP connections accepted",
                                   {{"listener", name}})),
        handler_errors(metrics().counter("bf_listener_handler_errors_total",
                                         "Exceptions thrown by a listener's message handler",
                                         {{"listener", name}})),
        active_gauge(metrics().gauge("bf_tcp_connections_active", "Open TCP connections",
                                     {{"listener", name}})) {}

  Counter& tls_failures(const char* reason) {
    return metrics().counter("bf_tls_handshake_failures_total", "TLS handshakes a server refused or that failed",
                             {{"listener", name}, {"reason", reason}});
  }
  std::optional<asio::ssl::context> tls;  // set: connections are TLS
  std::chrono::steady_clock::time_point last_tls_warning{};

  static constexpr const char* kRejectedHelp =
      "TCP connections closed at accept, by reason (max_connections, process_limit, no_fds)";
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> on_accept_error(const boost::system::error_code& ec);
  void accept_one(asio_tcp::socket socket);
  asio::awaitable<void> connection(std::shared_ptr<asio_tcp::socket> sock, std::string peer,
                                   uint64_t id, BudgetSlot budget);
  Counter& accept_errors(const char* error) {
    return metrics().counter("bf_tcp_accept_errors_total", "accept() failures on a TCP listener's socket",
                             {{"listener", name}, {"error", error}});
  }

  std::string name;
  TcpListenerOptions opts;
  FrameHandler handler;
  ReadEndHandler read_end;
  Counter& messages;
  Counter& truncated;
  Counter& incomplete;
  Counter& framing_errors;
  std::chrono::steady_clock::time_point last_framing_warning{};
  Counter& rejected;
  Counter& rejected_budget;
  Counter& rejected_no_fds;
  Counter& idle_closed;
  Counter& accepted;
  Counter& handler_errors;
  Gauge& active_gauge;

  std::mutex mu;
  bool started = false;
  bool stopped = false;
  uint16_t bound_port = 0;

  // Touched only on the io thread.
  std::map<uint64_t, std::shared_ptr<asio_tcp::socket>> conns;
  uint64_t next_id = 1;
  SpareFd spare;
  std::chrono::steady_clock::time_point last_fd_warning{};
  std::chrono::steady_clock::time_point last_cap_warning{};
  std::atomic<size_t> open_count{0};  // conns.size(), readable from any thread

  static constexpr size_t kReadBuffer = 256 * 1024;
  std::vector<char> read_buffer = std::vector<char>(kReadBuffer);  // io thread only

  asio::io_context ioc{1};
  asio_tcp::acceptor acceptor{ioc};
  std::thread thread;
};

TcpListener::TcpListener(std::string name, TcpListenerOptions options, MessageHandler handler,
                         ReadEndHandler read_end)
    : TcpListener(std::move(name), std::move(options),
                  FrameHandler([h = std::move(handler)](std::string_view m, const std::string& peer, bool) { h(m, peer); }),
                  std::move(read_end)) {}

TcpListener::TcpListener(std::string name, TcpListenerOptions options, FrameHandler handler,
                         ReadEndHandler read_end)
    : impl_(std::make_unique<Impl>(std::move(name), std::move(options), std::move(handler), std::move(read_end))) {
  const auto& o = impl_->opts;
  if (o.framing != "auto" && o.framing != "newline") {
    throw std::invalid_argument("tcp listener '" + impl_->name + "': framing must be 'auto' or " +
                                "'newline', got '" + o.framing + "'");
  }
  if (o.max_message == 0) {
    throw std::invalid_argument("tcp listener '" + impl_->name + "': max_message must be > 0");
  }
  if (o.max_connections < 1) {
    throw std::invalid_argument("tcp listener '" + impl_->name + "': max_connections must be >= 1");
  }
  if (o.idle_timeout.count() <= 0) {
    throw std::invalid_argument("tcp listener '" + impl_->name + "': idle_timeout must be > 0");
  }
  if (o.tls.enabled()) impl_->tls.emplace(make_tls_server_context(o.tls, "tcp listener '" + impl_->name + "'"));
}

TcpListener::~TcpListener() { stop(); }

asio::awaitable<void> TcpListener::Impl::connection(std::shared_ptr<asio_tcp::socket> sock,
                                                    std::string peer, uint64_t id, BudgetSlot budget) {
  // However this coroutine ends (even by an exception), the slot is given back.
  struct Release {
    Impl* impl;
    uint64_t id;
    std::shared_ptr<asio_tcp::socket> sock;
    ~Release() {
      boost::system::error_code ignored;
      sock->close(ignored);
      impl->conns.erase(id);
      impl->open_count.store(impl->conns.size());
      impl->active_gauge.set(static_cast<int64_t>(impl->conns.size()));
    }
  } release{this, id, sock};
  BudgetSlot slot = std::move(budget);
  // Idle timeout: re-armed before every read; on expiry it closes the socket, which
  // ends the pending read.
  asio::steady_timer idle(ioc);
  struct IdleState {
    uint64_t generation = 0;  // which arming a completion belongs to
    bool timed_out = false;
  };
  auto idle_state = std::make_shared<IdleState>();
  TcpFramer framer(opts.max_message, opts.framing == "auto", opts.close_on_framing_error);
  bool at_end = false;
  const TcpFramer::Sink sink = [&](std::string_view msg, bool was_truncated) {
    messages.inc();
    if (was_truncated && !at_end) truncated.inc();
    call_guarded([&] { handler(msg, peer, was_truncated); }, handler_errors, "tcp", name);
  };
  // Readiness, then a non-blocking read into the io thread's one large buffer: every
  // connection of this listener runs on the io thread, and each read is framed and
  // handed on before the next wait, so they can share it (and no connection holds a
  // read buffer of its own while it waits).
  boost::system::error_code nb_ec;
  sock->non_blocking(true, nb_ec);
  auto arm_idle = [&] {
    idle.expires_after(opts.idle_timeout);
    const uint64_t generation = ++idle_state->generation;
    idle.async_wait([sock, idle_state, generation](const boost::system::error_code& tec) {
      // Cancelled, or expired just as data arrived and the timer was re-armed.
      if (tec || generation != idle_state->generation) return;
      // Bytes wait unread: the connection is not idle, the io thread was held up (a
      // blocking handler = backpressure). Closing now would reset the sender.
      boost::system::error_code aec;
      if (sock->available(aec) > 0 && !aec) return;
      idle_state->timed_out = true;
      boost::system::error_code ignored;
      sock->close(ignored);
    });
  };
  // TLS: the handshake (bounded by idle_timeout), then reads through the TLS stream
  // into a buffer of the connection's own (a TLS read may wait inside OpenSSL, so the
  // io thread's shared buffer cannot be lent to it).
  std::optional<asio::ssl::stream<asio_tcp::socket&>> tls_stream;
  std::vector<char> tls_buffer;
  if (tls) {
    tls_stream.emplace(*sock, *tls);
    arm_idle();
    auto [hec] = co_await tls_stream->async_handshake(asio::ssl::stream_base::server, kUseTuple);
    ++idle_state->generation;
    idle.cancel();
    if (hec) {
      const char* reason = idle_state->timed_out ? "timeout" : tls_handshake_failure(hec);
      tls_failures(reason).inc();
      const auto now = std::chrono::steady_clock::now();
      if (now - last_tls_warning > std::chrono::seconds(10)) {
        last_tls_warning = now;
        spdlog::warn("tcp listener '{}': TLS handshake with {} failed ({}): {}", name, peer, reason, hec.message());
      }
      co_return;
    }
    tls_buffer.resize(16 * 1024 + 512);  // one TLS record
  }
  for (;;) {
    arm_idle();
    boost::system::error_code ec;
    size_t n = 0;
    const char* data = read_buffer.data();
    if (tls_stream) {
      auto [rec, rn] = co_await tls_stream->async_read_some(asio::buffer(tls_buffer), kUseTuple);
      ec = rec;
      n = rn;
      data = tls_buffer.data();
      if (ec == asio::ssl::error::stream_truncated) ec = asio::error::eof;  // closed without close_notify
    } else {
      auto [wec] = co_await sock->async_wait(asio_tcp::socket::wait_read, kUseTuple);
      ec = wec;
      if (!ec) {
        n = sock->read_some(asio::buffer(read_buffer), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
      }
    }
    if (n > 0) {
      const uint64_t errors_before = framer.framing_errors();
      framer.feed(std::string_view(data, n), sink);
      call_read_end(read_end, handler_errors, "tcp", name);
      if (const uint64_t e = framer.framing_errors() - errors_before) {
        framing_errors.inc(e);
        const auto now = std::chrono::steady_clock::now();
        if (now - last_framing_warning > std::chrono::seconds(10)) {
          last_framing_warning = now;
          spdlog::warn("tcp listener '{}': framing error from {} (octet-counting length prefix zero, absurd or "
                       "missing); {}",
                       name, peer, framer.failed() ? "closing the connection" : "skipping to the next line");
        }
      }
      if (framer.failed()) break;
    }
    if (ec) {
      if (idle_state->timed_out) {
        idle_closed.inc();
        spdlog::debug("tcp listener '{}': connection from {} idle for {} ms, closed", name, peer,
                      opts.idle_timeout.count());
      } else if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
                 ec != asio::error::connection_reset && ec != asio::error::bad_descriptor) {
        spdlog::debug("tcp listener '{}': connection from {} ended: {}", name, peer, ec.message());
      }
      break;
    }
  }
  ++idle_state->generation;
  idle.cancel();
  at_end = true;
  if (framer.finish(sink)) incomplete.inc();
  call_read_end(read_end, handler_errors, "tcp", name);
}

asio::awaitable<void> TcpListener::Impl::on_accept_error(const boost::system::error_code& ec) {
  const std::error_code sec = ec;
  if (!is_resource_exhaustion(sec)) {
    accept_errors("other").inc();
    spdlog::debug("tcp listener '{}': accept failed: {}", name, ec.message());
    co_return;
  }
  accept_errors(resource_error_label(sec)).inc();
  // Close what waits in the backlog (raw TCP has no way to say "busy") so the
  // listening socket stops being readable, then back off instead of spinning.
  const size_t shed = spare.refuse_pending(acceptor.native_handle(), {}, 64);
  if (shed) rejected_no_fds.inc(shed);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_fd_warning > std::chrono::seconds(10)) {
    last_fd_warning = now;
    spdlog::warn("tcp listener '{}': accept failed: {} ({} open connections, {} closed now); backing off",
                 name, ec.message(), conns.size(), shed);
  }
  asio::steady_timer t(ioc, std::chrono::milliseconds(50));
  co_await t.async_wait(kUseTuple);
}

asio::awaitable<void> TcpListener::Impl::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
    if (!acceptor.is_open() || ec == asio::error::operation_aborted) break;
    if (ec) {
      co_await on_accept_error(ec);
      continue;
    }
    // Nothing that goes wrong with one connection may end the loop.
    try {
      accept_one(std::move(socket));
    } catch (const std::exception& e) {
      spdlog::error("tcp listener '{}': setting up a connection failed: {}", name, e.what());
    }
  }
}

void TcpListener::Impl::accept_one(asio_tcp::socket socket) {
    boost::system::error_code pec;
    const auto remote = socket.remote_endpoint(pec);
    std::string peer = pec ? std::string("unknown") : format_peer(remote);
    if (conns.size() >= static_cast<size_t>(opts.max_connections)) {
      rejected.inc();
      const auto now = std::chrono::steady_clock::now();
      if (now - last_cap_warning > std::chrono::seconds(10)) {
        last_cap_warning = now;
        spdlog::warn("tcp listener '{}': max_connections ({}) reached, closing connection from {}",
                     name, opts.max_connections, peer);
      }
      boost::system::error_code ignored;
      socket.close(ignored);
      return;
    }
    BudgetSlot budget = BudgetSlot::acquire();
    if (!budget) {
      rejected_budget.inc();
      spdlog::debug("tcp listener '{}': process connection budget exhausted, closing connection from {}", name,
                    peer);
      boost::system::error_code ignored;
      socket.close(ignored);
      return;
    }
    accepted.inc();
    auto sock = std::make_shared<asio_tcp::socket>(std::move(socket));
    const uint64_t id = next_id++;
    conns.emplace(id, sock);
    open_count.store(conns.size());
    active_gauge.set(static_cast<int64_t>(conns.size()));
    asio::co_spawn(ioc, connection(sock, std::move(peer), id, std::move(budget)), [n = name](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("tcp listener '{}': connection failed: {}", n, ex.what());
      } catch (...) {
        spdlog::error("tcp listener '{}': connection failed (non-standard exception)", n);
      }
    });
}

void TcpListener::start() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.mu);
  const auto [host, port] = split_host_port(s.opts.listen);
  net_detail::open_acceptor(s.acceptor, s.opts.listen, "tcp listener '" + s.name + "'");
  ConnectionBudget::process().declare_cap("tcp listener '" + s.name + "'",
                                          static_cast<uint64_t>(s.opts.max_connections));
  boost::system::error_code ec;
  s.bound_port = s.acceptor.local_endpoint(ec).port();

  asio::co_spawn(s.ioc, s.accept_loop(), [n = s.name](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("tcp listener '{}': accept loop failed: {}", n, ex.what());
    } catch (...) {
    }
  });
  s.started = true;
  s.thread = std::thread([&s] {
    set_thread_name("bf-proxy-tcp");
    for (;;) {
      try {
        s.ioc.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("tcp listener '{}': io thread error: {}", s.name, e.what());
      } catch (...) {
        spdlog::error("tcp listener '{}': io thread error (non-standard exception)", s.name);
      }
    }
  });
  spdlog::info("tcp listener '{}' listening on {} (port {}){}", s.name, s.opts.listen, s.bound_port,
               s.tls ? " (TLS)" : "");
}

void TcpListener::stop() {
  if (!impl_) return;
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.started || s.stopped) return;
  s.stopped = true;
  asio::post(s.ioc, [&s] {
    boost::system::error_code ec;
    s.acceptor.close(ec);
    for (auto& [id, sock] : s.conns) sock->close(ec);
  });
  // Every pending operation now completes with an error, the coroutines finish, and
  // run() returns because no work is left.
  if (s.thread.joinable()) s.thread.join();
  ConnectionBudget::process().withdraw_cap(static_cast<uint64_t>(s.opts.max_connections));
}

uint16_t TcpListener::port() const { return impl_->bound_port; }
size_t TcpListener::open_connections() const { return impl_->open_count.load(); }

}  // namespace bf
