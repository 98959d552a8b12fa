// exclude: removes the top-level fields whose names match (names or globs with * and ?).
//   {exclude: {fields: ["debug_*", password]}}
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class Exclude final : public Transform {
 public:
  explicit Exclude(std::vector<std::string> globs) : globs_(std::move(globs)) {}
  StepResult apply(Event& e, std::string&) const override {
    for (auto it = e.begin(); it != e.end();) it = matches_any(globs_, it->key()) ? e.erase(it) : it + 1;
    return StepResult::keep;
  }

 private:
  std::vector<std::string> globs_;
};

}  // namespace

TransformFactory exclude_transform() {
  return {"exclude", "Remove the top-level fields whose names match the list (globs with * and ? allowed)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto globs = o.str_list("fields");
            if (globs.empty()) o.fail("fields", "no fields given");
            return std::make_unique<Exclude>(std::move(globs));
          },
          {
              Option("fields", OptionType::string_list, "names or globs (* and ?) of the top-level fields removed").mandatory(),
          }};
}

}  // namespace bf
