// The built-in pipeline steps, in one visible list (explicit registration survives
// static linking). A duplicate name is a programming error caught at first use.
#include <cstdlib>
#include <set>

#include "piper/transforms/transforms.h"

namespace bf {

const std::vector<TransformFactory>& transform_factories() {
  static const std::vector<TransformFactory> factories = [] {
    std::vector<TransformFactory> list{
        set_transform(),          add_transform(),        remove_transform(),     rename_transform(),
        copy_transform(),         coerce_transform(),     regex_replace_transform(), lowercase_transform(),
        uppercase_transform(),    trim_transform(),       split_transform(),      explode_transform(),
        json_parse_transform(),   json_flatten_transform(), kv_transform(),       csv_transform(),
        date_parse_transform(),   hash_transform(),       truncate_transform(),   drop_transform(),
        include_transform(),      exclude_transform(),      grok_transform(),         route_transform(),
        sample_transform(),       community_id_transform(), lookup_transform(),     geoip_transform(),
        rdns_transform(),
    };
    std::set<std::string> names;
    for (const auto& f : list) {
      if (!names.insert(f.type).second) std::abort();  // duplicate registration
    }
    return list;
  }();
  return factories;
}

const TransformFactory* find_transform_factory(const std::string& type) {
  for (const auto& f : transform_factories())
    if (f.type == type) return &f;
  return nullptr;
}

}  // namespace bf
