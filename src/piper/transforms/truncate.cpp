// truncate: shortens string fields to max_bytes (at a UTF-8 character boundary), then
// appends suffix.   {truncate: {fields: [message], max_bytes: 4096, suffix: "…"}}
// Shorter strings and non-strings are left alone.
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class Truncate final : public StringFieldsStep {
 public:
  Truncate(std::vector<FieldPath> fields, size_t max, std::string suffix)
      : StringFieldsStep(std::move(fields)), max_(max), suffix_(std::move(suffix)) {}

 protected:
  void rewrite(boost::json::string& s) const override {
    if (s.size() <= max_) return;
    size_t cut = max_;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s.resize(cut);
    s.append(suffix_);
  }

 private:
  size_t max_;
  std::string suffix_;
};

}  // namespace

TransformFactory truncate_transform() {
  return {"truncate", "Cut string fields (field or fields) to max_bytes at a character boundary, then append suffix",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto fields = field_or_fields(o);
            auto max = o.integer("max_bytes");
            return std::make_unique<Truncate>(std::move(fields), static_cast<size_t>(max), o.str("suffix"));
          },
          field_or_fields_options("to cut", {
              Option("max_bytes", OptionType::integer, "longer strings are cut to this many bytes, at a UTF-8 character boundary")
                  .mandatory().range(1, double(int64_t{1} << 30)),
              Option("suffix", OptionType::string, "appended to a string that was cut").def(""),
          })};
}

}  // namespace bf
