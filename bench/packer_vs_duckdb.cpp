// Packer vs bare DuckDB (issue 6, figure 3; issue 9, three corpora): processed/ objects -> Parquet.
//   ./build/bench/bench_packer_vs_duckdb [events=1000000] [rounds=3] [only=both|packer|duckdb] [corpus=all|syslog|web|flow]
// For each corpus (syslog-like lines, web access logs, flow records) generates
// `events` events as processed/ objects of 10,000 events (as the piper writes them:
// zstd NDJSON with the batch shape in the envelope) in a local store, then
// alternates, `rounds` times:
//   (a) the packer: run_once() until processed/ is empty (one DuckDB thread, the
//       ledger, the commit manifests, the uploads into the store — all of it);
//   (b) bare DuckDB on one thread: COPY (SELECT * FROM read_ndjson([the same files]))
//       TO ... (FORMAT parquet, COMPRESSION zstd).
// Prints events/s and MB/s of NDJSON input (one thread: per core) of both, the ratio,
// and the Parquet sizes against the raw NDJSON and the zstd NDJSON the piper stores.
// `only=` runs one side (for perf record).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "common/batch.h"
#include "common/batch_shape.h"
#include "common/catalog.h"
#include "common/time.h"
#include "common/ulid.h"
#include "packer/packer.h"
#include "storage/layout.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

namespace fs = std::filesystem;
using namespace bf;

namespace {

std::vector<Event> make_batch(const std::string& corpus, std::mt19937_64& rng, int64_t& t_us, int n) {
  static const char* apps[] = {"nginx", "sshd", "postfix", "kernel", "cron", "haproxy"};
  static const char* verbs[] = {"GET", "POST", "PUT", "DELETE"};
  static const char* agents[] = {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                                 "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
                                 "curl/8.5.0", "Go-http-client/1.1", "Prometheus/2.51.0"};
  static const char* paths[] = {"/", "/login", "/api/items", "/api/orders", "/static/app.js", "/static/app.css", "/health"};
  std::vector<Event> events;
  events.reserve(static_cast<size_t>(n));
  char msg[160];
  auto ip = [](unsigned r, const char* net) { return std::string(net) + std::to_string((r >> 8) % 256) + "." + std::to_string(r % 256); };
  for (int i = 0; i < n; ++i) {
    t_us += 1000 + static_cast<int64_t>(rng() % 4000);  // ~3 ms apart: 1 M events span about 50 minutes
    const unsigned r = static_cast<unsigned>(rng());
    Event e;
    e["_time"] = format_rfc3339(t_us);
    e["_received"] = format_rfc3339(t_us + 1500);
    if (corpus == "web") {
      e["_source"] = "http";
      e["vhost"] = "shop-" + std::to_string(r % 4) + ".example.com";
      e["client_ip"] = ip(r >> 3, "203.0.");
      e["method"] = verbs[r % 4];
      e["path"] = std::string(paths[(r >> 5) % 7]) + ((r >> 5) % 7 == 2 ? "/" + std::to_string((r >> 9) % 50000) : "");
      e["status"] = (r % 13 == 0) ? 404 : (r % 101 == 0) ? 500 : 200;
      e["bytes"] = static_cast<int64_t>((r >> 7) % 60000);
      e["duration_ms"] = static_cast<double>((r >> 11) % 5000) / 10.0;
      e["referrer"] = (r % 3 == 0) ? "-" : "https://www.example.com/";
      e["user_agent"] = agents[(r >> 13) % 5];
    } else if (corpus == "flow") {
      e["_source"] = "netflow";
      e["exporter"] = "10.0.0." + std::to_string(1 + r % 4);
      e["src_addr"] = ip(r >> 2, "10.1.");
      e["dst_addr"] = ip(r >> 10, "192.168.");
      e["src_port"] = static_cast<int>(1024 + (r >> 4) % 60000);
      e["dst_port"] = static_cast<int>((r % 5 == 0) ? 53 : (r % 5 == 1) ? 80 : 443);
      e["protocol"] = (r % 5 == 0) ? 17 : 6;
      e["packets"] = static_cast<int64_t>(1 + (r >> 6) % 200);
      e["bytes"] = static_cast<int64_t>(40 + (r >> 3) % 150000);
      e["tcp_flags"] = static_cast<int>((r >> 12) % 64);
      e["in_if"] = static_cast<int>((r >> 14) % 8);
      e["out_if"] = static_cast<int>((r >> 16) % 8);
    } else {
      std::snprintf(msg, sizeof msg, "%s /api/items/%u %d %u rt=0.%03u", verbs[r % 4], (r >> 3) % 100000,
                    (r % 7 == 0) ? 404 : 200, (r >> 9) % 20000, (r >> 5) % 1000);
      e["_source"] = "syslog-tcp";
      e["facility"] = 16;
      e["severity"] = static_cast<int>(r % 8);
      e["hostname"] = "web-" + std::to_string((r >> 4) % 64);
      e["app_name"] = apps[(r >> 6) % 6];
      e["procid"] = std::to_string(1000 + (r >> 8) % 30000);
      e["message"] = msg;
    }
    events.push_back(std::move(e));
  }
  return events;
}

// CPU seconds of the whole process: with one DuckDB thread on each side, the work
// done, whatever else the machine runs.
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t bytes_under(ObjectStore& store, const std::string& prefix) {
  uint64_t n = 0;
  for (const auto& o : store.list_all(prefix)) n += o.size;
  return n;
}

int run_corpus(const std::string& corpus, long events, int rounds, const std::string& only) {
  constexpr int kBatch = 10000;

  const fs::path dir = fs::temp_directory_path() / ("bf-bench-packer-" + new_ulid());
  auto store = std::make_shared<LocalStore>(dir / "store");
  auto catalog = std::make_shared<Catalog>();
  const DatasetRef ref{"bench", "t", corpus};
  catalog->add_dataset(DatasetInfo{ref, {}});

  // The inputs, as the piper writes them; kept in memory to restore them (the packer deletes what it commits).
  std::vector<std::pair<std::string, std::string>> objects;
  std::mt19937_64 rng(42);
  int64_t t_us = 1764655200000000 + 1800LL * 1000000;  // 2025-12-02T06:30:00Z
  uint64_t ndjson_bytes = 0, stored_bytes = 0;
  double shape_seconds = 0;  // what the piper spends on the shape
  for (long done = 0; done < events; done += kBatch) {
    auto batch = make_batch(corpus, rng, t_us, static_cast<int>(std::min<long>(kBatch, events - done)));
    ndjson_bytes += to_ndjson(batch).size();
    const auto s0 = std::chrono::steady_clock::now();
    BatchShape shape;
    for (const auto& e : batch) shape.add(e);
    shape_seconds += seconds_since(s0);
    objects.emplace_back(processed_key(ref, new_ulid()), encode_batch(batch, BatchEnvelope{{"shape", shape.to_json()}}));
    stored_bytes += objects.back().second.size();
  }
  auto restore_inputs = [&] {
    for (const auto& [key, data] : objects)
      if (!store->head(key)) store->put(key, data);
  };
  std::string files;
  for (const auto& [key, data] : objects) files += (files.empty() ? "'" : ", '") + (dir / "store" / key).string() + "'";
  std::printf("corpus %s — packer vs bare DuckDB: %ld events in %zu processed objects, %.1f MB NDJSON (%.0f B/event), %.1f MB stored (zstd)\n",
              corpus.c_str(), events, objects.size(), ndjson_bytes / 1e6, double(ndjson_bytes) / double(events), stored_bytes / 1e6);
  std::printf("piper side: computing the batch shapes took %.0f ns/event\n", shape_seconds * 1e9 / double(events));

  double best_packer = 0, best_duckdb = 0;
  double best_packer_cpu = 0, best_duckdb_cpu = 0;  // events per CPU second
  uint64_t packer_size = 0, duckdb_size = 0;
  size_t packer_files = 0;
  for (int round = 0; round < rounds; ++round) {
    for (int side = 0; side < 2; ++side) {
      const bool packer_side = (side == 0) == (round % 2 == 0);  // alternate which goes first
      if (packer_side && only == "duckdb") continue;
      if (!packer_side && only == "packer") continue;
      restore_inputs();
      if (packer_side) {
        for (const auto& o : store->list_all("parquet/")) store->remove(o.key);
        for (const auto& o : store->list_all("_meta/")) store->remove(o.key);
        PackerOptions options;
        options.temp_dir = (dir / "tmp").string();
        options.threads = 1;  // figure 3 compares one thread with one thread
        options.flush_age = std::chrono::milliseconds(0);  // the conversion, not the wait for a flush
        options.compaction.enabled = false;
        Packer packer(options, catalog, store);
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu_seconds();
        while (packer.run_once() > 0 || !store->list_all(processed_prefix(ref)).empty()) {
        }
        const double s = seconds_since(t0);
        const double cpu = cpu_seconds() - c0;
        best_packer_cpu = std::max(best_packer_cpu, events / cpu);
        const auto parts = store->list_all(parquet_prefix(ref));
        packer_files = parts.size();
        packer_size = bytes_under(*store, "parquet/");
        best_packer = std::max(best_packer, events / s);
        std::printf("round %d  packer:      %8.3f s  %9.0f events/s  %6.3f CPU s  %zu files  %.2f MB\n", round + 1, s,
                    events / s, cpu, packer_files, packer_size / 1e6);
      } else {
        SqlEngine::Options o;
        o.threads = 1;
        SqlEngine engine(store, o);
        const fs::path out = dir / "bare.parquet";
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu_seconds();
        engine.execute("COPY (SELECT * FROM read_ndjson([" + files + "])) TO " + sql_quote(out.string()) +
                       " (FORMAT parquet, COMPRESSION zstd)");
        const double s = seconds_since(t0);
        const double cpu = cpu_seconds() - c0;
        best_duckdb_cpu = std::max(best_duckdb_cpu, events / cpu);
        duckdb_size = fs::file_size(out);
        best_duckdb = std::max(best_duckdb, events / s);
        std::printf("round %d  bare DuckDB: %8.3f s  %9.0f events/s  %6.3f CPU s  1 file  %.2f MB\n", round + 1, s,
                    events / s, cpu, duckdb_size / 1e6);
        fs::remove(out);
      }
      std::fflush(stdout);
    }
  }
  if (best_packer > 0 && best_duckdb > 0) {
    std::printf("best: packer %.0f events/s, bare DuckDB %.0f events/s, ratio %.2fx (goal >= 0.8x); "
                "Parquet: packer %.2f MB in %zu files, bare DuckDB %.2f MB (%.2fx)\n",
                best_packer, best_duckdb, best_packer / best_duckdb, packer_size / 1e6, packer_files,
                duckdb_size / 1e6, double(packer_size) / double(duckdb_size));
    // One thread each: MB/s of NDJSON input per CPU second is per core, whatever the load.
    const double mb_per_event = double(ndjson_bytes) / double(events) / 1e6;
    std::printf("corpus %s: input MB per CPU second: packer %.1f, bare DuckDB %.1f (%.2fx)\n", corpus.c_str(),
                best_packer_cpu * mb_per_event, best_duckdb_cpu * mb_per_event, best_packer_cpu / best_duckdb_cpu);
    std::printf("corpus %s: input MB/s wall: packer %.1f, bare DuckDB %.1f (%.2fx); "
                "size: raw NDJSON / packer Parquet %.1fx, NDJSON+zstd (processed/) / packer Parquet %.2fx, "
                "raw NDJSON / bare DuckDB Parquet %.1fx\n",
                corpus.c_str(), best_packer * double(ndjson_bytes) / double(events) / 1e6,
                best_duckdb * double(ndjson_bytes) / double(events) / 1e6, best_packer / best_duckdb,
                double(ndjson_bytes) / double(packer_size), double(stored_bytes) / double(packer_size),
                double(ndjson_bytes) / double(duckdb_size));
  }
  std::fflush(stdout);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const long events = argc > 1 ? std::atol(argv[1]) : 1000000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  const std::string only = argc > 3 ? argv[3] : "both";
  const std::string corpus = argc > 4 ? argv[4] : "all";
  if (corpus != "all" && corpus != "syslog" && corpus != "web" && corpus != "flow") {
    std::fprintf(stderr, "unknown corpus '%s' (all, syslog, web, flow)\n", corpus.c_str());
    return 2;
  }
  for (const char* c : {"syslog", "web", "flow"})
    if (corpus == "all" || corpus == c) run_corpus(c, events, rounds, only);
  return 0;
}
