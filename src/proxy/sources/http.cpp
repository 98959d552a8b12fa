// http: JSON events over HTTP POST.
//
//   - type: http
//     listen: 0.0.0.0:8081
//     path: /                   # POST here
//     token: ""                 # when set, requests need "Authorization: Bearer <token>"
//     max_body: 16MiB           # request body as sent (compressed)
//     max_decompressed: 64MiB   # after Content-Encoding gzip/zstd
//     threads, read_timeout, idle_timeout, max_connections (HTTP server)
//     tls: {cert_file, key_file, ca_file, client_auth, min_version}   # HTTPS
//
// Body: one JSON object, a JSON array of objects, or NDJSON (whitespace-separated
// objects). The request is all or nothing: any bad line -> 400 naming it. Accepted
// events are written to the proxy spool as one batch before the 200 {"accepted": N}.
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

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Adds a top-level value's events: an object, or an array of objects.
std::string take_value(json::value&& v, size_t line, std::vector<Event>& out) {
  if (v.is_object()) {
    out.push_back(std::move(v.as_object()));
    return "";
  }
  if (v.is_array()) {
    auto& a = v.as_array();
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_object())
        return "line " + std::to_string(line) + ": array element " + std::to_string(i) + " is not a JSON object";
      out.push_back(std::move(a[i].as_object()));
    }
    return "";
  }
  return "line " + std::to_string(line) + ": not a JSON object";
}

// Parses the body into events; returns an error message naming the line ("" on
// success). The body is fed to the parser one line at a time so that an error is
// reported on the line where the parser found it; top-level values may be objects or
// arrays of objects, separated by whitespace (NDJSON is the common case).
std::string parse_body(std::string_view body, std::vector<Event>& out) {
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
  json::stream_parser p;
  bool in_value = false;
  size_t value_line = 0;
  size_t line = 0;
  size_t pos = 0;
  while (pos < body.size()) {
    ++line;
    const size_t nl = body.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? body.size() : nl + 1;
    std::string_view chunk = body.substr(pos, end - pos);
    pos = end;
    while (!chunk.empty()) {
      if (!in_value) {
        while (!chunk.empty() && is_ws(chunk.front())) chunk.remove_prefix(1);
        if (chunk.empty()) break;
        p.reset();
        in_value = true;
        value_line = line;
      }
      json::error_code ec;
      const size_t n = p.write_some(chunk.data(), chunk.size(), ec);
      if (ec) return "line " + std::to_string(line) + ": invalid JSON: " + ec.message();
      chunk.remove_prefix(n);
      if (p.done()) {
        in_value = false;
        if (auto err = take_value(p.release(), value_line, out); !err.empty()) return err;
      }
    }
  }
  if (in_value) {
    json::error_code ec;
    p.finish(ec);
    if (ec) return "line " + std::to_string(line) + ": invalid JSON: " + ec.message();
    if (auto err = take_value(p.release(), value_line, out); !err.empty()) return err;
  }
  return "";
}

class HttpSource : public Source {
 public:
  HttpSource(SourceCommon common, HttpServerOptions server_options, std::string path, std::string token,
             uint64_t max_decompressed, EventSink& sink)
      : common_(std::move(common)),
        path_(std::move(path)),
        token_(std::move(token)),
        max_decompressed_(max_decompressed),
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
    return HttpResponse::error(status, message);
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
    std::string decoded;
    std::string_view body = req.body;
    if (auto ce = req.header("Content-Encoding")) {
      std::string name;
      for (char c : *ce)
        if (!is_ws(c)) name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto enc = parse_encoding(name);
      if (!enc) return reject(415, "decode", "bad_encoding", "unsupported Content-Encoding '" + *ce + "' (use gzip, zstd or identity)");
      if (*enc != Encoding::identity) {
        try {
          decoded = decompress(*enc, body, max_decompressed_);
        } catch (const DecompressTooLarge&) {
          return reject(413, "decode", "too_large",
                        "decompressed body exceeds " + std::to_string(max_decompressed_) + " bytes");
        } catch (const std::exception& e) {
          return reject(400, "decode", "bad_encoding", std::string("cannot decode ") + name + " body: " + e.what());
        }
        body = decoded;
      }
    }
    std::vector<Event> events;
    if (std::string err = parse_body(body, events); !err.empty())
      return reject(400, "decode", "bad_json", err + "; nothing from this request was accepted");
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
  uint64_t max_decompressed_;
  EventSink& sink_;
  SourceMetrics metrics_;
  std::unique_ptr<HttpServer> server_;
};

struct HttpSettings {
  SourceCommon common;
  HttpServerOptions server;
  std::string path;
  std::string token;
  uint64_t max_decompressed = 0;
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
    t.size("max_decompressed", &S::max_decompressed, 64ull << 20, 1, 1ull << 40,
           "largest body after `Content-Encoding` decoding; larger -> 413");
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
  return {"http", "JSON events over HTTP POST (object, array or NDJSON; gzip/zstd accepted)",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            HttpSettings s = http_options().read(node, source_context(node, "http"));
            return std::make_unique<HttpSource>(std::move(s.common), std::move(s.server), std::move(s.path),
                                                std::move(s.token), s.max_decompressed, sink);
          },
          http_options().specs()};
}

}  // namespace bf
