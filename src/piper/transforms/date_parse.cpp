// date_parse: a time field into `_time` (or target) as RFC 3339 UTC.
//   {date_parse: {field: timestamp, formats: ["%d/%b/%Y:%H:%M:%S %z", epoch_ms], timezone: Europe/Berlin}}
// Formats are tried in order (piper/time_format.h); a value none matches fails the event.
#include <boost/json/serialize.hpp>

#include "common/time.h"
#include "piper/time_format.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class DateParse final : public Transform {
 public:
  DateParse(FieldPath field, FieldPath target, std::vector<TimeFormat> formats, std::shared_ptr<const TimeZone> zone)
      : field_(std::move(field)), target_(std::move(target)), formats_(std::move(formats)), zone_(std::move(zone)) {}
  StepResult apply(Event& e, std::string& error) const override {
    const boost::json::value* v = find_field(e, field_);
    if (!v) return StepResult::keep;
    for (const auto& f : formats_) {
      if (auto us = f.parse(*v, *zone_)) {
        char text[40];  // no heap string per event: written straight into the event's storage
        set_field(e, target_, boost::json::string(std::string_view(text, format_rfc3339(*us, text)), e.storage()));
        return StepResult::keep;
      }
    }
    error = "field '" + field_name(field_) + "': " + preview(boost::json::serialize(*v)) + " matches none of the formats";
    return StepResult::fail;
  }

 private:
  FieldPath field_, target_;
  std::vector<TimeFormat> formats_;
  std::shared_ptr<const TimeZone> zone_;
};

}  // namespace

TransformFactory date_parse_transform() {
  return {"date_parse", "Parse a time field with strptime formats or epoch_s/ms/us/ns/rfc3339/auto (in timezone) into _time (or target)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto field = o.field("field");
            auto target = o.field("target");
            std::vector<TimeFormat> formats;
            for (const auto& f : o.str_list("formats")) {
              try {
                formats.push_back(TimeFormat::compile(f));
              } catch (const PipelineError& e) {
                o.fail("formats", e.what());
              }
            }
            if (formats.empty()) o.fail("formats", "no formats given");
            std::shared_ptr<const TimeZone> zone = TimeZone::utc();
            try {
              zone = load_time_zone(o.str("timezone"));
            } catch (const PipelineError& e) {
              o.fail("timezone", e.what());
            }
            return std::make_unique<DateParse>(std::move(field), std::move(target), std::move(formats), std::move(zone));
          },
          {
              Option("field", OptionType::string, "the field holding the time").mandatory(),
              Option("formats", OptionType::string_list,
                     "tried in order: strptime formats, rfc3339, epoch_s, epoch_ms, epoch_us, epoch_ns or auto")
                  .def("auto"),
              Option("timezone", OptionType::string, "for times without an offset: UTC, +05:30 or an IANA name")
                  .def("UTC"),
              Option("target", OptionType::string, "where the RFC 3339 UTC time goes").def("_time"),
          }};
}

}  // namespace bf
