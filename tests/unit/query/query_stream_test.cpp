// POST /api/v1/query streams large bodies (chunked, limits in the last line and in
// trailers) and stops the query when its client goes away: during execution
// (DuckDB interrupted) and while rows are written; the engine is free again at once.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/catalog.h"
#include "common/metrics.h"
#include "common/ulid.h"
#include "fixtures/lake.h"
#include "net/http_client.h"
#include "query/query_service.h"
#include "storage/local_store.h"

using namespace bf;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kKey = "query-stream-test-key-0123456789";

uint64_t client_gone_count() {
  return metrics().counter("bf_query_cancelled_total", "", {{"reason", "client_gone"}}).value();
}

// A client on a plain socket, so the test decides when it goes away.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
  }
  ~RawClient() { close(); }
  void post_query(const std::string& sql, const std::string& format) {
    const std::string body = boost::json::serialize(boost::json::object{{"dataset", "web/logs"}, {"sql", sql}, {"format", format}});
    const std::string req = "POST /api/v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey +
                            "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\n\r\n" + body;
    ASSERT_EQ(::send(fd_, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  }
  // Reads until `n` bytes arrived (or the timeout); returns what came.
  std::string read_at_least(size_t n, std::chrono::milliseconds timeout) {
    std::string got;
    const auto deadline = Clock::now() + timeout;
    char buf[16384];
    while (got.size() < n && Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
      if (r <= 0) break;
      got.append(buf, static_cast<size_t>(r));
    }
    return got;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

class QueryStreamTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-query-stream-" + new_ulid());
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(dir / "lake");
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  std::unique_ptr<QueryService> service;
  HttpClient http;
  std::string url;

  void SetUp() override {
    catalog->add_dataset(DatasetInfo{DatasetRef{"acme", "web", "logs"}, {}});
    catalog->add_query_key(kKey, KeyGrant{"acme", "web"});
    test::write_part(store, DatasetRef{"acme", "web", "logs"},
                     "SELECT range AS n, 'row-' || range::VARCHAR AS label FROM range(50000)", 50000);
    QueryOptions o;
    o.http.listen = "127.0.0.1:0";
    o.max_rows = 40000;
    o.max_concurrent = 1;  // one query at a time: a stuck query would block the next
    o.timeout = std::chrono::milliseconds(120000);
    o.temp_dir = (dir / "tmp").string();
    service = std::make_unique<QueryService>(o, catalog, store);
    service->start();
    url = "http://127.0.0.1:" + std::to_string(service->port()) + "/api/v1/query";
  }
  void TearDown() override {
    service.reset();
    fs::remove_all(dir);
  }
  HttpResult post(const std::string& sql, const std::string& format) {
    boost::json::object body{{"dataset", "web/logs"}, {"sql", sql}, {"format", format}};
    return http.send("POST", url, {{"Authorization", "Bearer " + kKey}}, boost::json::serialize(body));
  }
  // The engine is free: a small query answers (max_concurrent is 1).
  void expect_engine_free() {
    auto r = post("SELECT count(*) AS c FROM events", "json");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"c\":50000"), std::string::npos) << r.body;
  }
  static bool wait_for(const std::function<bool()>& cond, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (cond()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return cond();
  }
};

TEST_F(QueryStreamTest, LargeNdjsonStreamsChunkedWithMetaLastAndTrailers) {
  auto r = post("SELECT n, label FROM events ORDER BY n", "ndjson");
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
  EXPECT_EQ(r.headers["Transfer-Encoding"], "chunked");
  EXPECT_EQ(r.headers.count("Content-Length"), 0u);
  size_t lines = 0, at = 0, last = 0;
  while (at < r.body.size()) {
    const size_t end = r.body.find('\n', at);
    ASSERT_NE(end, std::string::npos);
    if (lines < 40000) {
      auto row = boost::json::parse(std::string_view(r.body).substr(at, end - at)).as_object();
      ASSERT_EQ(row.at("n").to_number<int64_t>(), static_cast<int64_t>(lines));
    }
    last = at;
    at = end + 1;
    ++lines;
  }
  EXPECT_EQ(lines, 40001u);
  auto meta = boost::json::parse(r.body.substr(last)).as_object().at("_meta").as_object();
  EXPECT_EQ(meta.at("row_count").to_number<int64_t>(), 40000);
  EXPECT_EQ(meta.at("truncated"), true);
  EXPECT_EQ(meta.at("truncated_reason"), "max_rows");
  // The X-Result-* facts come as trailers after a streamed body.
  EXPECT_EQ(r.headers["X-Row-Count"], "40000");
  EXPECT_EQ(r.headers["X-Result-Truncated"], "true");
  EXPECT_EQ(r.headers["X-Truncated-Reason"], "max_rows");
}

TEST_F(QueryStreamTest, LargeJsonAndCsvStreamToo) {
  auto j = post("SELECT n, label FROM events WHERE n < 30000 ORDER BY n", "json");
  ASSERT_EQ(j.status, 200);
  EXPECT_EQ(j.headers["Transfer-Encoding"], "chunked");
  auto doc = boost::json::parse(j.body).as_object();
  EXPECT_EQ(doc.at("rows").as_array().size(), 30000u);
  EXPECT_EQ(doc.at("rows").at(29999).at("label"), "row-29999");
  EXPECT_EQ(doc.at("truncated"), false);
  EXPECT_EQ(j.headers["X-Result-Truncated"], "false");

  auto c = post("SELECT n, label FROM events ORDER BY n", "csv");
  ASSERT_EQ(c.status, 200);
  EXPECT_EQ(c.headers["Transfer-Encoding"], "chunked");
  EXPECT_EQ(c.body.rfind("n,label\r\n0,row-0\r\n", 0), 0u) << c.body.substr(0, 40);
  EXPECT_NE(c.body.find("\r\n39999,row-39999\r\n"), std::string::npos);
  EXPECT_EQ(c.body.find("40000,row-40000"), std::string::npos);
  EXPECT_EQ(c.headers["X-Result-Truncated"], "true");
  EXPECT_EQ(c.headers["X-Row-Count"], "40000");

  // Small results are still answered whole, with Content-Length and headers.
  auto s = post("SELECT n FROM events ORDER BY n LIMIT 3", "csv");
  ASSERT_EQ(s.status, 200);
  EXPECT_EQ(s.headers.count("Transfer-Encoding"), 0u);
  EXPECT_EQ(s.headers["Content-Length"], std::to_string(s.body.size()));
  EXPECT_EQ(s.headers["X-Row-Count"], "3");
}

TEST_F(QueryStreamTest, ClientGoneDuringExecutionInterruptsTheQuery) {
  const auto before = client_gone_count();
  {
    RawClient client(service->port());
    // Billions of row pairs: minutes of work, no row before the end.
    client.post_query("SELECT count(*) AS c FROM events a, events b, range(1000) r WHERE (a.n * b.n + r.range) % 7 = 3",
                      "json");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(client_gone_count(), before);  // still running
  }  // the client goes away
  const auto gone_at = Clock::now();
  EXPECT_TRUE(wait_for([&] { return client_gone_count() == before + 1; }, std::chrono::seconds(30)));
  expect_engine_free();
  // Far sooner than the query would have taken (or query.timeout, 120 s).
  EXPECT_LT(Clock::now() - gone_at, std::chrono::seconds(30));
}

TEST_F(QueryStreamTest, ClientGoneMidStreamStopsTheQuery) {
  const auto before = client_gone_count();
  {
    RawClient client(service->port());
    // Far more than the client reads (and than fits in socket buffers).
    client.post_query("SELECT a.n, repeat('x', 1000) AS pad FROM events a, range(1000) r", "ndjson");
    std::string got = client.read_at_least(200000, std::chrono::seconds(30));
    ASSERT_GE(got.size(), 200000u);
    EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos) << got.substr(0, 400);
  }
  EXPECT_TRUE(wait_for([&] { return client_gone_count() == before + 1; }, std::chrono::seconds(30)));
  expect_engine_free();
}

}  // namespace
