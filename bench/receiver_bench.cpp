// Receiver throughput (issue 6, figure 4): 10,000-event zstd batches of ~200-byte
// events posted to the real HTTP ingest endpoint; each is validated, fsync'ed into the
// spool, answered, and uploaded to raw/ of a local object store (fsync'ed too). Reports
// events/s and the CPU the receiver used (process CPU minus the posting clients'
// threads): events per CPU-second is the "per core" figure.
//   make bench   or   ./build/bench/bench_receiver [batches] [clients] [webhook]
// `webhook` posts events without _received/_time/_source (defaults to apply).
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/catalog.h"
#include "common/compression.h"
#include "common/ulid.h"
#include "net/http_client.h"
#include "receiver/receiver.h"
#include "storage/local_store.h"

namespace {

constexpr int kEventsPerBatch = 10000;
const std::string kKey = "bench-receiver-key-0123456789";

// About 200 bytes per event, shaped like the proxy's syslog events; a pseudo-random
// request id keeps the batch from compressing unrealistically well.
std::string make_batch(int batch, bool webhook) {
  std::string out;
  out.reserve(kEventsPerBatch * 220);
  uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(batch + 1);
  char rid[17];
  for (int i = 0; i < kEventsPerBatch; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::snprintf(rid, sizeof rid, "%016llx", static_cast<unsigned long long>(x));
    const std::string n = std::to_string(batch * kEventsPerBatch + i);
    out += "{\"host\":\"web01\",\"message\":\"GET /index.html?id=" + n + " 200 " +
           std::to_string(x % 100000) + "\",\"request_id\":\"" + rid + "\"";
    if (webhook)
      out += ",\"user\":\"user" + std::to_string(x % 977) + "@example.com\",\"status\":200,\"bytes\":" +
             std::to_string(x % 65536) + ",\"path\":\"/api/v1/items/" + n + "\"";
    else
      out += ",\"_time\":\"2026-11-25T08:00:00.123456Z\",\"_received\":\"2026-11-25T08:00:00.200000Z\","
             "\"_source\":\"syslog-tcp:5514\",\"_peer\":\"10.0.0.1:51234\"";
    out += "}\n";
  }
  return out;
}

double cpu_seconds(int who) {
  rusage ru{};
  getrusage(who, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const int batches = argc > 1 ? std::atoi(argv[1]) : 200;
  const int clients = argc > 2 ? std::atoi(argv[2]) : 2;
  const bool webhook = argc > 3 && std::string(argv[3]) == "webhook";
  namespace fs = std::filesystem;
  const fs::path dir = fs::current_path() / ("bench-receiver-" + bf::new_ulid());
  fs::create_directories(dir);

  // A few distinct bodies, compressed as the proxy does (zstd level 3).
  std::vector<std::string> bodies;
  size_t raw_bytes = 0;
  for (int b = 0; b < 8; ++b) {
    std::string ndjson = make_batch(b, webhook);
    raw_bytes = ndjson.size();
    bodies.push_back(bf::compress(bf::Encoding::zstd, ndjson));
  }

  auto catalog = std::make_shared<bf::Catalog>();
  catalog->add_dataset(bf::DatasetInfo{bf::DatasetRef{"acme", "web", "logs"}, {}});
  catalog->add_key(kKey, bf::KeyGrant{"acme", "web"});
  auto store = std::make_shared<bf::LocalStore>(dir / "store");
  bf::ReceiverOptions o;
  o.http.listen = "127.0.0.1:0";
  o.http.threads = 2;
  o.spool_dir = (dir / "spool").string();
  o.spool_max_bytes = 0;
  bf::Receiver receiver(o, catalog, store);
  receiver.start();
  const std::string url = "http://127.0.0.1:" + std::to_string(receiver.port()) + "/api/v1/ingest/web/logs";

  std::atomic<int> next{0}, failed{0};
  std::vector<double> client_cpu(static_cast<size_t>(clients), 0.0);
  const double cpu0 = cpu_seconds(RUSAGE_SELF);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      bf::HttpClient http;
      for (int i; (i = next++) < batches;) {
        bf::Headers h{{"Authorization", "Bearer " + kKey}, {"Content-Encoding", "zstd"},
                      {"Content-Type", "application/x-ndjson"}, {"X-Batch-Id", bf::new_ulid()}};
        auto r = http.send("POST", url, h, bodies[static_cast<size_t>(i) % bodies.size()]);
        if (r.status != 200) {
          if (failed++ == 0) std::fprintf(stderr, "POST failed: %ld %s\n", r.status, r.body.c_str());
        }
      }
      timespec ts{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      client_cpu[static_cast<size_t>(c)] = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
    });
  }
  for (auto& t : threads) t.join();
  const auto t_acked = std::chrono::steady_clock::now();
  while (receiver.spooled_batches() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto t1 = std::chrono::steady_clock::now();
  const double cpu = cpu_seconds(RUSAGE_SELF) - cpu0;
  double clients_cpu = 0;
  for (double c : client_cpu) clients_cpu += c;
  receiver.stop();
  const size_t stored = store->list_all("raw/").size();
  fs::remove_all(dir);

  const double events = static_cast<double>(batches) * kEventsPerBatch;
  const double wall = std::chrono::duration<double>(t1 - t0).count();
  const double acked = std::chrono::duration<double>(t_acked - t0).count();
  const double receiver_cpu = cpu - clients_cpu;
  std::printf("receiver: %d batches x %d events (%s, %.0f bytes/event, %.0f KiB zstd/batch), %d clients\n", batches,
              kEventsPerBatch, webhook ? "webhook: no _received/_source" : "proxy-style: complete events",
              static_cast<double>(raw_bytes) / kEventsPerBatch, static_cast<double>(bodies[0].size()) / 1024, clients);
  std::printf("  all acked in %.2f s, all in raw/ in %.2f s: %.0f events/s (wall)\n", acked, wall, events / wall);
  std::printf("  CPU: process %.2f s, posting clients %.2f s, receiver %.2f s\n", cpu, clients_cpu, receiver_cpu);
  std::printf("  receiver: %.0f events per CPU-second (target 1,000,000)\n", events / receiver_cpu);
  if (failed || stored != static_cast<size_t>(batches)) {
    std::fprintf(stderr, "receiver bench: %d failed posts, %zu of %d batches in raw/\n", failed.load(), stored, batches);
    return 1;
  }
  return 0;
}
