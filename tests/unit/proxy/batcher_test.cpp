#include "proxy/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "common/ulid.h"
#include "test_util.h"

namespace bf {
namespace {

using namespace std::chrono_literals;

struct Capture {
  std::mutex mu;
  std::vector<ProxyBatch> batches;
  Batcher::Output output() {
    return [this](ProxyBatch&& b) {
      std::lock_guard lock(mu);
      batches.push_back(std::move(b));
    };
  }
  size_t size() {
    std::lock_guard lock(mu);
    return batches.size();
  }
  std::vector<ProxyBatch> get() {
    std::lock_guard lock(mu);
    return batches;
  }
};

Event ev(int i) {
  Event e;
  e["n"] = i;
  e["message"] = "event number " + std::to_string(1000 + i);  // same length for every i < 9000
  return e;
}

std::vector<Event> one(int i) {
  std::vector<Event> v;
  v.push_back(ev(i));
  return v;
}

std::vector<int64_t> numbers(const ProxyBatch& b) {
  std::vector<int64_t> out;
  for (auto& e : decode_batch(b.data)) out.push_back(e.at("n").as_int64());
  return out;
}

TEST(Batcher, FlushByCount) {
  Capture cap;
  Batcher b({3, 1ull << 30, std::chrono::hours(1)}, cap.output());
  for (int i = 0; i < 7; ++i) b.add("acme", "logs", one(i));
  b.wait_idle();  // cut batches are compressed and delivered on the batch thread
  auto got = cap.get();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(numbers(got[0]), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(numbers(got[1]), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(got[0].events, 3u);
  EXPECT_EQ(got[0].tenant, "acme");
  EXPECT_EQ(got[0].dataset, "logs");
  EXPECT_TRUE(is_valid_ulid(got[0].id));
  EXPECT_TRUE(is_valid_ulid(got[1].id));
  EXPECT_NE(got[0].id, got[1].id);
  b.flush_all();
  got = cap.get();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(numbers(got[2]), (std::vector<int64_t>{6}));
  // A vector of events larger than the limit is cut too.
  std::vector<Event> many;
  for (int i = 10; i < 17; ++i) many.push_back(ev(i));
  b.add("acme", "logs", std::move(many));
  b.wait_idle();
  EXPECT_EQ(cap.size(), 5u);
}

TEST(Batcher, FlushByBytes) {
  Capture cap;
  const size_t line = to_ndjson({ev(0)}).size();
  const uint64_t max_bytes = line * 5 / 2;  // room for two events, not three
  Batcher b({1000, max_bytes, std::chrono::hours(1)}, cap.output());
  for (int i = 0; i < 5; ++i) b.add("acme", "logs", one(i));
  b.wait_idle();
  auto got = cap.get();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(numbers(got[0]), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(numbers(got[1]), (std::vector<int64_t>{2, 3}));
  for (auto& g : got) {
    EXPECT_LE(g.ndjson_bytes, max_bytes);
    EXPECT_EQ(g.ndjson_bytes, 2 * line);
  }
  // An event bigger than max_bytes on its own still goes out, alone.
  Event big;
  big["n"] = 99;
  big["pad"] = std::string(max_bytes * 2, 'x');
  std::vector<Event> v;
  v.push_back(big);
  b.add("acme", "logs", std::move(v));
  b.wait_idle();
  got = cap.get();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(numbers(got[2]), (std::vector<int64_t>{4}));
  EXPECT_EQ(numbers(got[3]), (std::vector<int64_t>{99}));
}

TEST(Batcher, FlushByAge) {
  Capture cap;
  Batcher b({1000, 1ull << 30, 150ms}, cap.output());
  b.start();
  const auto t0 = std::chrono::steady_clock::now();
  b.add("acme", "logs", one(1));
  b.add("acme", "logs", one(2));
  EXPECT_EQ(cap.size(), 0u);
  ASSERT_TRUE(test::wait_until([&] { return cap.size() == 1; }, 3s));
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(elapsed, 140ms);
  EXPECT_EQ(numbers(cap.get()[0]), (std::vector<int64_t>{1, 2}));
  // Nothing more without new events.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(cap.size(), 1u);
  b.stop();
}

TEST(Batcher, SeparateBuffersPerTenantAndDataset) {
  Capture cap;
  Batcher b({1000, 1ull << 30, std::chrono::hours(1)}, cap.output());
  b.add("t1", "a", one(1));
  b.add("t1", "b", one(2));
  b.add("t2", "a", one(3));
  b.add("t1", "a", one(4));
  b.flush_all();
  auto got = cap.get();
  ASSERT_EQ(got.size(), 3u);
  std::map<std::string, std::vector<int64_t>> by;
  for (auto& g : got) by[g.tenant + "/" + g.dataset] = numbers(g);
  EXPECT_EQ(by["t1/a"], (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(by["t1/b"], (std::vector<int64_t>{2}));
  EXPECT_EQ(by["t2/a"], (std::vector<int64_t>{3}));
}

TEST(Batcher, BackpressureEventsAreBatchedApartFromBestEffort) {
  Capture cap;
  Batcher b({2, 1ull << 30, std::chrono::hours(1)}, cap.output());
  b.add("acme", "logs", one(1), Delivery::best_effort);
  b.add("acme", "logs", one(2), Delivery::backpressure);
  EXPECT_EQ(cap.size(), 0u);  // two buffers of one event each, not one full buffer
  b.add("acme", "logs", one(3), Delivery::backpressure);
  // A cut backpressure batch is compressed and output on the batch thread.
  ASSERT_TRUE(test::wait_until([&] { return cap.size() == 1; }, 5s));
  auto got = cap.get();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].delivery, Delivery::backpressure);
  EXPECT_EQ(numbers(got[0]), (std::vector<int64_t>{2, 3}));
  b.add("acme", "logs", one(4));  // default: best effort
  b.wait_idle();
  got = cap.get();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].delivery, Delivery::best_effort);
  EXPECT_EQ(numbers(got[1]), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(got[1].tenant, "acme");
  EXPECT_EQ(got[1].dataset, "logs");
}

// A UDP source must get back to its socket: behind a busy batch thread its batches
// queue (up to kQueuedBestEffortBatches), and only past that are delivered inline.
TEST(Batcher, BestEffortQueuesBehindABusyBatchThreadThenDeliversInline) {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  std::atomic<bool> batch_thread_busy{false};
  std::vector<ProxyBatch> inline_batches, queued_batches;
  const auto caller = std::this_thread::get_id();
  Batcher b({1, 1ull << 30, std::chrono::hours(1)}, [&](ProxyBatch&& batch) {
    std::unique_lock lock(mu);
    if (std::this_thread::get_id() == caller) {
      inline_batches.push_back(std::move(batch));
      return;
    }
    batch_thread_busy = true;
    cv.wait(lock, [&] { return released; });
    queued_batches.push_back(std::move(batch));
  });
  b.add("acme", "udp", one(0));
  ASSERT_TRUE(test::wait_until([&] { return batch_thread_busy.load(); }, 5s));
  for (size_t i = 1; i <= Batcher::kQueuedBestEffortBatches; ++i) b.add("acme", "udp", one(int(i)));
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(inline_batches.empty());  // all queued: the caller did not compress or deliver
  }
  b.add("acme", "udp", one(100));  // the queue is full: delivered on the caller's thread
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(inline_batches.size(), 1u);
    EXPECT_EQ(numbers(inline_batches[0]), (std::vector<int64_t>{100}));
    released = true;
  }
  cv.notify_all();
  b.wait_idle();
  std::lock_guard lock(mu);
  ASSERT_EQ(queued_batches.size(), Batcher::kQueuedBestEffortBatches + 1);
  for (size_t i = 0; i < queued_batches.size(); ++i)
    EXPECT_EQ(numbers(queued_batches[i]), (std::vector<int64_t>{int64_t(i)}));  // in order
}

TEST(Batcher, StopFlushesAndConcurrentAddsLoseNothing) {
  Capture cap;
  Batcher b({64, 1ull << 30, 20ms}, cap.output());
  b.start();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) b.add("acme", t % 2 ? "odd" : "even", one(t * 1000 + i));
    });
  for (auto& t : threads) t.join();
  b.stop();
  std::set<int64_t> seen;
  size_t total = 0;
  for (auto& g : cap.get()) {
    EXPECT_LE(g.events, 64u);
    for (auto n : numbers(g)) {
      seen.insert(n);
      ++total;
    }
  }
  EXPECT_EQ(total, 4000u);
  EXPECT_EQ(seen.size(), 4000u);
}

}  // namespace
}  // namespace bf
