// HTTP/1.1 server on Boost.Beast. Beast and Asio stay inside this file.
//
// Threading: one io_context run by `threads` threads. Each connection is a C++20
// coroutine on its own strand; the handler runs synchronously inside that coroutine,
// so a blocking handler occupies one pool thread and nothing else.
//
// Timeouts: while a keep-alive connection waits for the first byte of the next request
// the idle timeout applies (expiry is a normal close); from the first byte until the
// request is complete — and while writing the response — the read timeout applies
// (expiry is counted as an error of kind "timeout"). Both are absolute deadlines, so a
// client that trickles a header a byte at a time (slowloris) is cut at read_timeout.
//
// Streamed bodies (HttpResponse::stream): the producer runs on the connection's
// pool thread like a handler; what it writes is kept until 64 KiB, then the head goes
// out with Transfer-Encoding: chunked and the body follows in chunks. Those writes
// are synchronous sends on the socket's descriptor, each bounded by read_timeout
// (no asynchronous operation is pending on the connection meanwhile); TLS and
// HTTP/1.0 connections get the whole body at the end instead. Whether the client
// has gone is a zero-timeout poll for POLLRDHUP on the same descriptor.
//
// Limits: at most max_connections open connections per server, each also holding a
// slot of the process-wide ConnectionBudget; one more is answered 503 with Retry-After
// and closed (TLS servers close it at once: there is no cheap way to answer). When
// accept() itself fails for lack of descriptors, the spare descriptor takes the pending
// connections off the backlog and refuses them the same way, then the loop backs off.
#include "net/http_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <new>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/worker.h"
#include "net/acceptor.h"
#include "net/conn_limits.h"
#include "net/listeners.h"
#include "net/tls_context.h"

namespace bf {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes (and '+' as space when plus_as_space). False on a bad escape.
bool percent_decode(std::string_view in, bool plus_as_space, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

// "/a/b/c" -> {"a","b","c"}; "/" -> {""}. The leading '/' is optional.
std::vector<std::string_view> split_segments(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  for (;;) {
    const size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// Parses "a=1&b=x%20y" into `out`. The first occurrence of a key wins.
bool parse_query(std::string_view query, std::map<std::string, std::string>& out) {
  std::string key, value;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    if (!percent_decode(pair.substr(0, eq), true, key)) return false;
    if (eq == std::string_view::npos) {
      value.clear();
    } else if (!percent_decode(pair.substr(eq + 1), true, value)) {
      return false;
    }
    out.emplace(key, value);
  }
  return true;
}

bool is_param_segment(std::string_view seg) {
  return seg.size() >= 3 && seg.front() == '{' && seg.back() == '}';
}

}  // namespace

// ---------------------------------------------------------------------------------
// Router

void Router::add(const std::string& method, const std::string& pattern, HttpHandler handler) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern '" + pattern + "' must start with '/'");
  }
  if (method.empty()) throw std::invalid_argument("route '" + pattern + "' has an empty method");
  if (!handler) throw std::invalid_argument("route " + method + " " + pattern + " has no handler");
  Route r;
  r.method = method;
  for (auto seg : split_segments(pattern)) r.segments.emplace_back(seg);
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

HttpResponse Router::dispatch(HttpRequest& request) const {
  // Match on the raw (still percent-encoded) path when we have it, so that an encoded
  // '/' inside a parameter does not split segments; decode each segment afterwards.
  std::string_view raw = request.target;
  bool encoded = true;
  if (raw.empty()) {
    raw = request.path;
    encoded = false;
  } else {
    raw = raw.substr(0, raw.find('?'));
  }
  std::vector<std::string> segments;
  for (auto seg : split_segments(raw)) {
    if (!encoded) {
      segments.emplace_back(seg);
      continue;
    }
    std::string decoded;
    if (!percent_decode(seg, false, decoded)) {
      return HttpResponse::error(400, "invalid percent-encoding in path");
    }
    segments.push_back(std::move(decoded));
  }

  std::vector<std::string> allowed;
  const Route* get_route = nullptr;  // a GET route serves HEAD when no HEAD route exists
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    bool match = true;
    for (size_t i = 0; i < segments.size() && match; ++i) {
      const auto& pat = route.segments[i];
      if (is_param_segment(pat)) {
        match = !segments[i].empty();
      } else {
        match = pat == segments[i];
      }
    }
    if (!match) continue;
    auto fill_params = [&](const Route& r) {
      request.params.clear();
      for (size_t i = 0; i < segments.size(); ++i) {
        const auto& pat = r.segments[i];
        if (is_param_segment(pat)) request.params[pat.substr(1, pat.size() - 2)] = segments[i];
      }
    };
    if (route.method == request.method) {
      fill_params(route);
      return route.handler(request);
    }
    if (route.method == "GET" && request.method == "HEAD" && !get_route) get_route = &route;
    if (std::find(allowed.begin(), allowed.end(), route.method) == allowed.end()) {
      allowed.push_back(route.method);
    }
  }
  if (get_route) {
    request.params.clear();
    for (size_t i = 0; i < segments.size(); ++i) {
      const auto& pat = get_route->segments[i];
      if (is_param_segment(pat)) request.params[pat.substr(1, pat.size() - 2)] = segments[i];
    }
    return get_route->handler(request);
  }
  if (allowed.empty()) {
    if (fallback_) {
      request.params.clear();
      return fallback_(request);
    }
    return HttpResponse::error(404, "no route for " + request.path);
  }
  std::string allow;
  for (const auto& m : allowed) {
    if (!allow.empty()) allow += ", ";
    allow += m;
  }
  auto resp = HttpResponse::error(405, "method " + request.method + " not allowed for " +
                                           request.path + " (allowed: " + allow + ")");
  resp.headers["Allow"] = allow;
  return resp;
}

// ---------------------------------------------------------------------------------
// Options

HttpServerOptions parse_http_server_options(const ConfigNode& node, HttpServerOptions defaults) {
  HttpServerOptions o = std::move(defaults);
  o.listen = node.str("listen", o.listen);
  try {
    split_host_port(o.listen);
  } catch (const std::invalid_argument& e) {
    node.fail("listen", e.what());
  }
  o.max_body_bytes = node.bytes("max_body", o.max_body_bytes);
  if (o.max_body_bytes == 0) node.fail("max_body", "must be greater than 0");
  o.read_timeout = node.duration("read_timeout", o.read_timeout);
  if (o.read_timeout.count() <= 0) node.fail("read_timeout", "must be greater than 0");
  o.idle_timeout = node.duration("idle_timeout", o.idle_timeout);
  if (o.idle_timeout.count() <= 0) node.fail("idle_timeout", "must be greater than 0");
  const int64_t threads = node.integer("threads", o.threads);
  if (threads < 1 || threads > 1024) node.fail("threads", "must be between 1 and 1024");
  o.threads = static_cast<int>(threads);
  const int64_t max_conns = node.integer("max_connections", o.max_connections);
  if (max_conns < 1 || max_conns > 1000000) node.fail("max_connections", "must be between 1 and 1000000");
  o.max_connections = static_cast<int>(max_conns);
  if (node.has("tls")) {
    ConfigNode tls = node.child("tls");
    o.tls.cert_file = tls.str("cert_file", o.tls.cert_file);
    o.tls.key_file = tls.str("key_file", o.tls.key_file);
    if (o.tls.cert_file.empty() != o.tls.key_file.empty()) {
      tls.fail(o.tls.cert_file.empty() ? "cert_file" : "key_file",
               "tls.cert_file and tls.key_file must be set together");
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------
// Server

namespace {

// What a counted connection holds: its place in the server's max_connections and its
// slot in the process-wide budget; both are given back when the connection object dies.
struct ConnSlot {
  std::atomic<int64_t>* open = nullptr;
  Gauge* gauge = nullptr;
  BudgetSlot budget;
  ConnSlot() = default;
  ConnSlot(std::atomic<int64_t>* o, Gauge* g, BudgetSlot b) : open(o), gauge(g), budget(std::move(b)) {}
  ConnSlot(ConnSlot&& other) noexcept
      : open(std::exchange(other.open, nullptr)), gauge(other.gauge), budget(std::move(other.budget)) {}
  ConnSlot& operator=(ConnSlot&& other) noexcept {
    if (this != &other) {
      give_back();
      open = std::exchange(other.open, nullptr);
      gauge = other.gauge;
      budget = std::move(other.budget);
    }
    return *this;
  }
  ~ConnSlot() { give_back(); }
  void give_back() {
    if (open) gauge->set(open->fetch_sub(1) - 1);
    open = nullptr;
    budget.reset();
  }
};

struct ConnBase {
  virtual ~ConnBase() = default;
  virtual void close() = 0;  // thread-safe: posts the close onto the connection's strand
  ConnSlot slot;
};

template <class Stream>
struct Conn : ConnBase, std::enable_shared_from_this<Conn<Stream>> {
  template <class... Args>
  explicit Conn(Args&&... args) : stream(std::forward<Args>(args)...) {}
  void close() override {
    asio::post(stream.get_executor(), [self = this->shared_from_this()] {
      beast::error_code ec;
      auto& sock = beast::get_lowest_layer(self->stream).socket();
      sock.shutdown(tcp::socket::shutdown_both, ec);
      sock.close(ec);
    });
  }
  Stream stream;
};

template <class Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, beast::tcp_stream>;

enum class ErrorKind { kTooLarge, kTimeout, kBadRequest, kHandlerException, kResourceExhausted };

enum class RefuseReason { kMaxConnections, kProcessLimit, kNoFds };

std::string busy_response(std::string_view message, int retry_after_s) {
  std::string body = "{\"error\":\"";
  body += message;  // plain ASCII, no quotes: built below from names and numbers
  body += "\"}";
  return "HTTP/1.1 503 Service Unavailable\r\nServer: bytefreezer\r\nContent-Type: application/json\r\n"
         "Retry-After: " + std::to_string(retry_after_s) + "\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}


std::string endpoint_string(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  if (addr.is_v6()) {
    const auto v6 = addr.to_v6();
    if (v6.is_v4_mapped()) {
      return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string() + ":" +
             std::to_string(ep.port());
    }
    return "[" + v6.to_string() + "]:" + std::to_string(ep.port());
  }
  return addr.to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

struct HttpServer::Impl {
  Impl(std::string n, HttpServerOptions o, Router r)
      : name(std::move(n)),
        opts(std::move(o)),
        router(std::move(r)),
        acceptor(asio::make_strand(ioc)) {
    auto& reg = metrics();
    const char* help = "HTTP request errors by kind";
    errors[0] = &reg.counter("bf_http_request_errors_total", help, {{"server", name}, {"kind", "too_large"}});
    errors[1] = &reg.counter("bf_http_request_errors_total", help, {{"server", name}, {"kind", "timeout"}});
    errors[2] = &reg.counter("bf_http_request_errors_total", help, {{"server", name}, {"kind", "bad_request"}});
    errors[3] = &reg.counter("bf_http_request_errors_total", help,
                             {{"server", name}, {"kind", "handler_exception"}});
    errors[4] = &reg.counter("bf_http_request_errors_total", help,
                             {{"server", name}, {"kind", "resource_exhausted"}});
    const char* rhelp = "HTTP connections refused at accept (answered 503 or closed), by reason";
    refused[0] = &reg.counter("bf_http_connections_rejected_total", rhelp, {{"server", name}, {"reason", "max_connections"}});
    refused[1] = &reg.counter("bf_http_connections_rejected_total", rhelp, {{"server", name}, {"reason", "process_limit"}});
    refused[2] = &reg.counter("bf_http_connections_rejected_total", rhelp, {{"server", name}, {"reason", "no_fds"}});
    accepted = &reg.counter("bf_http_connections_total", "HTTP connections accepted and served", {{"server", name}});
    open_gauge = &reg.gauge("bf_http_connections_active", "Open HTTP connections", {{"server", name}});
    for (auto& c : requests_by_code) c.store(nullptr, std::memory_order_relaxed);
  }

  void count_error(ErrorKind k) { errors[static_cast<int>(k)]->inc(); }
  Counter& tls_handshake_failures(const char* reason) {
    return metrics().counter("bf_tls_handshake_failures_total", "TLS handshakes a server refused or that failed",
                             {{"listener", name}, {"reason", reason}});
  }
  void count_refused(RefuseReason r, uint64_t n = 1) { refused[static_cast<int>(r)]->inc(n); }
  Counter& accept_errors(const char* error) {
    return metrics().counter("bf_http_accept_errors_total", "accept() failures on an HTTP server's socket",
                             {{"server", name}, {"error", error}});
  }

  void count_response(int code) {
    if (code < 100 || code > 599) code = 599;
    auto& slot = requests_by_code[code];
    Counter* c = slot.load(std::memory_order_acquire);
    if (!c) {
      c = &metrics().counter("bf_http_requests_total", "HTTP responses sent, by status code",
                             {{"server", name}, {"code", std::to_string(code)}});
      slot.store(c, std::memory_order_release);
    }
    c->inc();
  }

  // Registers a connection so stop() can close it. False if the server is stopping.
  bool register_conn(uint64_t& id, const std::shared_ptr<ConnBase>& conn) {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping.load()) return false;
    id = next_conn_id++;
    conns[id] = conn;
    return true;
  }
  void unregister_conn(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu);
    conns.erase(id);
  }
  // Holds a connection in the registry for the lifetime of its session.
  struct Registration {
    Impl* impl;
    uint64_t id = 0;
    bool registered;
    Registration(Impl* i, const std::shared_ptr<ConnBase>& conn) : impl(i), registered(i->register_conn(id, conn)) {}
    ~Registration() {
      if (registered) impl->unregister_conn(id);
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
  };

  HttpResponse handle(http::request<http::string_body>& req, const std::string& peer);

  template <class Stream>
  asio::awaitable<void> session(std::shared_ptr<Conn<Stream>> conn, std::string peer);
  template <class Stream>
  asio::awaitable<bool> write_response(Stream& stream, HttpResponse resp, unsigned version,
                                       bool keep_alive, bool head);
  template <class Stream>
  asio::awaitable<bool> stream_response(Stream& stream, HttpResponse resp, unsigned version, bool keep_alive);
  template <class Stream>
  asio::awaitable<void> close_connection(Stream& stream, bool linger);
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> on_accept_error(const beast::error_code& ec);
  void spawn_session(tcp::socket socket, ConnSlot slot);
  void refuse(tcp::socket socket, RefuseReason reason);
  asio::awaitable<void> refuse_session(std::shared_ptr<Conn<beast::tcp_stream>> conn);

  std::string name;
  HttpServerOptions opts;
  Router router;
  std::array<Counter*, 5> errors{};
  std::array<Counter*, 3> refused{};
  Counter* accepted = nullptr;
  Gauge* open_gauge = nullptr;
  std::array<std::atomic<Counter*>, 600> requests_by_code;
  std::atomic<int64_t> open_count{0};   // counted connections (max_connections)
  std::atomic<int> refusing{0};         // refusals still writing their 503
  std::string busy_reply;               // 503 for max_connections / the process budget
  std::string no_fds_reply;             // 503 when out of descriptors
  SpareFd spare;                        // touched only in accept_loop
  std::chrono::steady_clock::time_point last_fd_warning{};

  std::mutex mu;  // guards conns, next_conn_id, and the started/stopping transitions
  std::map<uint64_t, std::weak_ptr<ConnBase>> conns;
  uint64_t next_conn_id = 1;
  std::atomic<bool> stopping{false};
  bool started = false;
  bool stopped = false;
  uint16_t bound_port = 0;

  std::optional<ssl::context> tls;
  // Declared after everything a coroutine frame touches: destroying the io_context
  // destroys any frames still queued on it.
  asio::io_context ioc;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
};

HttpResponse HttpServer::Impl::handle(http::request<http::string_body>& req,
                                      const std::string& peer) {
  HttpRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  r.peer = peer;
  if (r.target.empty() || r.target.front() != '/') {
    count_error(ErrorKind::kBadRequest);
    return HttpResponse::error(400, "request target must be an absolute path");
  }
  const size_t q = r.target.find('?');
  std::string_view raw_path = std::string_view(r.target).substr(0, q);
  if (!percent_decode(raw_path, false, r.path)) {
    count_error(ErrorKind::kBadRequest);
    return HttpResponse::error(400, "invalid percent-encoding in path");
  }
  if (q != std::string::npos &&
      !parse_query(std::string_view(r.target).substr(q + 1), r.query)) {
    count_error(ErrorKind::kBadRequest);
    return HttpResponse::error(400, "invalid percent-encoding in query string");
  }
  for (const auto& field : req) {
    std::string key(field.name_string());
    auto it = r.headers.find(key);
    if (it == r.headers.end()) {
      r.headers.emplace(std::move(key), std::string(field.value()));
    } else {
      it->second += ", ";
      it->second += field.value();
    }
  }
  r.body = std::move(req.body());
  auto unavailable = [&](const char* what) {
    count_error(ErrorKind::kResourceExhausted);
    spdlog::warn("http server '{}': {} {} failed for lack of resources, answered 503: {}", name, r.method,
                 r.path, what);
    auto resp = HttpResponse::error(503, "server is short of resources (file descriptors, memory or disk); retry later");
    resp.headers["Retry-After"] = "5";
    return resp;
  };
  try {
    return router.dispatch(r);
  } catch (const std::system_error& e) {  // includes std::filesystem::filesystem_error
    if (is_resource_exhaustion(e.code())) return unavailable(e.what());
    count_error(ErrorKind::kHandlerException);
    spdlog::error("http server '{}': handler for {} {} threw: {}", name, r.method, r.path, e.what());
  } catch (const std::bad_alloc&) {
    return unavailable("out of memory");
  } catch (const std::exception& e) {
    count_error(ErrorKind::kHandlerException);
    spdlog::error("http server '{}': handler for {} {} threw: {}", name, r.method, r.path, e.what());
  } catch (...) {
    count_error(ErrorKind::kHandlerException);
    spdlog::error("http server '{}': handler for {} {} threw a non-standard exception", name,
                  r.method, r.path);
  }
  return HttpResponse::error(500, "internal server error");
}

template <class Stream>
asio::awaitable<bool> HttpServer::Impl::write_response(Stream& stream, HttpResponse resp,
                                                       unsigned version, bool keep_alive,
                                                       bool head) {
  http::response<http::string_body> res;
  res.version(version);
  res.result(static_cast<unsigned>(resp.status));
  bool handler_wants_close = false;
  for (auto& [k, v] : resp.headers) {
    if (beast::iequals(k, "Connection") && beast::iequals(v, "close")) {
      handler_wants_close = true;
      continue;
    }
    if (beast::iequals(k, "Content-Length") || beast::iequals(k, "Transfer-Encoding")) continue;
    res.set(k, v);
  }
  if (res.find(http::field::server) == res.end()) res.set(http::field::server, "bytefreezer");
  const size_t body_size = resp.body.size();
  res.body() = std::move(resp.body);
  res.prepare_payload();
  if (head) {
    res.body().clear();
    res.content_length(body_size);
  }
  keep_alive = keep_alive && !handler_wants_close && !stopping.load();
  res.keep_alive(keep_alive);
  count_response(resp.status);

  beast::get_lowest_layer(stream).expires_after(opts.read_timeout);
  auto [ec, n] = co_await http::async_write(stream, res, kUseTuple);
  (void)n;
  if (ec) {
    if (ec == beast::error::timeout) count_error(ErrorKind::kTimeout);
    co_return false;
  }
  co_return keep_alive;
}

namespace {

// HttpStream over a connection's descriptor (see the file comment).
class BodyStream final : public HttpStream {
 public:
  static constexpr size_t kCommitBytes = 64 * 1024;  // kept before the head is sent
  static constexpr size_t kChunkBytes = 32 * 1024;   // then sent in chunks of about this
  static constexpr auto kFlushAfter = std::chrono::milliseconds(200);

  BodyStream(int fd, bool can_chunk, bool keep_alive, std::chrono::milliseconds send_timeout, HttpResponse resp)
      : fd_(fd), can_chunk_(can_chunk), keep_alive_(keep_alive), send_timeout_(send_timeout), resp_(std::move(resp)) {
    resp_.stream = nullptr;
  }

  HttpResponse& response() override { return resp_; }
  bool committed() const override { return committed_; }

  bool write(std::string_view data) override {
    if (broken_) return false;
    buffer_.append(data);
    if (!committed_) {
      if (can_chunk_ && buffer_.size() >= kCommitBytes) commit();
    } else if (buffer_.size() >= kChunkBytes ||
               ((++writes_ & 63) == 0 && std::chrono::steady_clock::now() - last_flush_ >= kFlushAfter)) {
      flush();
    }
    return !broken_;
  }

  bool fail(HttpResponse replacement) override {
    if (committed_) return false;
    resp_ = std::move(replacement);
    resp_.stream = nullptr;
    buffer_ = std::move(resp_.body);
    resp_.body.clear();
    trailers_.clear();
    return true;
  }

  void trailer(const std::string& name, const std::string& value) override { trailers_.emplace_back(name, value); }

  void abort() override {
    if (committed_) aborted_ = broken_ = true;
  }

  bool client_gone() override {
    if (broken_) return true;
    pollfd p{fd_, POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  }

  // After the producer: the last chunk and the trailers. False if the body could
  // not be finished (the connection must be closed).
  bool finish() {
    if (broken_) return false;
    flush();
    std::string end = "0\r\n";
    for (const auto& [k, v] : trailers_) end += k + ": " + v + "\r\n";
    end += "\r\n";
    send_all(end);
    return !broken_;
  }

  // Not committed: the response to send as a whole, trailers as headers.
  HttpResponse take() {
    resp_.body = std::move(buffer_);
    for (auto& [k, v] : trailers_) resp_.headers[k] = v;
    resp_.headers.erase("Trailer");
    return std::move(resp_);
  }
  bool timed_out() const { return timed_out_; }

 private:
  void commit() {
    std::string head = "HTTP/1.1 " + std::to_string(resp_.status) + " " +
                       std::string(http::obsolete_reason(static_cast<http::status>(resp_.status))) + "\r\n";
    bool has_server = false;
    for (const auto& [k, v] : resp_.headers) {
      if (beast::iequals(k, "Content-Length") || beast::iequals(k, "Transfer-Encoding") ||
          beast::iequals(k, "Connection"))
        continue;
      if (beast::iequals(k, "Server")) has_server = true;
      head += k + ": " + v + "\r\n";
    }
    if (!has_server) head += "Server: bytefreezer\r\n";
    head += "Transfer-Encoding: chunked\r\n";
    if (!keep_alive_) head += "Connection: close\r\n";
    head += "\r\n";
    committed_ = true;
    send_all(head);
    flush();
  }

  void flush() {
    last_flush_ = std::chrono::steady_clock::now();
    if (buffer_.empty() || broken_) return;
    char size[24];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", buffer_.size());
    buffer_.insert(0, size, static_cast<size_t>(n));
    buffer_ += "\r\n";
    send_all(buffer_);
    buffer_.clear();
  }

  // Blocking send of all of `data`, bounded by send_timeout; a failure breaks the stream.
  void send_all(std::string_view data) {
    const auto deadline = std::chrono::steady_clock::now() + send_timeout_;
    while (!data.empty() && !broken_) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
          timed_out_ = broken_ = true;
          break;
        }
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
        continue;
      }
      broken_ = true;  // EPIPE, ECONNRESET: the client went away
    }
  }

  int fd_;
  bool can_chunk_, keep_alive_;
  std::chrono::milliseconds send_timeout_;
  HttpResponse resp_;
  std::string buffer_;
  std::vector<std::pair<std::string, std::string>> trailers_;
  bool committed_ = false, aborted_ = false, timed_out_ = false;
  std::atomic<bool> broken_{false};
  uint64_t writes_ = 0;
  std::chrono::steady_clock::time_point last_flush_{};
};

}  // namespace

template <class Stream>
asio::awaitable<bool> HttpServer::Impl::stream_response(Stream& stream, HttpResponse resp, unsigned version,
                                                        bool keep_alive) {
  auto& sock = beast::get_lowest_layer(stream).socket();
  bool handler_wants_close = false;
  if (auto c = resp.headers.find("Connection"); c != resp.headers.end() && beast::iequals(c->second, "close"))
    handler_wants_close = true;
  keep_alive = keep_alive && !handler_wants_close && !stopping.load();
  auto producer = std::move(resp.stream);
  BodyStream out(sock.native_handle(), !kIsTls<Stream> && version >= 11, keep_alive, opts.read_timeout, std::move(resp));
  try {
    producer(out);
  } catch (const std::exception& e) {
    count_error(ErrorKind::kHandlerException);
    spdlog::error("http server '{}': streamed body threw: {}", name, e.what());
    if (!out.fail(HttpResponse::error(500, "internal server error"))) out.abort();
  } catch (...) {
    count_error(ErrorKind::kHandlerException);
    if (!out.fail(HttpResponse::error(500, "internal server error"))) out.abort();
  }
  if (out.committed()) {
    count_response(out.response().status);
    const bool finished = out.finish();
    if (out.timed_out()) count_error(ErrorKind::kTimeout);
    co_return finished && keep_alive;
  }
  if (out.client_gone()) co_return false;  // nobody to answer
  co_return co_await write_response(stream, out.take(), version, keep_alive, false);
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::close_connection(Stream& stream, bool linger) {
  auto& lowest = beast::get_lowest_layer(stream);
  beast::error_code ec;
  if constexpr (kIsTls<Stream>) {
    // Send close_notify; do not wait long for the peer's.
    lowest.expires_after(std::chrono::milliseconds(500));
    auto [sec] = co_await stream.async_shutdown(kUseTuple);
    (void)sec;
  } else {
    lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (linger) {
      // The client may still be sending a body we refused; read and discard it for a
      // short while so that closing does not reset the connection before the client
      // has read our response.
      std::array<char, 16384> sink;
      lowest.expires_after(std::min<std::chrono::milliseconds>(opts.read_timeout,
                                                               std::chrono::milliseconds(2000)));
      for (;;) {
        auto [rec, n] = co_await lowest.async_read_some(asio::buffer(sink), kUseTuple);
        (void)n;
        if (rec) break;
      }
    }
  }
  lowest.socket().close(ec);
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::session(std::shared_ptr<Conn<Stream>> conn,
                                                std::string peer) {
  Registration registration(this, conn);
  if (!registration.registered) co_return;

  Stream& stream = conn->stream;
  auto& lowest = beast::get_lowest_layer(stream);

  if constexpr (kIsTls<Stream>) {
    lowest.expires_after(opts.read_timeout);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kUseTuple);
    if (ec) {
      if (ec == beast::error::timeout) {
        count_error(ErrorKind::kTimeout);
      } else if (ec != asio::error::operation_aborted) {
        count_error(ErrorKind::kBadRequest);
        tls_handshake_failures(tls_handshake_failure(ec)).inc();
        spdlog::debug("http server '{}': TLS handshake with {} failed: {}", name, peer, ec.message());
      }
      co_return;
    }
  }

  beast::flat_buffer buffer;
  for (;;) {
    if (stopping.load()) break;
    if (buffer.size() == 0) {
      // Idle: wait for the first byte of the next request.
      lowest.expires_after(opts.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kUseTuple);
      if (ec) break;  // idle timeout, peer closed, or server stopping: a normal end
      buffer.commit(n);
    }

    http::request_parser<http::string_body> parser;
    parser.body_limit(opts.max_body_bytes);
    parser.header_limit(64 * 1024);
    lowest.expires_after(opts.read_timeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kUseTuple);
    (void)n;
    if (!ec && !parser.is_done()) {
      auto& hdr = parser.get();
      auto expect = hdr.find(http::field::expect);
      if (expect != hdr.end() && beast::iequals(expect->value(), "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, hdr.version()};
        auto [wec, wn] = co_await http::async_write(stream, cont, kUseTuple);
        (void)wn;
        ec = wec;
      }
      if (!ec) {
        auto [rec, rn] = co_await http::async_read(stream, buffer, parser, kUseTuple);
        (void)rn;
        ec = rec;
      }
    }

    if (ec) {
      if (ec == http::error::body_limit) {
        count_error(ErrorKind::kTooLarge);
        auto resp = HttpResponse::error(
            413, "request body exceeds the limit of " + std::to_string(opts.max_body_bytes) + " bytes");
        co_await write_response(stream, std::move(resp), parser.get().version(), false, false);
        co_await close_connection(stream, true);
        co_return;
      }
      if (ec == beast::error::timeout) {
        count_error(ErrorKind::kTimeout);
        spdlog::debug("http server '{}': read timeout from {}", name, peer);
        break;
      }
      if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) break;
      count_error(ErrorKind::kBadRequest);
      if (ec == http::error::partial_message || ec == asio::error::eof ||
          ec == asio::error::connection_reset) {
        break;  // the client went away mid-request: nobody to answer
      }
      const int status = ec == http::error::header_limit ? 431 : 400;
      co_await write_response(stream, HttpResponse::error(status, "bad request: " + ec.message()),
                              11, false, false);
      co_await close_connection(stream, true);
      co_return;
    }

    auto req = parser.release();
    const bool keep_alive = req.keep_alive();
    const unsigned version = req.version();
    const bool head = req.method() == http::verb::head;
    HttpResponse resp = handle(req, peer);  // synchronous; may block this pool thread
    const bool keep = resp.stream && !head ? co_await stream_response(stream, std::move(resp), version, keep_alive)
                                           : co_await write_response(stream, std::move(resp), version, keep_alive, head);
    if (!keep) break;
  }
  co_await close_connection(stream, false);
}

void HttpServer::Impl::spawn_session(tcp::socket socket, ConnSlot slot) {
  beast::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  std::string peer = ec ? std::string("unknown") : endpoint_string(remote);
  auto on_done = [n = name](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("http server '{}': session failed: {}", n, ex.what());
    } catch (...) {
      spdlog::error("http server '{}': session failed", n);
    }
  };
  auto exec = socket.get_executor();
  if (tls) {
    using S = beast::ssl_stream<beast::tcp_stream>;
    auto conn = std::make_shared<Conn<S>>(std::move(socket), *tls);
    conn->slot = std::move(slot);
    asio::co_spawn(exec, session<S>(std::move(conn), std::move(peer)), on_done);
  } else {
    using S = beast::tcp_stream;
    auto conn = std::make_shared<Conn<S>>(std::move(socket));
    conn->slot = std::move(slot);
    asio::co_spawn(exec, session<S>(std::move(conn), std::move(peer)), on_done);
  }
}

// At most this many refusals write their 503 at the same time; beyond that (a flood)
// a refused connection is answered with one non-blocking send and closed at once.
constexpr int kMaxRefusing = 64;

void HttpServer::Impl::refuse(tcp::socket socket, RefuseReason reason) {
  count_refused(reason);
  beast::error_code ec;
  if (tls || refusing.load() >= kMaxRefusing) {
    // TLS: a plain-text 503 means nothing to a TLS client; close at once.
    if (tls) {
      socket.close(ec);
    } else {
      const int fd = socket.release(ec);
      if (fd >= 0) send_and_close(fd, busy_reply);
    }
    return;
  }
  ++refusing;
  auto conn = std::make_shared<Conn<beast::tcp_stream>>(std::move(socket));
  asio::co_spawn(conn->stream.get_executor(), refuse_session(conn), [this](std::exception_ptr) { --refusing; });
}

// Writes the 503, then reads and discards what the client sends for a moment so the
// close does not reset the connection before the client has read the answer.
asio::awaitable<void> HttpServer::Impl::refuse_session(std::shared_ptr<Conn<beast::tcp_stream>> conn) {
  Registration registration(this, conn);
  if (!registration.registered) co_return;
  auto& stream = conn->stream;
  stream.expires_after(std::chrono::seconds(1));
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(busy_reply), kUseTuple);
  (void)n;
  beast::error_code ignored;
  if (!ec) {
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::array<char, 4096> sink;
    for (;;) {
      auto [rec, rn] = co_await stream.async_read_some(asio::buffer(sink), kUseTuple);
      (void)rn;
      if (rec) break;
    }
  }
  stream.socket().close(ignored);
}

asio::awaitable<void> HttpServer::Impl::on_accept_error(const beast::error_code& ec) {
  const std::error_code sec = ec;
  if (!is_resource_exhaustion(sec)) {
    accept_errors("other").inc();
    spdlog::debug("http server '{}': accept failed: {}", name, ec.message());
    co_return;
  }
  accept_errors(resource_error_label(sec)).inc();
  // Take what waits in the backlog off it with the spare descriptor and refuse it,
  // so clients get an answer and the listening socket stops being readable.
  const size_t shed = spare.refuse_pending(acceptor.native_handle(), tls ? std::string_view{} : no_fds_reply, 64);
  if (shed) count_refused(RefuseReason::kNoFds, shed);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_fd_warning > std::chrono::seconds(10)) {
    last_fd_warning = now;
    spdlog::warn("http server '{}': accept failed: {} ({} open connections, {} refused now); backing off", name,
                 ec.message(), open_count.load(), shed);
  }
  // Back off instead of spinning on a socket that stays readable.
  asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
  co_await t.async_wait(kUseTuple);
}

asio::awaitable<void> HttpServer::Impl::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), kUseTuple);
    if (stopping.load() || !acceptor.is_open() || ec == asio::error::operation_aborted) break;
    if (ec) {
      co_await on_accept_error(ec);
      continue;
    }
    // Nothing that goes wrong with one connection may end the loop: it is the server.
    try {
      if (open_count.load() >= opts.max_connections) {
        refuse(std::move(socket), RefuseReason::kMaxConnections);
        continue;
      }
      BudgetSlot budget = BudgetSlot::acquire();
      if (!budget) {
        refuse(std::move(socket), RefuseReason::kProcessLimit);
        continue;
      }
      open_gauge->set(open_count.fetch_add(1) + 1);
      ConnSlot slot(&open_count, open_gauge, std::move(budget));
      accepted->inc();
      spawn_session(std::move(socket), std::move(slot));
    } catch (const std::exception& e) {
      spdlog::error("http server '{}': setting up a connection failed: {}", name, e.what());
    }
  }
}

HttpServer::HttpServer(std::string name, HttpServerOptions options, Router router)
    : impl_(std::make_unique<Impl>(std::move(name), std::move(options), std::move(router))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.started) throw std::logic_error("http server '" + s.name + "' already started");
  }
  if (s.opts.threads < 1) throw std::invalid_argument("http server '" + s.name + "': threads must be >= 1");

  if (!s.opts.tls.cert_file.empty() || !s.opts.tls.key_file.empty()) {
    if (s.opts.tls.cert_file.empty() || s.opts.tls.key_file.empty()) {
      throw std::runtime_error("http server '" + s.name +
                               "': tls cert_file and key_file must be set together");
    }
    s.tls.emplace(make_tls_server_context(s.opts.tls, "http server '" + s.name + "'"));
  }

  if (s.opts.max_connections < 1) {
    throw std::invalid_argument("http server '" + s.name + "': max_connections must be >= 1");
  }
  s.busy_reply = busy_response("server '" + s.name + "' is at its connection limit; retry later", 1);
  s.no_fds_reply = busy_response("server '" + s.name + "' is out of file descriptors; retry later", 5);
  net_detail::open_acceptor(s.acceptor, s.opts.listen, "http server '" + s.name + "'");
  ConnectionBudget::process().declare_cap("http server '" + s.name + "'", static_cast<uint64_t>(s.opts.max_connections));
  beast::error_code ec;
  s.bound_port = s.acceptor.local_endpoint(ec).port();

  asio::co_spawn(s.acceptor.get_executor(), s.accept_loop(), [n = s.name](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("http server '{}': accept loop failed: {}", n, ex.what());
    } catch (...) {
    }
  });
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.started = true;
  }
  for (int i = 0; i < s.opts.threads; ++i) {
    s.threads.emplace_back([&s] {
      set_thread_name("bf-" + s.name);  // "bf-receiver", "bf-query", "bf-control", a source's name
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http server '{}': io thread error: {}", s.name, e.what());
        } catch (...) {
          spdlog::error("http server '{}': io thread error (non-standard exception)", s.name);
        }
      }
    });
  }
  spdlog::info("http server '{}' listening on {}{}", s.name, endpoint_string(s.acceptor.local_endpoint(ec)),
               s.tls ? " (TLS)" : "");
}

void HttpServer::stop() {
  if (!impl_) return;
  Impl& s = *impl_;
  std::vector<std::shared_ptr<ConnBase>> open;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.started || s.stopped) return;
    s.stopped = true;
    s.stopping.store(true);
    for (auto& [id, weak] : s.conns) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
  }
  asio::post(s.acceptor.get_executor(), [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
  });
  for (auto& c : open) c->close();
  open.clear();
  // With the acceptor and every connection closed the io_context runs out of work and
  // the threads return (after any handler that is still running finishes).
  for (auto& t : s.threads) {
    if (t.joinable()) t.join();
  }
  s.threads.clear();
  ConnectionBudget::process().withdraw_cap(static_cast<uint64_t>(s.opts.max_connections));
}

uint16_t HttpServer::port() const { return impl_->bound_port; }
size_t HttpServer::open_connections() const {
  return static_cast<size_t>(std::max<int64_t>(0, impl_->open_count.load()));
}

// ---------------------------------------------------------------------------------
// Standard endpoints

void add_standard_endpoints(Router& router, std::function<bool()> ready) {
  router.add("GET", "/healthz", [](HttpRequest&) { return HttpResponse::text(200, "ok"); });
  router.add("GET", "/readyz", [ready = std::move(ready)](HttpRequest&) {
    if (!ready || ready()) return HttpResponse::text(200, "ready");
    return HttpResponse::text(503, "not ready");
  });
  router.add("GET", "/metrics", [](HttpRequest&) {
    HttpResponse r;
    r.status = 200;
    r.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics().prometheus_text();
    return r;
  });
}

}  // namespace bf
