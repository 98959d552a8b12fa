#pragma once
// Metrics registry with Prometheus text exposition. Counters and gauges are
// atomics: hot paths keep a reference obtained once and increment without locks.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
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
  // The sum over every series of `name` whose labels include all of `subset`
  // (any order); nullopt when no such series exists.
  std::optional<int64_t> sum(const std::string& name, const Labels& subset) const;

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

// The component contract (docs/metrics.md, in the manner of Vector's component
// specification): every source, stage and sink reports the same core series under
// the same names, labelled component_kind (source | stage | sink), component_type
// (syslog_tcp, receiver, piper, …) and component_id, plus its own extra labels.
// Constructing it registers the four traffic counters at 0, so they are present
// before the first event; tests/fixtures/component_contract.h checks a component
// against the contract.
enum class Discard { intentional, unintentional };  // filter/sample vs malformed/overflow

class ComponentMetrics {
 public:
  ComponentMetrics(std::string_view kind, std::string_view type, std::string_view id, Labels extra = {});
  Counter& received_events;  // bf_component_received_events_total
  Counter& received_bytes;   // bf_component_received_bytes_total
  Counter& sent_events;      // bf_component_sent_events_total
  Counter& sent_bytes;       // bf_component_sent_bytes_total
  // bf_component_errors_total{stage, error_type}: a failure the component reports
  // (a retried write, a rejected request, …); stage names where in the component.
  Counter& error(std::string_view stage, std::string_view error_type) const;
  // bf_component_discarded_events_total{intentional, reason}: events given up.
  Counter& discarded(Discard kind, std::string_view reason) const;
  const Labels& labels() const { return labels_; }

 private:
  ComponentMetrics(Labels labels);
  Labels labels_;
};

}  // namespace bf
