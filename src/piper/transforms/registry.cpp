// The built-in pipeline steps, in one visible list (explicit registration survives
// static linking). A duplicate name is a programming error caught at first use.
#include <cstdlib>
#include <set>

#include "piper/transforms/transforms.h"

namespace bf {

const std::vector<TransformFactory>& transform_factories() {
  static const std::vector<TransformFactory> factories = [] {
    std::vector<TransformFactory> list{add_transform(), remove_transform(), rename_transform()};
    std::set<std::string> names;
    for (const auto& f : list) {
      if (!names.insert(f.type).second) std::abort();  // duplicate registration
    }
    return list;
  }();
  return factories;
}

}  // namespace bf
