#pragma once
// Factories of the built-in transforms; the list lives in registry.cpp. Helpers
// shared by several steps are below.
#include <string_view>

#include "piper/transform.h"

namespace bf {
TransformFactory set_transform();
TransformFactory add_transform();
TransformFactory remove_transform();
TransformFactory rename_transform();
TransformFactory copy_transform();
TransformFactory coerce_transform();
TransformFactory regex_replace_transform();
TransformFactory lowercase_transform();
TransformFactory uppercase_transform();
TransformFactory trim_transform();
TransformFactory split_transform();
TransformFactory explode_transform();
TransformFactory json_parse_transform();
TransformFactory json_flatten_transform();
TransformFactory kv_transform();
TransformFactory csv_transform();
TransformFactory date_parse_transform();
TransformFactory hash_transform();
TransformFactory truncate_transform();
TransformFactory drop_transform();
TransformFactory include_transform();
TransformFactory exclude_transform();
TransformFactory grok_transform();
TransformFactory route_transform();
TransformFactory sample_transform();
TransformFactory community_id_transform();
TransformFactory lookup_transform();
TransformFactory geoip_transform();
TransformFactory rdns_transform();

// The dotted form of a path, for error messages.
std::string field_name(const FieldPath& path);
// The string at `path`: nullptr if absent; otherwise sets `error` and returns nullptr
// when the value is not a string (`present` tells the two apart).
const boost::json::string* string_field(Event& event, const FieldPath& path, bool& present, std::string& error);
// Shell-style name match: * any run, ? one character.
bool glob_match(std::string_view glob, std::string_view name);
bool matches_any(const std::vector<std::string>& globs, std::string_view name);
// One RFC 4180 record from text[pos...]: values split at `delim`; a quoted value may
// hold the delimiter, newlines and doubled quotes. With `lines`, a newline outside
// quotes ends the record and pos moves past it; without, the record runs to the
// end of the text. A CR before the record's end is dropped. false: a quote is not
// closed.
bool read_csv_record(std::string_view text, size_t& pos, char delim, char quote, bool lines,
                     std::vector<std::string>& out);
// A value shortened for an error message.
std::string preview(std::string_view text);

// The steps that rewrite string fields in place (lowercase, uppercase, trim):
// non-strings and absent fields are left alone.
class StringFieldsStep : public Transform {
 public:
  explicit StringFieldsStep(std::vector<FieldPath> fields) : fields_(std::move(fields)) {}
  StepResult apply(Event& event, std::string& error) const final;

 protected:
  virtual void rewrite(boost::json::string& s) const = 0;

 private:
  std::vector<FieldPath> fields_;
};
std::vector<FieldPath> field_or_fields(const StepOptions& o);  // `field` or `fields`, exactly one
// The declaration of those two options (`what` the fields are for), then `more`.
OptionSpecs field_or_fields_options(const std::string& what, OptionSpecs more = {});
// Puts `rec`'s members at `target` (merged into an object already there; none: into
// the event itself).
void merge_into(Event& event, const std::optional<FieldPath>& target, boost::json::object&& rec);
// The same from a record the step keeps (a lookup row, a cached database record):
// copied once, into the event's own storage.
void merge_into(Event& event, const std::optional<FieldPath>& target, const boost::json::object& rec);
// A one-character option (a delimiter, a quote); the two characters \t mean a tab.
char single_char(const StepOptions& o, const std::string& key);
}  // namespace bf
