#include "query/mcp/mcp_server.h"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "common/catalog.h"
#include "common/metrics.h"
#include "common/time.h"
#include "net/http_server.h"
#include "query/nl/ask_service.h"
#include "query/nl/prompt.h"
#include "query/query_service.h"
#include "storage/ledger.h"
#include "storage/object_store.h"

namespace bf::mcp {

namespace json = boost::json;

const std::vector<std::string>& supported_protocol_versions() {
  static const std::vector<std::string> versions{"2025-11-25", "2025-06-18", "2025-03-26"};
  return versions;
}

namespace {

// JSON-RPC 2.0 error codes.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;

// A request without MCP-Protocol-Version is taken as 2025-03-26 (the transport
// spec's rule for clients that predate the header).

Counter& requests(const std::string& method) {
  return metrics().counter("bf_query_mcp_requests_total", "MCP JSON-RPC messages by method", {{"method", method}});
}

Counter& refused(const char* reason) {
  return metrics().counter("bf_query_mcp_refused_total", "MCP HTTP requests refused before dispatch, by reason",
                           {{"reason", reason}});
}

Counter& tool_calls(const std::string& tool, const char* outcome) {
  return metrics().counter("bf_query_mcp_tool_calls_total", "MCP tool calls by tool and outcome",
                           {{"tool", tool}, {"outcome", outcome}});
}

HttpResponse rpc_http(int status, const json::value& id, int code, std::string_view message) {
  json::object err{{"code", code}, {"message", json::string_view(message.data(), message.size())}};
  json::object o{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}};
  return HttpResponse::json(status, json::serialize(o));
}

HttpResponse rpc_result(const json::value& id, json::value result) {
  json::object o{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
  return HttpResponse::json(200, json::serialize(o));
}

// A JSON-RPC error answered as a response to a request (HTTP 200: the transport
// worked, the method failed).
struct RpcError {
  int code;
  std::string message;
};

// The result of a tool that failed: the agent reads the message and may try again.
json::object tool_error(std::string_view message) {
  json::array content{json::object{{"type", "text"}, {"text", json::string_view(message.data(), message.size())}}};
  return json::object{{"content", std::move(content)}, {"isError", true}};
}

json::object tool_text(std::string text) {
  json::array content{json::object{{"type", "text"}, {"text", std::move(text)}}};
  return json::object{{"content", std::move(content)}, {"isError", false}};
}

// One tool of tools/list; `properties` is the JSON of inputSchema.properties.
json::object tool(const char* name, const char* title, const char* description, std::string_view properties,
                  std::string_view required, bool open_world) {
  const std::string input = std::string(R"({"type":"object","properties":)") + std::string(properties) +
                            (required.empty() ? "" : ",\"required\":" + std::string(required)) +
                            ",\"additionalProperties\":false}";
  return json::object{{"name", name},
                      {"title", title},
                      {"description", description},
                      {"inputSchema", json::parse(input)},
                      {"annotations", json::object{{"readOnlyHint", true}, {"openWorldHint", open_world}}}};
}

json::array tool_list() {
  constexpr std::string_view kDataset = R"J("dataset":{"type":"string","description":"dataset id (or TENANT/DATASET)"})J";
  json::array tools;
  tools.push_back(tool("list_datasets", "List datasets",
                       "The datasets this key may query (one tenant's), with their committed Parquet parts and row "
                       "counts. Pass a dataset's id to describe_dataset, query or ask.",
                       "{}", "", false));
  tools.push_back(tool("describe_dataset", "Describe a dataset",
                       "Columns and DuckDB types of a dataset's committed data (every part reads with these columns), "
                       "its partition columns and the views SQL can name (events, and the dataset's id).",
                       "{" + std::string(kDataset) + "}", R"(["dataset"])", false));
  tools.push_back(tool(
      "query", "Run SQL",
      "Runs one read-only DuckDB SELECT on a dataset: the dataset is the view `events` (also its own id). Rows are "
      "capped at the server's query.max_rows (the result says truncated) and the server's time and size limits "
      "apply. File, catalog and settings functions are refused. Optional from/to (RFC 3339 with a zone) restrict "
      "_time and skip partitions outside the range.",
      "{" + std::string(kDataset) +
          R"J(,"sql":{"type":"string","description":"one SELECT statement over the view events"},"from":{"type":"string","description":"only events with _time >= this (RFC 3339)"},"to":{"type":"string","description":"only events with _time < this (RFC 3339)"}})J",
      R"(["dataset","sql"])", false));
  tools.push_back(tool("ask", "Ask in plain language",
                       "Answers a question about a dataset through the account's own AI model: it writes the SQL, "
                       "which runs like the query tool. Returns the SQL, an explanation and the rows. Needs the "
                       "account's ai: provider.",
                       "{" + std::string(kDataset) + R"(,"question":{"type":"string"}})", R"(["dataset","question"])",
                       true));
  return tools;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool is_loopback_origin(std::string_view origin) {
  std::string o = lower(origin);
  for (std::string_view scheme : {"http://", "https://"}) {
    if (o.rfind(scheme, 0) != 0) continue;
    std::string_view host = std::string_view(o).substr(scheme.size());
    if (host.find('/') != std::string_view::npos) return false;  // an origin has no path
    // Host with an optional :port.
    auto host_is = [&](std::string_view name) {
      if (host.substr(0, name.size()) != name) return false;
      std::string_view rest = host.substr(name.size());
      if (rest.empty()) return true;
      if (rest.front() != ':' || rest.size() < 2) return false;
      return std::all_of(rest.begin() + 1, rest.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    return host_is("localhost") || host_is("127.0.0.1") || host_is("[::1]");
  }
  return false;
}

}  // namespace

bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed) {
  if (is_loopback_origin(origin)) return true;
  const std::string o = lower(origin);
  for (const auto& a : allowed)
    if (a == "*" || lower(a) == o) return true;
  return false;
}

namespace {

class Endpoint {
 public:
  // Datasets and keys come from query.catalog(), looked up afresh per request.
  Endpoint(QueryService& query, std::shared_ptr<ObjectStore> store, McpOptions options)
      : query_(query),
        store_(std::move(store)),
        options_(std::move(options)),
        ask_(query_, store_, options_.max_response_bytes) {}

  HttpResponse post(HttpRequest& req) {
    // Order: origin (a browser page must learn nothing), key, then the protocol.
    if (auto origin = req.header("Origin"); origin && !origin_allowed(*origin, options_.allowed_origins)) {
      refused("origin").inc();
      return rpc_http(403, nullptr, kInvalidRequest,
                      "origin '" + *origin + "' is not allowed (query.mcp.allowed_origins)");
    }
    HttpResponse refusal;
    auto grant = authenticate_query_request(req, *query_.catalog(), refusal);
    if (!grant) {
      refused("auth").inc();
      return refusal;
    }
    // Without the header the client predates it (2025-03-26); every
    // revision we speak answers the same way, so only an unknown one matters.
    if (auto v = req.header("MCP-Protocol-Version")) {
      const auto& known = supported_protocol_versions();
      if (std::find(known.begin(), known.end(), *v) == known.end()) {
        refused("protocol_version").inc();
        return rpc_http(400, nullptr, kInvalidRequest, "unsupported MCP-Protocol-Version '" + *v + "' (supported: " +
                                                           join_versions() + ")");
      }
    }
    auto type = req.header("Content-Type");
    if (!type || lower(*type).rfind("application/json", 0) != 0) {
      refused("content_type").inc();
      return rpc_http(415, nullptr, kInvalidRequest, "Content-Type must be application/json");
    }
    json::value msg;
    try {
      msg = json::parse(req.body);
    } catch (const std::exception& e) {
      requests("invalid").inc();
      return rpc_http(400, nullptr, kParseError, std::string("parse error: ") + e.what());
    }
    if (msg.is_array()) {
      requests("invalid").inc();
      return rpc_http(400, nullptr, kInvalidRequest, "JSON-RPC batches are not supported (MCP 2025-06-18 and later)");
    }
    if (!msg.is_object()) {
      requests("invalid").inc();
      return rpc_http(400, nullptr, kInvalidRequest, "a JSON-RPC message must be an object");
    }
    const json::object& o = msg.get_object();
    const json::value* jsonrpc = o.if_contains("jsonrpc");
    if (!jsonrpc || !jsonrpc->is_string() || jsonrpc->get_string() != "2.0") {
      requests("invalid").inc();
      return rpc_http(400, nullptr, kInvalidRequest, "\"jsonrpc\" must be \"2.0\"");
    }
    const json::value* id = o.if_contains("id");
    const json::value* method = o.if_contains("method");
    if (!method) {
      // A response to a request of ours (we send none) or garbage: accepted, nothing to answer.
      if (id && (o.contains("result") || o.contains("error"))) {
        requests("response").inc();
        return accepted();
      }
      requests("invalid").inc();
      return rpc_http(400, nullptr, kInvalidRequest, "a JSON-RPC message needs \"method\"");
    }
    if (!method->is_string()) {
      requests("invalid").inc();
      return rpc_http(400, id ? *id : json::value(nullptr), kInvalidRequest, "\"method\" must be a string");
    }
    const std::string name(method->get_string());
    if (!id) {  // a notification: notifications/initialized, notifications/cancelled, ...
      requests(name.rfind("notifications/", 0) == 0 ? name : "other_notification").inc();
      return accepted();
    }
    if (!(id->is_string() || id->is_int64() || id->is_uint64())) {
      requests("invalid").inc();
      return rpc_http(400, nullptr, kInvalidRequest, "\"id\" must be a string or an integer");
    }
    static const std::vector<std::string> known{"initialize", "ping", "tools/list", "tools/call"};
    requests(std::find(known.begin(), known.end(), name) != known.end() ? name : "unknown").inc();
    const json::value* params = o.if_contains("params");
    if (params && !params->is_object()) return rpc_http(200, *id, kInvalidParams, "\"params\" must be an object");
    static const json::object empty;
    const json::object& p = params ? params->get_object() : empty;
    try {
      if (name == "initialize") return rpc_result(*id, initialize(p));
      if (name == "ping") return rpc_result(*id, json::object{});
      if (name == "tools/list") return rpc_result(*id, json::object{{"tools", tool_list()}});
      if (name == "tools/call") return rpc_result(*id, call(p, *grant));
      return rpc_http(200, *id, kMethodNotFound, "method '" + name + "' is not supported by this server");
    } catch (const RpcError& e) {
      return rpc_http(200, *id, e.code, e.message);
    } catch (const std::exception& e) {
      spdlog::error("query mcp: {} failed: {}", name, e.what());
      return rpc_http(200, *id, kInternalError, std::string("internal error: ") + e.what());
    }
  }

 private:
  QueryService& query_;
  std::shared_ptr<ObjectStore> store_;
  McpOptions options_;
  nl::AskService ask_;

  static HttpResponse accepted() {
    HttpResponse r;
    r.status = 202;
    return r;
  }

  static std::string join_versions() {
    std::string s;
    for (const auto& v : supported_protocol_versions()) s += (s.empty() ? "" : ", ") + v;
    return s;
  }

  json::object initialize(const json::object& p) {
    const auto& known = supported_protocol_versions();
    // Negotiation: the client's revision when we speak it, else our newest (the
    // client then decides whether it can go on).
    std::string version = known.front();
    if (auto* v = p.if_contains("protocolVersion"); v && v->is_string()) {
      const std::string asked(v->get_string());
      if (std::find(known.begin(), known.end(), asked) != known.end()) version = asked;
    } else {
      throw RpcError{kInvalidParams, "initialize needs params.protocolVersion (a string)"};
    }
    return json::object{
        {"protocolVersion", version},
        {"capabilities", json::object{{"tools", json::object{{"listChanged", false}}}}},
        {"serverInfo", json::object{{"name", "bytefreezer-query"}, {"title", "ByteFreezer query"}, {"version", "0.1.0"}}},
        {"instructions",
         "Telemetry datasets of one tenant, stored as Parquet and queried with DuckDB SQL. Start with "
         "list_datasets, then describe_dataset for the columns, then query (one SELECT over the view events) "
         "or ask (a plain-language question answered through the account's AI model)."}};
  }

  // The caller's dataset named by `spec` ("dataset", "tenant/dataset" or
  // "account/tenant/dataset"); nullopt for anything outside the key's tenant, so
  // another tenant's dataset is indistinguishable from one that does not exist.
  std::optional<DatasetRef> visible(const std::string& spec, const KeyGrant& grant) const {
    std::vector<std::string> parts;
    size_t start = 0;
    for (;;) {
      const size_t slash = spec.find('/', start);
      parts.push_back(spec.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    DatasetRef ref{grant.account, grant.tenant, parts.back()};
    if (parts.size() == 2 && parts[0] != grant.tenant) return std::nullopt;
    if (parts.size() == 3 && (parts[0] != grant.account || parts[1] != grant.tenant)) return std::nullopt;
    if (parts.size() > 3) return std::nullopt;
    if (!query_.catalog()->find(ref)) return std::nullopt;
    return ref;
  }

  static std::optional<std::string> string_arg(const json::object& args, const char* name) {
    auto* v = args.if_contains(name);
    if (!v || !v->is_string()) return std::nullopt;
    return std::string(v->get_string());
  }

  json::object call(const json::object& p, const KeyGrant& grant) {
    auto* n = p.if_contains("name");
    if (!n || !n->is_string()) throw RpcError{kInvalidParams, "tools/call needs params.name (a string)"};
    const std::string tool(n->get_string());
    static const std::vector<std::string> tools{"list_datasets", "describe_dataset", "query", "ask"};
    if (std::find(tools.begin(), tools.end(), tool) == tools.end())
      throw RpcError{kInvalidParams, "unknown tool '" + tool + "' (tools/list names the tools)"};
    static const json::object none;
    const json::value* a = p.if_contains("arguments");
    if (a && !a->is_object() && !a->is_null()) {
      tool_calls(tool, "error").inc();
      return tool_error("arguments must be an object");
    }
    const json::object& args = a && a->is_object() ? a->get_object() : none;
    try {
      json::object result = run_tool(tool, args, grant);
      tool_calls(tool, result.at("isError").as_bool() ? "error" : "ok").inc();
      return result;
    } catch (const QueryError& e) {
      tool_calls(tool, "error").inc();
      return tool_error(e.what());
    }
  }

  json::object run_tool(const std::string& tool, const json::object& args, const KeyGrant& grant) {
    if (tool == "list_datasets") return tool_text(json::serialize(list_datasets(grant)));
    auto spec = string_arg(args, "dataset");
    if (!spec) return tool_error("argument 'dataset' (a string) is required; list_datasets names them");
    auto ref = visible(*spec, grant);
    if (!ref) return tool_error("no dataset '" + *spec + "' visible to this key; list_datasets names the tenant's datasets");
    if (tool == "describe_dataset") return tool_text(json::serialize(describe(*ref)));
    if (tool == "query") {
      auto sql = string_arg(args, "sql");
      if (!sql) return tool_error("argument 'sql' (a string) is required");
      QueryRequest request;
      request.dataset = ref->str();
      request.sql = *sql;
      for (const char* name : {"from", "to"}) {
        auto* v = args.if_contains(name);
        if (!v || v->is_null()) continue;
        std::optional<int64_t> us;
        if (v->is_string()) us = parse_rfc3339(std::string(v->get_string()), /*require_offset=*/true);
        if (!us)
          return tool_error(std::string("argument '") + name +
                            "' must be an RFC 3339 time with a zone, e.g. \"2026-01-02T03:00:00Z\"");
        (std::string_view(name) == "from" ? request.from_us : request.to_us) = *us;
      }
      QueryOutcome out = query_.run(request);
      return tool_text(render_outcome(out));
    }
    // ask
    auto question = string_arg(args, "question");
    if (!question || question->find_first_not_of(" \t\r\n") == std::string::npos)
      return tool_error("argument 'question' (a non-empty string) is required");
    try {
      return tool_text(nl::render_ask_response(ask_.ask(ref->str(), *question)));
    } catch (const nl::AskError& e) {
      std::string message = e.what();
      if (!e.attempts_json.empty()) message += "\nattempts: " + e.attempts_json;
      return tool_error(message);
    }
  }

  json::array list_datasets(const KeyGrant& grant) const {
    json::array out;
    const auto catalog = query_.catalog();
    for (const auto& info : catalog->datasets()) {
      if (info.ref.account != grant.account || info.ref.tenant != grant.tenant) continue;
      const auto parts = committed_parts(*store_, info.ref);
      uint64_t rows = 0;
      for (const auto& part : parts) rows += part.rows;
      out.push_back(json::object{{"dataset", info.ref.dataset},
                                 {"name", info.ref.tenant + "/" + info.ref.dataset},
                                 {"parts", parts.size()},
                                 {"rows", rows}});
    }
    return out;
  }

  json::object describe(const DatasetRef& ref) {
    const auto parts = committed_parts(*store_, ref);
    uint64_t rows = 0;
    for (const auto& part : parts) rows += part.rows;
    json::object out{{"dataset", ref.dataset}, {"parts", parts.size()}, {"rows", rows}};
    json::array views{"events"};
    if (ref.dataset != "events") views.push_back(json::value(ref.dataset));
    out["views"] = std::move(views);
    json::array columns, partitions;
    if (!parts.empty()) {
      QueryOutcome d = query_.run(ref.str(), "DESCRIBE events");
      for (const auto& row : d.result.rows) {
        if (row.size() < 2 || !row[0] || !row[1]) continue;
        bool partition = false;
        for (const auto& [name, type] : nl::partition_columns()) partition = partition || name == *row[0];
        (partition ? partitions : columns).push_back(json::object{{"name", *row[0]}, {"type", *row[1]}});
      }
    }
    out["columns"] = std::move(columns);
    out["partition_columns"] = std::move(partitions);
    if (parts.empty()) out["note"] = "no committed data yet";
    return out;
  }

  static std::string render_outcome(const QueryOutcome& out) {
    json::array columns;
    for (size_t i = 0; i < out.result.columns.size(); ++i)
      columns.push_back(json::object{{"name", out.result.columns[i]}, {"type", out.result.types[i]}});
    std::string text = "{\"columns\":" + json::serialize(columns) + ",\"rows\":";
    out.result.append_json(text);
    text += ",\"row_count\":" + std::to_string(out.result.rows.size());
    text += std::string(",\"truncated\":") + (out.truncated ? "true" : "false");
    text += std::string(",\"truncated_reason\":") + (out.truncated ? "\"max_rows\"" : "null");
    text += ",\"elapsed_ms\":" + std::to_string(static_cast<int64_t>(out.elapsed_ms + 0.5)) + "}";
    return text;
  }
};

}  // namespace

void add_mcp_routes(Router& router, QueryService& query, std::shared_ptr<ObjectStore> store, McpOptions options) {
  auto endpoint = std::make_shared<Endpoint>(query, std::move(store), std::move(options));
  router.add("POST", "/api/v1/mcp", [endpoint](HttpRequest& req) { return endpoint->post(req); });
  // No server-initiated SSE stream and no sessions to end: 405 tells the client so.
  auto not_offered = [](HttpRequest& req) {
    auto r = HttpResponse::error(405, req.method + " is not offered on /api/v1/mcp: POST JSON-RPC messages (no SSE "
                                                   "stream, no sessions)");
    r.headers["Allow"] = "POST";
    return r;
  };
  router.add("GET", "/api/v1/mcp", not_offered);
  router.add("DELETE", "/api/v1/mcp", not_offered);
}

}  // namespace bf::mcp
