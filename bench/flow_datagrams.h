#pragma once
// Flow datagrams shaped like real exporters', laid out from the specifications, for
// bench/flow_decode.cpp (decoder throughput) and bench/proxy_loadgen.cpp (`flow`
// mode: load on a running proxy). Header-only, no project dependencies.
#include <cstdint>
#include <string>

namespace bench_flow {

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

// The 16 fields softflowd exports for IPv4 flows (IPFIX and NetFlow v9 share the ids).
constexpr uint16_t kIds[] = {8, 12, 22, 21, 1, 2, 10, 14, 61, 136, 7, 11, 4, 6, 60, 5};
constexpr uint16_t kLens[] = {4, 4, 4, 4, 8, 8, 4, 4, 1, 1, 2, 2, 1, 1, 1, 1};
constexpr uint32_t kFlowRecords = 28;  // records per IPFIX message / v9 packet

inline void flow_records(Bytes& b, uint32_t seq) {
  for (uint32_t r = 0; r < kFlowRecords; ++r) {
    b.u32(0x0a000001 + r + (seq & 0xff) * 256).u32(0x0a020001).u32(1000000 + r).u32(1005000 + r).u64(1500 * r + 60).u64(r + 1);
    b.u32(1).u32(2).u8(0).u8(1).u16(1000 + r).u16(443).u8(6).u8(0x1b).u8(4).u8(0);
  }
}

// IPFIX (RFC 7011): template 1024 (when asked) and a data set of 28 records.
inline std::string ipfix_message(bool with_template, uint32_t seq) {
  Bytes b;
  b.u16(10).u16(0).u32(kSecs).u32(seq).u32(1);
  if (with_template) {
    b.u16(2).u16(4 + 4 + 16 * 4).u16(1024).u16(16);
    for (int i = 0; i < 16; ++i) b.u16(kIds[i]).u16(kLens[i]);
  }
  const size_t set = b.b.size();
  b.u16(1024).u16(0);
  flow_records(b, seq);
  b.patch16(set + 2, static_cast<uint32_t>(b.b.size() - set));
  b.patch16(2, static_cast<uint32_t>(b.b.size()));
  return b.b;
}

// NetFlow v9 (RFC 3954): template 256 (when asked) and a data FlowSet of 28 records.
inline std::string netflow9_packet(bool with_template, uint32_t seq) {
  Bytes b;
  b.u16(9).u16(kFlowRecords + (with_template ? 1 : 0)).u32(1010000).u32(kSecs).u32(seq).u32(1);
  if (with_template) {
    b.u16(0).u16(4 + 4 + 16 * 4).u16(256).u16(16);
    for (int i = 0; i < 16; ++i) b.u16(kIds[i]).u16(kLens[i]);
  }
  const size_t set = b.b.size();
  b.u16(256).u16(0);
  flow_records(b, seq);
  while ((b.b.size() - set) % 4) b.u8(0);
  b.patch16(set + 2, static_cast<uint32_t>(b.b.size() - set));
  return b.b;
}

// sFlow v5: 7 flow samples with a 128-byte Ethernet/IPv4/TCP header and extended
// switch data, and one counter sample with generic + Ethernet counters (9 events).
constexpr uint32_t kSflowEvents = 9;
inline std::string sflow_datagram(uint32_t seq = 1) {
  Bytes b;
  b.u32(5).u32(1).u32(0xc000020a).u32(0).u32(seq).u32(123456).u32(8);
  for (uint32_t s = 0; s < 7; ++s) {
    b.u32(1);
    const size_t len_at = b.b.size();
    b.u32(0).u32(seq * 7 + s).u32(12).u32(2048).u32(4096000).u32(0).u32(12).u32(13).u32(2);
    b.u32(1).u32(4 * 4 + 128).u32(1).u32(1518).u32(4).u32(128);
    Bytes h;
    h.u32(0x00112233).u16(0x4455).u32(0x66778899).u16(0xaabb).u16(0x0800);
    h.u8(0x45).u8(0).u16(1500).u16(1).u16(0x4000).u8(64).u8(6).u16(0).u32(0x0a000001 + s + (seq & 0xff) * 256).u32(0x0a000002);
    h.u16(443).u16(51000).u32(1).u32(2).u8(0x50).u8(0x18).u16(1024).u16(0).u16(0);
    h.b.resize(128, 'x');
    b.b += h.b;
    b.u32(1001).u32(16).u32(100).u32(0).u32(200).u32(0);
    b.patch32(len_at, static_cast<uint32_t>(b.b.size() - len_at - 4));
  }
  b.u32(2).u32(12 + 8 + 88 + 8 + 52).u32(seq).u32(5).u32(2);
  b.u32(1).u32(88).u32(5).u32(6).u64(10000000000ull).u32(1).u32(3).u64(12345);
  for (int i = 0; i < 6; ++i) b.u32(i);
  b.u64(6789);
  for (int i = 0; i < 6; ++i) b.u32(i);
  b.u32(2).u32(52);
  for (int i = 0; i < 13; ++i) b.u32(i);
  return b.b;
}

}  // namespace bench_flow
