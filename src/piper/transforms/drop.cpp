// drop: removes events, counted per step on /metrics.   {drop: {if: "level == \"debug\""}}
// Without `if:` every event is dropped.
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class Drop final : public Transform {
 public:
  StepResult apply(Event&, std::string&) const override { return StepResult::drop; }
};

}  // namespace

TransformFactory drop_transform() {
  return {"drop", "Drop the event (with if: the events the condition selects); counted on /metrics",
          [](const StepOptions&) -> std::unique_ptr<Transform> { return std::make_unique<Drop>(); },
          {}};
}

}  // namespace bf
