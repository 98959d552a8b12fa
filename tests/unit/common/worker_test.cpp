// PeriodicWorker: a step that throws (anything) is logged, counted and retried; the
// thread and the process go on.
#include <gtest/gtest.h>

#include <atomic>
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
