#pragma once
// The proxy's plugin interface for inputs. One file per source kind under
// proxy/sources/, each adding its factory in sources/registry.cpp.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/batch.h"
#include "common/options.h"
#include "proxy/delivery.h"

namespace bf {

class ConfigNode;

// Where a source delivers events. Thread-safe.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // Events for one tenant/dataset, buffered by the batcher (flushed by size/count/age).
  // With Delivery::backpressure the call may block while the spool is full (the
  // caller then stops reading its transport); with best_effort it never blocks and a
  // batch that finds the spool full is dropped and counted.
  virtual void emit(const std::string& tenant, const std::string& dataset, std::vector<Event>&& events,
                    Delivery delivery) = 0;
  // The same for events already serialized: `lines` holds `events` complete NDJSON
  // lines (one JSON object each, '\n'-terminated). Sources that write the text
  // themselves (the syslog sources) hand over a read's worth of events per call.
  virtual void emit_ndjson(const std::string& tenant, const std::string& dataset, std::string_view lines,
                           size_t events, Delivery delivery) = 0;
  // Events that must be durable before the caller acknowledges its sender (HTTP):
  // written to the proxy spool as one batch before this returns; returns the batch's
  // NDJSON bytes. Throws on failure.
  virtual uint64_t emit_durable(const std::string& tenant, const std::string& dataset,
                            std::vector<Event>&& events) = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  // "syslog-udp:5514" — also the events' _source field.
  virtual std::string name() const = 0;
  // The bound port for network sources (after start), else 0.
  virtual uint16_t port() const { return 0; }
};

struct SourceFactory {
  std::string type;          // "syslog_udp"
  std::string description;
  // Reads (and so validates) the source's config node with its option table; unknown
  // keys and bad values are ConfigErrors naming the source and the key.
  std::function<std::unique_ptr<Source>(const ConfigNode& config, EventSink& sink)> create;
  // That table's options: `bytefreezer plugins --schema`, docs/proxy.md.
  OptionSpecs options;
};

// The built-in sources, registered explicitly in sources/registry.cpp.
const std::vector<SourceFactory>& source_factories();
const SourceFactory* find_source_factory(const std::string& type);

}  // namespace bf
