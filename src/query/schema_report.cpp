#include "query/schema_report.h"

#include <boost/json.hpp>

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace bf {

namespace {

std::string str(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (!v) return "";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_number()) return std::to_string(v->to_number<int64_t>());
  return boost::json::serialize(*v);
}

std::string pad(const std::string& s, size_t width) { return s.size() >= width ? s : s + std::string(width - s.size(), ' '); }

}  // namespace

std::string format_schema_report(const std::string& dataset, const std::string& schema_json) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(schema_json, ec);
  if (ec || !doc.is_object() || !doc.get_object().contains("columns") || !doc.at("columns").is_array())
    throw std::invalid_argument("the schema of '" + dataset + "' is not a schema document");
  const auto& o = doc.get_object();
  std::string out = "dataset " + dataset + ": schema version " + str(o, "version") + " (updated " + str(o, "updated") + ")\n\n";
  std::vector<std::vector<std::string>> rows{{"COLUMN", "TYPE", "SINCE", "NOTE"}};
  for (const auto& c : o.at("columns").as_array()) {
    if (!c.is_object()) continue;
    const auto& col = c.get_object();
    std::string note;
    if (col.contains("overflow_of")) note = "JSON text of " + str(col, "overflow_of") + " values its type cannot hold";
    else if (col.contains("source")) note = "field \"" + str(col, "source") + "\" (renamed: differs only in case)";
    if (const auto* def = col.if_contains("def"); def && def->is_object() && def->get_object().contains("json_text"))
      note += std::string(note.empty() ? "" : "; ") + "holds JSON text";
    rows.push_back({str(col, "name"), str(col, "type"), "v" + str(col, "added_in_version"), note});
  }
  std::vector<size_t> width(4, 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < 3; ++i) width[i] = std::max(width[i], std::min<size_t>(r[i].size(), 60));
  for (const auto& r : rows) {
    std::string line = pad(r[0], width[0]) + "  " + pad(r[1], width[1]) + "  " + pad(r[2], width[2]) + "  " + r[3];
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  if (const auto* h = o.if_contains("history"); h && h->is_array() && !h->get_array().empty()) {
    out += "\nhistory:\n";
    for (const auto& e : h->get_array()) {
      if (!e.is_object()) continue;
      const auto& entry = e.get_object();
      out += "  v" + str(entry, "version") + "  " + str(entry, "time") + "  batch " + str(entry, "batch") + "\n";
      if (const auto* cs = entry.if_contains("changes"); cs && cs->is_array()) {
        for (const auto& c : cs->get_array()) {
          if (!c.is_object()) continue;
          const auto& ch = c.get_object();
          std::string line = "      " + str(ch, "change") + " " + str(ch, "path") + " " + str(ch, "type");
          if (ch.contains("from")) line += " (was " + str(ch, "from") + ")";
          if (ch.contains("source")) line += " (field \"" + str(ch, "source") + "\")";
          out += line + "\n";
        }
      }
    }
  }
  return out;
}

}  // namespace bf
