// Receiver throughput (issue 6, figure 4): 10,000-event zstd batches of ~200-byte
// events posted to the real HTTP ingest endpoint; each is validated, fsync'ed into the
// spool, answered, and uploaded to raw/ of a local object store (fsync'ed too). Reports
// events/s and the CPU the receiver used (process CPU minus the posting clients'
// threads): events per CPU-second is the "per core" figure.
//   make bench   or   ./build/bench/bench_receiver [batches] [clients] [webhook|proxy] [http-only]
// `webhook` posts events without _received/_time/_source (defaults to apply); `http-only`
// leaves out the single-thread comparison of the ingest work (e.g. to profile the rest).
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

#include "common/batch.h"
#include "common/catalog.h"
#include "common/compression.h"
#include "common/digest.h"
#include "common/ndjson_validate.h"
#include "common/time.h"
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

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The CPU work per batch alone (no HTTP, no disk), on this thread: the receiver's path
// (validate and keep the compressed body) against the path it replaced (a DOM of every
// event, the defaults added, re-encoded with zstd level 3) — the peer of the same run.
void compare_ingest_work(const std::vector<std::string>& bodies, int rounds) {
  const bf::NdjsonLimits limits{};
  std::string scratch;
  size_t sink = 0;
  auto time = [&](auto&& work) {
    const double t0 = thread_cpu_seconds();
    for (int r = 0; r < rounds; ++r) sink += work(bodies[static_cast<size_t>(r) % bodies.size()]);
    return static_cast<double>(rounds) * kEventsPerBatch / (thread_cpu_seconds() - t0);
  };
  const double as_sent = time([&](const std::string& body) {
    std::string_view text = bf::decompress_into(bf::Encoding::zstd, body, 128 << 20, scratch);
    const bf::NdjsonSummary summary = bf::validate_ndjson(text, limits);
    const std::string digest = bf::sha256_hex(text);
    bf::BatchEnvelope envelope{{"received", bf::format_rfc3339(bf::now_us())}, {"source", "http-ingest"},
                               {"peer", "127.0.0.1:1"}, {"events", summary.events}};
    return bf::wrap_batch_object(envelope, body).size() + digest.size();
  });
  const double rebuilt = time([&](const std::string& body) {
    const std::string text = bf::decompress(bf::Encoding::zstd, body, 128 << 20);
    std::vector<bf::Event> events = bf::parse_ndjson(text);
    const std::string digest = bf::sha256_hex(text);
    const std::string now = bf::format_rfc3339(bf::now_us());
    for (bf::Event& e : events) {
      if (!e.contains("_received")) e["_received"] = now;
      if (!e.contains("_time")) e["_time"] = now;
      if (!e.contains("_source")) {
        e["_source"] = "http-ingest";
        if (!e.contains("_peer")) e["_peer"] = "127.0.0.1:1";
      }
    }
    return bf::encode_batch(events).size() + digest.size();
  });
  std::printf("  ingest CPU work alone, one thread: validate + keep as sent %.2f M events/s; "
              "DOM + defaults + re-encode (before) %.2f M events/s: %.1fx%s\n",
              as_sent / 1e6, rebuilt / 1e6, as_sent / rebuilt, sink ? "" : " ");
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
      client_cpu[static_cast<size_t>(c)] = thread_cpu_seconds();
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
  if (!(argc > 4 && std::string(argv[4]) == "http-only")) compare_ingest_work(bodies, 40);
  if (failed || stored != static_cast<size_t>(batches)) {
    std::fprintf(stderr, "receiver bench: %d failed posts, %zu of %d batches in raw/\n", failed.load(), stored, batches);
    return 1;
  }
  return 0;
}
