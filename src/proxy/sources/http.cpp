// http: JSON or text events over HTTP POST.
//
//   - type: http
//     listen: 0.0.0.0:8081
//     path: /                   # POST here
//     token: ""                 # when set, requests need "Authorization: Bearer <token>"
//     max_body: 16MiB           # request body as sent (compressed)
//     max_decompressed: 64MiB   # after Content-Encoding gzip/zstd
//     max_events: 100000        # events in one body; more -> 413 too_many_events
//     threads, read_timeout, idle_timeout, max_connections (HTTP server)
//     tls: {cert_file, key_file, ca_file, client_auth, min_version}   # HTTPS
//
// Body (http_body.h): one JSON object, a JSON array of objects, NDJSON, or with
// Content-Type text/plain one event per line. The request is all or nothing: any bad
// line -> 400 naming it. Accepted events are written to the proxy spool as one batch
// before the 200 {"accepted": N}.
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/compression.h"
#include "common/config.h"
#include "common/spool.h"
#include "common/time.h"
#include "net/http_server.h"
#include "proxy/sources/common.h"
#include "proxy/sources/http_body.h"

namespace bf {
namespace {

namespace json = boost::json;

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    const unsigned char y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

class HttpSource : public Source {
 public:
  HttpSource(SourceCommon common, HttpServerOptions server_options, std::string path, std::string token,
             HttpBodyLimits limits, EventSink& sink)
      : common_(std::move(common)),
        path_(std::move(path)),
        token_(std::move(token)),
        limits_(limits),
        sink_(sink),
        metrics_(common_) {
    Router router;
    router.add("POST", path_, [this](HttpRequest& r) { return handle(r); });
    server_ = std::make_unique<HttpServer>(common_.name, std::move(server_options), std::move(router));
  }
  void start() override { server_->start(); }
  void stop() override { server_->stop(); }
  std::string name() const override { return common_.name; }
  uint16_t port() const override { return server_->port(); }

 private:
  // `stage`: where the request was refused (auth, decode, spool) — the contract's errors label.
  HttpResponse reject(int status, const char* stage, const std::string& reason, const std::string& message) {
    metrics_.reject(stage, reason);
    json::object body;
    body["error"] = message;
    body["reason"] = reason;  // the `reason` label it was counted under
    return HttpResponse::json(status, json::serialize(body));
  }

  HttpResponse handle(HttpRequest& req) {
    const int64_t received_us = now_us();
    metrics_.bytes.inc(req.body.size());
    metrics_.component.received_bytes.inc(req.body.size());
    if (!token_.empty()) {
      auto auth = req.header("Authorization");
      if (!auth || !constant_time_equal(*auth, "Bearer " + token_)) {
        auto r = reject(401, "auth", "unauthorized", "missing or invalid bearer token");
        r.headers["WWW-Authenticate"] = "Bearer";
        return r;
      }
    }
    std::vector<Event> events;
    const HttpBodyError err =
        decode_http_body(req.header("Content-Encoding"), req.header("Content-Type"), req.body, limits_, events);
    if (!err.ok()) return reject(err.status, err.stage.c_str(), err.reason, err.message);
    const size_t n = events.size();
    // Refused after this (503) they are errors, not discards: the client keeps them.
    metrics_.component.received_events.inc(n);
    if (n > 0) {
      const std::string received = format_rfc3339(received_us);
      for (auto& ev : events) {
        normalize_event_time(ev, received);
        stamp_event(ev, received, common_.name, req.peer);
      }
      uint64_t bytes = 0;
      try {
        bytes = sink_.emit_durable(common_.tenant, common_.dataset, std::move(events));
      } catch (const SpoolFull& e) {
        auto r = reject(503, "spool", "spool_full", "proxy spool is full, retry later");
        r.headers["Retry-After"] = "5";
        return r;
      } catch (const std::exception& e) {
        auto r = reject(503, "spool", "spool_error", std::string("cannot store events: ") + e.what());
        r.headers["Retry-After"] = "5";
        return r;
      }
      metrics_.events.inc(n);
      metrics_.component.sent_events.inc(n);
      metrics_.component.sent_bytes.inc(bytes);
    }
    json::object resp;
    resp["accepted"] = n;
    return HttpResponse::json(200, json::serialize(resp));
  }

  SourceCommon common_;
  std::string path_;
  std::string token_;
  HttpBodyLimits limits_;
  EventSink& sink_;
  SourceMetrics metrics_;
  std::unique_ptr<HttpServer> server_;
};

struct HttpSettings {
  SourceCommon common;
  HttpServerOptions server;
  std::string path;
  std::string token;
  HttpBodyLimits limits;
};

const OptionTable<HttpSettings>& http_options() {
  static const OptionTable<HttpSettings> table = [] {
    using S = HttpSettings;
    using namespace std::chrono_literals;
    const HttpServerOptions d;
    OptionTable<S> t;
    add_source_common(t, "http", "0.0.0.0:8081", "http");
    t.string("path", &S::path, "/", "the POST path", {},
             [](const std::string& p) { return p.empty() || p[0] != '/' ? "must start with '/', got '" + p + "'" : ""; });
    t.string("token", &S::token, "", "when set, requests must carry `Authorization: Bearer <token>`");
    t.size("max_body", [](S& s) -> uint64_t& { return s.server.max_body_bytes; }, d.max_body_bytes, 1, 1ull << 40,
           "largest request body as sent (compressed); larger -> 413");
    t.size("max_decompressed", [](S& s) -> uint64_t& { return s.limits.max_decompressed; }, 64ull << 20, 1,
           1ull << 40, "largest body after `Content-Encoding` decoding; larger -> 413");
    t.integer("max_events", [](S& s) -> size_t& { return s.limits.max_events; }, 100000, 1, 1ull << 32,
              "most events in one request body; a body with more is refused whole with `413` and the JSON error "
              "reason `too_many_events` (counted in `bf_proxy_rejected_total{reason=\"too_many_events\"}`)");
    t.integer("threads", [](S& s) -> int& { return s.server.threads; }, d.threads, 1, 1024, "HTTP worker threads");
    t.duration("read_timeout", [](S& s) -> std::chrono::milliseconds& { return s.server.read_timeout; },
               d.read_timeout, 1ms, 24h, "a request must arrive whole within this (see http.md)");
    t.duration("idle_timeout", [](S& s) -> std::chrono::milliseconds& { return s.server.idle_timeout; },
               d.idle_timeout, 1ms, 24h, "a keep-alive connection idle this long is closed (see http.md)");
    t.integer("max_connections", [](S& s) -> int& { return s.server.max_connections; }, d.max_connections, 1,
              1000000, "open connections; one more gets `503` with `Retry-After`");
    add_tls_server_options(t, [](S& s) -> TlsServerOptions& { return s.server.tls; }, "requests");
    t.finally([](S& s, const ConfigNode&) { s.server.listen = s.common.listen; });
    return t;
  }();
  return table;
}

}  // namespace

SourceFactory http_source_factory() {
  return {"http", "JSON or text events over HTTP POST (object, array, NDJSON or text/plain lines; gzip/zstd accepted)",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            HttpSettings s = http_options().read(node, source_context(node, "http"));
            return std::make_unique<HttpSource>(std::move(s.common), std::move(s.server), std::move(s.path),
                                                std::move(s.token), s.limits, sink);
          },
          http_options().specs()};
}

}  // namespace bf
