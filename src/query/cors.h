#pragma once
// CORS for browser callers of the query server (the web UI's query console and
// dataset pages on control's origin; docs/api.md). Used by every route a browser
// calls: /api/v1/query, the schema and parts endpoints, /api/v1/query/ask.
#include <string>
#include <vector>

#include "net/http_server.h"

namespace bf {

// An allowed Origin gets its Access-Control-* headers on the handler's response
// (streamed ones too); any other gets none, so the browser withholds the response.
HttpHandler with_cors(std::vector<std::string> origins, HttpHandler handler);
// The preflight of a cross-origin request with Authorization and a JSON body.
HttpHandler cors_preflight(std::vector<std::string> origins, std::string methods);

}  // namespace bf
