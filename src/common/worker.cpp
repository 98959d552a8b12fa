#include "common/worker.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "common/metrics.h"

namespace bf {

void set_thread_name(std::string_view name) {
  char buf[16] = {};
  const size_t n = name.size() < sizeof buf - 1 ? name.size() : sizeof buf - 1;
  name.copy(buf, n);
  pthread_setname_np(pthread_self(), buf);
}

PeriodicWorker::PeriodicWorker(std::string name, std::chrono::milliseconds interval, std::function<void()> step)
    : name_(std::move(name)),
      interval_(interval),
      step_(std::move(step)),
      errors_(metrics().counter("bf_worker_errors_total", "Exceptions thrown by a background worker's step (retried)",
                                {{"worker", name_}})) {}

PeriodicWorker::~PeriodicWorker() { stop(); }

void PeriodicWorker::start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void PeriodicWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeriodicWorker::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void PeriodicWorker::loop() {
  set_thread_name("bf-" + name_);  // "bf-piper", "bf-packer"
  while (true) {
    {
      std::lock_guard lock(mu_);
      woken_ = false;  // a wake() from now on asks for another run
    }
    // A failing step (store down, out of descriptors, ...) is logged, counted and
    // retried at the next interval; it never ends the thread or the process.
    try {
      step_();
    } catch (const std::exception& e) {
      errors_.inc();
      spdlog::error("{}: {}", name_, e.what());
    } catch (...) {
      errors_.inc();
      spdlog::error("{}: step threw a non-standard exception", name_);
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, interval_, [this] { return stopping_ || woken_; });
    if (stopping_) return;
  }
}

}  // namespace bf
