// The piper's step engine on 300-byte syslog events (issue 8): the piper's work per
// raw batch without a pipeline (decode + encode) beside the same with a realistic
// eight-step pipeline, the pipeline alone, and each step kind alone. One thread, so
// events/s is per core.
//   cmake --build build --target bench_transforms && ./build/bench/bench_transforms
#include <benchmark/benchmark.h>

#include <boost/json/parse.hpp>

#include <cstdlib>
#include <memory>

#include <string>
#include <vector>

#include "common/batch.h"
#include "common/time.h"
#include "fixtures/enrich_files.h"  // temp files, MMDB writer, a silent UDP server (tests/fixtures)
#include "piper/transform.h"
#include "proxy/syslog_parser.h"

namespace {

constexpr int kEvents = 10000;

// RFC 3164 lines of about 300 bytes, as the proxy's syslog sources turn them into
// events (with _raw, _time, hostname, app_name, …).
std::vector<bf::Event> syslog_events() {
  std::vector<bf::Event> events;
  const int64_t now = bf::now_us();
  const char* users[] = {"ann", "bob", "carol", "dave"};
  for (int i = 0; i < kEvents; ++i) {
    std::string line = "<38>Nov 25 10:" + std::to_string(10 + i % 50) + ":0" + std::to_string(i % 10) + " web-" +
                       std::to_string(i % 16) + ".example.net sshd[" + std::to_string(1000 + i % 5000) +
                       "]: Accepted publickey for " + users[i % 4] + " from " +
                       (i % 3 ? "10.20." : "198.51.") + std::to_string(i % 250) + "." + std::to_string(i % 200) +
                       " port " + std::to_string(40000 + i % 20000) + " ssh2: ED25519 SHA256:";
    while (line.size() < 300) line += static_cast<char>('A' + (line.size() * 7 + static_cast<size_t>(i)) % 26);
    events.push_back(bf::parse_syslog(line, now));
  }
  return events;
}

const char* kRealistic = R"j([
  {"grok": {"field": "_raw", "patterns": "^<%{NONNEGINT:pri:int}>%{SYSLOGBASE} %{GREEDYDATA:msg}$"}},
  {"date_parse": {"field": "timestamp", "formats": "%b %e %H:%M:%S", "timezone": "Europe/Berlin"}},
  {"set": {"field": "network", "value": "internal", "if": "cidr_match(msg, \"10.0.0.0/8\") || starts_with(msg, \"Accepted\")"}},
  {"coerce": {"fields": {"pid": "int"}}},
  {"drop": {"if": "program == \"cron\""}},
  {"remove": {"fields": ["timestamp", "_raw"]}},
  {"rename": {"from": "logsource", "to": "host"}},
  {"hash": {"fields": ["host", "program", "pid"], "algorithm": "xxh3", "target": "session"}}
])j";

// BF_BENCH_HEAP=1: the events on the heap, as before the per-batch arena, for comparison.
bool heap_events() {
  static const bool heap = std::getenv("BF_BENCH_HEAP") != nullptr;
  return heap;
}

bf::Pipeline compile(const std::string& steps) { return bf::Pipeline::compile(boost::json::parse(steps).as_array(), "bench"); }

void piper_path(benchmark::State& state, const std::string& steps) {
  auto pipeline = compile(steps);
  const std::string raw = bf::encode_batch(syslog_events());
  size_t out_events = 0, kept = 0;
  for (auto _ : state) {
    // As the piper does: the batch decoded into one arena that outlives its output.
    bf::BatchArena arena;
    auto out = pipeline.run(bf::decode_batch(raw, size_t(1) << 30, heap_events() ? boost::json::storage_ptr() : arena.storage()));
    out_events = out.events.size() + out.dropped;  // sampling drops on purpose
    if (!out.dead_letters.empty()) out_events = 0;
    kept = out.events.size();
    benchmark::DoNotOptimize(bf::encode_batch(out.events));
  }
  if (out_events != kEvents) state.SkipWithError("the pipeline lost events");
  state.counters["kept"] = static_cast<double>(kept);
  state.SetItemsProcessed(state.iterations() * kEvents);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(raw.size()));
}
// The piper's per-batch work without steps: decode the raw batch, encode processed/.
void BM_PiperBatch_NoPipeline(benchmark::State& state) { piper_path(state, "[]"); }
void BM_PiperBatch_Realistic8Steps(benchmark::State& state) { piper_path(state, kRealistic); }

void pipeline_only(benchmark::State& state, const std::string& steps, const std::vector<bf::Event>& events = syslog_events()) {
  auto pipeline = compile(steps);
  size_t out_events = 0, kept = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // The events in an arena of their own, as the piper decodes them.
    auto arena = std::make_unique<bf::BatchArena>();
    std::vector<bf::Event> copy;
    copy.reserve(events.size());
    for (const auto& e : events) copy.emplace_back(e, heap_events() ? boost::json::storage_ptr() : arena->storage());
    state.ResumeTiming();
    auto out = pipeline.run(std::move(copy));
    out_events = out.events.size() + out.dropped;
    if (!out.dead_letters.empty()) out_events = 0;
    kept = out.events.size();
    benchmark::DoNotOptimize(out);
  }
  if (out_events != events.size()) state.SkipWithError("the pipeline lost events");
  state.counters["kept"] = static_cast<double>(kept);
  state.SetItemsProcessed(state.iterations() * kEvents);
}
void BM_Pipeline_Realistic8Steps(benchmark::State& state) { pipeline_only(state, kRealistic); }

// One step at a time (after grok where the step needs its fields).
const char* kGrok = R"({"grok": {"field": "_raw", "patterns": "^<%{NONNEGINT:pri:int}>%{SYSLOGBASE} %{GREEDYDATA:msg}$"}})";
#define STEP_BENCH(name, step)                                                                  \
  void BM_Step_##name(benchmark::State& state) { pipeline_only(state, std::string("[") + step + "]"); } \
  BENCHMARK(BM_Step_##name)->Unit(benchmark::kMillisecond);
#define STEP_AFTER_GROK_BENCH(name, step)                                                              \
  void BM_StepAfterGrok_##name(benchmark::State& state) {                                              \
    pipeline_only(state, std::string("[") + kGrok + ", " + step + "]");                                \
  }                                                                                                    \
  BENCHMARK(BM_StepAfterGrok_##name)->Unit(benchmark::kMillisecond);

STEP_BENCH(Grok, kGrok)
STEP_AFTER_GROK_BENCH(DateParse, R"({"date_parse": {"field": "timestamp", "formats": "%b %e %H:%M:%S"}})")
STEP_BENCH(SetIfCondition, R"j({"set": {"field": "x", "value": 1, "if": "cidr_match(_peer, \"10.0.0.0/8\") || hostname =~ \"^web-1\""}})j")
STEP_BENCH(Set, R"({"set": {"field": "env", "value": "prod"}})")
STEP_BENCH(Remove, R"({"remove": {"field": "_raw"}})")
STEP_BENCH(Rename, R"({"rename": {"from": "hostname", "to": "host"}})")
STEP_BENCH(Copy, R"({"copy": {"from": "hostname", "to": "host"}})")
STEP_BENCH(Lowercase, R"({"lowercase": {"field": "message"}})")
STEP_BENCH(RegexReplace, R"({"regex_replace": {"field": "message", "pattern": "[0-9]+", "replacement": "N"}})")
STEP_BENCH(Kv, R"({"kv": {"field": "message", "target": "kv"}})")
STEP_BENCH(Split, R"({"split": {"field": "message", "separator": " ", "target": "words"}})")
STEP_BENCH(HashSha256, R"({"hash": {"fields": ["hostname", "message"]}})")
STEP_BENCH(HashXxh3, R"({"hash": {"fields": ["hostname", "message"], "algorithm": "xxh3"}})")
STEP_BENCH(Truncate, R"({"truncate": {"field": "message", "max_bytes": 64}})")
STEP_BENCH(JsonFlatten, R"({"json_flatten": {}})")
STEP_BENCH(DropAll, R"({"drop": {}})")
STEP_BENCH(SampleRandom, R"({"sample": {"rate": 10}})")
STEP_BENCH(SampleByKey, R"({"sample": {"rate": 10, "key": "hostname"}})")
STEP_BENCH(SampleDynamic, R"({"sample": {"rate": 10, "key": "hostname", "mode": "dynamic", "window_events": 5000}})")
STEP_BENCH(RouteCopyIf, R"j({"route": {"to": "other", "if": "starts_with(hostname, \"web-1\")"}})j")

// community_id on the same events with flow fields added (as a flow source would set them).
void BM_Step_CommunityId(benchmark::State& state) {
  auto events = syslog_events();
  for (size_t i = 0; i < events.size(); ++i) {
    events[i]["source"] = boost::json::object{{"ip", "10.20." + std::to_string(i % 250) + ".7"}, {"port", 40000 + i % 20000}};
    events[i]["destination"] = boost::json::object{{"ip", "198.51.100." + std::to_string(i % 200)}, {"port", 22}};
    events[i]["network"] = boost::json::object{{"transport", "tcp"}};
  }
  pipeline_only(state, R"([{"community_id": {}}])", events);
}
BENCHMARK(BM_Step_CommunityId)->Unit(benchmark::kMillisecond);

// Enrichment (geoip, lookup, rdns) on the client address grok takes from the message
// (10.20.x.y or 198.51.x.y, about 10,000 distinct): subtract BM_StepAfterIp_GrokOnly
// for the step's own cost. The files are written to a temp directory at start-up;
// rdns asks a UDP socket that never answers, warmed up once, so it measures the
// cache path (every address cached as "no name").
struct EnrichFiles {
  bf::test::TempDir dir;
  bf::test::SilentUdpServer silent;
  std::string city = dir.file("city.mmdb"), asn = dir.file("asn.mmdb"), nets = dir.file("nets.csv"),
              hosts = dir.file("hosts.csv"), dns = silent.address();
  EnrichFiles() {
    std::string spec = R"({"database_type": "GeoLite2-City", "networks": [)";
    for (int b = 0; b < 256; ++b) {  // 512 networks: a tree of realistic depth
      spec += std::string(b ? "," : "") + R"({"network": "198.51.)" + std::to_string(b) +
              R"(.0/24", "data": {"country": {"iso_code": "NL", "names": {"en": "Netherlands"}}, "city": {"names": {"en": "Amsterdam"}},
                 "location": {"latitude": 52.37, "longitude": 4.89, "time_zone": "Europe/Amsterdam"}}})";
      spec += R"(,{"network": "10.20.)" + std::to_string(b) + R"(.0/24", "data": {"country": {"iso_code": "DE"}}})";
    }
    bf::test::write_mmdb(city, spec + "]}");
    bf::test::write_mmdb(asn, R"({"database_type": "GeoLite2-ASN", "networks": [{"network": "198.51.0.0/16", "data": {"autonomous_system_number": 64500, "autonomous_system_organization": "Example"}}]})");
    std::string csv = "network,zone,owner\n10.0.0.0/8,corp,it\n10.20.0.0/16,dc1,ops\n198.51.0.0/16,edge,net\n";
    for (int b = 0; b < 200; ++b) csv += "10.20." + std::to_string(b) + ".0/24,rack" + std::to_string(b) + ",ops\n";
    bf::test::replace_file(nets, csv);
    std::string h = "hostname,owner,site\n";
    for (int i = 0; i < 16; ++i) h += "web-" + std::to_string(i) + ".example.net,team" + std::to_string(i % 4) + ",ams\n";
    bf::test::replace_file(hosts, h);
  }
};
const EnrichFiles& enrich_files() {
  static EnrichFiles files;
  return files;
}
std::string q(const std::string& s) { return "\"" + s + "\""; }
const char* kGrokIp = R"({"grok": {"field": "message", "patterns": "from %{IP:src_ip}"}})";
void after_ip(benchmark::State& state, const std::string& step) {
  pipeline_only(state, std::string("[") + kGrokIp + (step.empty() ? "" : ", " + step) + "]");
}
void BM_StepAfterIp_GrokOnly(benchmark::State& state) { after_ip(state, ""); }
void BM_StepAfterIp_GeoipCity(benchmark::State& state) {
  after_ip(state, R"({"geoip": {"field": "src_ip", "database": )" + q(enrich_files().city) + "}}");
}
void BM_StepAfterIp_GeoipAsn(benchmark::State& state) {
  after_ip(state, R"({"geoip": {"field": "src_ip", "database": )" + q(enrich_files().asn) + "}}");
}
void BM_StepAfterIp_LookupCidr(benchmark::State& state) {
  after_ip(state, R"({"lookup": {"field": "src_ip", "match": "cidr", "file": )" + q(enrich_files().nets) + "}}");
}
void BM_StepAfterIp_RdnsCached(benchmark::State& state) {
  after_ip(state, R"({"rdns": {"field": "src_ip", "target": "src_host", "server": )" + q(enrich_files().dns) +
                      R"(, "timeout_ms": 5, "budget_ms": 60000, "max_in_flight": 1024, "cache_size": 100000}})");
}
void BM_Step_LookupExact(benchmark::State& state) {
  pipeline_only(state, R"([{"lookup": {"field": "hostname", "file": )" + q(enrich_files().hosts) + "}}]");
}
BENCHMARK(BM_StepAfterIp_GrokOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepAfterIp_GeoipCity)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepAfterIp_GeoipAsn)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepAfterIp_LookupCidr)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepAfterIp_RdnsCached)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Step_LookupExact)->Unit(benchmark::kMillisecond);

// The issue's realistic pipeline with its enrichment: grok + date_parse + geoip +
// condition + lookup + remove + rename (+ a drop filter); `sampled` ends it with the
// dynamic sampler instead of the drop (the issue's eight steps).
std::string realistic_enriched(bool sampled = false) {
  return std::string(R"j([
  {"grok": {"field": "_raw", "patterns": "^<%{NONNEGINT:pri:int}>%{SYSLOGBASE} %{GREEDYDATA:msg}$"}},
  {"date_parse": {"field": "timestamp", "formats": "%b %e %H:%M:%S", "timezone": "Europe/Berlin"}},
  {"grok": {"field": "msg", "patterns": "from %{IP:src_ip}"}},
  {"geoip": {"field": "src_ip", "database": )j") + q(enrich_files().city) + R"j(}},
  {"set": {"field": "network", "value": "internal", "if": "cidr_match(src_ip, \"10.0.0.0/8\")"}},
  {"lookup": {"field": "logsource", "key": "hostname", "file": )j" + q(enrich_files().hosts) + R"j(}},
  {"remove": {"fields": ["timestamp", "_raw"]}},
  {"rename": {"from": "logsource", "to": "host"}},
  )j" + std::string(sampled ? R"j({"sample": {"rate": 10, "key": "host", "mode": "dynamic"}})j"
                            : R"j({"drop": {"if": "program == \"cron\""}})j") + "]";
}
void BM_PiperBatch_RealisticEnriched(benchmark::State& state) { piper_path(state, realistic_enriched()); }
void BM_Pipeline_RealisticEnriched(benchmark::State& state) { pipeline_only(state, realistic_enriched()); }
void BM_PiperBatch_RealisticSampled(benchmark::State& state) { piper_path(state, realistic_enriched(true)); }
void BM_Pipeline_RealisticSampled(benchmark::State& state) { pipeline_only(state, realistic_enriched(true)); }
BENCHMARK(BM_PiperBatch_RealisticEnriched)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Pipeline_RealisticEnriched)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PiperBatch_RealisticSampled)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Pipeline_RealisticSampled)->Unit(benchmark::kMillisecond);

// Issue 8's realistic pipeline, exactly its eight steps: grok (the syslog head and
// the client address of the sshd message), date_parse, geoip (City), the condition
// (an `if:` on a set), lookup (the 16-row host table), remove, rename, and sampling
// deterministic by the client address (one address in ten kept, every event of it).
std::vector<std::string> issue8_steps() {
  return {
      R"j({"grok": {"field": "_raw", "patterns": "^<%{NONNEGINT:pri:int}>%{SYSLOGBASE} Accepted %{WORD:auth} for %{USERNAME:user} from %{IP:src_ip} port %{INT:src_port:int} %{GREEDYDATA:msg}$"}})j",
      R"j({"date_parse": {"field": "timestamp", "formats": "%b %e %H:%M:%S", "timezone": "Europe/Berlin"}})j",
      R"j({"geoip": {"field": "src_ip", "database": )j" + q(enrich_files().city) + "}}",
      R"j({"set": {"field": "network", "value": "internal", "if": "cidr_match(src_ip, \"10.0.0.0/8\")"}})j",
      R"j({"lookup": {"field": "logsource", "key": "hostname", "file": )j" + q(enrich_files().hosts) + "}}",
      R"j({"remove": {"fields": ["timestamp", "_raw"]}})j",
      R"j({"rename": {"from": "logsource", "to": "host"}})j",
      R"j({"sample": {"rate": 10, "key": "src_ip"}})j",
  };
}
std::string issue8(size_t first_steps = 8) {
  const auto steps = issue8_steps();
  std::string out = "[";
  for (size_t i = 0; i < first_steps && i < steps.size(); ++i) out += (i ? ", " : "") + steps[i];
  return out + "]";
}
// The piper's work per raw object with the eight steps: decode + steps + encode.
void BM_PiperBatch_Issue8(benchmark::State& state) { piper_path(state, issue8()); }
// The eight steps alone, on decoded events.
void BM_Pipeline_Issue8(benchmark::State& state) { pipeline_only(state, issue8()); }
// The first N steps alone: each step's marginal cost is Prefix/N minus Prefix/N-1
// (Prefix/0 is the pipeline without steps).
void BM_Pipeline_Issue8Prefix(benchmark::State& state) { pipeline_only(state, issue8(static_cast<size_t>(state.range(0)))); }
BENCHMARK(BM_PiperBatch_Issue8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Pipeline_Issue8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Pipeline_Issue8Prefix)->DenseRange(0, 8)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK(BM_PiperBatch_NoPipeline)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PiperBatch_Realistic8Steps)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Pipeline_Realistic8Steps)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
