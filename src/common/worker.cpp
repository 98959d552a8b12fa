#include "common/worker.h"

#include <spdlog/spdlog.h>

namespace bf {

PeriodicWorker::PeriodicWorker(std::string name, std::chrono::milliseconds interval, std::function<void()> step)
    : name_(std::move(name)), interval_(interval), step_(std::move(step)) {}

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

void PeriodicWorker::loop() {
  while (true) {
    try {
      step_();
    } catch (const std::exception& e) {
      // A failing step (store down, ...) is retried at the next interval.
      spdlog::error("{}: {}", name_, e.what());
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, interval_, [this] { return stopping_; });
    if (stopping_) return;
  }
}

}  // namespace bf
