// Kernel drops of a UDP source's socket reach bf_udp_kernel_drops_total, also those
// no later datagram reports (read from /proc/net/udp when the socket is quiet).
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "fixtures/net_helpers.h"
#include "unit/proxy/capturing_sink.h"
#include "unit/proxy/test_util.h"

namespace bf {
namespace {

// Blocks the source's receive thread in its first hand-over until released, so the
// socket buffer fills and the kernel drops what does not fit.
struct BlockingSink : test::CapturingSink {
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  bool entered = false;  // the receive thread is held in emit_ndjson
  void emit_ndjson(const std::string& t, const std::string& d, std::string_view l, size_t n, Delivery del) override {
    {
      std::unique_lock lock(gate_mu);
      entered = true;
      gate_cv.notify_all();
      gate_cv.wait(lock, [&] { return open; });
    }
    test::CapturingSink::emit_ndjson(t, d, l, n, del);
  }
  bool wait_entered() {
    std::unique_lock lock(gate_mu);
    return gate_cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered; });
  }
  void release() {
    std::lock_guard lock(gate_mu);
    open = true;
    gate_cv.notify_all();
  }
};

TEST(UdpKernelDrops, DropsWithoutLaterDatagramsAreCounted) {
  BlockingSink sink;
  const uint16_t port = test::free_port(SOCK_DGRAM);
  // receive_ring 0: the sink blocks the thread that reads the socket.
  auto source = test::make_source("    - type: udp\n      name: drops\n      format: text\n      receive_buffer: 4KiB\n"
                                  "      receive_ring: 0\n      listen: 127.0.0.1:" + std::to_string(port) + "\n",
                                  sink);
  source->start();
  const Labels labels{{"listener", "drops"}};
  const int64_t before = test::metric("bf_udp_kernel_drops_total", labels);
  // The first datagram blocks the receive thread in the sink; the burst after it
  // overflows the small socket buffer.
  test::send_udp(port, "first");
  ASSERT_TRUE(sink.wait_entered());
  constexpr int kBurst = 400;
  for (int i = 0; i < kBurst; ++i) test::send_udp(port, "burst " + std::to_string(i));
  sink.release();
  // Everything that was queued is read; the drops came after it, so no datagram's
  // SO_RXQ_OVFL reports them, and only the quiet-socket read of /proc/net/udp can.
  size_t received = 0;
  ASSERT_TRUE(test::wait_until(
      [&] {
        std::lock_guard lock(sink.mu);
        received = sink.events;
        return received > 1 &&
               test::metric("bf_udp_kernel_drops_total", labels) - before + static_cast<int64_t>(received) ==
                   kBurst + 1;
      },
      std::chrono::milliseconds(10000)))
      << "received " << received << ", drops " << test::metric("bf_udp_kernel_drops_total", labels) - before;
  EXPECT_GT(test::metric("bf_udp_kernel_drops_total", labels) - before, 0);
  source->stop();
}

// The same stall with the receive ring (the default): the receive thread goes on
// reading into the ring, the kernel drops nothing, and once the sink takes events
// again every datagram of the burst is an event, in order; a stop right after
// delivers what the ring still holds.
TEST(UdpKernelDrops, TheRingHoldsTheBurstWhileTheSinkIsBlocked) {
  BlockingSink sink;
  const uint16_t port = test::free_port(SOCK_DGRAM);
  auto source = test::make_source("    - type: syslog_udp\n      name: ringed\n"
                                  "      listen: 127.0.0.1:" + std::to_string(port) + "\n",
                                  sink);
  // Whatever an assertion cuts short, the sink is released so that stop() can end.
  struct Release {
    BlockingSink& s;
    ~Release() { s.release(); }
  } release_at_exit{sink};
  source->start();
  const Labels labels{{"listener", "ringed"}};
  // The counters are process-wide (--gtest_repeat): compare with their values now.
  const int64_t read_before = test::metric("bf_udp_datagrams_total", labels);
  const int64_t kernel_before = test::metric("bf_udp_kernel_drops_total", labels);
  const int64_t ring_before = test::metric("bf_udp_ring_drops_total", labels);
  test::send_udp(port, "<13>first");
  ASSERT_TRUE(sink.wait_entered());
  constexpr int kBurst = 400;
  for (int i = 0; i < kBurst; ++i) test::send_udp(port, "<13>burst " + std::to_string(i));
  // All read from the socket while the sink is blocked.
  ASSERT_TRUE(test::wait_until(
      [&] { return test::metric("bf_udp_datagrams_total", labels) - read_before == kBurst + 1; }))
      << test::metric("bf_udp_datagrams_total", labels) - read_before << " read";
  sink.release();
  source->stop();
  EXPECT_EQ(test::metric("bf_udp_kernel_drops_total", labels) - kernel_before, 0);
  EXPECT_EQ(test::metric("bf_udp_ring_drops_total", labels) - ring_before, 0);
  std::lock_guard lock(sink.mu);
  EXPECT_EQ(sink.events, static_cast<size_t>(kBurst + 1));
  size_t at = 0;
  for (int i = 0; i < kBurst; ++i) {
    const size_t next = sink.lines.find("burst " + std::to_string(i) + "\"", at);
    ASSERT_NE(next, std::string::npos) << "burst " << i << " missing or out of order";
    at = next;
  }
}

}  // namespace
}  // namespace bf
