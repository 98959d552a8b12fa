// include: keeps only the listed top-level fields (names or globs with * and ?);
// system fields (_time, _raw, …) are kept too unless keep_system: false.
//   {include: {fields: [host, "http_*"]}}
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class Include final : public Transform {
 public:
  Include(std::vector<std::string> globs, bool keep_system) : globs_(std::move(globs)), keep_system_(keep_system) {}
  StepResult apply(Event& e, std::string&) const override {
    for (auto it = e.begin(); it != e.end();) {
      std::string_view key = it->key();
      bool keep = (keep_system_ && !key.empty() && key[0] == '_') || matches_any(globs_, key);
      it = keep ? it + 1 : e.erase(it);
    }
    return StepResult::keep;
  }

 private:
  std::vector<std::string> globs_;
  bool keep_system_;
};

}  // namespace

TransformFactory include_transform() {
  return {"include", "Keep only the listed top-level fields (globs allowed) and, unless keep_system: false, the _ fields",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto globs = o.str_list("fields");
            if (globs.empty()) o.fail("fields", "no fields given");
            return std::make_unique<Include>(std::move(globs), o.boolean("keep_system"));
          },
          {
              Option("fields", OptionType::string_list, "names or globs (* and ?) of the top-level fields kept").mandatory(),
              Option("keep_system", OptionType::boolean, "keep the _ fields (_time, _raw, …) too").def("true"),
          }};
}

}  // namespace bf
