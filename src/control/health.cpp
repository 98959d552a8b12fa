#include "control/health.h"

namespace bf::control {

HealthBoard::HealthBoard(std::chrono::milliseconds silent_after, size_t history_per_component, size_t max_components)
    : silent_after_(silent_after), history_(history_per_component ? history_per_component : 1),
      max_components_(max_components) {}

bool HealthBoard::report(HealthReport r) {
  const std::string id = component_id(r.service, r.instance);
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    if (entries_.size() >= max_components_) return false;
    it = entries_.emplace(id, Entry{r.time_us, 0, {}}).first;
  }
  r.seq = ++it->second.last_seq;
  auto& reports = it->second.reports;
  reports.push_back(std::move(r));
  while (reports.size() > history_) reports.pop_front();
  return true;
}

ComponentHealth HealthBoard::view(const std::string& id, const Entry& e, int64_t now_us) const {
  ComponentHealth h{id, e.reports.back(), e.first_seen_us, e.reports.back().status};
  if (now_us - h.last.time_us > silent_after_.count() * 1000) h.status = "unhealthy";
  return h;
}

std::vector<ComponentHealth> HealthBoard::list(int64_t now_us) const {
  std::lock_guard lock(mu_);
  std::vector<ComponentHealth> out;
  for (const auto& [id, e] : entries_) out.push_back(view(id, e, now_us));
  return out;
}

std::optional<ComponentHealth> HealthBoard::get(const std::string& id, int64_t now_us) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return view(id, it->second, now_us);
}

std::vector<HealthReport> HealthBoard::history(const std::string& id, uint64_t after_seq, size_t limit) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return {};
  std::vector<HealthReport> out;
  for (const HealthReport& r : it->second.reports) {  // numbered in order: skip to the cursor
    if (r.seq <= after_seq) continue;
    if (out.size() >= limit) break;
    out.push_back(r);
  }
  return out;
}

}  // namespace bf::control
