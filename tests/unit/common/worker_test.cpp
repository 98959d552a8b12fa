// PeriodicWorker: a step that throws (anything) is logged, counted and retried; the
// thread and the process go on.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <future>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "common/metrics.h"
#include "common/worker.h"

using namespace bf;

TEST(PeriodicWorker, StepThatThrowsIsCountedAndRetried) {
  std::atomic<int> calls{0};
  PeriodicWorker w("t_worker_throws", std::chrono::milliseconds(5), [&] {
    const int n = ++calls;
    if (n == 1) throw std::runtime_error("store down");
    if (n == 2) throw 42;  // not a std::exception
  });
  w.start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (calls.load() < 4 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  w.stop();
  EXPECT_GE(calls.load(), 4);
  EXPECT_EQ(metrics().value("bf_worker_errors_total", {{"worker", "t_worker_throws"}}), 2);
}

TEST(PeriodicWorker, WakeRunsTheStepWithoutWaitingForTheInterval) {
  std::atomic<int> calls{0};
  PeriodicWorker w("t_worker_wake", std::chrono::hours(1), [&] { ++calls; });
  w.start();
  auto wait_for = [&](int n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (calls.load() < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return calls.load() >= n;
  };
  ASSERT_TRUE(wait_for(1));  // the first run is at start
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(calls.load(), 1) << "ran again before its (one hour) interval without a wake";
  w.wake();
  EXPECT_TRUE(wait_for(2)) << "wake() did not run the step";
  w.wake();
  EXPECT_TRUE(wait_for(3));
  w.stop();
}

TEST(PeriodicWorker, ItsThreadIsNamedForTopAndProfilers) {
  std::promise<std::string> seen;
  std::atomic<bool> once{false};
  PeriodicWorker w("packer", std::chrono::hours(1), [&] {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    if (!once.exchange(true)) seen.set_value(name);
  });
  w.start();
  auto name = seen.get_future();
  ASSERT_EQ(name.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(name.get(), "bf-packer");
  w.stop();
}
