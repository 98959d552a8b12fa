#include "query/cors.h"

#include "query/mcp/mcp_server.h"

namespace bf {

namespace {

// CORS for browser callers (the web UI's query console on control's origin): an
// allowed Origin gets its Access-Control-* headers; any other gets none, so the
// browser withholds the response. The key is a bearer token (no cookies), so CORS
// decides only which pages may use a key they hold.
// A streamed result keeps the headers through a fail() (an SQL error answered
// before the body went out), so the browser can read the error too.
class CorsStream final : public HttpStream {
 public:
  CorsStream(HttpStream& inner, Headers cors) : inner_(inner), cors_(std::move(cors)) {}
  HttpResponse& response() override { return inner_.response(); }
  bool write(std::string_view data) override { return inner_.write(data); }
  bool committed() const override { return inner_.committed(); }
  bool fail(HttpResponse replacement) override {
    for (const auto& [k, v] : cors_) replacement.headers[k] = v;
    return inner_.fail(std::move(replacement));
  }
  void trailer(const std::string& name, const std::string& value) override { inner_.trailer(name, value); }
  void abort() override { inner_.abort(); }
  bool client_gone() override { return inner_.client_gone(); }

 private:
  HttpStream& inner_;
  Headers cors_;
};

}  // namespace

HttpHandler with_cors(std::vector<std::string> origins, HttpHandler handler) {
  return [origins = std::move(origins), handler = std::move(handler)](HttpRequest& req) {
    HttpResponse r = handler(req);
    Headers cors{{"Vary", "Origin"}};
    if (auto origin = req.header("Origin"); origin && mcp::origin_allowed(*origin, origins)) {
      cors["Access-Control-Allow-Origin"] = *origin;
      cors["Access-Control-Expose-Headers"] = "X-Result-Truncated, X-Row-Count, X-Truncated-Reason, X-Elapsed-Ms";
    }
    for (const auto& [k, v] : cors) r.headers[k] = v;
    if (r.stream) {
      r.stream = [inner = std::move(r.stream), cors](HttpStream& out) {
        CorsStream wrapped(out, cors);
        inner(wrapped);
      };
    }
    return r;
  };
}

// The preflight of a cross-origin request with Authorization and a JSON body.
HttpHandler cors_preflight(std::vector<std::string> origins, std::string methods) {
  return [origins = std::move(origins), methods = std::move(methods)](HttpRequest& req) {
    auto origin = req.header("Origin");
    if (!origin || !mcp::origin_allowed(*origin, origins))
      return HttpResponse::error(403, "origin '" + origin.value_or("") + "' is not allowed (query.cors_origins)");
    HttpResponse r;
    r.status = 204;
    r.headers["Access-Control-Allow-Origin"] = *origin;
    r.headers["Access-Control-Allow-Methods"] = methods;
    r.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type";
    r.headers["Access-Control-Max-Age"] = "600";
    r.headers["Vary"] = "Origin";
    return r;
  };
}


}  // namespace bf
