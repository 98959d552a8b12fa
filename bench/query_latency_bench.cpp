// Query service vs DuckDB directly on the same Parquet files (docs/performance.md,
// "Query service vs DuckDB"):
//
//   ./build/bench/bench_query_latency [rows=10000000] [runs=5]
//
// Writes `rows` rows with DuckDB itself (range()) into committed parts of a lake in
// a temp directory (10 parts, one hour partition each), then times, alternating the
// two sides run by run:
//   - three scans: count(*), a group-by, a filtered aggregate — the service through
//     POST /api/v1/query (HTTP on loopback, json, in-process server: guard, views,
//     the sandboxed tenant engine, rendering) vs SqlEngine::query on a plain engine
//     with the same threads and memory limit over read_parquet of the same files;
//   - time to the first row of `SELECT * FROM events` (ndjson, no row cap): the
//     first complete row line on a raw socket vs the first row handed out by
//     SqlEngine::query_stream; the client then goes away (cancelling the query).
// Prints the median of each side and the ratio service / direct.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "../tests/fixtures/lake.h"
#include "common/catalog.h"
#include "common/log.h"
#include "net/http_client.h"
#include "query/query_service.h"
#include "storage/local_store.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kKey = "bench-query-latency-key-0123456789";

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Time until the first complete row line of a streamed ndjson answer arrives.
double service_first_row_ms(uint16_t port, const std::string& sql) {
  const std::string body = boost::json::serialize(boost::json::object{{"dataset", "bench/events"}, {"sql", sql}, {"format", "ndjson"}});
  const std::string req = "POST /api/v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey +
                          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
  const auto start = Clock::now();
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) throw std::runtime_error("send");
  std::string got;
  char buf[65536];
  double at = -1;
  while (at < 0) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) throw std::runtime_error("connection closed before the first row: " + got.substr(0, 300));
    got.append(buf, static_cast<size_t>(n));
    const size_t head_end = got.find("\r\n\r\n");
    if (head_end == std::string::npos) continue;
    if (got.compare(0, 12, "HTTP/1.1 200") != 0) throw std::runtime_error("not 200: " + got.substr(0, 300));
    // After the head: a chunk-size line, then the first row up to its '\n'.
    const size_t chunk_line = got.find("\r\n", head_end + 4);
    if (chunk_line == std::string::npos) continue;
    if (got.find('\n', chunk_line + 2) != std::string::npos) at = ms_since(start);
  }
  ::close(fd);  // goes away: the service cancels the rest
  return at;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t rows = argc > 1 ? std::stoull(argv[1]) : 10000000ull;
  const int runs = argc > 2 ? std::stoi(argv[2]) : 5;
  bf::init_logging("warn");
  const fs::path dir = fs::temp_directory_path() / ("bf-bench-query-" + bf::new_ulid());
  auto store = std::make_shared<bf::LocalStore>(dir / "lake");
  const bf::DatasetRef ref{"acme", "bench", "events"};

  // --- data: 10 committed parts written by DuckDB ------------------------------
  const auto gen_start = Clock::now();
  const int parts = 10;
  std::vector<std::string> keys;
  for (int p = 0; p < parts; ++p) {
    const uint64_t lo = rows * p / parts, hi = rows * (p + 1) / parts;
    char hour[64];
    std::snprintf(hour, sizeof hour, "year=2026/month=01/day=01/hour=%02d", p);
    const std::string select =
        "SELECT TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (range * 3600 // " + std::to_string(rows / parts) +
        ") SECOND AS _time, range AS id, 'host-' || (range % 50)::VARCHAR AS host, "
        "(ARRAY['GET','POST','PUT','DELETE'])[range % 4 + 1] AS method, "
        "(CASE WHEN range % 10 < 7 THEN 200 WHEN range % 10 < 9 THEN 404 ELSE 500 END)::INTEGER AS status, "
        "(range * 7919 % 100000)::BIGINT AS bytes FROM range(" + std::to_string(lo) + ", " + std::to_string(hi) + ")";
    keys.push_back(bf::test::write_part(store, ref, select, hi - lo, true, hour));
  }
  std::printf("data: %llu rows in %d committed parts, written in %.1f s\n", static_cast<unsigned long long>(rows), parts,
              ms_since(gen_start) / 1000);

  // --- the two sides -------------------------------------------------------------
  auto catalog = std::make_shared<bf::Catalog>();
  catalog->add_dataset(bf::DatasetInfo{ref, {}});
  catalog->add_query_key(kKey, bf::KeyGrant{"acme", "bench"});
  bf::QueryOptions o;
  o.http.listen = "127.0.0.1:0";
  o.max_rows = rows + 1;                 // no cap for SELECT *
  o.max_response_bytes = 1ull << 40;     // nor by size
  o.timeout = std::chrono::milliseconds(600000);
  o.max_concurrent = 1;                  // the one engine gets all of memory_limit, as the direct one
  o.temp_dir = (dir / "tmp").string();
  bf::QueryService service(o, catalog, store);
  service.start();
  const std::string url = "http://127.0.0.1:" + std::to_string(service.port()) + "/api/v1/query";

  bf::SqlEngine::Options eo;
  eo.threads = o.threads;
  eo.memory_limit = std::to_string(o.memory_limit / 1024) + "KiB";
  bf::SqlEngine direct(store, eo);
  std::string files;
  for (const auto& k : keys) files += (files.empty() ? "" : ", ") + bf::sql_quote("bf://" + k);
  const std::string source = "read_parquet([" + files + "], hive_partitioning=true, union_by_name=true)";

  struct Case {
    const char* name;
    std::string sql;  // over `events`
  };
  const std::vector<Case> cases{
      {"count(*)", "SELECT count(*) AS n FROM events"},
      {"group-by", "SELECT host, count(*) AS n, sum(bytes) AS b FROM events GROUP BY host ORDER BY host"},
      {"filtered aggregate", "SELECT count(*) AS n, avg(bytes) AS b FROM events WHERE status = 404 AND method = 'GET'"},
  };
  auto direct_sql = [&](const std::string& sql) {
    std::string s = sql;
    s.replace(s.find("FROM events"), 11, "FROM " + source);
    return s;
  };

  bf::HttpClient http;
  auto service_query = [&](const std::string& sql) {
    const auto start = Clock::now();
    auto r = http.send("POST", url, {{"Authorization", "Bearer " + kKey}},
                       boost::json::serialize(boost::json::object{{"dataset", "bench/events"}, {"sql", sql}}));
    const double t = ms_since(start);
    if (r.status != 200) throw std::runtime_error("service answered " + std::to_string(r.status) + ": " + r.body);
    return t;
  };
  auto direct_query = [&](const std::string& sql) {
    const auto start = Clock::now();
    auto res = direct.query(direct_sql(sql));
    const double t = ms_since(start);
    if (res.rows.empty()) throw std::runtime_error("no rows");
    return t;
  };
  // Warm both (file system cache, footers).
  for (const auto& c : cases) {
    service_query(c.sql);
    direct_query(c.sql);
  }

  std::printf("%-22s %12s %12s %8s\n", "query", "service ms", "duckdb ms", "ratio");
  for (const auto& c : cases) {
    std::vector<double> s, d;
    for (int i = 0; i < runs; ++i) {
      if (i % 2 == 0) {
        s.push_back(service_query(c.sql));
        d.push_back(direct_query(c.sql));
      } else {
        d.push_back(direct_query(c.sql));
        s.push_back(service_query(c.sql));
      }
    }
    std::printf("%-22s %12.1f %12.1f %8.2f\n", c.name, median(s), median(d), median(s) / median(d));
  }

  // Time to first row of SELECT * (no LIMIT).
  std::vector<double> s, d;
  for (int i = 0; i < runs; ++i) {
    auto direct_ttfr = [&] {
      const auto start = Clock::now();
      double at = -1;
      bf::SqlRowSink sink;
      sink.on_row = [&](bf::SqlRow&) {
        at = ms_since(start);
        return false;  // the first row is all we wait for
      };
      bf::SqlEngine::QueryLimits limits;
      direct.query_stream("SELECT * FROM " + source, {}, limits, sink);
      return at;
    };
    if (i % 2 == 0) {
      s.push_back(service_first_row_ms(service.port(), "SELECT * FROM events"));
      d.push_back(direct_ttfr());
    } else {
      d.push_back(direct_ttfr());
      s.push_back(service_first_row_ms(service.port(), "SELECT * FROM events"));
    }
    // The cancelled query releases the engine slot at once; wait for it.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::printf("%-22s %12.1f %12.1f %8.2f\n", "first row of SELECT *", median(s), median(d), median(s) / median(d));
  service.stop();
  fs::remove_all(dir);
  return 0;
}
