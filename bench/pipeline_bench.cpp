// Hot-path benchmarks: syslog parsing, batch encoding/decoding, a pipeline pass.
//   make bench && ./build/bench/bench_pipeline
#include <benchmark/benchmark.h>

#include <boost/json/parse.hpp>

#include <string>
#include <vector>

#include "common/batch.h"
#include "common/time.h"
#include "piper/transform.h"
#include "proxy/syslog_parser.h"

namespace {

std::vector<std::string> syslog_lines(bool rfc5424, int n) {
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) {
    if (rfc5424) {
      lines.push_back("<134>1 2026-11-25T10:00:00.123456+02:00 web01 nginx 4242 ACC [meta@32473 seq=\"" +
                      std::to_string(i) + "\" path=\"/a\"] GET /index.html?id=" + std::to_string(i) + " 200 512");
    } else {
      lines.push_back("<13>Nov 25 10:00:00 host02 sshd[77]: Accepted publickey for user" + std::to_string(i) +
                      " from 10.0.0.1 port 51234 ssh2");
    }
  }
  return lines;
}

void parse_syslog_lines(benchmark::State& state, bool rfc5424) {
  auto lines = syslog_lines(rfc5424, 1000);
  int64_t now = bf::now_us();
  size_t bytes = 0;
  for (const auto& l : lines) bytes += l.size();
  for (auto _ : state) {
    for (const auto& l : lines) benchmark::DoNotOptimize(bf::parse_syslog(l, now));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(lines.size()));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}
void BM_ParseSyslog5424(benchmark::State& state) { parse_syslog_lines(state, true); }
void BM_ParseSyslog3164(benchmark::State& state) { parse_syslog_lines(state, false); }

std::vector<bf::Event> sample_events(int n) {
  std::vector<bf::Event> events;
  int64_t now = bf::now_us();
  for (const auto& l : syslog_lines(true, n)) events.push_back(bf::parse_syslog(l, now));
  return events;
}

void BM_EncodeBatch(benchmark::State& state) {
  auto events = sample_events(10000);
  for (auto _ : state) benchmark::DoNotOptimize(bf::encode_batch(events));
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(events.size()));
}

void BM_DecodeBatch(benchmark::State& state) {
  std::string encoded = bf::encode_batch(sample_events(10000));
  for (auto _ : state) benchmark::DoNotOptimize(bf::decode_batch(encoded));
  state.SetItemsProcessed(state.iterations() * 10000);
}

void BM_PipelineAddRemoveRename(benchmark::State& state) {
  auto pipeline = bf::Pipeline::compile(boost::json::parse(R"([{"add": {"field": "env", "value": "prod"}},
      {"rename": {"from": "hostname", "to": "host"}}, {"remove": {"field": "_raw"}}])").as_array(), "bench");
  auto events = sample_events(10000);
  for (auto _ : state) {
    state.PauseTiming();
    auto copy = events;
    state.ResumeTiming();
    copy = pipeline.run(std::move(copy)).events;
    benchmark::DoNotOptimize(copy);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(events.size()));
}

}  // namespace

BENCHMARK(BM_ParseSyslog5424);
BENCHMARK(BM_ParseSyslog3164);
BENCHMARK(BM_EncodeBatch)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeBatch)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PipelineAddRemoveRename)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
