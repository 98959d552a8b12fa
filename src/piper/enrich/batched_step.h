#pragma once
// What the enrichment steps (geoip, lookup, rdns) share: they run per batch only
// (Transform::apply_batch), read an IP address or key from one field, and count
// their lookups by result in bf_piper_enrich_lookups_total.
#include <optional>

#include "piper/enrich/result_counters.h"
#include "piper/expr/cidr.h"
#include "piper/transform.h"

namespace bf {

class BatchedStep : public Transform {
 public:
  StepResult apply(Event&, std::string& error) const final {
    error = "internal: this step runs per batch";
    return StepResult::fail;
  }
  bool batched() const final { return true; }
};

// The results every enrichment step counts; rdns adds its own after them.
enum : size_t { kLookupHit, kLookupMiss, kLookupInvalid };
inline ResultCounters lookup_counters(std::vector<std::string> extra = {}) {
  std::vector<std::string> results{"hit", "miss", "invalid"};
  results.insert(results.end(), extra.begin(), extra.end());
  return ResultCounters("bf_piper_enrich_lookups_total",
                        "Lookups of an enrichment step by result (hit, miss, invalid: not an address or key; "
                        "rdns also timeout, over_budget)",
                        std::move(results));
}

// The address at `path`: nullopt with `present` false when the field is absent, with
// `present` true when its value is not a string holding an IPv4/IPv6 address.
inline std::optional<IpAddress> address_at(Event& event, const FieldPath& path, bool& present) {
  const boost::json::value* v = find_field(event, path);
  present = v != nullptr;
  if (!v || !v->is_string()) return std::nullopt;
  return IpAddress::parse(v->get_string());
}

}  // namespace bf
