// HttpServer over real loopback sockets.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/config.h"
#include "common/metrics.h"
#include "net/http_server.h"
#include "net_test_util.h"

namespace bf {
namespace {

using test::http_request;
using test::RawConn;
using test::wait_until;

boost::json::object to_json_map(const std::map<std::string, std::string>& m) {
  boost::json::object o;
  for (auto& [k, v] : m) o[k] = v;
  return o;
}

HttpResponse echo(HttpRequest& req) {
  boost::json::object o;
  o["method"] = req.method;
  o["path"] = req.path;
  o["target"] = req.target;
  o["params"] = to_json_map(req.params);
  o["query"] = to_json_map(req.query);
  o["body"] = req.body;
  o["peer"] = req.peer;
  o["x_test"] = req.header("x-test").value_or("");
  return HttpResponse::json(200, boost::json::serialize(o));
}

int64_t metric(const std::string& name, const Labels& labels) { return metrics().value(name, labels); }

struct ServerFixture : ::testing::Test {
  std::atomic<bool> ready{false};
  std::unique_ptr<HttpServer> server;
  std::string name;

  void start(HttpServerOptions opts = {}, const std::string& server_name = "") {
    // Unique per fixture, so metric series start at zero even with --gtest_repeat.
    static std::atomic<int> seq{0};
    name = server_name.empty()
               ? std::string("t_") + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                     "_" + std::to_string(seq.fetch_add(1))
               : server_name;
    opts.listen = "127.0.0.1:0";
    Router router;
    add_standard_endpoints(router, [this] { return ready.load(); });
    router.add("GET", "/echo", echo);
    router.add("POST", "/echo", echo);
    router.add("GET", "/items/{id}/sub/{sub}", echo);
    router.add("POST", "/api/v1/ingest/{tenant}/{dataset}", echo);
    router.add("GET", "/boom", [](HttpRequest&) -> HttpResponse {
      throw std::runtime_error("handler exploded");
    });
    router.add("GET", "/close", [](HttpRequest&) {
      auto r = HttpResponse::text(200, "bye");
      r.headers["Connection"] = "close";
      return r;
    });
    server = std::make_unique<HttpServer>(name, opts, std::move(router));
    server->start();
    ASSERT_NE(server->port(), 0);
  }
  uint16_t port() const { return server->port(); }
  int64_t requests(int code) const {
    return metric("bf_http_requests_total", {{"server", name}, {"code", std::to_string(code)}});
  }
  int64_t errors(const std::string& kind) const {
    return metric("bf_http_request_errors_total", {{"server", name}, {"kind", kind}});
  }
};

TEST_F(ServerFixture, RoutesWithParams) {
  start();
  auto r = http_request(port(), "GET", "/items/abc/sub/x%20y");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "application/json");
  auto v = boost::json::parse(r->body);
  EXPECT_EQ(v.at("params").at("id").as_string(), "abc");
  EXPECT_EQ(v.at("params").at("sub").as_string(), "x y");
  EXPECT_EQ(v.at("path").as_string(), "/items/abc/sub/x y");
  EXPECT_EQ(requests(200), 1);

  auto p = http_request(port(), "POST", "/api/v1/ingest/acme/fw", "{\"a\":1}\n", "X-Test: yes\r\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 200);
  auto pv = boost::json::parse(p->body);
  EXPECT_EQ(pv.at("params").at("tenant").as_string(), "acme");
  EXPECT_EQ(pv.at("params").at("dataset").as_string(), "fw");
  EXPECT_EQ(pv.at("body").as_string(), "{\"a\":1}\n");
  EXPECT_EQ(pv.at("x_test").as_string(), "yes");
  EXPECT_EQ(pv.at("method").as_string(), "POST");
  EXPECT_EQ(requests(200), 2);
}

TEST_F(ServerFixture, UnknownPathIs404AndWrongMethodIs405) {
  start();
  auto r = http_request(port(), "GET", "/does/not/exist");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->header("content-type"), "application/json");
  auto v = boost::json::parse(r->body);
  EXPECT_TRUE(v.as_object().contains("error"));

  auto m = http_request(port(), "DELETE", "/echo");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 405);
  EXPECT_EQ(m->header("allow"), "GET, POST");
  EXPECT_TRUE(boost::json::parse(m->body).as_object().contains("error"));
  EXPECT_EQ(requests(404), 1);
  EXPECT_EQ(requests(405), 1);
}

TEST_F(ServerFixture, QueryParsingAndPercentDecoding) {
  start();
  auto r = http_request(port(), "GET", "/%65cho?a=1&b=x%20y&c=a+b&flag&a=2&k%3D=v%26w&=skip");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = boost::json::parse(r->body);
  EXPECT_EQ(v.at("path").as_string(), "/echo");
  auto q = v.at("query").as_object();
  EXPECT_EQ(q.at("a").as_string(), "1");  // first occurrence wins
  EXPECT_EQ(q.at("b").as_string(), "x y");
  EXPECT_EQ(q.at("c").as_string(), "a b");
  EXPECT_EQ(q.at("flag").as_string(), "");
  EXPECT_EQ(q.at("k=").as_string(), "v&w");
  EXPECT_EQ(v.at("target").as_string(), "/%65cho?a=1&b=x%20y&c=a+b&flag&a=2&k%3D=v%26w&=skip");

  const auto bad_before = errors("bad_request");
  auto bad = http_request(port(), "GET", "/echo?x=%zz");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(boost::json::parse(bad->body).as_object().contains("error"));
  auto bad_path = http_request(port(), "GET", "/ec%4");
  ASSERT_TRUE(bad_path);
  EXPECT_EQ(bad_path->status, 400);
  EXPECT_EQ(errors("bad_request"), bad_before + 2);
}

TEST_F(ServerFixture, OversizedBodyGets413AndServerKeepsServing) {
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  start(o);
  const auto before = errors("too_large");

  // Content-Length over the limit: refused from the header alone.
  {
    RawConn c(port());
    ASSERT_TRUE(c.connected());
    const std::string body(4096, 'x');
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + body));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(boost::json::parse(r->body).as_object().contains("error"));
    EXPECT_TRUE(c.wait_closed());
  }
  // Chunked body that grows over the limit.
  {
    RawConn c(port());
    ASSERT_TRUE(c.connected());
    std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) req += "200\r\n" + std::string(512, 'y') + "\r\n";
    req += "0\r\n\r\n";
    ASSERT_TRUE(c.send(req));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
  }
  EXPECT_EQ(errors("too_large"), before + 2);
  EXPECT_EQ(requests(413), 2);

  // A body at the limit is accepted, on a new connection.
  auto ok = http_request(port(), "POST", "/echo", std::string(1024, 'z'));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(boost::json::parse(ok->body).at("body").as_string().size(), 1024u);
}

TEST_F(ServerFixture, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  RawConn c(port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r1 = c.read_response();
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->status, 200);
  EXPECT_NE(test::lower(r1->header("connection")), "close");
  ASSERT_TRUE(c.send("POST /echo?n=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
  auto r2 = c.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
  auto v1 = boost::json::parse(r1->body);
  auto v2 = boost::json::parse(r2->body);
  EXPECT_EQ(v1.at("query").at("n").as_string(), "1");
  EXPECT_EQ(v2.at("query").at("n").as_string(), "2");
  EXPECT_EQ(v2.at("body").as_string(), "abc");
  // Same connection: the server saw the same peer address both times, and it is ours.
  EXPECT_EQ(v1.at("peer").as_string(), v2.at("peer").as_string());
  EXPECT_EQ(v1.at("peer").as_string(), c.local());
}

TEST_F(ServerFixture, PipelinedRequestsAreAnsweredInOrder) {
  start();
  RawConn c(port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r1 = c.read_response();
  auto r2 = c.read_response();
  ASSERT_TRUE(r1 && r2);
  EXPECT_EQ(boost::json::parse(r1->body).at("query").at("n").as_string(), "1");
  EXPECT_EQ(boost::json::parse(r2->body).at("query").at("n").as_string(), "2");
}

TEST_F(ServerFixture, ConnectionCloseIsHonoured) {
  start();
  {
    RawConn c(port());
    ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(c.wait_closed());
  }
  {
    RawConn c(port());
    ASSERT_TRUE(c.send("GET /healthz HTTP/1.0\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "ok");
    EXPECT_TRUE(c.wait_closed());
  }
  {  // the handler asks for the connection to be closed
    RawConn c(port());
    ASSERT_TRUE(c.send("GET /close HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "bye");
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.wait_closed());
  }
}

TEST_F(ServerFixture, HandlerExceptionIs500AndCounted) {
  start();
  const auto before = errors("handler_exception");
  auto r = http_request(port(), "GET", "/boom");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  auto v = boost::json::parse(r->body);
  EXPECT_TRUE(v.as_object().contains("error"));
  EXPECT_EQ(errors("handler_exception"), before + 1);
  EXPECT_EQ(requests(500), 1);
  // The server is still fine.
  auto ok = http_request(port(), "GET", "/healthz");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ServerFixture, StandardEndpoints) {
  start();
  auto h = http_request(port(), "GET", "/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->body, "ok");

  auto nr = http_request(port(), "GET", "/readyz");
  ASSERT_TRUE(nr);
  EXPECT_EQ(nr->status, 503);
  EXPECT_EQ(nr->body, "not ready");
  ready = true;
  auto rd = http_request(port(), "GET", "/readyz");
  ASSERT_TRUE(rd);
  EXPECT_EQ(rd->status, 200);
  EXPECT_EQ(rd->body, "ready");

  auto m = http_request(port(), "GET", "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->header("content-type").rfind("text/plain; version=0.0.4", 0), 0u) << m->header("content-type");
  EXPECT_NE(m->body.find("# TYPE bf_http_requests_total counter"), std::string::npos);
  const std::string series = "bf_http_requests_total{server=\"" + name + "\",code=\"503\"} 1";
  EXPECT_NE(m->body.find(series), std::string::npos) << m->body;

  auto head = http_request(port(), "HEAD", "/healthz");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("content-length"), "2");
  EXPECT_TRUE(head->body.empty());
}

TEST_F(ServerFixture, ExpectContinueGets100ThenResponse) {
  start();
  RawConn c(port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.read_response(false, true);
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(boost::json::parse(r->body).at("body").as_string(), "hello");
}

TEST_F(ServerFixture, IdleConnectionIsClosedAfterIdleTimeout) {
  HttpServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(200);
  start(o);
  const auto timeouts = errors("timeout");
  RawConn c(port());
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.read_response());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.wait_closed());  // receive timeout is 5 s
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
  EXPECT_EQ(errors("timeout"), timeouts);  // an idle close is not an error
}

TEST_F(ServerFixture, SlowRequestHitsReadTimeoutAndIsCounted) {
  HttpServerOptions o;
  o.read_timeout = std::chrono::milliseconds(200);
  start(o);
  const auto timeouts = errors("timeout");
  RawConn c(port());
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));  // header never finished
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(wait_until([&] { return errors("timeout") == timeouts + 1; }));
}

TEST_F(ServerFixture, MalformedRequestIs400) {
  start();
  const auto before = errors("bad_request");
  RawConn c(port());
  ASSERT_TRUE(c.send("THIS IS NOT HTTP\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(boost::json::parse(r->body).as_object().contains("error"));
  EXPECT_EQ(errors("bad_request"), before + 1);
}

TEST_F(ServerFixture, ConcurrentBlockingHandlersUseThePool) {
  // Two handlers that block until both have started: needs two pool threads.
  std::atomic<int> inside{0};
  Router router;
  router.add("GET", "/wait", [&](HttpRequest&) {
    inside.fetch_add(1);
    const bool both = wait_until([&] { return inside.load() >= 2; }, std::chrono::seconds(5));
    return HttpResponse::text(both ? 200 : 504, both ? "together" : "alone");
  });
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 2;
  HttpServer s("t_pool", o, std::move(router));
  s.start();
  std::optional<test::RawResponse> a, b;
  std::thread ta([&] { a = http_request(s.port(), "GET", "/wait"); });
  std::thread tb([&] { b = http_request(s.port(), "GET", "/wait"); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->status, 200);
}

TEST_F(ServerFixture, StopIsQuickWithOpenConnections) {
  start();
  RawConn idle(port());
  ASSERT_TRUE(idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.read_response());          // keep-alive, now idle
  RawConn partial(port());
  ASSERT_TRUE(partial.send("GET /heal"));      // mid-request
  RawConn fresh(port());                       // connected, nothing sent
  ASSERT_TRUE(fresh.connected());
  const uint16_t p = port();

  const auto t0 = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_TRUE(idle.wait_closed());
  EXPECT_TRUE(partial.wait_closed());
  EXPECT_TRUE(fresh.wait_closed());
  RawConn after(p);
  EXPECT_FALSE(after.connected());
  server->stop();  // idempotent
  server.reset();  // destructor after stop
}

TEST(HttpServer, BindFailureThrows) {
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  HttpServer a("t_bind_a", o, Router{});
  a.start();
  o.listen = "127.0.0.1:" + std::to_string(a.port());
  HttpServer b("t_bind_b", o, Router{});
  try {
    b.start();
    FAIL() << "second bind to the same port succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(o.listen), std::string::npos) << e.what();
  }
}

TEST(HttpServer, DestructorWithoutStartOrStopIsFine) {
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  { HttpServer never("t_never", o, Router{}); }
  uint16_t p = 0;
  {
    HttpServer s("t_dtor", o, Router{});
    s.start();
    p = s.port();
  }
  RawConn c(p);
  EXPECT_FALSE(c.connected());
}

TEST(HttpServerOptions, ParsesAllKeys) {
  auto node = ConfigNode::parse(R"(
listen: "0.0.0.0:9000"
max_body: 2MiB
read_timeout: 5s
idle_timeout: 250ms
threads: 8
max_connections: 77
tls:
  cert_file: /etc/bf/cert.pem
  key_file: /etc/bf/key.pem
)", "test.yaml");
  auto o = parse_http_server_options(node, HttpServerOptions{});
  EXPECT_EQ(o.listen, "0.0.0.0:9000");
  EXPECT_EQ(o.max_body_bytes, 2u << 20);
  EXPECT_EQ(o.read_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(o.idle_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(o.threads, 8);
  EXPECT_EQ(o.max_connections, 77);
  EXPECT_EQ(o.tls.cert_file, "/etc/bf/cert.pem");
  EXPECT_EQ(o.tls.key_file, "/etc/bf/key.pem");
  EXPECT_NO_THROW(node.check_unknown());
}

TEST(HttpServerOptions, DefaultsComeFromTheCaller) {
  auto node = ConfigNode::parse("threads: 3\n", "test.yaml");
  HttpServerOptions d;
  d.listen = "127.0.0.1:7070";
  d.max_body_bytes = 99;
  auto o = parse_http_server_options(node, d);
  EXPECT_EQ(o.listen, "127.0.0.1:7070");
  EXPECT_EQ(o.max_body_bytes, 99u);
  EXPECT_EQ(o.threads, 3);
  EXPECT_TRUE(o.tls.cert_file.empty());
}

TEST(HttpServerOptions, RejectsBadValues) {
  auto bad_listen = ConfigNode::parse("listen: nonsense\n", "test.yaml");
  EXPECT_THROW(parse_http_server_options(bad_listen, {}), ConfigError);
  auto bad_threads = ConfigNode::parse("threads: 0\n", "test.yaml");
  EXPECT_THROW(parse_http_server_options(bad_threads, {}), ConfigError);
  auto no_conns = ConfigNode::parse("max_connections: 0\n", "test.yaml");
  EXPECT_THROW(parse_http_server_options(no_conns, {}), ConfigError);
  auto half_tls = ConfigNode::parse("tls:\n  cert_file: /x.pem\n", "test.yaml");
  try {
    parse_http_server_options(half_tls, {});
    FAIL() << "half TLS config accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("key_file"), std::string::npos) << e.what();
  }
}

// --- TLS -------------------------------------------------------------------------

class TlsServer : public ::testing::Test {
 protected:
  std::filesystem::path dir;
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("bf_tls_" + std::to_string(::getpid()) + "_" + std::to_string(std::rand()));
    std::filesystem::create_directories(dir);
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                            "-subj /CN=localhost -days 1 -keyout " + (dir / "key.pem").string() +
                            " -out " + (dir / "cert.pem").string() + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl could not generate a certificate";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

TEST_F(TlsServer, ServesHttpsWithCertAndKey) {
  namespace asio = boost::asio;
  namespace ssl = boost::asio::ssl;
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.tls.cert_file = (dir / "cert.pem").string();
  o.tls.key_file = (dir / "key.pem").string();
  Router router;
  add_standard_endpoints(router, nullptr);
  HttpServer s("t_tls", o, std::move(router));
  s.start();

  asio::io_context ioc;
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(o.tls.cert_file);
  ctx.set_verify_mode(ssl::verify_peer);
  ssl::stream<asio::ip::tcp::socket> stream(ioc, ctx);
  stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), s.port()});
  stream.handshake(ssl::stream_base::client);
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  asio::write(stream, asio::buffer(req));
  std::string resp;
  boost::system::error_code ec;
  char buf[4096];
  for (;;) {
    const size_t n = stream.read_some(asio::buffer(buf), ec);
    resp.append(buf, n);
    if (ec) break;
  }
  EXPECT_EQ(resp.rfind("HTTP/1.1 200", 0), 0u) << resp;
  EXPECT_EQ(resp.substr(resp.size() - 2), "ok");

  // Plain HTTP against the TLS port does not get a response.
  RawConn plain(s.port(), std::chrono::milliseconds(3000));
  ASSERT_TRUE(plain.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_FALSE(plain.read_response());
  s.stop();
}

TEST_F(TlsServer, MissingCertFileFailsStart) {
  HttpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.tls.cert_file = (dir / "missing.pem").string();
  o.tls.key_file = (dir / "key.pem").string();
  HttpServer s("t_tls_missing", o, Router{});
  try {
    s.start();
    FAIL() << "start succeeded without a certificate";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bf
