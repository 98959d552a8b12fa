// Connection limits, descriptor exhaustion and exceptions, over real loopback sockets:
// a flood of idle connections, a slowloris, accept() failing with EMFILE and a spool
// that cannot open files must each cost one request or connection, never the process.
//
// The EMFILE and process-budget cases run the server in a forked child with a low
// RLIMIT_NOFILE, so that the test's own client sockets are not limited; the parent
// drives it over loopback and checks that it exits normally at the end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <system_error>
#include <vector>

#include "common/metrics.h"
#include "common/spool.h"
#include "common/ulid.h"
#include "net/conn_limits.h"
#include "net/http_server.h"
#include "net/listeners.h"
#include "net_test_util.h"

namespace bf {
namespace {

using test::http_request;
using test::RawConn;
using test::wait_until;

std::string unique_name(const std::string& prefix) {
  static std::atomic<int> seq{0};
  return prefix + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
         std::to_string(seq.fetch_add(1));
}

int64_t metric(const std::string& name, const Labels& labels) { return metrics().value(name, labels); }

// Value of one series in Prometheus text, -1 if absent.
int64_t scrape(const std::string& text, const std::string& series) {
  const std::string line = "\n" + series + " ";
  const size_t at = text.find(line);
  if (at == std::string::npos) return -1;
  return std::stoll(text.substr(at + line.size()));
}

Router test_router() {
  Router router;
  add_standard_endpoints(router, nullptr);
  router.add("GET", "/throw", [](HttpRequest&) -> HttpResponse { throw std::runtime_error("handler exploded"); });
  router.add("GET", "/throw-int", [](HttpRequest&) -> HttpResponse { throw 42; });
  router.add("GET", "/emfile", [](HttpRequest&) -> HttpResponse {
    throw std::filesystem::filesystem_error("cannot open spool file", "/spool/x",
                                            std::make_error_code(std::errc::too_many_files_open));
  });
  router.add("GET", "/oom", [](HttpRequest&) -> HttpResponse { throw std::bad_alloc(); });
  return router;
}

struct Server {
  std::string name;
  std::unique_ptr<HttpServer> server;
  explicit Server(HttpServerOptions o, Router router = test_router()) : name(unique_name("http")) {
    o.listen = "127.0.0.1:0";
    server = std::make_unique<HttpServer>(name, o, std::move(router));
    server->start();
  }
  uint16_t port() const { return server->port(); }
  int64_t refused(const std::string& reason) const {
    return metric("bf_http_connections_rejected_total", {{"server", name}, {"reason", reason}});
  }
  int64_t errors(const std::string& kind) const {
    return metric("bf_http_request_errors_total", {{"server", name}, {"kind", kind}});
  }
  int64_t active() const { return metric("bf_http_connections_active", {{"server", name}}); }
};

// --- HTTP: max_connections ------------------------------------------------------------

TEST(HttpConnectionLimit, ExcessConnectionsGet503AndOthersKeepWorking) {
  HttpServerOptions o;
  o.max_connections = 50;
  o.idle_timeout = std::chrono::seconds(30);  // the flood must not time out during the test
  Server s(o);
  Server other(HttpServerOptions{});  // another server in the same process

  // A client with a keep-alive connection from before the flood.
  RawConn keep(s.port());
  ASSERT_TRUE(keep.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = keep.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);

  // 49 idle connections fill the cap (they never send a byte).
  std::vector<std::unique_ptr<RawConn>> flood;
  for (int i = 0; i < 49; ++i) {
    flood.push_back(std::make_unique<RawConn>(s.port()));
    ASSERT_TRUE(flood.back()->connected());
  }
  ASSERT_TRUE(wait_until([&] { return s.server->open_connections() == 50; })) << s.server->open_connections();
  EXPECT_EQ(s.active(), 50);

  // 20 more are refused politely, one by one.
  for (int i = 0; i < 20; ++i) {
    RawConn extra(s.port());
    ASSERT_TRUE(extra.connected());
    auto r = extra.read_response();
    ASSERT_TRUE(r) << "refused connection " << i << " got no answer";
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(r->header("retry-after"), "1");
    EXPECT_EQ(test::lower(r->header("connection")), "close");
    EXPECT_NE(r->body.find("connection limit"), std::string::npos) << r->body;
    EXPECT_TRUE(extra.wait_closed());
  }
  EXPECT_EQ(s.refused("max_connections"), 20);
  EXPECT_EQ(s.server->open_connections(), 50u);  // refusals are not counted as open

  // While the flood holds: the existing keep-alive connection is served, and so is
  // another server of the same process.
  ASSERT_TRUE(keep.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto during = keep.read_response();
  ASSERT_TRUE(during);
  EXPECT_EQ(during->status, 200);
  auto elsewhere = http_request(other.port(), "GET", "/healthz");
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->status, 200);

  // The metrics show the refusals and the gauge.
  ASSERT_TRUE(keep.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto m = keep.read_response();
  ASSERT_TRUE(m);
  EXPECT_EQ(scrape(m->body, "bf_http_connections_rejected_total{server=\"" + s.name + "\",reason=\"max_connections\"}"), 20)
      << m->body;
  EXPECT_EQ(scrape(m->body, "bf_http_connections_active{server=\"" + s.name + "\"}"), 50);

  // The flood ends: slots come back and a new connection is served.
  flood.clear();
  ASSERT_TRUE(wait_until([&] { return s.server->open_connections() == 1; })) << s.server->open_connections();
  auto after = http_request(s.port(), "GET", "/healthz");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(s.refused("max_connections"), 20);
}

// --- HTTP: timeouts -------------------------------------------------------------------

TEST(HttpConnectionLimit, ConnectionThatNeverSendsIsClosedAtIdleTimeout) {
  HttpServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(300);
  o.max_connections = 5;
  Server s(o);
  RawConn c(s.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(wait_until([&] { return s.server->open_connections() == 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.wait_closed());
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(200));
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_TRUE(wait_until([&] { return s.server->open_connections() == 0; }));
}

TEST(HttpConnectionLimit, SlowlorisIsCutAtReadTimeout) {
  HttpServerOptions o;
  o.read_timeout = std::chrono::milliseconds(600);
  o.idle_timeout = std::chrono::seconds(10);
  Server s(o);
  const auto timeouts = s.errors("timeout");
  RawConn c(s.port());
  ASSERT_TRUE(c.connected());
  // One header byte every 100 ms: each byte is progress, but the header as a whole
  // must arrive within read_timeout.
  const std::string header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(200, 'a') + "\r\n\r\n";
  const auto t0 = std::chrono::steady_clock::now();
  size_t sent = 0;
  bool closed = false;
  for (; sent < header.size(); ++sent) {
    if (!c.send(std::string_view(&header[sent], 1))) {
      closed = true;
      break;
    }
    pollfd p{c.fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {  // the server closed (EOF readable)
      closed = true;
      break;
    }
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(closed) << "the whole slow header was accepted";
  EXPECT_LT(sent, header.size());
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_GE(took, std::chrono::milliseconds(500));
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(wait_until([&] { return s.errors("timeout") == timeouts + 1; }));
  auto ok = http_request(s.port(), "GET", "/healthz");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// --- HTTP: exceptions -----------------------------------------------------------------

TEST(HttpHandlerExceptions, ThrowIs500ResourceErrorsAre503AndTheServerKeepsServing) {
  Server s(HttpServerOptions{});
  RawConn c(s.port());
  auto get = [&](const std::string& path) {
    EXPECT_TRUE(c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.read_response();
    EXPECT_TRUE(r) << path;
    return r.value_or(test::RawResponse{});
  };
  auto r = get("/throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_TRUE(r.header("retry-after").empty());
  EXPECT_EQ(get("/throw-int").status, 500);
  EXPECT_EQ(s.errors("handler_exception"), 2);

  // "Too many open files" from a filesystem call in a handler: 503, retry later.
  r = get("/emfile");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("retry-after"), "5");
  r = get("/oom");
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(r.header("retry-after").empty());
  EXPECT_EQ(s.errors("resource_exhausted"), 2);
  EXPECT_EQ(s.errors("handler_exception"), 2);

  // Same connection, still served.
  EXPECT_EQ(get("/healthz").status, 200);
}

TEST(ResourceErrors, AreRecognised) {
  EXPECT_TRUE(is_resource_exhaustion(std::make_error_code(std::errc::too_many_files_open)));
  EXPECT_TRUE(is_resource_exhaustion(std::error_code(ENFILE, std::system_category())));
  EXPECT_TRUE(is_resource_exhaustion(std::make_error_code(std::errc::no_space_on_device)));
  EXPECT_FALSE(is_resource_exhaustion(std::make_error_code(std::errc::no_such_file_or_directory)));
  EXPECT_FALSE(is_resource_exhaustion(std::make_error_code(std::errc::permission_denied)));
  EXPECT_STREQ(resource_error_label(std::error_code(EMFILE, std::system_category())), "emfile");
}

TEST(HttpServerOptions, MaxConnectionsMustBePositive) {
  HttpServerOptions o;
  o.max_connections = 0;
  o.listen = "127.0.0.1:0";
  HttpServer s("t_zero_cap", o, Router{});
  EXPECT_THROW(s.start(), std::invalid_argument);
}

// --- TCP listener ---------------------------------------------------------------------

struct Counted {
  std::atomic<int> messages{0};
  MessageHandler handler() {
    return [this](std::string_view m, const std::string&) {
      if (m == "throw") throw std::runtime_error("handler exploded");
      ++messages;
    };
  }
};

TEST(TcpConnectionLimit, ExcessConnectionsAreClosedAndCounted) {
  Counted got;
  const std::string name = unique_name("tcp");
  TcpListenerOptions o;
  o.listen = "127.0.0.1:0";
  o.max_connections = 50;
  TcpListener l(name, o, got.handler());
  l.start();
  std::vector<std::unique_ptr<RawConn>> flood;
  for (int i = 0; i < 50; ++i) flood.push_back(std::make_unique<RawConn>(l.port()));
  ASSERT_TRUE(wait_until([&] { return l.open_connections() == 50; })) << l.open_connections();
  for (int i = 0; i < 10; ++i) {
    RawConn extra(l.port(), std::chrono::seconds(2));
    ASSERT_TRUE(extra.connected());
    EXPECT_TRUE(extra.wait_closed()) << "excess connection " << i << " was not closed";
  }
  EXPECT_EQ(metric("bf_tcp_connections_rejected_total", {{"listener", name}, {"reason", "max_connections"}}), 10);
  EXPECT_EQ(metric("bf_tcp_connections_active", {{"listener", name}}), 50);
  // The accepted connections still deliver, including after a handler exception.
  ASSERT_TRUE(flood[0]->send("throw\nhello\n"));
  ASSERT_TRUE(wait_until([&] { return got.messages == 1; }));
  EXPECT_EQ(metric("bf_listener_handler_errors_total", {{"listener", name}}), 1);
  flood.clear();
  ASSERT_TRUE(wait_until([&] { return l.open_connections() == 0; }));
  RawConn after(l.port());
  ASSERT_TRUE(after.send("again\n"));
  EXPECT_TRUE(wait_until([&] { return got.messages == 2; }));
}

TEST(TcpConnectionLimit, IdleConnectionIsClosedAtIdleTimeoutButATalkativeOneIsNot) {
  Counted got;
  const std::string name = unique_name("tcp");
  TcpListenerOptions o;
  o.listen = "127.0.0.1:0";
  o.idle_timeout = std::chrono::milliseconds(300);
  TcpListener l(name, o, got.handler());
  l.start();
  RawConn idle(l.port());
  RawConn talk(l.port());
  ASSERT_TRUE(wait_until([&] { return l.open_connections() == 2; }));
  // `talk` sends every 100 ms for 900 ms: never idle for 300 ms.
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 9; ++i) {
    ASSERT_TRUE(talk.send("m\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(idle.wait_closed());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(metric("bf_tcp_connections_idle_closed_total", {{"listener", name}}), 1);
  EXPECT_EQ(l.open_connections(), 1u);
  ASSERT_TRUE(talk.send("last\n"));
  EXPECT_TRUE(wait_until([&] { return got.messages == 10; })) << got.messages;
}

TEST(TcpListenerOptions, IdleTimeoutMustBePositive) {
  TcpListenerOptions o;
  o.idle_timeout = std::chrono::milliseconds(0);
  EXPECT_THROW(TcpListener("t_bad_idle", o, [](std::string_view, const std::string&) {}), std::invalid_argument);
}

// --- Forked children with a low RLIMIT_NOFILE ------------------------------------------

// A child process and two pipes to talk to it with single bytes.
class Child {
 public:
  // `body` runs in the child with (read_fd, write_fd) and returns its exit code.
  explicit Child(const std::function<int(int, int)>& body) {
    int to_child[2], to_parent[2];
    if (::pipe(to_child) != 0 || ::pipe(to_parent) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::close(to_child[1]);
      ::close(to_parent[0]);
      int code = 100;
      try {
        code = body(to_child[0], to_parent[1]);
      } catch (...) {
        code = 101;
      }
      ::_exit(code);
    }
    ::close(to_child[0]);
    ::close(to_parent[1]);
    out_ = to_child[1];
    in_ = to_parent[0];
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(in_);
  }
  void send(char c) { ASSERT_EQ(::write(out_, &c, 1), 1); }
  // Next byte from the child, 0 on EOF or after 10 s.
  char receive() {
    pollfd p{in_, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return 0;
    char c = 0;
    return ::read(in_, &c, 1) == 1 ? c : 0;
  }
  uint16_t receive_port() {
    uint16_t port = 0;
    pollfd p{in_, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0 || ::read(in_, &port, sizeof port) != sizeof port) return 0;
    return port;
  }
  // The child's open descriptors and what they are (to explain a failure).
  std::string descriptors() const {
    std::map<std::string, int> kinds;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/fd", ec)) {
      std::string target = std::filesystem::read_symlink(e.path(), ec).string();
      if (target.rfind("socket:", 0) == 0) target = "socket";
      if (target.rfind("pipe:", 0) == 0) target = "pipe";
      ++kinds[target];
    }
    std::string out = "child descriptors:";
    for (const auto& [k, n] : kinds) out += " " + k + "=" + std::to_string(n);
    return out;
  }
  // Exit code, or -1 if it died from a signal / did not exit within 10 s.
  int wait() {
    for (int i = 0; i < 1000; ++i) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1, in_ = -1;
};

char child_receive(int fd) {
  char c = 0;
  return ::read(fd, &c, 1) == 1 ? c : 0;
}

void child_send(int fd, char c) { [[maybe_unused]] auto n = ::write(fd, &c, 1); }

void lower_fd_limit(rlim_t soft) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = soft;
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

// The child's server: standard endpoints and POST /spool, which writes to a spool.
TEST(FdExhaustion, AcceptEmfileRefusesWith503AndSpoolEmfileIs503AndTheProcessSurvives) {
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizers' runtime needs descriptors of its own to report (and a UBSan
  // report in the child, which has none left, ends it): this test needs a plain build.
  GTEST_SKIP() << "takes every descriptor, which the sanitizer runtime needs (make test covers it)";
#endif
  const std::filesystem::path spool_dir = std::filesystem::temp_directory_path() / ("bf-emfile-" + new_ulid());
  Child child([&](int in, int out) {
    lower_fd_limit(256);
    ConnectionBudget::process().configure(16);
    Spool spool(spool_dir, 0);
    Router router;
    add_standard_endpoints(router, nullptr);
    router.add("POST", "/spool", [&](HttpRequest& req) {
      spool.put(new_ulid(), "{}", req.body);  // may throw: the server maps it
      return HttpResponse::text(200, "stored");
    });
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.max_connections = 100;
    HttpServer server("emfile_child", o, std::move(router));
    server.start();
    TcpListenerOptions to;
    to.listen = "127.0.0.1:0";
    std::atomic<int> messages{0};
    TcpListener tcp("emfile_child_tcp", to, [&](std::string_view, const std::string&) { ++messages; });
    tcp.start();
    const uint16_t ports[2] = {server.port(), tcp.port()};
    if (::write(out, ports, sizeof ports) != sizeof ports) return 2;
    if (child_receive(in) != 'K') return 3;  // the parent holds a keep-alive connection
    // Use up every descriptor, as a leaking spool or DuckDB would.
    std::vector<int> hogs;
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      hogs.push_back(fd);
    }
    child_send(out, 'F');
    if (child_receive(in) != 'R') return 4;
    for (int fd : hogs) ::close(fd);
    child_send(out, 'r');
    if (child_receive(in) != 'S') return 5;
    tcp.stop();
    server.stop();
    return messages.load() == 1 ? 0 : 6;
  });
  uint16_t ports[2] = {0, 0};
  ports[0] = child.receive_port();
  ports[1] = child.receive_port();
  ASSERT_NE(ports[0], 0);
  ASSERT_NE(ports[1], 0);

  RawConn keep(ports[0]);
  ASSERT_TRUE(keep.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto k = keep.read_response();
  ASSERT_TRUE(k);
  ASSERT_EQ(k->status, 200);
  child.send('K');
  ASSERT_EQ(child.receive(), 'F');

  // New HTTP connections: accept() fails with EMFILE; the spare descriptor answers 503.
  int answered_503 = 0;
  for (int i = 0; i < 5; ++i) {
    RawConn c(ports[0], std::chrono::seconds(3));
    ASSERT_TRUE(c.connected());
    auto r = c.read_response();
    if (r) {
      EXPECT_EQ(r->status, 503);
      EXPECT_EQ(r->header("retry-after"), "5");
      EXPECT_NE(r->body.find("out of file descriptors"), std::string::npos) << r->body;
      ++answered_503;
    }
  }
  EXPECT_GE(answered_503, 4) << "the spare descriptor should answer (nearly) every refused connection";
  // Raw TCP: closed at once.
  {
    RawConn c(ports[1], std::chrono::seconds(3));
    ASSERT_TRUE(c.connected());
    EXPECT_TRUE(c.wait_closed()) << child.descriptors();
  }
  // A request whose handler needs a file: the spool throws EMFILE, the answer is 503.
  ASSERT_TRUE(keep.send("POST /spool HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  auto spooled = keep.read_response();
  ASSERT_TRUE(spooled);
  EXPECT_EQ(spooled->status, 503) << child.descriptors();
  EXPECT_EQ(spooled->header("retry-after"), "5");

  // Descriptors come back: everything works again, on new connections too.
  child.send('R');
  ASSERT_EQ(child.receive(), 'r');
  // The acceptor may still be in its 50 ms back-off from the last EMFILE: recovery
  // must come within a bounded time, not necessarily on the very next connection.
  EXPECT_TRUE(wait_until([&] {
    auto ok = http_request(ports[0], "POST", "/spool", "hello");
    return ok && ok->status == 200;
  }));
  {
    RawConn c(ports[1]);
    ASSERT_TRUE(c.send("<13>back\n"));
  }
  std::optional<test::RawResponse> m;
  EXPECT_TRUE(wait_until([&] {
    m = http_request(ports[0], "GET", "/metrics");
    return m && m->status == 200;
  }));
  ASSERT_TRUE(m);
  EXPECT_GE(scrape(m->body, "bf_http_connections_rejected_total{server=\"emfile_child\",reason=\"no_fds\"}"),
            answered_503)
      << m->body;
  EXPECT_GE(scrape(m->body, "bf_http_accept_errors_total{server=\"emfile_child\",error=\"emfile\"}"), 1);
  EXPECT_GE(scrape(m->body, "bf_tcp_accept_errors_total{listener=\"emfile_child_tcp\",error=\"emfile\"}"), 1);
  EXPECT_GE(scrape(m->body, "bf_tcp_connections_rejected_total{listener=\"emfile_child_tcp\",reason=\"no_fds\"}"), 1);
  EXPECT_EQ(scrape(m->body, "bf_http_request_errors_total{server=\"emfile_child\",kind=\"resource_exhausted\"}"), 1);

  // The TCP message arrived (the child checks the count once more at exit).
  EXPECT_TRUE(wait_until([&] {
    auto mm = http_request(ports[0], "GET", "/metrics");
    return mm && scrape(mm->body, "bf_tcp_messages_total{listener=\"emfile_child_tcp\"}") == 1;
  }));
  // And it shuts down normally: the process survived all of it.
  child.send('S');
  EXPECT_EQ(child.wait(), 0);
  std::filesystem::remove_all(spool_dir);
}

TEST(FdExhaustion, ProcessBudgetRefusesBeforeDescriptorsRunOut) {
  Child child([&](int in, int out) {
    lower_fd_limit(128);
    ConnectionBudget::process().configure(64);  // 128 - 64: 64 connections in the process
    if (ConnectionBudget::process().capacity() != 64) return 2;
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.max_connections = 1000;  // more than the process can hold: the budget decides
    o.idle_timeout = std::chrono::seconds(30);
    Router router;
    add_standard_endpoints(router, nullptr);
    HttpServer server("budget_child", o, std::move(router));
    server.start();
    const uint16_t port = server.port();
    if (::write(out, &port, sizeof port) != sizeof port) return 3;
    if (child_receive(in) != 'S') return 4;
    server.stop();
    return 0;
  });
  const uint16_t port = child.receive_port();
  ASSERT_NE(port, 0);
  std::vector<std::unique_ptr<RawConn>> flood;
  for (int i = 0; i < 64; ++i) {
    flood.push_back(std::make_unique<RawConn>(port));
    ASSERT_TRUE(flood.back()->connected());
  }
  // Make sure all 64 were accepted (each answers a request) before probing.
  for (auto& c : flood) {
    ASSERT_TRUE(c->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c->read_response();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  for (int i = 0; i < 5; ++i) {
    RawConn extra(port);
    auto r = extra.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(r->header("retry-after"), "1");
  }
  // One flood connection asks for the metrics on its existing connection.
  ASSERT_TRUE(flood[0]->send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto m = flood[0]->read_response();
  ASSERT_TRUE(m);
  EXPECT_EQ(scrape(m->body, "bf_http_connections_rejected_total{server=\"budget_child\",reason=\"process_limit\"}"), 5)
      << m->body;
  EXPECT_EQ(scrape(m->body, "bf_connection_budget_capacity"), 64);
  EXPECT_EQ(scrape(m->body, "bf_connection_budget_used"), 64);
  flood.pop_back();
  // A freed slot serves a new connection.
  bool served = wait_until([&] {
    auto r = http_request(port, "GET", "/healthz");
    return r && r->status == 200;
  });
  EXPECT_TRUE(served);
  child.send('S');
  EXPECT_EQ(child.wait(), 0);
}

}  // namespace
}  // namespace bf
