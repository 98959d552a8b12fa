#include "query/nl/prompt.h"

#include <boost/json.hpp>

namespace bf::nl {

const std::vector<std::pair<std::string, std::string>>& partition_columns() {
  static const std::vector<std::pair<std::string, std::string>> cols{
      {"account", "VARCHAR"}, {"tenant", "VARCHAR"}, {"dataset", "VARCHAR"}, {"year", "BIGINT"},
      {"month", "VARCHAR"},   {"day", "VARCHAR"},    {"hour", "VARCHAR"}};
  return cols;
}

namespace {

std::string example_column(const PromptSchema& schema) {
  for (const auto& [name, type] : schema.columns)
    if (type == "VARCHAR" && !name.empty() && name[0] != '_') return name;
  for (const auto& [name, type] : schema.columns)
    if (name == "_source") return name;
  return "_source";
}

std::string example(const std::string& question, const std::string& sql, const std::string& explanation) {
  boost::json::object o{{"sql", sql}, {"explanation", explanation}};
  return "Question: " + question + "\nAnswer: " + boost::json::serialize(o) + "\n";
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string clean_sql(std::string sql) {
  sql = trim(sql);
  while (!sql.empty() && (sql.back() == ';' || sql.back() == ' ' || sql.back() == '\n' || sql.back() == '\r' ||
                          sql.back() == '\t'))
    sql.pop_back();
  return sql;
}

std::optional<ModelAnswer> from_json(const std::string& text, std::string* why) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(text, ec);
  if (ec || !doc.is_object()) return std::nullopt;
  const auto& o = doc.get_object();
  auto* sql = o.if_contains("sql");
  if (!sql || !sql->is_string() || clean_sql(std::string(sql->get_string())).empty()) {
    *why = "the JSON answer has no non-empty string field 'sql'";
    return ModelAnswer{};  // recognised as JSON, but unusable: sql stays empty
  }
  ModelAnswer a;
  a.sql = clean_sql(std::string(sql->get_string()));
  if (auto* e = o.if_contains("explanation"); e && e->is_string()) a.explanation = trim(std::string(e->get_string()));
  return a;
}

}  // namespace

std::string build_system_prompt(const PromptSchema& schema, const std::vector<ColumnSamples>& samples) {
  std::string p;
  p += "You write one DuckDB SQL query that answers a question about one dataset of a telemetry lake.\n\n";
  p += "Rules:\n";
  p += "- Reply with only a JSON object: {\"sql\": \"<one SELECT statement>\", \"explanation\": \"<one or two "
       "sentences saying what the query computes>\"}.\n";
  p += "- The SQL is exactly one SELECT (WITH ... SELECT is fine) in DuckDB's dialect and reads only the view "
       "`events`";
  if (!schema.view.empty() && schema.view != "events") p += " (also named `" + schema.view + "`)";
  p += ".\n";
  p += "- No other tables, no schema-qualified names, no table functions that read files (read_parquet, read_csv, "
       "read_json, read_text, glob, ...), no COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA, CREATE, INSERT, UPDATE or "
       "DELETE: they are refused.\n";
  p += "- `_time` is the event time (TIMESTAMP, UTC). Filter time ranges on `_time`; add conditions on the "
       "partition columns year/month/day/hour to read fewer files (month, day and hour are zero-padded text, "
       "e.g. month = '01').\n";
  p += "- Unless the question asks for everything, keep results small (aggregate, or LIMIT 100).\n\n";
  p += "Dataset " + schema.dataset + ", view `events`. Columns (name type):\n";
  for (const auto& [name, type] : schema.columns) p += "  " + name + " " + type + "\n";
  p += "Partition columns:\n";
  for (const auto& [name, type] : partition_columns()) p += "  " + name + " " + type + "\n";
  if (!samples.empty()) {
    p += "\nSample values of some low-cardinality columns:\n";
    for (const auto& s : samples) {
      p += "  " + s.column + ":";
      for (size_t i = 0; i < s.values.size(); ++i) p += (i ? ", " : " ") + boost::json::serialize(boost::json::value(s.values[i]));
      p += "\n";
    }
  }
  const std::string col = example_column(schema);
  p += "\nExamples of the DuckDB dialect:\n";
  p += example("How many events were there in the last 24 hours?",
               "SELECT count(*) AS events FROM events WHERE _time >= now() - INTERVAL 24 HOUR",
               "Counts the events whose event time lies in the last 24 hours.");
  p += example("Events per hour on 2026-01-02",
               "SELECT date_trunc('hour', _time) AS hour_start, count(*) AS events FROM events WHERE _time >= "
               "TIMESTAMP '2026-01-02 00:00:00' AND _time < TIMESTAMP '2026-01-03 00:00:00' AND year = 2026 AND "
               "month = '01' AND day = '02' GROUP BY hour_start ORDER BY hour_start",
               "Counts the events of 2 January 2026 (UTC) per hour; the partition filter reads only that day.");
  p += example("Top 10 " + col + " values this week",
               "SELECT " + col + ", count(*) AS events FROM events WHERE _time >= date_trunc('week', now()) GROUP BY " +
                   col + " ORDER BY events DESC LIMIT 10",
               "The ten most frequent values of " + col + " since the start of the week, with their counts.");
  return p;
}

std::string build_repair_message(const std::string& error) {
  return "That SQL was not accepted: " + error +
         "\nReply with a corrected query as the same JSON object {\"sql\": ..., \"explanation\": ...}.";
}

std::optional<ModelAnswer> parse_model_answer(const std::string& raw, std::string* why) {
  const std::string text = trim(raw);
  if (text.empty()) {
    *why = "the answer is empty";
    return std::nullopt;
  }
  // A JSON object: the whole text, or the outermost {...} within it (fences, prose).
  std::optional<ModelAnswer> a = from_json(text, why);
  if (!a) {
    size_t b = text.find('{'), e = text.rfind('}');
    if (b != std::string::npos && e != std::string::npos && e > b) a = from_json(text.substr(b, e - b + 1), why);
  }
  if (a && !a->sql.empty()) return a;
  // SQL in a ```sql fenced block.
  for (const char* fence : {"```sql", "```SQL"}) {
    size_t b = text.find(fence);
    if (b == std::string::npos) continue;
    size_t start = b + std::string(fence).size();
    size_t e = text.find("```", start);
    if (e == std::string::npos) break;
    ModelAnswer f;
    f.sql = clean_sql(text.substr(start, e - start));
    if (f.sql.empty()) break;
    f.explanation = trim(trim(text.substr(0, b)) + " " + trim(text.substr(e + 3)));
    return f;
  }
  if (!a) *why = "the answer is neither a JSON object {\"sql\": ..., \"explanation\": ...} nor a ```sql block";
  return std::nullopt;
}

std::string strip_values(const std::string& error, const std::string& sql) {
  std::string out;
  size_t i = 0;
  while (i < error.size()) {
    if (error[i] != '\'') {
      out += error[i++];
      continue;
    }
    size_t e = error.find('\'', i + 1);
    if (e == std::string::npos) {
      out += error.substr(i);
      break;
    }
    const std::string literal = error.substr(i, e - i + 1);
    // Kept when the model wrote it itself (a function, table or literal of its SQL).
    const std::string inner = literal.substr(1, literal.size() - 2);
    out += inner.empty() || sql.find(inner) != std::string::npos ? literal : "'…'";
    i = e + 1;
  }
  return out;
}

}  // namespace bf::nl
