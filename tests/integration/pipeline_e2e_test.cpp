// End to end: `bytefreezer run` as a real process, fed over syslog TCP, syslog UDP
// and HTTP; checked by reading the Parquet lake back with DuckDB. Runs once on
// local directory storage and once on S3 (s3rver).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>

#include "common/compression.h"
#include "common/config.h"
#include "common/time.h"
#include "common/ulid.h"
#include "fixtures/net_helpers.h"
#include "fixtures/process.h"
#include "fixtures/s3rver.h"
#include "net/http_client.h"
#include "storage/object_store.h"
#include "storage/s3_store.h"
#include "storage/sql_engine.h"

namespace fs = std::filesystem;
using namespace bf;
using namespace bf::test;

namespace {

constexpr int kTcpLines = 10000;
constexpr int kUdpLines = 10000;
constexpr int kHttpEvents = 1000;
constexpr int kWebhookEvents = 100;  // posted to the receiver directly, without _received/_source
const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct Ports {
  uint16_t syslog = free_port_tcp_udp();
  uint16_t http_source = free_port();
  uint16_t receiver = free_port();
  uint16_t query = free_port();
  uint16_t admin = free_port();
};

std::string write_config(const fs::path& dir, const Ports& p, const std::string& storage_yaml) {
  std::string yaml = R"(log: {level: info}
admin: {listen: 127.0.0.1:)" + std::to_string(p.admin) + R"(}
control: {listen: "127.0.0.1:0"}
)" + storage_yaml + R"(
accounts:
  - id: acme
    tenants:
      - id: default
        ingest_keys: ["e2e-ingest-key-0123456789"]
        query_keys: ["e2e-query-key-0123456789"]
        datasets:
          - id: syslog
          - id: events
            pipeline:
              - add: {field: pipeline, value: events-v1}
              - rename: {from: note, to: comment}
              - remove: {field: secret}
proxy:
  receiver: {url: "http://127.0.0.1:)" + std::to_string(p.receiver) + R"(", ingest_key: e2e-ingest-key-0123456789}
  batch: {max_events: 2000, max_age: 300ms}
  spool: {dir: ./proxy-spool}
  sources:
    - {type: syslog_tcp, name: tcp, listen: "127.0.0.1:)" + std::to_string(p.syslog) + R"(", tenant: default, dataset: syslog}
    - {type: syslog_udp, name: udp, listen: "127.0.0.1:)" + std::to_string(p.syslog) + R"(", tenant: default, dataset: syslog, timezone: "+02:00"}
    - {type: http, name: http, listen: "127.0.0.1:)" + std::to_string(p.http_source) + R"(", tenant: default, dataset: events}
receiver:
  listen: 127.0.0.1:)" + std::to_string(p.receiver) + R"(
  spool: {dir: ./receiver-spool}
piper: {interval: 300ms}
packer: {interval: 1s, flush: {age: 0s}}
query: {listen: "127.0.0.1:)" + std::to_string(p.query) + R"("}
)";
  fs::path path = dir / "bytefreezer.yaml";
  std::ofstream(path) << yaml;
  return path.string();
}

// Event times for the syslog lines: one per second from three hours ago, so the
// data spans several hourly partitions.
int64_t base_time_us() { return (now_us() / 1000000 - 3 * 3600) * 1000000; }

class PipelineE2E : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-e2e-" + new_ulid());
  std::unique_ptr<S3rver> s3;
  StorageOptions storage;

  void SetUp() override {
    fs::create_directories(dir);
    if (GetParam() == "s3") {
      s3 = std::make_unique<S3rver>();
      storage = s3->options("bf-e2e");
      storage.prefix = "lake";
      S3Store(storage).ensure_bucket();
    } else {
      storage.type = "local";
      storage.path = (dir / "store").string();
    }
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string storage_yaml() const {
    if (storage.type == "local") return "storage: {type: local, path: " + storage.path + "}\n";
    return "storage: {type: s3, endpoint: \"" + storage.endpoint + "\", bucket: " + storage.bucket +
           ", prefix: " + storage.prefix + ", access_key: " + storage.access_key + ", secret_key: " + storage.secret_key +
           ", path_style: true}\n";
  }
};

TEST_P(PipelineE2E, EveryEventArrivesExactlyOnceWithItsTimeAndPartition) {
  Ports ports;
  std::string config;
  std::unique_ptr<ChildProcess> bf;
  // A port picked as free may be taken by a parallel test before bytefreezer binds
  // it; bytefreezer then exits at once, and the test tries other ports.
  for (int attempt = 0; attempt < 3; ++attempt) {
    ports = Ports{};
    config = write_config(dir, ports, storage_yaml());
    bf = std::make_unique<ChildProcess>(std::vector<std::string>{BF_BINARY, "run", "--config", config},
                                        ChildOptions{dir.string(), (dir / "bytefreezer.log").string(), {}});
    eventually(std::chrono::seconds(30), [&] {
      int fd = connect_tcp(ports.admin);  // the admin server starts after every component
      if (fd >= 0) ::close(fd);
      return fd >= 0 || !bf->running();
    }, std::chrono::milliseconds(50));
    if (bf->running()) break;
  }
  ASSERT_TRUE(bf->running()) << "bytefreezer did not start:\n" << bf->log();
  ASSERT_TRUE(wait_for_port(ports.syslog, std::chrono::seconds(10)));
  ASSERT_TRUE(wait_for_port(ports.http_source, std::chrono::seconds(10)));

  const int64_t base = base_time_us();

  // 10,000 RFC 5424 lines over TCP (newline framing), fractional seconds and an offset.
  std::thread tcp_sender([&] {
    int fd = connect_tcp(ports.syslog);
    ASSERT_GE(fd, 0);
    std::string chunk;
    for (int i = 0; i < kTcpLines; ++i) {
      // Written in +02:00: the pipeline must store it as UTC.
      std::string ts = format_rfc3339(base + int64_t(i) * 1000000 + 2 * 3600 * 1000000LL);
      ts = ts.substr(0, ts.size() - 1) + "+02:00";
      chunk += "<134>1 " + ts + " web01 nginx 4242 ACC [meta@32473 seq=\"" + std::to_string(i) +
               "\"] tcp id=t" + std::to_string(i) + "\n";
      if (chunk.size() > 64 * 1024) {
        send_all(fd, chunk);
        chunk.clear();
      }
    }
    send_all(fd, chunk);
    ::close(fd);
  });

  // 10,000 RFC 3164 lines over UDP, paced so the kernel buffer never overflows; their
  // zone-less times are wall times in the source's `timezone` (+02:00).
  std::thread udp_sender([&] {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(ports.syslog);
    for (int i = 0; i < kUdpLines; ++i) {
      CivilTime c = to_civil(base + int64_t(i) * 1000000 + 2 * 3600 * 1000000LL);
      char line[256];
      int n = std::snprintf(line, sizeof line, "<13>%s %2d %02d:%02d:%02d host02 sshd[77]: udp id=u%d",
                            kMonths[c.month - 1], c.day, c.hour, c.minute, c.second, i);
      ::sendto(fd, line, n, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      if (i % 200 == 199) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::close(fd);
  });

  // 1,000 events over HTTP in batches of 100 (NDJSON), each acknowledged.
  HttpClient http;
  for (int b = 0; b < kHttpEvents / 100; ++b) {
    std::string body;
    for (int i = b * 100; i < (b + 1) * 100; ++i)
      body += "{\"id\":\"h" + std::to_string(i) + "\",\"note\":\"n\",\"secret\":\"s3cr3t\"}\n";
    HttpResult r = http.send_with_retry("POST", "http://127.0.0.1:" + std::to_string(ports.http_source) + "/",
                                        {{"Content-Type", "application/x-ndjson"}}, body);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // A webhook straight to the receiver: stored as sent, the defaults applied downstream.
  {
    std::string body;
    for (int i = 0; i < kWebhookEvents; ++i) body += "{\"id\":\"w" + std::to_string(i) + "\",\"note\":\"n\"}\n";
    HttpResult r = http.send_with_retry(
        "POST", "http://127.0.0.1:" + std::to_string(ports.receiver) + "/api/v1/ingest/default/events",
        {{"Authorization", "Bearer e2e-ingest-key-0123456789"}, {"Content-Encoding", "zstd"}, {"X-Batch-Id", new_ulid()}},
        compress(Encoding::zstd, body));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  tcp_sender.join();
  udp_sender.join();

  // Read the lake back with DuckDB through the same ObjectStore.
  SqlEngine engine(make_object_store(storage), SqlEngine::Options{});
  auto lake = [](const std::string& dataset) {
    return "read_parquet('bf://parquet/account=acme/tenant=default/dataset=" + dataset +
           "/**/*.parquet', hive_partitioning=true, union_by_name=true, filename=true)";
  };
  auto count = [&](const std::string& sql) -> int64_t {
    try {
      return std::stoll(engine.query(sql).rows.at(0).at(0).value_or("-1"));
    } catch (const std::exception&) {
      return -1;  // no Parquet yet
    }
  };
  int64_t syslog_rows = -1, event_rows = -1;
  bool complete = eventually(std::chrono::seconds(180), [&] {
    syslog_rows = count("SELECT count(*) FROM " + lake("syslog"));
    event_rows = count("SELECT count(*) FROM " + lake("events"));
    return syslog_rows >= kTcpLines + kUdpLines && event_rows >= kHttpEvents + kWebhookEvents;
  }, std::chrono::seconds(1));
  ASSERT_TRUE(complete) << "syslog rows " << syslog_rows << ", event rows " << event_rows << "\n" << bf->log();

  // Exactly once: as many distinct ids as rows, and every expected id.
  std::string ids = "SELECT regexp_extract(message, 'id=([tu][0-9]+)', 1) AS id, * FROM " + lake("syslog");
  EXPECT_EQ(count("SELECT count(*) FROM " + lake("syslog")), kTcpLines + kUdpLines);
  EXPECT_EQ(count("SELECT count(DISTINCT id) FROM (" + ids + ") WHERE id <> ''"), kTcpLines + kUdpLines);
  EXPECT_EQ(count("SELECT count(*) FROM (" + ids + ") WHERE id LIKE 't%'"), kTcpLines);

  // _time carries the syslog timestamps (converted to UTC): id N was stamped base + N s.
  std::string expected_time = "make_timestamp(" + std::to_string(base) + " + CAST(substr(id, 2) AS BIGINT) * 1000000)";
  EXPECT_EQ(count("SELECT count(*) FROM (" + ids + ") WHERE _time = " + expected_time), kTcpLines + kUdpLines);
  EXPECT_EQ(count("SELECT count(DISTINCT hour) FROM " + lake("syslog")) >= 3, true);

  // Partition directories match _time.
  EXPECT_EQ(count("SELECT count(*) FROM " + lake("syslog") +
                  " WHERE filename NOT LIKE '%/year=' || strftime(_time, '%Y/month=%m/day=%d/hour=%H') || '/part-%.parquet'"),
            0);

  // Parsed syslog fields.
  EXPECT_EQ(count("SELECT count(*) FROM " + lake("syslog") + " WHERE hostname = 'web01' AND app_name = 'nginx' AND severity = 6 AND facility = 16"),
            kTcpLines);
  EXPECT_EQ(count("SELECT count(*) FROM " + lake("syslog") + " WHERE hostname = 'host02' AND app_name = 'sshd' AND procid = '77'"),
            kUdpLines);

  // HTTP events: each once, the dataset's pipeline applied.
  EXPECT_EQ(count("SELECT count(*) FROM " + lake("events")), kHttpEvents + kWebhookEvents);
  EXPECT_EQ(count("SELECT count(DISTINCT id) FROM " + lake("events")), kHttpEvents + kWebhookEvents);
  EXPECT_EQ(count("SELECT count(*) FROM " + lake("events") + " WHERE pipeline = 'events-v1' AND comment = 'n'"),
            kHttpEvents + kWebhookEvents);
  // The webhook's events got the receive metadata from the batch envelope.
  EXPECT_EQ(count("SELECT count(*) FROM " + lake("events") + " WHERE id LIKE 'w%' AND _source = 'http-ingest' AND "
                  "_peer LIKE '127.0.0.1:%' AND _received IS NOT NULL AND _time > now() - INTERVAL 1 HOUR"),
            kWebhookEvents);
  EXPECT_EQ(count("SELECT count(*) FROM (DESCRIBE SELECT * FROM " + lake("events") + ") WHERE column_name IN ('secret', 'note')"), 0);

  // The query CLI and the query API answer from the same lake.
  auto [code, out] = run_command(std::string(BF_BINARY) + " query --config " + config +
                                 " --dataset default/syslog \"SELECT count(*) AS n FROM events WHERE message LIKE 'udp%'\"");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find(std::to_string(kUdpLines)), std::string::npos) << out;

  std::string query_url = "http://127.0.0.1:" + std::to_string(ports.query) + "/api/v1/query";
  Headers auth{{"Authorization", "Bearer e2e-query-key-0123456789"}, {"Content-Type", "application/json"}};
  HttpResult ok = http.send("POST", query_url, auth, R"({"dataset":"default/events","sql":"SELECT count(*) AS n FROM events"})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(boost::json::parse(ok.body).at("rows").at(0).at("n").to_number<int64_t>(), kHttpEvents + kWebhookEvents);
  HttpResult bad_key = http.send("POST", query_url, {{"Authorization", "Bearer e2e-ingest-key-0123456789"}},
                                 R"({"dataset":"default/events","sql":"SELECT 1"})");
  EXPECT_EQ(bad_key.status, 401);
  HttpResult hostile = http.send("POST", query_url, auth, R"J({"dataset":"default/events","sql":"SELECT * FROM read_csv('/etc/passwd')"})J");
  EXPECT_EQ(hostile.status, 400) << hostile.body;
  HttpResult drop = http.send("POST", query_url, auth, R"({"dataset":"default/events","sql":"DROP VIEW events"})");
  EXPECT_EQ(drop.status, 400) << drop.body;

  // Nothing is left behind in the intermediate stages.
  auto store = make_object_store(storage);
  EXPECT_TRUE(eventually(std::chrono::seconds(20), [&] {
    return store->list("raw/", "", 1).objects.empty() && store->list("processed/", "", 1).objects.empty();
  }));
  EXPECT_TRUE(store->head("_meta/acme/default/syslog/schema.json").has_value());

  EXPECT_EQ(bf->stop(), 0) << "bytefreezer did not exit cleanly on SIGTERM";
  // A clean run logs no errors (failed uploads, quarantines, dead letters, ...).
  std::string log = bf->log();
  EXPECT_EQ(log.find(" error "), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(Storage, PipelineE2E, ::testing::Values("local", "s3"),
                         [](const auto& info) { return info.param; });

}  // namespace
