// sFlow v5 decoding, from datagrams laid out field by field after
// sflow.org/sflow_version_5.txt (XDR: big-endian 32-bit words, opaque data padded to 4).
#include <gtest/gtest.h>

#include "flow_test_util.h"
#include "proxy/flow/sflow.h"

namespace bf {
namespace {

using test::Bytes;
using test::num;
using test::str;
using test::unum;
using flow::FlowError;

// A structure (sample or record) is format, length, body: built by begin/end.
struct Xdr {
  Bytes b;
  std::vector<size_t> open;
  void begin(uint32_t format) {
    b.u32(format);
    open.push_back(b.size());
    b.u32(0);
  }
  void end() {
    const size_t at = open.back();
    open.pop_back();
    b.patch32(at, static_cast<uint32_t>(b.size() - at - 4));
  }
  void opaque(const std::string& s) {
    b.u32(static_cast<uint32_t>(s.size())).raw(s).pad_to(4);
  }
};

std::string ethernet_vlan_ipv4_tcp() {
  Bytes h;
  h.mac({0x00, 0x11, 0x22, 0x33, 0x44, 0x55}).mac({0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb});
  h.u16(0x8100).u16(0xA064).u16(0x0800);                 // 802.1Q: PCP 5, VLAN 100
  h.u8(0x45).u8(0x28).u16(1500).u16(1).u16(0x4000).u8(64).u8(6).u16(0).ipv4("10.0.0.1").ipv4("10.0.0.2");
  h.u16(443).u16(51000).u32(1).u32(2).u8(0x50).u8(0x18).u16(1024).u16(0).u16(0);
  return h.b;
}

std::string ipv6_udp() {
  Bytes h;
  h.u32(0x60012345).u16(20).u8(17).u8(255).ipv6("2001:db8::1").ipv6("2001:db8::2");
  h.u16(5353).u16(53).u16(20).u16(0);
  return h.b;
}

std::string ipv4_icmp() {
  Bytes h;
  h.u8(0x45).u8(0).u16(84).u16(9).u16(0).u8(32).u8(1).u16(0).ipv4("192.0.2.5").ipv4("192.0.2.6");
  h.u8(8).u8(0).u16(0).u32(0x12340001);
  return h.b;
}

std::string sflow_datagram() {
  Xdr x;
  x.b.u32(5).u32(1).ipv4("192.0.2.10").u32(3).u32(100).u32(123456).u32(5);
  // 1: compact flow sample with raw header, extended switch, router, gateway.
  x.begin(1);
  x.b.u32(77).u32(12).u32(2048).u32(4096000).u32(5).u32(12).u32(0x80000000u | 3).u32(4);
  x.begin(1);
  x.b.u32(1).u32(1518).u32(4);
  x.opaque(ethernet_vlan_ipv4_tcp());
  x.end();
  x.begin(1001);
  x.b.u32(100).u32(5).u32(200).u32(0);
  x.end();
  x.begin(1002);
  x.b.u32(1).ipv4("10.0.0.254").u32(24).u32(16);
  x.end();
  x.begin(1003);
  x.b.u32(1).ipv4("192.0.2.254").u32(65000).u32(65001).u32(65002);
  x.b.u32(1).u32(2).u32(3).u32(65002).u32(65100).u32(65200);
  x.b.u32(2).u32(0xFDE80001u).u32(0xFDE80002u).u32(100);
  x.end();
  x.end();
  // 2: expanded flow sample, IPv6 header.
  x.begin(3);
  x.b.u32(78).u32(0).u32(70000).u32(512).u32(1024).u32(0).u32(0).u32(70001).u32(1).u32(258).u32(1);
  x.begin(1);
  x.b.u32(12).u32(60).u32(0);
  x.opaque(ipv6_udp());
  x.end();
  x.end();
  // 3: compact flow sample, IPv4 ICMP header.
  x.begin(1);
  x.b.u32(79).u32(12).u32(1).u32(1).u32(0).u32(12).u32(13).u32(1);
  x.begin(1);
  x.b.u32(11).u32(84).u32(0);
  x.opaque(ipv4_icmp());
  x.end();
  x.end();
  // 4: compact counter sample: generic and ethernet interface counters.
  x.begin(2);
  x.b.u32(9).u32(5).u32(2);
  x.begin(1);
  x.b.u32(5).u32(6).u64(10000000000ull).u32(1).u32(3).u64(0x1122334455ull);
  for (uint32_t i = 1; i <= 6; ++i) x.b.u32(i);
  x.b.u64(987654321ull);
  for (uint32_t i = 11; i <= 16; ++i) x.b.u32(i);
  x.end();
  x.begin(2);
  for (uint32_t i = 101; i <= 113; ++i) x.b.u32(i);
  x.end();
  x.end();
  // 5: expanded counter sample.
  x.begin(4);
  x.b.u32(10).u32(0).u32(5).u32(1);
  x.begin(2);
  for (uint32_t i = 201; i <= 213; ++i) x.b.u32(i);
  x.end();
  x.end();
  return x.b.b;
}

struct Decoded {
  std::vector<Event> events;
  flow::FlowStats stats;
};
Decoded decode(const std::string& d) {
  Decoded r;
  std::string out;
  flow::decode_sflow(d, test::test_context(), out, r.stats);
  r.events = test::events_of(out);
  return r;
}

TEST(Sflow, OneEventPerFlowSampleAndPerCounterRecord) {
  auto r = decode(sflow_datagram());
  EXPECT_EQ(r.stats.total_errors(), 0u);
  ASSERT_EQ(r.events.size(), 6u);  // 3 flow samples + 2 + 1 counter records
  for (const Event& e : r.events) {
    EXPECT_EQ(str(e, "agent"), "192.0.2.10");
    EXPECT_EQ(num(e, "sub_agent_id"), 3);
    EXPECT_EQ(num(e, "datagram_sequence"), 100);
    EXPECT_EQ(num(e, "agent_uptime_ms"), 123456);
    EXPECT_EQ(str(e, "_time"), "2025-12-02T12:00:00.000000Z");
  }
}

TEST(Sflow, CompactFlowSampleWithEthernetVlanIpv4TcpAndExtendedData) {
  auto r = decode(sflow_datagram());
  ASSERT_GE(r.events.size(), 1u);
  const Event& e = r.events[0];
  EXPECT_EQ(str(e, "sample_type"), "flow");
  EXPECT_EQ(num(e, "sample_sequence"), 77);
  EXPECT_EQ(num(e, "source_id_type"), 0);
  EXPECT_EQ(num(e, "source_id_index"), 12);
  EXPECT_EQ(num(e, "sampling_rate"), 2048);
  EXPECT_EQ(num(e, "sample_pool"), 4096000);
  EXPECT_EQ(num(e, "drops"), 5);
  EXPECT_EQ(num(e, "input"), 12);
  EXPECT_EQ(num(e, "output"), 3);
  EXPECT_EQ(num(e, "output_format"), 2);  // "multiple interfaces", 3 of them
  EXPECT_EQ(num(e, "header_protocol"), 1);
  EXPECT_EQ(num(e, "frame_length"), 1518);
  EXPECT_EQ(num(e, "stripped"), 4);
  EXPECT_EQ(str(e, "dst_mac"), "00:11:22:33:44:55");
  EXPECT_EQ(str(e, "src_mac"), "66:77:88:99:aa:bb");
  EXPECT_EQ(num(e, "vlan"), 100);
  EXPECT_EQ(num(e, "vlan_priority"), 5);
  EXPECT_EQ(num(e, "ether_type"), 0x0800);
  EXPECT_EQ(num(e, "ip_version"), 4);
  EXPECT_EQ(str(e, "src_ip"), "10.0.0.1");
  EXPECT_EQ(str(e, "dst_ip"), "10.0.0.2");
  EXPECT_EQ(num(e, "ip_protocol"), 6);
  EXPECT_EQ(num(e, "ip_tos"), 0x28);
  EXPECT_EQ(num(e, "ip_ttl"), 64);
  EXPECT_EQ(num(e, "ip_length"), 1500);
  EXPECT_EQ(num(e, "src_port"), 443);
  EXPECT_EQ(num(e, "dst_port"), 51000);
  EXPECT_EQ(num(e, "tcp_flags"), 0x18);
  EXPECT_EQ(num(e, "src_vlan"), 100);
  EXPECT_EQ(num(e, "src_priority"), 5);
  EXPECT_EQ(num(e, "dst_vlan"), 200);
  EXPECT_EQ(str(e, "next_hop"), "10.0.0.254");
  EXPECT_EQ(num(e, "src_mask_len"), 24);
  EXPECT_EQ(num(e, "dst_mask_len"), 16);
  EXPECT_EQ(str(e, "bgp_next_hop"), "192.0.2.254");
  EXPECT_EQ(num(e, "router_as"), 65000);
  EXPECT_EQ(num(e, "src_as"), 65001);
  EXPECT_EQ(num(e, "src_peer_as"), 65002);
  EXPECT_EQ(num(e, "dst_as"), 65200);
  EXPECT_EQ(boost::json::serialize(e.at("dst_as_path")), "[65002,65100,65200]");
  EXPECT_EQ(boost::json::serialize(e.at("communities")), "[4259840001,4259840002]");
  EXPECT_EQ(num(e, "local_pref"), 100);
}

TEST(Sflow, ExpandedFlowSampleWithIpv6Udp) {
  auto r = decode(sflow_datagram());
  ASSERT_GE(r.events.size(), 2u);
  const Event& e = r.events[1];
  EXPECT_EQ(num(e, "sample_sequence"), 78);
  EXPECT_EQ(num(e, "source_id_index"), 70000);  // beyond the compact form's 24 bits
  EXPECT_EQ(num(e, "input"), 70001);
  EXPECT_EQ(num(e, "output"), 258);
  EXPECT_EQ(num(e, "output_format"), 1);  // discarded, reason 258
  EXPECT_EQ(num(e, "ip_version"), 6);
  EXPECT_EQ(str(e, "src_ip"), "2001:db8::1");
  EXPECT_EQ(str(e, "dst_ip"), "2001:db8::2");
  EXPECT_EQ(num(e, "ip_flow_label"), 0x12345);
  EXPECT_EQ(num(e, "ip_ttl"), 255);
  EXPECT_EQ(num(e, "ip_protocol"), 17);
  EXPECT_EQ(num(e, "src_port"), 5353);
  EXPECT_EQ(num(e, "dst_port"), 53);
  EXPECT_EQ(e.if_contains("src_mac"), nullptr);
}

TEST(Sflow, Ipv4IcmpHeader) {
  auto r = decode(sflow_datagram());
  ASSERT_GE(r.events.size(), 3u);
  const Event& e = r.events[2];
  EXPECT_EQ(str(e, "src_ip"), "192.0.2.5");
  EXPECT_EQ(num(e, "ip_protocol"), 1);
  EXPECT_EQ(num(e, "icmp_type"), 8);
  EXPECT_EQ(num(e, "icmp_code"), 0);
  EXPECT_EQ(e.if_contains("src_port"), nullptr);
}

TEST(Sflow, CounterRecordsGenericAndEthernetCompactAndExpanded) {
  auto r = decode(sflow_datagram());
  ASSERT_EQ(r.events.size(), 6u);
  const Event& g = r.events[3];
  EXPECT_EQ(str(g, "sample_type"), "counter");
  EXPECT_EQ(str(g, "counter_type"), "generic_interface");
  EXPECT_EQ(num(g, "sample_sequence"), 9);
  EXPECT_EQ(num(g, "source_id_index"), 5);
  EXPECT_EQ(num(g, "ifIndex"), 5);
  EXPECT_EQ(num(g, "ifType"), 6);
  EXPECT_EQ(unum(g, "ifSpeed"), 10000000000ull);
  EXPECT_EQ(num(g, "ifDirection"), 1);
  EXPECT_EQ(num(g, "ifAdminStatus"), 1);
  EXPECT_EQ(num(g, "ifOperStatus"), 1);
  EXPECT_EQ(unum(g, "ifInOctets"), 0x1122334455ull);
  EXPECT_EQ(num(g, "ifInUcastPkts"), 1);
  EXPECT_EQ(num(g, "ifInUnknownProtos"), 6);
  EXPECT_EQ(unum(g, "ifOutOctets"), 987654321ull);
  EXPECT_EQ(num(g, "ifOutUcastPkts"), 11);
  EXPECT_EQ(num(g, "ifPromiscuousMode"), 16);
  const Event& eth = r.events[4];
  EXPECT_EQ(str(eth, "counter_type"), "ethernet_interface");
  EXPECT_EQ(num(eth, "sample_sequence"), 9);
  EXPECT_EQ(num(eth, "dot3StatsAlignmentErrors"), 101);
  EXPECT_EQ(num(eth, "dot3StatsSymbolErrors"), 113);
  const Event& x = r.events[5];
  EXPECT_EQ(num(x, "sample_sequence"), 10);
  EXPECT_EQ(num(x, "source_id_index"), 5);
  EXPECT_EQ(num(x, "dot3StatsFCSErrors"), 202);
}

TEST(Sflow, Ipv6AgentAndUnknownFormatsSkippedByLength) {
  Xdr x;
  x.b.u32(5).u32(2).ipv6("2001:db8::10").u32(0).u32(1).u32(1).u32(2);
  x.begin((9u << 12) | 1);  // an enterprise's sample: skipped, counted
  x.b.u32(1).u32(2);
  x.end();
  x.begin(2);
  x.b.u32(1).u32(1).u32(2);
  x.begin(2000);  // a counter record we do not decode
  x.b.u32(7);
  x.end();
  x.begin(2);
  for (uint32_t i = 0; i < 13; ++i) x.b.u32(i);
  x.end();
  x.end();
  auto r = decode(x.b.b);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(str(r.events[0], "agent"), "2001:db8::10");
  EXPECT_EQ(r.stats.error(FlowError::unknown_format), 2u);
}

TEST(Sflow, AbsurdCountsAndBadVersion) {
  {
    Bytes b;
    b.u32(5).u32(1).ipv4("192.0.2.10").u32(0).u32(1).u32(1).u32(0xFFFFFFFFu);
    EXPECT_EQ(decode(b.b).stats.error(FlowError::absurd_count), 1u);
  }
  {
    Xdr x;
    x.b.u32(5).u32(1).ipv4("192.0.2.10").u32(0).u32(1).u32(1).u32(1);
    x.begin(2);
    x.b.u32(1).u32(1).u32(100000);  // 100000 counter records in a few bytes
    x.end();
    EXPECT_EQ(decode(x.b.b).stats.error(FlowError::absurd_count), 1u);
  }
  {
    Bytes b;
    b.u32(4).u32(1);
    EXPECT_EQ(decode(b.b).stats.error(FlowError::bad_version), 1u);
  }
}

}  // namespace
}  // namespace bf

namespace bf {
namespace {

TEST(SflowHostile, EveryTruncationIsCountedNeverACrash) {
  test::check_truncations(sflow_datagram(), [] {
    return test::DecodeFn([](const std::string& d, std::string& out, flow::FlowStats& s) {
      flow::decode_sflow(d, test::test_context(), out, s);
    });
  });
}

TEST(SflowHostile, RandomMutations) {
  const uint64_t tried = test::mutate_for_a_while({sflow_datagram()}, [](const std::string& d, std::string& out,
                                                                           flow::FlowStats& s) {
    flow::decode_sflow(d, test::test_context(), out, s);
  });
  EXPECT_GT(tried, 1000u);
}

}  // namespace
}  // namespace bf
