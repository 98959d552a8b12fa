#pragma once
// Test helpers for the proxy: a recording receiver (bf::HttpServer on port 0 that
// speaks the ingest endpoint of DESIGN §3), raw UDP/TCP senders and polling.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <atomic>
#include <map>
#include <set>

#include "common/batch.h"
#include "common/compression.h"
#include "common/metrics.h"
#include "fixtures/raw_http_server.h"
#include "net/http_server.h"

namespace bf::test {

inline bool wait_until(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

struct RecordedRequest {
  std::string tenant, dataset;
  std::string authorization, content_type, content_encoding, batch_id;
  int status = 0;  // what we answered
  std::vector<Event> events;
  std::string decode_error;
};

class RecordingReceiver {
 public:
  RecordingReceiver() {
    Router router;
    router.add("POST", "/api/v1/ingest/{tenant}/{dataset}", [this](HttpRequest& r) { return handle(r); });
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    server_ = std::make_unique<HttpServer>("test-receiver", o, std::move(router));
    server_->start();
  }
  ~RecordingReceiver() { stop(); }
  void stop() {
    if (server_) server_->stop();
  }
  uint16_t port() const { return server_->port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  // The next `times` requests are answered with `status`.
  void fail_next(int status, int times) {
    std::lock_guard lock(mu_);
    for (int i = 0; i < times; ++i) script_.push_back(status);
  }
  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::vector<RecordedRequest> accepted() const {
    std::vector<RecordedRequest> out;
    for (auto& r : requests())
      if (r.status == 200) out.push_back(r);
    return out;
  }
  std::vector<Event> accepted_events() const {
    std::vector<Event> out;
    for (auto& r : accepted())
      for (auto& e : r.events) out.push_back(e);
    return out;
  }
  size_t accepted_event_count() const { return accepted_events().size(); }

 private:
  HttpResponse handle(HttpRequest& req) {
    RecordedRequest rec;
    rec.tenant = req.params["tenant"];
    rec.dataset = req.params["dataset"];
    rec.authorization = req.header("Authorization").value_or("");
    rec.content_type = req.header("Content-Type").value_or("");
    rec.content_encoding = req.header("Content-Encoding").value_or("");
    rec.batch_id = req.header("X-Batch-Id").value_or("");
    try {
      std::string ndjson = rec.content_encoding == "zstd" ? decompress(Encoding::zstd, req.body, 1 << 28) : req.body;
      rec.events = parse_ndjson(ndjson);
    } catch (const std::exception& e) {
      rec.decode_error = e.what();
    }
    std::lock_guard lock(mu_);
    rec.status = 200;
    if (!script_.empty()) {
      rec.status = script_.front();
      script_.pop_front();
    }
    requests_.push_back(rec);
    if (rec.status == 200) return HttpResponse::json(200, R"({"ok":true})");
    return HttpResponse::error(rec.status, "scripted failure " + std::to_string(rec.status));
  }

  mutable std::mutex mu_;
  std::deque<int> script_;
  std::vector<RecordedRequest> requests_;
  std::unique_ptr<HttpServer> server_;
};

// A receiver whose answers a test decides per request (tests/fixtures/raw_http_server.h
// underneath): `decide` returns the status for a request; 200 is answered like a
// receiver ({"duplicate": true} when the batch id was accepted before), other statuses
// with an error body (and `Retry-After: <retry_after>` when set). Records every request.
class ScriptedReceiver {
 public:
  struct Seen {
    std::string tenant, dataset, batch_id;
    int status = 0;
    size_t events = 0;
    std::vector<Event> decoded;
  };
  using Decide = std::function<int(const Seen&)>;

  explicit ScriptedReceiver(Decide decide, std::string retry_after = "")
      : decide_(std::move(decide)),
        retry_after_(std::move(retry_after)),
        server_([this](const RawRequest& r, int) { return handle(r); }) {}

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  // batch id -> number of 200 answers that stored it (duplicates not counted).
  std::map<std::string, int> stored() const {
    std::lock_guard lock(mu_);
    return stored_;
  }
  size_t stored_events() const {
    size_t n = 0;
    for (auto& s : seen())
      if (s.status == 200) n += s.events;
    return n;
  }

 private:
  std::string handle(const RawRequest& req) {
    Seen s;
    // /api/v1/ingest/{tenant}/{dataset}
    const std::string prefix = "/api/v1/ingest/";
    if (req.target.rfind(prefix, 0) == 0) {
      const std::string rest = req.target.substr(prefix.size());
      const size_t slash = rest.find('/');
      s.tenant = rest.substr(0, slash);
      s.dataset = slash == std::string::npos ? "" : rest.substr(slash + 1);
    }
    s.batch_id = req.header("x-batch-id");
    try {
      const std::string ndjson =
          req.header("content-encoding") == "zstd" ? decompress(Encoding::zstd, req.body, 1 << 28) : req.body;
      s.decoded = parse_ndjson(ndjson);
      s.events = s.decoded.size();
    } catch (const std::exception&) {
    }
    s.status = decide_(s);
    bool duplicate = false;
    {
      std::lock_guard lock(mu_);
      if (s.status == 200) {
        duplicate = stored_.count(s.batch_id) > 0;
        if (!duplicate) stored_[s.batch_id] = 1;
      }
      if (duplicate) {  // stored nothing
        s.decoded.clear();
        s.events = 0;
      }
      seen_.push_back(s);
    }
    if (s.status == 200)
      return raw_response(200, duplicate ? R"({"duplicate":true})" : R"({"stored":true})",
                          {{"Content-Type", "application/json"}});
    std::vector<std::pair<std::string, std::string>> h{{"Content-Type", "application/json"}};
    if (!retry_after_.empty() && (s.status == 429 || s.status == 503)) h.emplace_back("Retry-After", retry_after_);
    return raw_response(s.status, R"({"error":"scripted )" + std::to_string(s.status) + R"("})", h);
  }

  Decide decide_;
  std::string retry_after_;
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
  std::map<std::string, int> stored_;
  RawHttpServer server_;  // last: stops (joins) before the members it uses go
};

// A port on which nothing listens (bound once, then closed).
inline uint16_t dead_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline void send_udp(uint16_t port, const std::string& datagram) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  ::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::close(fd);
}

inline void send_tcp(uint16_t port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
  }
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, 0);
    if (n <= 0) break;
    off += size_t(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buf[64];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
  ::close(fd);
}

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("bf-proxy-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline size_t count_files(const std::filesystem::path& dir, const std::string& suffix) {
  size_t n = 0;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      ++n;
  }
  return n;
}

inline int64_t metric(const std::string& name, const Labels& labels = {}) { return metrics().value(name, labels); }

}  // namespace bf::test
