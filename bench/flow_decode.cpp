// Flow decoding throughput per core (issue 7): records (events) decoded per second
// by flow::decode_sflow and flow::FlowDecoder on one thread, datagram bytes in,
// NDJSON out, on datagrams shaped like real exporters' (laid out from the specs as
// in tests/unit/proxy/flow_*_test.cpp). Run: build/bench/bench_flow_decode
#include <arpa/inet.h>
#include <benchmark/benchmark.h>

#include <string>

#include "proxy/flow/netflow.h"
#include "proxy/flow/sflow.h"

namespace {

struct Bytes {
  std::string b;
  Bytes& u8(uint32_t v) { b.push_back(static_cast<char>(v & 0xff)); return *this; }
  Bytes& u16(uint32_t v) { return u8(v >> 8).u8(v); }
  Bytes& u32(uint32_t v) { return u16(v >> 16).u16(v); }
  Bytes& u64(uint64_t v) { return u32(static_cast<uint32_t>(v >> 32)).u32(static_cast<uint32_t>(v)); }
  void patch16(size_t at, uint32_t v) { b[at] = char(v >> 8); b[at + 1] = char(v); }
  void patch32(size_t at, uint32_t v) { patch16(at, v >> 16); patch16(at + 2, v & 0xffff); }
};

constexpr uint32_t kSecs = 1764676800;

bf::flow::EventContext context() {
  bf::flow::EventContext c;
  c.received_us = int64_t(kSecs) * 1000000;
  c.received = "2025-12-02T12:00:00.000000Z";
  c.source = "bench";
  c.peer = "192.0.2.1:4739";
  return c;
}

// IPFIX: one template (the 16 fields softflowd exports for IPv4) and 28 records.
std::string ipfix_message(bool with_template, uint32_t seq) {
  Bytes b;
  b.u16(10).u16(0).u32(kSecs).u32(seq).u32(1);
  const uint16_t ids[] = {8, 12, 22, 21, 1, 2, 10, 14, 61, 136, 7, 11, 4, 6, 60, 5};
  const uint16_t lens[] = {4, 4, 4, 4, 8, 8, 4, 4, 1, 1, 2, 2, 1, 1, 1, 1};
  if (with_template) {
    b.u16(2).u16(4 + 4 + 16 * 4).u16(1024).u16(16);
    for (int i = 0; i < 16; ++i) b.u16(ids[i]).u16(lens[i]);
  }
  const size_t set = b.b.size();
  b.u16(1024).u16(0);
  for (uint32_t r = 0; r < 28; ++r) {
    b.u32(0x0a000001 + r).u32(0x0a020001).u32(1000000 + r).u32(1005000 + r).u64(1500 * r + 60).u64(r + 1);
    b.u32(1).u32(2).u8(0).u8(1).u16(1000 + r).u16(443).u8(6).u8(0x1b).u8(4).u8(0);
  }
  b.patch16(set + 2, static_cast<uint32_t>(b.b.size() - set));
  b.patch16(2, static_cast<uint32_t>(b.b.size()));
  return b.b;
}

// sFlow: 7 flow samples with a 128-byte Ethernet/IPv4/TCP header and extended switch
// data, and one counter sample with generic + Ethernet counters (9 events).
std::string sflow_datagram() {
  Bytes b;
  b.u32(5).u32(1).u32(0xc000020a).u32(0).u32(1).u32(123456).u32(8);
  for (int s = 0; s < 7; ++s) {
    b.u32(1);
    const size_t len_at = b.b.size();
    b.u32(0).u32(s).u32(12).u32(2048).u32(4096000).u32(0).u32(12).u32(13).u32(2);
    b.u32(1).u32(4 * 4 + 128).u32(1).u32(1518).u32(4).u32(128);
    Bytes h;
    h.u32(0x00112233).u16(0x4455).u32(0x66778899).u16(0xaabb).u16(0x0800);
    h.u8(0x45).u8(0).u16(1500).u16(1).u16(0x4000).u8(64).u8(6).u16(0).u32(0x0a000001 + s).u32(0x0a000002);
    h.u16(443).u16(51000).u32(1).u32(2).u8(0x50).u8(0x18).u16(1024).u16(0).u16(0);
    h.b.resize(128, 'x');
    b.b += h.b;
    b.u32(1001).u32(16).u32(100).u32(0).u32(200).u32(0);
    b.patch32(len_at, static_cast<uint32_t>(b.b.size() - len_at - 4));
  }
  b.u32(2).u32(12 + 8 + 88 + 8 + 52).u32(9).u32(5).u32(2);
  b.u32(1).u32(88).u32(5).u32(6).u64(10000000000ull).u32(1).u32(3).u64(12345);
  for (int i = 0; i < 6; ++i) b.u32(i);
  b.u64(6789);
  for (int i = 0; i < 6; ++i) b.u32(i);
  b.u32(2).u32(52);
  for (int i = 0; i < 13; ++i) b.u32(i);
  return b.b;
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
