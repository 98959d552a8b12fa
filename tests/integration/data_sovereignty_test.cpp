// Data sovereignty, proven (docs/security.md): a whole pipeline with its embedded
// control plane runs on S3 storage and carries events whose values are unique
// markers; afterwards control's database files and the process's log hold none of
// those values, not the storage secret, and no API key in clear.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/ulid.h"
#include "fixtures/net_helpers.h"
#include "fixtures/process.h"
#include "fixtures/s3rver.h"
#include "net/http_client.h"
#include "storage/s3_store.h"
#include "storage/sql_engine.h"

namespace fs = std::filesystem;
using namespace bf;
using namespace bf::test;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(DataSovereignty, ControlHoldsNoEventValueNoStorageSecretNoKeyInClear) {
  const fs::path dir = fs::temp_directory_path() / ("bf-sovereignty-" + new_ulid());
  fs::create_directories(dir);
  S3rver s3;
  StorageOptions storage = s3.options("bf-sovereignty");
  S3Store(storage).ensure_bucket();

  // Values that occur nowhere but in the events (and the keys only in the config).
  const std::string marker = "sov" + new_ulid();
  const std::string ingest_key = "ingest-" + new_ulid();
  const std::string query_key = "query-" + new_ulid();
  constexpr int kEvents = 200;
  std::vector<std::string> values;
  for (int i = 0; i < kEvents; ++i) values.push_back(marker + "-v" + std::to_string(i));
  const std::string host = marker + "-host";

  const uint16_t syslog = free_port(), http_source = free_port(), receiver = free_port(), query = free_port(),
                 admin = free_port(), control = free_port();
  const std::string yaml = "log: {level: debug}\nadmin: {listen: 127.0.0.1:" + std::to_string(admin) +
                           "}\ncontrol: {listen: 127.0.0.1:" + std::to_string(control) + "}\n" +
                           "storage: {type: s3, endpoint: \"" + storage.endpoint + "\", bucket: " + storage.bucket +
                           ", access_key: " + storage.access_key + ", secret_key: " + storage.secret_key +
                           ", path_style: true}\n" + R"(
accounts:
  - id: acme
    tenants:
      - id: default
        ingest_keys: [")" + ingest_key + R"("]
        query_keys: [")" + query_key + R"("]
        datasets:
          - id: syslog
          - id: events
proxy:
  receiver: {url: "http://127.0.0.1:)" + std::to_string(receiver) + R"(", ingest_key: )" + ingest_key + R"(}
  batch: {max_events: 50, max_age: 200ms}
  spool: {dir: ./proxy-spool}
  sources:
    - {type: syslog_tcp, name: tcp, listen: "127.0.0.1:)" + std::to_string(syslog) + R"(", tenant: default, dataset: syslog}
    - {type: http, name: http, listen: "127.0.0.1:)" + std::to_string(http_source) + R"(", tenant: default, dataset: events}
receiver:
  listen: 127.0.0.1:)" + std::to_string(receiver) + R"(
  spool: {dir: ./receiver-spool}
piper: {interval: 200ms}
packer: {interval: 500ms, flush: {age: 0s}}
query: {listen: "127.0.0.1:)" + std::to_string(query) + R"("}
)";
  std::ofstream(dir / "bytefreezer.yaml") << yaml;
  ChildProcess bf({BF_BINARY, "run", "--config", (dir / "bytefreezer.yaml").string()},
                  ChildOptions{dir.string(), (dir / "bytefreezer.log").string(), {}});
  ASSERT_TRUE(wait_for_port(admin, std::chrono::seconds(30))) << bf.log();

  // Half the values over TCP syslog, half over HTTP; each event also carries the
  // marker host name.
  {
    int fd = connect_tcp(syslog);
    ASSERT_GE(fd, 0);
    std::string lines;
    for (int i = 0; i < kEvents / 2; ++i) lines += "<134>1 - " + host + " app - - - " + values[i] + "\n";
    send_all(fd, lines);
    ::close(fd);
  }
  HttpClient http;
  std::string body;
  for (int i = kEvents / 2; i < kEvents; ++i) body += "{\"host\":\"" + host + "\",\"value\":\"" + values[i] + "\"}\n";
  HttpResult r = http.send_with_retry("POST", "http://127.0.0.1:" + std::to_string(http_source) + "/",
                                      {{"Content-Type", "application/x-ndjson"}}, body);
  ASSERT_EQ(r.status, 200) << r.body;

  // The pipeline really carried them: every value is queryable in the lake.
  SqlEngine engine(make_object_store(storage), SqlEngine::Options{});
  auto count = [&](const std::string& sql) -> int64_t {
    try {
      return std::stoll(engine.query(sql).rows.at(0).at(0).value_or("-1"));
    } catch (const std::exception&) {
      return -1;
    }
  };
  auto lake = [](const std::string& dataset) {
    return "read_parquet('bf://parquet/account=acme/tenant=default/dataset=" + dataset +
           "/**/*.parquet', union_by_name=true)";
  };
  ASSERT_TRUE(eventually(std::chrono::seconds(120), [&] {
    return count("SELECT count(*) FROM " + lake("syslog") + " WHERE message LIKE '" + marker + "%'") == kEvents / 2 &&
           count("SELECT count(*) FROM " + lake("events") + " WHERE value LIKE '" + marker + "%'") == kEvents / 2;
  }, std::chrono::seconds(1))) << bf.log();
  // Control was in use: it served the catalog and holds the accounts.
  EXPECT_NE(bf.log().find("config \""), std::string::npos) << bf.log();
  ASSERT_EQ(bf.stop(), 0);

  // Control's database: the file and its WAL/journal, wherever `run` put it.
  std::vector<fs::path> control_files;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string().rfind("control.db", 0) == 0) control_files.push_back(e.path());
  ASSERT_FALSE(control_files.empty());
  std::string control_bytes;
  for (const auto& p : control_files) control_bytes += read_file(p);
  EXPECT_NE(control_bytes.find("acme"), std::string::npos);  // the scan reads what control stores

  const std::string log = read_file(dir / "bytefreezer.log");
  ASSERT_FALSE(log.empty());
  for (const auto& [name, bytes] : {std::pair<std::string, const std::string&>{"control's database", control_bytes},
                                     std::pair<std::string, const std::string&>{"the log", log}}) {
    EXPECT_EQ(bytes.find(marker), std::string::npos) << name << " holds an event value";
    EXPECT_EQ(bytes.find(storage.secret_key), std::string::npos) << name << " holds the storage secret";
  }
  // API keys: control keeps hashes only.
  EXPECT_EQ(control_bytes.find(ingest_key), std::string::npos);
  EXPECT_EQ(control_bytes.find(query_key), std::string::npos);
  EXPECT_EQ(control_bytes.find(storage.access_key), std::string::npos) << "control holds the storage access key";
  fs::remove_all(dir);
}

}  // namespace
