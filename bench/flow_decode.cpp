// Flow decoding throughput per core (issue 7): records (events) decoded per second
// by flow::decode_sflow and flow::FlowDecoder (IPFIX, NetFlow v9) on one thread, datagram bytes in,
// NDJSON out, on datagrams shaped like real exporters' (laid out from the specs as
// in tests/unit/proxy/flow_*_test.cpp; bench/flow_datagrams.h). Run: build/bench/bench_flow_decode
#include <arpa/inet.h>
#include <benchmark/benchmark.h>

#include <string>

#include "flow_datagrams.h"
#include "proxy/flow/netflow.h"
#include "proxy/flow/sflow.h"

namespace {

using bench_flow::ipfix_message;
using bench_flow::kSecs;
using bench_flow::sflow_datagram;

bf::flow::EventContext context() {
  bf::flow::EventContext c;
  c.received_us = int64_t(kSecs) * 1000000;
  c.received = "2025-12-02T12:00:00.000000Z";
  c.source = "bench";
  c.peer = "192.0.2.1:4739";
  return c;
}

void BM_IpfixDecode(benchmark::State& state) {
  bf::flow::FlowDecoder d;
  const auto ctx = context();
  std::string out;
  bf::flow::FlowStats stats;
  d.decode(ipfix_message(true, 0), ctx, out, stats);
  const std::string msg = ipfix_message(false, 1);
  for (auto _ : state) {
    out.clear();
    d.decode(msg, ctx, out, stats);
    benchmark::DoNotOptimize(out.data());
  }
  if (stats.total_errors() != 0) state.SkipWithError("decode errors");
  state.SetItemsProcessed(static_cast<int64_t>(stats.events) - 28);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
}
BENCHMARK(BM_IpfixDecode);

void BM_Netflow9Decode(benchmark::State& state) {
  bf::flow::FlowDecoder d;
  const auto ctx = context();
  std::string out;
  bf::flow::FlowStats stats;
  d.decode(bench_flow::netflow9_packet(true, 0), ctx, out, stats);
  const uint64_t learned = stats.events;
  const std::string packet = bench_flow::netflow9_packet(false, 1);
  for (auto _ : state) {
    out.clear();
    d.decode(packet, ctx, out, stats);
    benchmark::DoNotOptimize(out.data());
  }
  if (stats.total_errors() != 0) state.SkipWithError("decode errors");
  state.SetItemsProcessed(static_cast<int64_t>(stats.events - learned));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * packet.size()));
}
BENCHMARK(BM_Netflow9Decode);

void BM_SflowDecode(benchmark::State& state) {
  const auto ctx = context();
  const std::string dg = sflow_datagram();
  std::string out;
  bf::flow::FlowStats stats;
  for (auto _ : state) {
    out.clear();
    bf::flow::decode_sflow(dg, ctx, out, stats);
    benchmark::DoNotOptimize(out.data());
  }
  if (stats.total_errors() != 0) state.SkipWithError("decode errors");
  state.SetItemsProcessed(static_cast<int64_t>(stats.events));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * dg.size()));
}
BENCHMARK(BM_SflowDecode);

}  // namespace

BENCHMARK_MAIN();
