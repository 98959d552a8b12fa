#pragma once
// What goes to the model and how its reply is read (docs/ask.md#prompt).
// The prompt holds the question, the dataset's column names and types, the
// partition columns, the view names and worked examples of DuckDB SQL — and
// event values only as the sample values the account chose to share.
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bf::nl {

struct PromptSchema {
  std::string dataset;  // "account/tenant/dataset"
  std::string view;     // the dataset id (a second name of `events`)
  std::vector<std::pair<std::string, std::string>> columns;  // (name, DuckDB type); no partition columns
};

struct ColumnSamples {
  std::string column;
  std::vector<std::string> values;
};

// The partition columns every dataset view has (Hive directories of the lake).
const std::vector<std::pair<std::string, std::string>>& partition_columns();

// samples: empty unless the account sets share_sample_values.
std::string build_system_prompt(const PromptSchema& schema, const std::vector<ColumnSamples>& samples);
// The follow-up after a failed attempt. `error` is already stripped of data.
std::string build_repair_message(const std::string& error);

struct ModelAnswer {
  std::string sql;
  std::string explanation;
};
// Accepts a JSON object {"sql": ..., "explanation": ...} (also inside surrounding
// text or a ```json fence) or SQL in a ```sql fenced block. nullopt with *why set
// otherwise.
std::optional<ModelAnswer> parse_model_answer(const std::string& text, std::string* why);

// An error message as it may go back to the model: single-quoted literals whose
// text does not occur in `sql` (DuckDB quotes values in conversion errors) become '…'.
std::string strip_values(const std::string& error, const std::string& sql);

}  // namespace bf::nl
