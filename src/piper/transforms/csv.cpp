// csv: one CSV record from a string field into named fields.
//   {csv: {field: message, header: [ts, user, action], delimiter: ",", target: rec}}
// Quoted values follow RFC 4180 ("a ""b""" is a "b"). Fewer values than header
// names leave the rest absent; more values (with strict, the default) or an
// unterminated quote fail the event.
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

class Csv final : public Transform {
 public:
  Csv(FieldPath field, std::optional<FieldPath> target, std::vector<std::string> header, char delim, char quote, bool strict)
      : field_(std::move(field)), target_(std::move(target)), header_(std::move(header)), delim_(delim), quote_(quote), strict_(strict) {}
  StepResult apply(Event& e, std::string& error) const override {
    bool present;
    const boost::json::string* s = string_field(e, field_, present, error);
    if (!s) return present ? StepResult::fail : StepResult::keep;
    std::vector<std::string> values;
    if (!split(std::string_view(*s), values)) {
      error = "field '" + field_name(field_) + "': unterminated quote: " + preview(*s);
      return StepResult::fail;
    }
    if (values.size() > header_.size() && strict_) {
      error = "field '" + field_name(field_) + "': " + std::to_string(values.size()) + " values for " +
              std::to_string(header_.size()) + " header names";
      return StepResult::fail;
    }
    boost::json::object rec;
    boost::json::object& out = target_ ? rec : e;
    for (size_t i = 0; i < values.size() && i < header_.size(); ++i) out[header_[i]] = boost::json::string(values[i]);
    if (target_) set_field(e, *target_, std::move(rec));
    return StepResult::keep;
  }

 private:
  bool split(std::string_view s, std::vector<std::string>& out) const {
    size_t pos = 0;
    return read_csv_record(s, pos, delim_, quote_, false, out);
  }
  FieldPath field_;
  std::optional<FieldPath> target_;
  std::vector<std::string> header_;
  char delim_, quote_;
  bool strict_;
};

}  // namespace

TransformFactory csv_transform() {
  return {"csv", "Parse a CSV record in a string field (default message) into the header's fields (delimiter, quote, target, strict)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto field = o.field("field");
            std::optional<FieldPath> target;
            if (o.has("target")) target = o.field("target");
            char delim = single_char(o, "delimiter");
            char quote = single_char(o, "quote");
            if (delim == quote) o.fail("quote", "must differ from the delimiter");
            std::vector<std::string> header = o.str_list("header");
            if (header.size() == 1 && header[0].find(delim) != std::string::npos) {  // "a,b,c" in one string
              std::string all = header[0];
              header.clear();
              size_t pos = 0;
              while (true) {
                size_t at = all.find(delim, pos);
                header.push_back(all.substr(pos, at == std::string::npos ? std::string::npos : at - pos));
                if (at == std::string::npos) break;
                pos = at + 1;
              }
            }
            for (const auto& h : header)
              if (h.empty()) o.fail("header", "has an empty column name");
            if (header.empty()) o.fail("header", "no column names given");
            return std::make_unique<Csv>(std::move(field), std::move(target), std::move(header), delim, quote,
                                         o.boolean("strict"));
          },
          {
              Option("field", OptionType::string, "the string field holding the record").def("message"),
              Option("header", OptionType::string_list, "the column names, or one string split at the delimiter").mandatory(),
              Option("delimiter", OptionType::string, "one character between values; \\t for a tab").def(","),
              Option("quote", OptionType::string, "one character quoting a value (RFC 4180)").def("\""),
              Option("target", OptionType::string, "an object field for the values").note("into the event"),
              Option("strict", OptionType::boolean, "more values than header names fail the event (false: the extra ones are dropped)").def("true"),
          }};
}

}  // namespace bf
