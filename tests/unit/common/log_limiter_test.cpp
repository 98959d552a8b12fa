// LogLimiter (common/log.h): at most one line per interval, the rest counted and
// reported with the next line; driven by an injected clock.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "common/log.h"

namespace bf {
namespace {

using namespace std::chrono_literals;

TEST(LogLimiter, OneLinePerIntervalWithTheCountOfSuppressedOnes) {
  int64_t now = 1000;
  LogLimiter limiter(10s, [&] { return now; });
  uint64_t suppressed = 99;
  ASSERT_TRUE(limiter.allow(suppressed));  // the first one is always logged
  EXPECT_EQ(suppressed, 0u);
  for (int i = 0; i < 5; ++i) {
    now += 1000;
    EXPECT_FALSE(limiter.allow(suppressed)) << i;  // 1 s .. 5 s later
  }
  now = 1000 + 9999;
  EXPECT_FALSE(limiter.allow(suppressed));  // just inside the interval: 6 suppressed now
  now = 1000 + 10000;
  ASSERT_TRUE(limiter.allow(suppressed));
  EXPECT_EQ(suppressed, 6u);
  // A quiet spell longer than the interval: the next one is logged with nothing suppressed.
  now += 60000;
  ASSERT_TRUE(limiter.allow(suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_FALSE(limiter.allow(suppressed));
  now += 10000;
  ASSERT_TRUE(limiter.allow(suppressed));
  EXPECT_EQ(suppressed, 1u);
}

TEST(LogLimiter, SharedByThreadsEveryOccurrenceIsLoggedOrCounted) {
  std::atomic<int64_t> now{0};
  LogLimiter limiter(5ms, [&] { return now.load(); });
  std::atomic<uint64_t> logged{0}, reported{0};
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (t == 0 && i % 1000 == 0) now += 5;  // time moves on now and then
        uint64_t suppressed = 0;
        if (limiter.allow(suppressed)) {
          ++logged;
          reported += suppressed;
        }
      }
    });
  for (auto& th : threads) th.join();
  now += 5;
  uint64_t suppressed = 0;
  ASSERT_TRUE(limiter.allow(suppressed));  // the final line reports the rest
  ++logged;
  reported += suppressed;
  EXPECT_EQ(logged + reported, uint64_t{kThreads * kEach + 1});
  EXPECT_LE(logged.load(), 22u);  // at most one per tick: 20 ticks by thread 0, plus the first and the last
}

}  // namespace
}  // namespace bf
