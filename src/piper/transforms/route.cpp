// route: sends the events its `if:` selects to other datasets of the same tenant.
//   {route: {to: [alerts, archive], mode: copy, if: 'severity <= 3'}}
// `copy` (default) passes the event on here too; `move` takes it out of this dataset's
// output. The piper writes each target's events to the target's processed/ under a
// batch id derived from the input batch's (docs/pipelines.md, "route").
#include <algorithm>

#include "common/ids.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class Route final : public Transform {
 public:
  explicit Route(RouteSpec spec) : spec_(std::move(spec)) {}
  const RouteSpec* route() const override { return &spec_; }
  StepResult apply(Event&, std::string& error) const override {
    error = "internal: route is handled by the pipeline";
    return StepResult::fail;
  }

 private:
  RouteSpec spec_;
};

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

}  // namespace

TransformFactory route_transform() {
  return {"route",
          "Send the events the `if:` selects to other datasets of the tenant (to: a dataset or a list; mode: copy (default) or move)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            RouteSpec spec;
            spec.targets = o.str_list("to");
            if (spec.targets.empty()) o.fail("to", "no dataset given");
            spec.move = o.choice("mode") == "move";
            const PipelineContext* ctx = o.context();
            for (size_t i = 0; i < spec.targets.size(); ++i) {
              const std::string& t = spec.targets[i];
              if (!is_valid_id(t)) o.fail("to", "'" + t + "' is not a valid dataset id");
              if (std::find(spec.targets.begin(), spec.targets.begin() + i, t) != spec.targets.begin() + i)
                o.fail("to", "dataset '" + t + "' is listed twice");
              if (!ctx || !ctx->known_datasets) continue;
              if (t == ctx->dataset) o.fail("to", "a dataset cannot route to itself");
              if (std::find(ctx->siblings.begin(), ctx->siblings.end(), t) == ctx->siblings.end())
                o.fail("to", "unknown dataset '" + t + "' (datasets of this tenant: " + joined(ctx->siblings) + ")");
            }
            return std::make_unique<Route>(std::move(spec));
          },
          {
              Option("to", OptionType::string_list, "the target dataset ids, of the same tenant").mandatory(),
              Option("mode", OptionType::string, "copy: the event also goes on here; move: it leaves this dataset")
                  .one_of({"copy", "move"})
                  .def("copy"),
          }};
}

}  // namespace bf
