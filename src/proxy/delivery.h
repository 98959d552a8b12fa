#pragma once
// What a source wants when the proxy spool is full (docs/proxy.md, "Backpressure").
#include <cstdint>

namespace bf {

enum class Delivery : uint8_t {
  // The transport cannot push back (UDP, flow exports): a batch that finds the spool
  // full is dropped and counted in bf_proxy_dropped_total{reason="spool_full"}.
  best_effort,
  // The transport can push back (TCP streams): the thread that cuts the batch waits
  // until the spool has room, so the source stops reading and its senders block.
  backpressure,
};

inline const char* delivery_name(Delivery d) { return d == Delivery::backpressure ? "backpressure" : "best_effort"; }

}  // namespace bf
