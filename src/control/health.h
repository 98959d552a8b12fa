#pragma once
// Component health as control sees it (docs/control.md, "Health"): data-plane
// components report every few seconds; one silent for longer than the timeout is
// shown unhealthy. Each component keeps a bounded history of its reports (for the
// UI's charts). Held in memory: a restarted control learns the fleet again from
// the next reports.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace bf::control {

struct HealthReport {
  std::string service;   // receiver, piper, ...
  std::string instance;  // chosen by the component (host name, pod name): an id
  std::string status;    // ok | degraded | failing (the component's own view)
  std::string version;
  double events_per_second = 0;
  std::optional<double> lag_seconds;     // how far behind its input, where it knows
  std::optional<int64_t> spool_depth;    // batches waiting in its spool, where it has one
  int64_t errors = 0;                    // errors since it started
  std::optional<int64_t> events_total;   // events since it started, where it counts them
  int64_t time_us = 0;                   // when control received it
  uint64_t seq = 0;                      // the board's number for it: 1, 2, ... per component
};

struct ComponentHealth {
  std::string id;      // <service>-<instance>
  HealthReport last;
  int64_t first_seen_us = 0;
  std::string status;  // the reported status, or "unhealthy" when silent past the timeout
};

class HealthBoard {
 public:
  HealthBoard(std::chrono::milliseconds silent_after, size_t history_per_component, size_t max_components);
  // false: the board is full (max_components) and this is a new component.
  bool report(HealthReport r);
  std::vector<ComponentHealth> list(int64_t now_us) const;
  std::optional<ComponentHealth> get(const std::string& id, int64_t now_us) const;
  // Oldest first: the reports after number `after_seq`, at most `limit`.
  std::vector<HealthReport> history(const std::string& id, uint64_t after_seq = 0, size_t limit = SIZE_MAX) const;
  static std::string component_id(const std::string& service, const std::string& instance) {
    return service + "-" + instance;
  }

 private:
  struct Entry {
    int64_t first_seen_us = 0;
    uint64_t last_seq = 0;
    std::deque<HealthReport> reports;
  };
  ComponentHealth view(const std::string& id, const Entry& e, int64_t now_us) const;
  std::chrono::milliseconds silent_after_;
  size_t history_, max_components_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace bf::control
