#pragma once
// Metrics registry with Prometheus text exposition. Counters and gauges are
// atomics: hot paths keep a reference obtained once and increment without locks.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace bf {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }
 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void add(int64_t n) { v_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }
 private:
  std::atomic<int64_t> v_{0};
};

class MetricsRegistry {
 public:
  // Returns the same object for the same name+labels; references stay valid for the
  // registry's lifetime.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  std::string prometheus_text() const;
  // Test helper: the value of a counter/gauge series, or 0 if it does not exist.
  int64_t value(const std::string& name, const Labels& labels = {}) const;

 private:
  struct Family {
    std::string help;
    bool is_counter = true;
    std::map<std::string, std::unique_ptr<Counter>> counters;  // key: rendered labels
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// The process-wide registry every component reports into.
MetricsRegistry& metrics();

}  // namespace bf
