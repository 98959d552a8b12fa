// HttpClient against a scripted raw-socket server (tests/fixtures/raw_http_server.h).
#include "net/http_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "fixtures/raw_http_server.h"

namespace bf {
namespace {

using test::raw_response;
using test::RawHttpServer;
using test::RawRequest;
using Clock = std::chrono::steady_clock;

HttpClientOptions fast_options() {
  HttpClientOptions o;
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.timeout = std::chrono::milliseconds(5000);
  o.max_retries = 3;
  o.backoff_base = std::chrono::milliseconds(1);
  o.backoff_max = std::chrono::milliseconds(5);
  return o;
}

// A port with nothing listening.
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(HttpClient, GetReturnsStatusBodyAndCaseInsensitiveHeaders) {
  RawHttpServer server([](const RawRequest&, int) {
    return raw_response(200, "hello", {{"X-Custom-Header", "v1"}, {"content-type", "text/plain"}});
  });
  HttpClient client(fast_options());
  HttpResult r = client.send("GET", server.url("/path?q=1"), {{"X-Req", "abc"}}, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.attempts, 1);
  ASSERT_NE(r.headers.find("x-custom-header"), r.headers.end());
  EXPECT_EQ(r.headers.find("X-CUSTOM-HEADER")->second, "v1");
  EXPECT_EQ(r.headers.find("Content-Type")->second, "text/plain");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/path?q=1");
  EXPECT_EQ(reqs[0].header("x-req"), "abc");
  EXPECT_EQ(reqs[0].header("user-agent"), "bytefreezer");
}

TEST(HttpClient, MethodsAndBodies) {
  RawHttpServer server([](const RawRequest& req, int) {
    return raw_response(req.method == "DELETE" ? 204 : 200, req.method == "HEAD" ? "" : "ok",
                        {{"X-Len", std::to_string(req.body.size())}});
  });
  HttpClient client(fast_options());
  std::string binary("a\0b\r\n\xff", 6);
  EXPECT_EQ(client.send("PUT", server.url("/p"), {}, binary).status, 200);
  EXPECT_EQ(client.send("POST", server.url("/p"), {{"Content-Type", "application/json"}}, "{}").status, 200);
  EXPECT_EQ(client.send("POST", server.url("/empty"), {}, "").status, 200);
  HttpResult head = client.send("HEAD", server.url("/h"), {}, "");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(client.send("DELETE", server.url("/d"), {}, "").status, 204);

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].body, binary);
  EXPECT_EQ(reqs[1].method, "POST");
  EXPECT_EQ(reqs[1].body, "{}");
  EXPECT_EQ(reqs[1].header("content-type"), "application/json");
  EXPECT_EQ(reqs[2].method, "POST");
  EXPECT_EQ(reqs[2].header("content-length"), "0");
  EXPECT_EQ(reqs[3].method, "HEAD");
  EXPECT_EQ(reqs[4].method, "DELETE");
  EXPECT_EQ(reqs[4].body, "");
  // Small bodies are sent without waiting for 100-continue.
  EXPECT_EQ(reqs[0].header("expect"), "");
}

TEST(HttpClient, ReusesOneConnection) {
  RawHttpServer server([](const RawRequest&, int i) { return raw_response(200, std::to_string(i)); });
  HttpClient client(fast_options());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(client.send("GET", server.url("/"), {}, "").body, std::to_string(i));
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClient, LargeBodyWith100ContinueDropsInterimHeaders) {
  RawHttpServer server([](const RawRequest& req, int) {
    return raw_response(201, "", {{"X-Got", std::to_string(req.body.size())}});
  });
  HttpClient client(fast_options());
  std::string big(3 << 20, 'x');
  HttpResult r = client.send("PUT", server.url("/big"), {}, big);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.headers.find("X-Got")->second, std::to_string(big.size()));
  EXPECT_EQ(server.requests().at(0).header("expect"), "100-continue");
}

TEST(HttpClient, SendFileStreamsARegion) {
  auto path = std::filesystem::temp_directory_path() / ("bf_http_client_" + std::to_string(::getpid()));
  {
    std::ofstream out(path, std::ios::binary);
    out << "0123456789abcdef";
  }
  RawHttpServer server([](const RawRequest&, int) { return raw_response(200); });
  HttpClient client(fast_options());
  EXPECT_EQ(client.send_file("PUT", server.url("/f"), {}, FileRegion{path, 3, 5}).status, 200);
  EXPECT_EQ(server.requests().at(0).body, "34567");
  // Retries re-read the region from the start.
  RawHttpServer flaky([](const RawRequest&, int i) { return raw_response(i == 0 ? 503 : 200); });
  HttpResult r = client.execute("PUT", flaky.url("/f"), {}, FileRegion{path, 10, 6},
                                [](const HttpResult& res) { return res.status == 503; });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.attempts, 2);
  auto reqs = flaky.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].body, "abcdef");
  EXPECT_EQ(reqs[1].body, "abcdef");
  EXPECT_THROW(client.send_file("PUT", server.url("/f"), {}, FileRegion{path / "missing", 0, 1}),
               HttpTransportError);
  std::filesystem::remove(path);
}

TEST(HttpClient, RetriesServerErrorsWithBackoff) {
  RawHttpServer server([](const RawRequest&, int i) {
    return i < 2 ? raw_response(503, "busy") : raw_response(200, "done");
  });
  HttpClient client(fast_options());
  HttpResult r = client.send_with_retry("PUT", server.url("/x"), {}, "payload");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "done");
  EXPECT_EQ(r.attempts, 3);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const auto& req : reqs) EXPECT_EQ(req.body, "payload");
}

TEST(HttpClient, ReturnsLastResponseWhenRetriesAreExhausted) {
  RawHttpServer server([](const RawRequest&, int) { return raw_response(500, "broken"); });
  auto opts = fast_options();
  opts.max_retries = 2;
  HttpClient client(opts);
  HttpResult r = client.send_with_retry("GET", server.url("/x"), {}, "");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(HttpClient, DoesNotRetryClientErrors) {
  RawHttpServer server([](const RawRequest&, int) { return raw_response(404, "nope"); });
  HttpClient client(fast_options());
  HttpResult r = client.send_with_retry("GET", server.url("/x"), {}, "");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(HttpClient, RetriesTooManyRequestsAndCustomPredicate) {
  RawHttpServer server([](const RawRequest&, int i) { return raw_response(i == 0 ? 429 : i == 1 ? 409 : 200); });
  HttpClient client(fast_options());
  HttpResult r = client.send_with_retry("GET", server.url("/x"), {}, "",
                                        [](long s) { return s == 429 || s == 409; });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.attempts, 3);
}

TEST(HttpClient, HonoursRetryAfterSeconds) {
  RawHttpServer server([](const RawRequest&, int i) {
    return i == 0 ? raw_response(503, "", {{"Retry-After", "1"}}) : raw_response(200);
  });
  HttpClient client(fast_options());  // backoff <= 5 ms, so a long wait is Retry-After's
  auto start = Clock::now();
  HttpResult r = client.send_with_retry("GET", server.url("/x"), {}, "");
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(elapsed, std::chrono::milliseconds(950));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(HttpClient, RetryAfterIsCapped) {
  RawHttpServer server([](const RawRequest&, int i) {
    return i == 0 ? raw_response(429, "", {{"Retry-After", "3600"}}) : raw_response(200);
  });
  auto opts = fast_options();
  opts.retry_after_max = std::chrono::milliseconds(50);
  HttpClient client(opts);
  auto start = Clock::now();
  EXPECT_EQ(client.send_with_retry("GET", server.url("/x"), {}, "").status, 200);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

TEST(HttpClient, ParsesRetryAfterForms) {
  HttpResult r;
  EXPECT_FALSE(HttpClient::retry_after(r));
  r.headers["retry-after"] = "7";
  EXPECT_EQ(HttpClient::retry_after(r), std::chrono::milliseconds(7000));
  r.headers["Retry-After"] = "Wed, 21 Oct 2015 07:28:00 GMT";  // in the past
  EXPECT_EQ(HttpClient::retry_after(r), std::chrono::milliseconds(0));
  r.headers["Retry-After"] = "garbage";
  EXPECT_FALSE(HttpClient::retry_after(r));
}

TEST(HttpClient, RetriesDroppedConnections) {
  RawHttpServer server([](const RawRequest&, int i) { return i == 0 ? std::string() : raw_response(200, "ok"); });
  HttpClient client(fast_options());
  HttpResult r = client.send_with_retry("GET", server.url("/x"), {}, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.attempts, 2);
  // A single attempt surfaces the transport error.
  RawHttpServer dropper([](const RawRequest&, int) { return std::string(); });
  EXPECT_THROW(client.send("GET", dropper.url("/x"), {}, ""), HttpTransportError);
}

TEST(HttpClient, ConnectionRefusedThrowsAfterRetries) {
  auto opts = fast_options();
  opts.max_retries = 2;
  HttpClient client(opts);
  const std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/x";
  try {
    client.send_with_retry("GET", url, {}, "");
    FAIL() << "expected HttpTransportError";
  } catch (const HttpTransportError& e) {
    EXPECT_NE(std::string(e.what()).find("after 3 attempts"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos) << e.what();
  }
}

TEST(HttpClient, TimesOut) {
  RawHttpServer server([](const RawRequest&, int) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return raw_response(200);
  });
  auto opts = fast_options();
  opts.timeout = std::chrono::milliseconds(200);
  opts.max_retries = 0;
  HttpClient client(opts);
  auto start = Clock::now();
  EXPECT_THROW(client.send_with_retry("GET", server.url("/slow"), {}, ""), HttpTransportError);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1200));
}

TEST(HttpClient, BackoffIsFullJitterWithinCap) {
  HttpClientOptions opts;
  opts.backoff_base = std::chrono::milliseconds(100);
  opts.backoff_max = std::chrono::milliseconds(1000);
  HttpClient client(opts);
  for (int attempt = 1; attempt <= 8; ++attempt) {
    const int64_t cap = std::min<int64_t>(1000, 100LL << attempt);
    std::set<int64_t> seen;
    for (int i = 0; i < 200; ++i) {
      auto d = client.backoff(attempt).count();
      EXPECT_GE(d, 0);
      EXPECT_LE(d, cap);
      seen.insert(d);
    }
    EXPECT_GT(seen.size(), 10u) << "attempt " << attempt << ": no jitter";
  }
  // Huge attempt numbers do not overflow.
  for (int i = 0; i < 50; ++i) {
    auto d = client.backoff(10000).count();
    EXPECT_GE(d, 0);
    EXPECT_LE(d, 1000);
  }
}

TEST(HttpClient, SendsCredentialsAndSigV4) {
  RawHttpServer server([](const RawRequest&, int) { return raw_response(200); });
  auto opts = fast_options();
  opts.aws_sigv4 = "aws:amz:us-east-1:s3";
  opts.username = "AKID";
  opts.password = "SECRET";
  HttpClient client(opts);
  client.send("PUT", server.url("/bucket/key"), {{"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}}, "data");
  auto req = server.requests().at(0);
  const std::string auth = req.header("authorization");
  EXPECT_EQ(auth.rfind("AWS4-HMAC-SHA256 Credential=AKID/", 0), 0u) << auth;
  EXPECT_NE(auth.find("/us-east-1/s3/aws4_request"), std::string::npos) << auth;
  EXPECT_NE(auth.find("x-amz-content-sha256"), std::string::npos) << auth;
  EXPECT_FALSE(req.header("x-amz-date").empty());
  EXPECT_EQ(auth.find("SECRET"), std::string::npos);
}

}  // namespace
}  // namespace bf
