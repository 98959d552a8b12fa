#pragma once
// `bytefreezer ask`: one natural-language question, answered locally (--config:
// the store, catalog and accounts[].ai of a config file) or by a running query
// server (--url/--key). Prints the SQL, the explanation and the result table
// (or the API's JSON with json = true). Returns the process exit code:
// 0 ok, 1 error, 3 result cut at query.max_rows.
#include <string>

namespace bf::nl {

int ask_local(const std::string& config_path, const std::string& dataset, const std::string& question, bool json);
int ask_remote(const std::string& url, const std::string& key, const std::string& dataset, const std::string& question,
               bool json);

}  // namespace bf::nl
