#pragma once
// Component-test helpers for one source without a proxy around it: a sink that
// records what the source hands over, and a source made from a YAML mapping.
#include <boost/json.hpp>

#include <condition_variable>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "common/config.h"
#include "proxy/source.h"

namespace bf::test {

struct CapturingSink : EventSink {
  std::mutex mu;
  std::condition_variable cv;
  std::string lines;  // NDJSON the source wrote
  size_t events = 0;
  void emit(const std::string&, const std::string&, std::vector<Event>&& evs, Delivery) override {
    std::lock_guard lock(mu);
    for (const auto& e : evs) lines += boost::json::serialize(e) + "\n";
    events += evs.size();
    cv.notify_all();
  }
  void emit_ndjson(const std::string&, const std::string&, std::string_view l, size_t n, Delivery) override {
    std::lock_guard lock(mu);
    lines.append(l);
    events += n;
    cv.notify_all();
  }
  uint64_t emit_durable(const std::string& t, const std::string& d, std::vector<Event>&& evs) override {
    emit(t, d, std::move(evs), Delivery::backpressure);
    return 0;
  }
  bool wait_events(size_t n, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return events >= n; });
  }
  std::string text() {
    std::lock_guard lock(mu);
    return lines;
  }
};

// The source that the first entry of `yaml` (a `proxy.sources` list body, indented by
// four) makes; throws its ConfigError.
inline std::unique_ptr<Source> make_source(const std::string& yaml, EventSink& sink) {
  ConfigNode root = ConfigNode::parse("proxy:\n  sources:\n" + yaml, "test.yaml");
  ConfigNode node = root.child("proxy").list("sources").at(0);
  const SourceFactory* f = find_source_factory(node.str("type"));
  if (!f) throw std::runtime_error("no source type " + node.str("type"));
  return f->create(node, sink);
}

}  // namespace bf::test
