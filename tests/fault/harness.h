#pragma once
// The fault-injection harness (docs/reliability.md): a real pipeline as child
// processes (all-in-one or one process per component) on local storage or s3rver,
// a load of HTTP batches (retried with their X-Batch-Id until acknowledged) and
// TCP syslog lines (each sent once) with unique sequence numbers, and the count
// of what reached committed Parquet, read back with DuckDB.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "common/catalog.h"
#include "common/ulid.h"
#include "fixtures/net_helpers.h"
#include "fixtures/process.h"
#include "fixtures/s3rver.h"
#include "net/http_client.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/object_store.h"
#include "storage/s3_store.h"
#include "storage/sql_engine.h"

namespace bf::fault {

namespace fs = std::filesystem;
using namespace bf::test;

inline const std::string kIngestKey = "fault-ingest-key-0123456789";

// BF_FAULT_SECONDS: the load time of each scenario (short in `make test`, long in `make soak`).
inline int load_seconds(int short_default = 20) {
  const char* s = std::getenv("BF_FAULT_SECONDS");
  return s ? std::max(5, std::atoi(s)) : short_default;
}

struct PipelineOptions {
  std::string storage = "local";  // local | s3
  bool split = false;             // one process per component
  std::string receiver_extra;     // more receiver: keys (YAML flow mapping entries)
  std::string proxy_extra;        // more proxy: keys
  size_t disk_bytes = 0;          // > 0: the pipeline's directory is a tmpfs of this size (a disk that fills)
};

// For gtest's parameter names in the test log.
inline void PrintTo(const PipelineOptions& o, std::ostream* os) {
  *os << o.storage << (o.split ? "/split" : "/all-in-one");
}

class FaultPipeline {
 public:
  explicit FaultPipeline(PipelineOptions o) : options_(std::move(o)) {
    fs::create_directories(dir);
    fs::create_directories(log_dir);
    if (options_.disk_bytes > 0) {
      // A real small file system, so writes fail with ENOSPC as on a full disk.
      const std::string cmd = "mount -t tmpfs -o size=" + std::to_string(options_.disk_bytes) + " tmpfs " + dir.string() +
                              " 2>/dev/null";
      mounted = std::system(cmd.c_str()) == 0;
      if (!mounted) return;  // the test skips: no way to make a small file system here
    }
    fs::create_directories(dir / "tmp");
    if (options_.storage == "s3") {
      s3 = std::make_unique<S3rver>();
      storage = s3->options("bf-fault");
      S3Store(storage).ensure_bucket();
    } else {
      storage.type = "local";
      storage.path = (dir / "store").string();
    }
    write_config();
  }
  ~FaultPipeline() {
    procs.clear();
    if (mounted) std::system(("umount " + dir.string()).c_str());
    if (!::testing::Test::HasFailure()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
      fs::remove_all(log_dir, ec);
    }
  }
  bool mounted = false;

  // Split: two pipers and two packers, which share one lease file and take
  // datasets over from each other as they are killed.
  std::vector<std::string> components() const {
    if (options_.split) return {"proxy", "receiver", "piper", "piper-b", "packer", "packer-b"};
    return {"run"};
  }
  size_t packer_processes() const { return options_.split ? 2 : 1; }
  // "piper-b" runs `bytefreezer piper`: the suffix only tells the processes apart.
  void start(const std::string& name) {
    const std::string subcommand = name.substr(0, name.find('-'));
    procs[name] = std::make_unique<ChildProcess>(
        std::vector<std::string>{BF_BINARY, subcommand, "--config", config},
        ChildOptions{dir.string(), (log_dir / (name + ".log")).string(),
                     {{"BYTEFREEZER_ADMIN__LISTEN", "127.0.0.1:" + std::to_string(admin_ports.at(name))},
                      // `run` embeds control: a port of its own, not the shared default
                      {"BYTEFREEZER_CONTROL__LISTEN", "127.0.0.1:" + std::to_string(control_port)}}});
  }
  void start_all() {
    for (const auto& c : components()) start(c);
  }
  bool wait_up(const std::string& name) { return wait_for_port(admin_ports.at(name), std::chrono::seconds(30)); }
  bool wait_all_up() {
    for (const auto& c : components())
      if (!wait_up(c)) return false;
    return true;
  }
  // How often each piper/packer process acquired a dataset lease (over its restarts).
  std::string lease_acquisitions() {
    std::string out;
    for (const auto& c : components()) {
      if (c.rfind("piper", 0) != 0 && c.rfind("packer", 0) != 0) continue;
      const std::string log = procs[c]->log();
      size_t n = 0;
      for (size_t at = log.find("acquired lease"); at != std::string::npos; at = log.find("acquired lease", at + 1)) ++n;
      out += " " + c + "=" + std::to_string(n);
    }
    return out;
  }
  std::string logs() {
    std::string out;
    for (auto& [name, p] : procs) out += "--- " + name + " ---\n" + p->log().substr(0, 20000);
    return out;
  }
  std::string receiver_url() const {
    return "http://127.0.0.1:" + std::to_string(receiver_port) + "/api/v1/ingest/default/events";
  }

  fs::path dir = fs::temp_directory_path() / ("bf-fault-" + new_ulid());
  fs::path log_dir = fs::path(dir.string() + "-logs");  // beside dir: logs must not fill (or be lost with) a full disk
  std::unique_ptr<S3rver> s3;
  StorageOptions storage;
  uint16_t syslog_port = free_port();
  uint16_t receiver_port = free_port();
  uint16_t query_port = free_port();
  uint16_t control_port = free_port();
  std::map<std::string, uint16_t> admin_ports{
      {"run", free_port()},     {"proxy", free_port()},  {"receiver", free_port()}, {"piper", free_port()},
      {"piper-b", free_port()}, {"packer", free_port()}, {"packer-b", free_port()}};
  std::string config;
  std::map<std::string, std::unique_ptr<ChildProcess>> procs;

 private:
  void write_config() {
    std::string store = storage.type == "local"
                            ? "storage: {type: local, path: " + storage.path + "}\n"
                            : "storage: {type: s3, endpoint: \"" + storage.endpoint + "\", bucket: " + storage.bucket +
                                  ", access_key: " + storage.access_key + ", secret_key: " + storage.secret_key +
                                  ", path_style: true, max_retries: 1, timeout: 5s}\n";
    std::string yaml = "log: {level: info}\n" + store + R"(
accounts:
  - id: acme
    tenants:
      - id: default
        ingest_keys: [")" + kIngestKey + R"("]
        datasets:
          - id: events
          - id: syslog
proxy:
  receiver: {url: "http://127.0.0.1:)" + std::to_string(receiver_port) + R"(", ingest_key: )" + kIngestKey + R"(}
  batch: {max_events: 500, max_age: 200ms}
  spool: {dir: ./proxy-spool)" + options_.proxy_extra + R"(}
  sources:
    - {type: syslog_tcp, name: tcp, listen: "127.0.0.1:)" + std::to_string(syslog_port) + R"(", tenant: default, dataset: syslog}
receiver:
  listen: 127.0.0.1:)" + std::to_string(receiver_port) + R"(
  spool: {dir: ./receiver-spool)" + options_.receiver_extra + R"(}
piper: {interval: 200ms}
packer: {interval: 500ms, temp_dir: ./tmp, flush: {age: 0s}, compaction: {interval: 1s, min_files: 2, grace: 60s}}
leases: {path: ./leases.db, ttl: 3s}
query: {listen: "127.0.0.1:)" + std::to_string(query_port) + R"("}
)";
    fs::path path = dir / "bytefreezer.yaml";
    std::ofstream(path) << yaml;
    config = path.string();
  }
  PipelineOptions options_;
};

// HTTP straight to the receiver, each batch retried with its X-Batch-Id until
// acknowledged (the acknowledged must all arrive, once); TCP syslog through the
// proxy, each line sent once (a line stored twice is the pipeline's fault; lines
// in flight at a crash may be lost — TCP syslog has no acknowledgement).
class Load {
 public:
  static constexpr int kBatchEvents = 200;

  explicit Load(const FaultPipeline& p, int http_threads = 2) : pipeline_(p) {
    for (int t = 0; t < http_threads; ++t) threads_.emplace_back([this, t] { http_sender(t); });
    threads_.emplace_back([this] { syslog_sender(); });
  }
  ~Load() { stop(); }
  void stop() {
    running_ = false;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  std::atomic<int64_t> http_sent{0}, http_acked{0}, retries{0}, backpressured{0}, syslog_sent{0};
  std::atomic<long> unexpected_status{0};

 private:
  void http_sender(int thread) {
    HttpClientOptions o;
    o.max_retries = 0;
    HttpClient http(o);
    for (int b = 0; running_; ++b) {
      std::string body;
      for (int i = 0; i < kBatchEvents; ++i)
        body += "{\"seq\":\"h" + std::to_string(thread) + "-" + std::to_string(b) + "-" + std::to_string(i) + "\"}\n";
      const std::string id = new_ulid();
      http_sent += kBatchEvents;
      while (true) {
        try {
          HttpResult r = http.send("POST", pipeline_.receiver_url(),
                                   {{"Authorization", "Bearer " + kIngestKey}, {"X-Batch-Id", id}}, body);
          if (r.status == 200) break;
          if (r.status == 503 || r.status == 429) {
            ++backpressured;
          } else {
            unexpected_status = r.status;
          }
        } catch (const std::exception&) {
          // receiver down: retry the same batch
        }
        ++retries;
        // Stopping: the batch was never acknowledged, so it may or may not be stored.
        if (!running_) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      http_acked += kBatchEvents;
      std::this_thread::sleep_for(std::chrono::milliseconds(40));
    }
  }
  void syslog_sender() {
    int fd = -1;
    int64_t seq = 0;
    while (running_) {
      if (fd < 0) {
        fd = connect_tcp(pipeline_.syslog_port);
        // A full proxy spool stops reading: a send must not block past stop().
        if (fd >= 0) {
          timeval tv{1, 0};
          ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        }
      }
      if (fd < 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      std::string chunk;
      for (int i = 0; i < 50; ++i, ++seq) chunk += "<134>1 2026-03-01T10:00:00Z h app - - - seq=" + std::to_string(seq) + ";\n";
      try {
        send_all(fd, chunk);
        syslog_sent += 50;
      } catch (const std::exception&) {
        ::close(fd);
        fd = -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (fd >= 0) ::close(fd);
  }

  const FaultPipeline& pipeline_;
  std::atomic<bool> running_{true};
  std::vector<std::thread> threads_;
};

// What reached committed Parquet.
struct Stored {
  int64_t http_rows = 0, http_distinct = 0, syslog_rows = 0, syslog_distinct = 0;
};

class Lake {
 public:
  explicit Lake(FaultPipeline& p) : pipeline_(p), store_(make_object_store(p.storage)), engine_(store_, {}) {}

  Stored count() {
    Stored s;
    s.http_rows = number("SELECT count(*) FROM " + source("events"));
    s.http_distinct = number("SELECT count(DISTINCT seq) FROM " + source("events"));
    // A line cut off by the sender's stop (send timeout on a full proxy) lacks the ';'.
    const std::string whole = " WHERE regexp_matches(message, 'seq=[0-9]+;')";
    s.syslog_rows = number("SELECT count(*) FROM " + source("syslog") + whole);
    s.syslog_distinct =
        number("SELECT count(DISTINCT regexp_extract(message, 'seq=([0-9]+);', 1)) FROM " + source("syslog") + whole);
    return s;
  }
  // Every acknowledged HTTP event committed, raw/, processed/ and both spools empty.
  bool drain(int64_t acked, std::chrono::seconds timeout) {
    return eventually(timeout, [&] {
      // The test server itself is not under test: if s3rver exited, bring it back
      // (with its data) and say so; the pipeline must then still deliver everything.
      if (pipeline_.s3 && pipeline_.s3->ensure_running()) std::printf("[fault] s3rver had exited; restarted\n");
      try {
        return drained(acked);
      } catch (const std::exception&) {
        return false;  // the store is not answering yet
      }
    }, std::chrono::seconds(1));
  }
  bool drained(int64_t acked) {
    for (const char* stage : {"raw/", "processed/"})
      if (!store_->list(stage, "", 1).objects.empty()) return false;
    return fs::is_empty(pipeline_.dir / "receiver-spool") && spool_empty(pipeline_.dir / "proxy-spool") &&
           number("SELECT count(DISTINCT seq) FROM " + source("events")) >= acked;
  }
  // Parts in parquet/ that no commit names.
  size_t uncommitted_parts() {
    size_t n = 0;
    for (const char* dataset : {"events", "syslog"}) {
      DatasetRef ref{"acme", "default", dataset};
      std::set<std::string> committed;
      for (const auto& p : committed_parts(*store_, ref)) committed.insert(p.key);
      // Replaced by a compaction, recorded, deleted once their grace has passed.
      for (const auto& r : replaced_parts(*store_, ref)) committed.insert(r.keys.begin(), r.keys.end());
      for (const auto& obj : store_->list_all(parquet_prefix(ref))) n += committed.count(obj.key) ? 0 : 1;
    }
    return n;
  }
  ObjectStore& store() { return *store_; }
  // For a failure message: what is left in the intermediate stages and quarantine.
  std::string leftovers() {
    std::string out;
    for (const char* prefix : {"raw/", "processed/", "quarantine/", "_meta/acme/default/events/commits/"}) {
      auto objects = store_->list_all(prefix);
      out += std::string(prefix) + ": " + std::to_string(objects.size()) + " objects";
      for (size_t i = 0; i < objects.size() && i < 5; ++i) out += "\n  " + objects[i].key;
      out += "\n";
    }
    // Batches the ledger knows of (accepted by a receiver) that no commit holds: a
    // batch lost after its upload shows here even when every stage is empty.
    for (const char* dataset : {"events", "syslog"}) {
      const DatasetRef ref{"acme", "default", dataset};
      size_t uncommitted = 0;
      std::string sample;
      for (const auto& obj : store_->list_all(batch_records_prefix(ref))) {
        auto id = obj.key.substr(obj.key.rfind('/') + 1);
        id = id.substr(0, id.find('.'));
        auto record = get_batch_record(*store_, ref, id);
        if (record && !record->commit.empty()) continue;
        if (++uncommitted <= 5) sample += "\n  " + obj.key;
      }
      out += std::string("uncommitted ledger records (") + dataset + "): " + std::to_string(uncommitted) + sample + "\n";
    }
    return out;
  }

 private:
  static bool spool_empty(const fs::path& dir) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".batch") return false;
    return true;
  }
  std::string source(const std::string& dataset) {
    std::string files;
    for (const auto& p : committed_parts(*store_, DatasetRef{"acme", "default", dataset}))
      files += (files.empty() ? "'bf://" : ", 'bf://") + p.key + "'";
    return files.empty() ? std::string("(SELECT NULL AS seq, NULL AS message WHERE false)")
                         : "read_parquet([" + files + "], union_by_name=true)";
  }
  int64_t number(const std::string& sql) { return std::stoll(engine_.query(sql).rows.at(0).at(0).value_or("-1")); }

  FaultPipeline& pipeline_;
  std::shared_ptr<ObjectStore> store_;
  SqlEngine engine_;
};

// One line per scenario, in the form docs/reliability.md records.
inline void report(const std::string& scenario, const Load& load, const Stored& s, const std::string& extra = "") {
  const int64_t acked = load.http_acked.load();
  std::printf("[fault] %s: http sent %lld acked %lld stored %lld (dup %lld, lost %lld, %lld retries, %lld 503/429); "
              "syslog sent %lld stored %lld (dup %lld, unacknowledged lost %lld)%s\n",
              scenario.c_str(), (long long)load.http_sent.load(), (long long)acked, (long long)s.http_rows,
              (long long)(s.http_rows - s.http_distinct), (long long)std::max<int64_t>(0, acked - s.http_distinct),
              (long long)load.retries.load(), (long long)load.backpressured.load(), (long long)load.syslog_sent.load(),
              (long long)s.syslog_rows, (long long)(s.syslog_rows - s.syslog_distinct),
              (long long)(load.syslog_sent.load() - s.syslog_distinct), extra.c_str());
  std::fflush(stdout);
}

// The exactly-once assertions every scenario shares.
inline void expect_exactly_once(const Load& load, const Stored& s) {
  EXPECT_EQ(s.http_rows, s.http_distinct) << "acknowledged HTTP events stored more than once";
  EXPECT_GE(s.http_distinct, load.http_acked.load()) << "acknowledged HTTP events lost";
  EXPECT_EQ(s.syslog_rows, s.syslog_distinct) << "syslog lines stored more than once";
  EXPECT_GT(s.syslog_distinct, 0);
  EXPECT_EQ(load.unexpected_status.load(), 0) << "the receiver answered something other than 200/503/429";
}

}  // namespace bf::fault
