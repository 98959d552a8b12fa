#pragma once
// The MCP endpoint (docs/mcp.md): Model Context Protocol over streamable HTTP
// (JSON-RPC 2.0), so a user's own agent can explore the tenant's data with the
// tools list_datasets, describe_dataset, query and ask. Stateless: every POST
// carries the query key (`Authorization: Bearer`), no Mcp-Session-Id is issued,
// each request is answered with one application/json body (no SSE), GET is 405.
// The tools run through the query service (the same SQL guard, limits and tenant
// scope as POST /api/v1/query) and the ask service.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bf {

class Catalog;
class ObjectStore;
class QueryService;
class Router;

namespace mcp {

// Protocol revisions this endpoint speaks, newest first.
const std::vector<std::string>& supported_protocol_versions();

struct McpOptions {
  // Browser origins allowed besides loopback ones (http(s)://localhost,
  // 127.0.0.1, [::1] on any port); "*" allows any. A request whose Origin header
  // is not allowed is refused 403 (DNS rebinding protection).
  std::vector<std::string> allowed_origins;
  uint64_t max_response_bytes = 64ull << 20;  // query.max_response_bytes
};

// True when a request with this Origin header may be served.
bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed);

// Registers POST /api/v1/mcp (and GET/DELETE answering 405) on the query router.
void add_mcp_routes(Router& router, QueryService& query, std::shared_ptr<ObjectStore> store, McpOptions options);

}  // namespace mcp
}  // namespace bf
