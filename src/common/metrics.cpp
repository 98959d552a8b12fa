#include "common/metrics.h"

#include <sstream>

namespace bf {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string render_labels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
  }
  return out + "}";
}

}  // namespace

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  if (f.help.empty()) f.help = help;
  f.is_counter = true;
  auto& slot = f.counters[render_labels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  if (f.help.empty()) f.help = help;
  f.is_counter = false;
  auto& slot = f.gauges[render_labels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

std::string MetricsRegistry::prometheus_text() const {
  std::lock_guard lock(mu_);
  std::ostringstream out;
  for (const auto& [name, f] : families_) {
    out << "# HELP " << name << ' ' << f.help << '\n';
    out << "# TYPE " << name << ' ' << (f.is_counter ? "counter" : "gauge") << '\n';
    for (const auto& [labels, c] : f.counters) out << name << labels << ' ' << c->value() << '\n';
    for (const auto& [labels, g] : f.gauges) out << name << labels << ' ' << g->value() << '\n';
  }
  return out.str();
}

int64_t MetricsRegistry::value(const std::string& name, const Labels& labels) const {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  std::string key = render_labels(labels);
  if (auto c = it->second.counters.find(key); c != it->second.counters.end()) return static_cast<int64_t>(c->second->value());
  if (auto g = it->second.gauges.find(key); g != it->second.gauges.end()) return g->second->value();
  return 0;
}

std::optional<int64_t> MetricsRegistry::sum(const std::string& name, const Labels& subset) const {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return std::nullopt;
  std::vector<std::string> wanted;
  for (const auto& [k, v] : subset) wanted.push_back(k + "=\"" + escape_label(v) + "\"");
  auto matches = [&](const std::string& key) {
    for (const auto& w : wanted) {
      // Each wanted pair must appear whole: after '{' or ',' and before ',' or '}'.
      bool found = false;
      for (size_t at = key.find(w); at != std::string::npos && !found; at = key.find(w, at + 1))
        found = at > 0 && (key[at - 1] == '{' || key[at - 1] == ',') && at + w.size() < key.size() &&
                (key[at + w.size()] == ',' || key[at + w.size()] == '}');
      if (!found) return false;
    }
    return true;
  };
  std::optional<int64_t> total;
  for (const auto& [key, c] : it->second.counters)
    if (matches(key)) total = total.value_or(0) + static_cast<int64_t>(c->value());
  for (const auto& [key, g] : it->second.gauges)
    if (matches(key)) total = total.value_or(0) + g->value();
  return total;
}

namespace {
Labels component_labels(std::string_view kind, std::string_view type, std::string_view id, Labels extra) {
  Labels l{{"component_kind", std::string(kind)}, {"component_type", std::string(type)}, {"component_id", std::string(id)}};
  for (auto& e : extra) l.push_back(std::move(e));
  return l;
}
Labels with(Labels l, std::initializer_list<std::pair<std::string, std::string>> more) {
  for (const auto& m : more) l.push_back(m);
  return l;
}
}  // namespace

ComponentMetrics::ComponentMetrics(std::string_view kind, std::string_view type, std::string_view id, Labels extra)
    : ComponentMetrics(component_labels(kind, type, id, std::move(extra))) {}

ComponentMetrics::ComponentMetrics(Labels l)
    : received_events(metrics().counter("bf_component_received_events_total", "Events a component took in", l)),
      received_bytes(metrics().counter("bf_component_received_bytes_total", "Bytes a component took in", l)),
      sent_events(metrics().counter("bf_component_sent_events_total", "Events a component passed on", l)),
      sent_bytes(metrics().counter("bf_component_sent_bytes_total", "Bytes a component passed on", l)),
      labels_(std::move(l)) {}

Counter& ComponentMetrics::error(std::string_view stage, std::string_view error_type) const {
  return metrics().counter("bf_component_errors_total", "Errors a component reported, by stage and type",
                           with(labels_, {{"stage", std::string(stage)}, {"error_type", std::string(error_type)}}));
}

Counter& ComponentMetrics::discarded(Discard kind, std::string_view reason) const {
  return metrics().counter(
      "bf_component_discarded_events_total", "Events a component gave up (intentional: filter, sample; unintentional: malformed, overflow)",
      with(labels_, {{"intentional", kind == Discard::intentional ? "true" : "false"}, {"reason", std::string(reason)}}));
}

MetricsRegistry& metrics() {
  static MetricsRegistry registry;
  return registry;
}

}  // namespace bf
