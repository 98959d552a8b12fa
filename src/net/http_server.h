#pragma once
// HTTP/1.1 server on Boost.Beast: a small router, body size limits, timeouts,
// keep-alive, optional TLS. Handlers run on the server's thread pool and may block
// (the receiver fsyncs before answering).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/http.h"
#include "net/tls.h"

namespace bf {

class ConfigNode;
class MetricsRegistry;

using HttpHandler = std::function<HttpResponse(HttpRequest&)>;

class Router {
 public:
  // Pattern segments "{name}" match one path segment into request.params[name].
  void add(const std::string& method, const std::string& pattern, HttpHandler handler);
  // Answers requests whose path no route matches (instead of the 404), e.g. a
  // single-page app's files and its fallback to index.html.
  void set_fallback(HttpHandler handler) { fallback_ = std::move(handler); }
  // 404 (or the fallback) for no path match, 405 (with Allow) for a path match with
  // another method.
  HttpResponse dispatch(HttpRequest& request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    HttpHandler handler;
  };
  std::vector<Route> routes_;
  HttpHandler fallback_;
};

struct HttpServerOptions {
  std::string listen = "127.0.0.1:8080";   // host:port; port 0 picks a free port
  uint64_t max_body_bytes = 16ull << 20;    // larger bodies get 413
  std::chrono::milliseconds read_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  int threads = 2;
  // Open connections at most; one more is answered 503 (Retry-After, Connection: close)
  // and closed. Connections also draw on the process-wide ConnectionBudget.
  int max_connections = 1024;
  // tls.cert_file and tls.key_file set: serve HTTPS (client certificates per
  // tls.client_auth; refused handshakes counted in bf_tls_handshake_failures_total).
  TlsServerOptions tls;
};
// Reads listen, max_body, read_timeout, idle_timeout, threads, max_connections,
// tls.cert_file, tls.key_file.
HttpServerOptions parse_http_server_options(const ConfigNode& node, HttpServerOptions defaults);

class HttpServer {
 public:
  // `name` labels the server's metrics (bf_http_requests_total{server=...}).
  HttpServer(std::string name, HttpServerOptions options, Router router);
  ~HttpServer();
  void start();   // binds and starts serving; throws std::runtime_error if bind fails
  void stop();    // stops accepting, closes connections, joins threads
  uint16_t port() const;  // the bound port (useful with port 0)
  size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Adds GET /healthz (always 200 while serving), /readyz (200 when ready() is true,
// else 503) and /metrics (Prometheus text of the process registry).
void add_standard_endpoints(Router& router, std::function<bool()> ready);

}  // namespace bf
