#include "query/nl/ask_cli.h"

#include <boost/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "common/catalog.h"
#include "common/config.h"
#include "common/log.h"
#include "net/http_client.h"
#include "query/local_session.h"
#include "query/nl/ask_service.h"
#include "query/query_service.h"
#include "storage/object_store.h"
#include "storage/sql_engine.h"

namespace bf::nl {
namespace {

constexpr int kExitTruncated = 3;

void print_answer(const std::string& sql, const std::string& explanation, const SqlResult& result, bool truncated) {
  std::cout << "SQL:\n  " << sql << "\n\n";
  if (!explanation.empty()) std::cout << explanation << "\n\n";
  std::cout << result.to_table();
  if (truncated) std::cout << "(result cut at query.max_rows)\n";
}

}  // namespace

int ask_local(const std::string& config_path, const std::string& dataset, const std::string& question, bool json) {
  LocalQuerySession session(config_path);
  const auto& options = session.options;
  auto& store = session.store;
  QueryService query(options, session.catalog, store);
  AskService asker(query, store, options.max_response_bytes);
  AskResult r;
  try {
    r = asker.ask(dataset, question);
  } catch (const AskError& e) {
    std::cerr << "error: " << e.what() << "\n";
    if (!e.attempts_json.empty()) std::cerr << "attempts: " << e.attempts_json << "\n";
    return 1;
  }
  if (json) {
    std::cout << render_ask_response(r) << "\n";
  } else {
    print_answer(r.sql, r.explanation, r.outcome.result, r.outcome.truncated);
  }
  return r.outcome.truncated ? kExitTruncated : 0;
}

int ask_remote(const std::string& url, const std::string& key, const std::string& dataset, const std::string& question,
               bool json) {
  HttpClientOptions o;
  o.timeout = std::chrono::milliseconds(300000);  // the model may take two turns, then the query runs
  o.max_retries = 0;
  HttpClient client(o);
  Headers headers{{"Content-Type", "application/json"}, {"Authorization", "Bearer " + key}};
  boost::json::object body{{"dataset", dataset}, {"question", question}};
  HttpResult r = client.send("POST", url + "/api/v1/query/ask", headers, boost::json::serialize(body));
  if (r.status != 200) {
    std::cerr << "error: HTTP " << r.status << ": " << r.body << "\n";
    return 1;
  }
  if (json) {
    std::cout << r.body << "\n";
    auto doc = boost::json::parse(r.body).as_object();
    return doc.at("truncated").as_bool() ? kExitTruncated : 0;
  }
  auto doc = boost::json::parse(r.body).as_object();
  SqlResult result = sql_result_from_response(doc);
  const bool truncated = doc.at("truncated").as_bool();
  print_answer(std::string(doc.at("sql").as_string()), std::string(doc.at("explanation").as_string()), result, truncated);
  return truncated ? kExitTruncated : 0;
}

}  // namespace bf::nl
